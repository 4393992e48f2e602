//! Paths of the app-side contract (spec §3): `/kar/impl/v1/actor/{type}/{id}[/method]`.
//! Types and ids may hold any character (spec §9.4, §9.7): each is percent-encoded as
//! one path segment.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters escaped in one path segment: everything but unreserved characters and
/// the sub-delimiters that are safe in paths.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Characters escaped in a query component value.
const QUERY_VALUE: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+');

pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// `/kar/impl/v1/actor/{type}/{id}`: activation (GET) and deactivation (DELETE).
pub fn actor_path(actor_type: &str, id: &str) -> String {
    format!(
        "/kar/impl/v1/actor/{}/{}",
        encode_segment(actor_type),
        encode_segment(id)
    )
}

/// `/kar/impl/v1/actor/{type}/{id}/{method...}`; `method` may contain `/` (a
/// catch-all), which is kept as a separator.
pub fn actor_method_path(actor_type: &str, id: &str, method: &str) -> String {
    let method = method.trim_start_matches('/');
    let encoded: Vec<String> = method.split('/').map(encode_segment).collect();
    format!("{}/{}", actor_path(actor_type, id), encoded.join("/"))
}

/// The `session=<flow>:<request>` query passed to the app (spec §3.2, §3.3).
pub fn session_query(flow: &str, request: &str) -> String {
    format!(
        "session={}",
        encode_query_value(&format!("{flow}:{request}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_ids_are_one_segment() {
        assert_eq!(
            actor_path("Foo", "a/b?c#d e"),
            "/kar/impl/v1/actor/Foo/a%2Fb%3Fc%23d%20e"
        );
        assert_eq!(
            actor_method_path("Foo", "1", "/m"),
            "/kar/impl/v1/actor/Foo/1/m"
        );
        assert_eq!(
            actor_method_path("Foo", "1", "a/b c"),
            "/kar/impl/v1/actor/Foo/1/a/b%20c"
        );
        assert_eq!(session_query("flow-1", "req-2"), "session=flow-1:req-2");
    }
}
