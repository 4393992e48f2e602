//! Query parameters read the way Go's `Request.FormValue` reads them (spec §2.0): the
//! first value of the name, `+` and `%XX` decoded; malformed pairs are skipped.

/// The first value of `name` in the raw query string, or `None` if it is absent.
pub(crate) fn form_value(query: Option<&str>, name: &str) -> Option<String> {
    for pair in query?.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Go (since 1.17) rejects keys containing `;` instead of splitting on it.
        if key.contains(';') {
            continue;
        }
        let (Some(key), Some(value)) = (unescape(key), unescape(value)) else {
            continue;
        };
        if key == name {
            return Some(value);
        }
    }
    None
}

/// Go's `url.QueryUnescape`: `+` is a space; an invalid `%` escape fails the pair.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_go_form_value() {
        let v = |q: &str, name: &str| form_value(Some(q), name);
        assert_eq!(
            v("nilOnAbsent=true", "nilOnAbsent").as_deref(),
            Some("true")
        );
        assert_eq!(
            v("a=1&nilOnAbsent=%74rue", "nilOnAbsent").as_deref(),
            Some("true")
        );
        assert_eq!(v("x=1&x=2", "x").as_deref(), Some("1"));
        assert_eq!(v("session=f1%3Ar0", "session").as_deref(), Some("f1:r0"));
        assert_eq!(v("session=a+b", "session").as_deref(), Some("a b"));
        assert_eq!(v("session", "session").as_deref(), Some(""));
        assert_eq!(
            v("session=%zz&session=ok", "session").as_deref(),
            Some("ok")
        );
        assert_eq!(v("a;b=1&a=2", "a").as_deref(), Some("2"));
        assert_eq!(v("&&", "a"), None);
        assert_eq!(form_value(None, "a"), None);
    }
}
