//! Command-line flags with the semantics of Go's `flag` package (spec §5.1), so that
//! scripts written for the upstream `kar` keep working: `-flag value`, `-flag=value`,
//! `--flag`; booleans only as `-flag` or `-flag=false`; parsing stops at the first
//! non-flag argument or at `--` (which is consumed); the last occurrence wins.

use kar_protocol::{format_go_duration, parse_go_duration};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use thiserror::Error;

/// The type of a flag, which decides how its value is parsed and shown in usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    String,
    Int,
    /// A Go duration (`300ms`, `2m`), kept as signed nanoseconds.
    Duration,
}

/// A parsed flag value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Str(String),
    Int(i64),
    /// Signed nanoseconds.
    Duration(i64),
}

impl Value {
    /// Parses `text` as a value of `kind`. The error text is Go's (`parse error`,
    /// `value out of range`).
    pub fn parse(kind: Kind, text: &str) -> Result<Value, &'static str> {
        match kind {
            Kind::Bool => parse_go_bool(text).map(Value::Bool).ok_or("parse error"),
            Kind::String => Ok(Value::Str(text.to_string())),
            Kind::Int => parse_go_int(text).map(Value::Int),
            Kind::Duration => parse_go_duration(text)
                .map(Value::Duration)
                .map_err(|_| "parse error"),
        }
    }
}

/// One flag definition.
#[derive(Clone, Debug)]
pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    /// Default value as Go would print it (`8080`, `2m0s`, `error`, `false`).
    pub default: &'static str,
    pub usage: &'static str,
}

impl Flag {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        usage: &'static str,
    ) -> Flag {
        Flag {
            name,
            kind,
            default,
            usage,
        }
    }

    /// The parsed default. Definitions are static and covered by tests, so a bad
    /// default is a programming error; it degrades to the zero value.
    fn default_value(&self) -> Value {
        Value::parse(self.kind, self.default).unwrap_or(match self.kind {
            Kind::Bool => Value::Bool(false),
            Kind::String => Value::Str(String::new()),
            Kind::Int => Value::Int(0),
            Kind::Duration => Value::Duration(0),
        })
    }

    fn is_zero_default(&self) -> bool {
        match self.default_value() {
            Value::Bool(b) => !b,
            Value::Str(s) => s.is_empty(),
            Value::Int(i) => i == 0,
            Value::Duration(d) => d == 0,
        }
    }
}

/// Why the command line could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlagError {
    /// `-h` / `-help` (when not defined): the caller prints usage and exits 0.
    #[error("flag: help requested")]
    Help,
    #[error("{0}")]
    Invalid(String),
}

/// The result of parsing: every flag's value (explicit or default), which flags were
/// given explicitly, and the remaining positional arguments.
#[derive(Clone, Debug)]
pub struct Matches {
    values: BTreeMap<&'static str, Value>,
    explicit: BTreeSet<&'static str>,
    pub args: Vec<String>,
}

impl Matches {
    /// Whether the flag appeared on the command line (Go's `flag.Visit`).
    pub fn is_set(&self, name: &str) -> bool {
        self.explicit.contains(name)
    }

    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }

    pub fn str(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(Value::Str(s)) => s,
            _ => "",
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }

    /// Signed nanoseconds.
    pub fn duration(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Duration(d)) => *d,
            _ => 0,
        }
    }
}

/// The kind of the flag called `name`, if defined.
pub fn kind_of(flags: &[&Flag], name: &str) -> Option<Kind> {
    flags.iter().find(|f| f.name == name).map(|f| f.kind)
}

/// Parses `args` against `flags` like Go's `FlagSet.Parse` with `ContinueOnError`.
pub fn parse(flags: &[&Flag], args: &[String]) -> Result<Matches, FlagError> {
    let lookup = |name: &str| flags.iter().find(|f| f.name == name).copied();
    let mut values: BTreeMap<&'static str, Value> =
        flags.iter().map(|f| (f.name, f.default_value())).collect();
    let mut explicit = BTreeSet::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let mut name = &arg[1..];
        if let Some(rest) = name.strip_prefix('-') {
            if rest.is_empty() {
                // `--` ends the flags and is consumed.
                i += 1;
                break;
            }
            name = rest;
        }
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(FlagError::Invalid(format!("bad flag syntax: {arg}")));
        }
        i += 1;
        // The name is never empty, so a `=` is searched from its second character on.
        let (name, inline_value) = match name.char_indices().skip(1).find(|(_, c)| *c == '=') {
            Some((pos, _)) => (&name[..pos], Some(&name[pos + 1..])),
            None => (name, None),
        };
        let Some(flag) = lookup(name) else {
            if name == "help" || name == "h" {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Invalid(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = if flag.kind == Kind::Bool {
            let text = inline_value.unwrap_or("true");
            Value::parse(Kind::Bool, text).map_err(|e| {
                FlagError::Invalid(format!("invalid boolean value {text:?} for -{name}: {e}"))
            })?
        } else {
            let text = match inline_value {
                Some(text) => text,
                None if i < args.len() => {
                    i += 1;
                    &args[i - 1]
                }
                None => {
                    return Err(FlagError::Invalid(format!(
                        "flag needs an argument: -{name}"
                    )))
                }
            };
            Value::parse(flag.kind, text).map_err(|e| {
                FlagError::Invalid(format!("invalid value {text:?} for flag -{name}: {e}"))
            })?
        };
        values.insert(flag.name, value);
        explicit.insert(flag.name);
    }
    Ok(Matches {
        values,
        explicit,
        args: args[i..].to_vec(),
    })
}

/// Lists flags like Go's `PrintDefaults`: sorted by name, type after the name,
/// non-zero defaults at the end of the description.
pub fn print_defaults(flags: &[&Flag]) -> String {
    let mut sorted: Vec<&Flag> = flags.to_vec();
    sorted.sort_by_key(|f| f.name);
    let mut out = String::new();
    for flag in sorted {
        let mut line = format!("  -{}", flag.name);
        let type_name = match flag.kind {
            Kind::Bool => "",
            Kind::String => "string",
            Kind::Int => "int",
            Kind::Duration => "duration",
        };
        if !type_name.is_empty() {
            line.push(' ');
            line.push_str(type_name);
        }
        // Go keeps one-letter boolean flags on the same line as their description.
        if line.len() <= 4 {
            line.push('\t');
        } else {
            line.push_str("\n    \t");
        }
        line.push_str(&flag.usage.replace('\n', "\n    \t"));
        if !flag.is_zero_default() {
            match flag.kind {
                Kind::String => {
                    let _ = write!(line, " (default {:?})", flag.default);
                }
                Kind::Duration => {
                    let shown = match flag.default_value() {
                        Value::Duration(d) => format_go_duration(d),
                        _ => flag.default.to_string(),
                    };
                    let _ = write!(line, " (default {shown})");
                }
                _ => {
                    let _ = write!(line, " (default {})", flag.default);
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)`: optional sign, `0x`/`0o`/`0b` prefixes, a
/// leading `0` means octal, `_` separators only after a base prefix.
pub fn parse_go_int(text: &str) -> Result<i64, &'static str> {
    const SYNTAX: &str = "parse error";
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.to_string(), true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.to_string(), true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if body.contains('_') {
        // Underscores may only follow the base prefix or separate digits.
        let bad = !prefixed || body.ends_with('_') || body.contains("__");
        if bad {
            return Err(SYNTAX);
        }
    }
    let body: String = body.chars().filter(|c| *c != '_').collect();
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(SYNTAX);
    }
    let magnitude = u64::from_str_radix(&body, radix).map_err(|_| "value out of range")?;
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return Err("value out of range");
        }
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude).map_err(|_| "value out of range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: Flag = Flag::new("port", Kind::Int, "8080", "the port");
    const NAME: Flag = Flag::new("name", Kind::String, "", "the name");
    const DEBUG: Flag = Flag::new("debug", Kind::Bool, "false", "debug mode");
    const CACHE: Flag = Flag::new("cache", Kind::Bool, "true", "use the cache");
    const WAIT: Flag = Flag::new("wait", Kind::Duration, "2m", "how long to wait");
    const V: Flag = Flag::new("v", Kind::String, "error", "log level");
    const ALL: &[&Flag] = &[&PORT, &NAME, &DEBUG, &CACHE, &WAIT, &V];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn ok(list: &[&str]) -> Matches {
        parse(ALL, &args(list)).unwrap()
    }

    fn err(list: &[&str]) -> String {
        match parse(ALL, &args(list)) {
            Err(FlagError::Invalid(msg)) => msg,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_absent() {
        let m = ok(&[]);
        assert_eq!(m.int("port"), 8080);
        assert_eq!(m.str("name"), "");
        assert!(!m.bool("debug"));
        assert!(m.bool("cache"));
        assert_eq!(m.duration("wait"), 120_000_000_000);
        assert!(!m.is_set("port"));
        assert!(m.args.is_empty());
    }

    #[test]
    fn value_syntaxes() {
        let m = ok(&["-port", "1", "--name=x", "-wait=300ms", "--v", "info"]);
        assert_eq!(m.int("port"), 1);
        assert_eq!(m.str("name"), "x");
        assert_eq!(m.duration("wait"), 300_000_000);
        assert_eq!(m.str("v"), "info");
        assert!(m.is_set("port") && m.is_set("name") && m.is_set("wait"));
        // A value may itself start with a dash or contain `=`.
        let m = ok(&["-name", "-x=y", "-name=a=b"]);
        assert_eq!(m.str("name"), "a=b");
        // Empty inline value.
        assert_eq!(ok(&["-name="]).str("name"), "");
    }

    #[test]
    fn booleans_take_no_separate_value() {
        let m = ok(&["-debug", "false"]);
        assert!(m.bool("debug"));
        assert_eq!(m.args, args(&["false"]));
        assert!(!ok(&["-cache=false"]).bool("cache"));
        assert!(ok(&["--debug=T"]).bool("debug"));
        assert_eq!(
            err(&["-debug=yes"]),
            "invalid boolean value \"yes\" for -debug: parse error"
        );
    }

    #[test]
    fn parsing_stops_at_first_positional_or_double_dash() {
        let m = ok(&["-debug", "run", "-port", "1"]);
        assert_eq!(m.args, args(&["run", "-port", "1"]));
        assert_eq!(m.int("port"), 8080);
        let m = ok(&["-port", "1", "--", "-debug", "--"]);
        assert_eq!(m.args, args(&["-debug", "--"]));
        assert!(!m.bool("debug"));
        // A lone dash is a positional argument.
        assert_eq!(ok(&["-", "x"]).args, args(&["-", "x"]));
    }

    #[test]
    fn last_occurrence_wins() {
        assert_eq!(ok(&["-port", "1", "-port=2"]).int("port"), 2);
    }

    #[test]
    fn errors_have_go_texts() {
        assert_eq!(err(&["-nope"]), "flag provided but not defined: -nope");
        assert_eq!(err(&["-port"]), "flag needs an argument: -port");
        assert_eq!(
            err(&["-port", "x"]),
            "invalid value \"x\" for flag -port: parse error"
        );
        assert_eq!(
            err(&["-port=99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -port: value out of range"
        );
        assert_eq!(
            err(&["-wait", "5"]),
            "invalid value \"5\" for flag -wait: parse error"
        );
        assert_eq!(err(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(err(&["-=x"]), "bad flag syntax: -=x");
        assert_eq!(err(&["-é=1"]), "flag provided but not defined: -é");
        assert_eq!(parse(ALL, &args(&["-h"])).unwrap_err(), FlagError::Help);
        assert_eq!(parse(ALL, &args(&["--help"])).unwrap_err(), FlagError::Help);
    }

    #[test]
    fn go_integers() {
        assert_eq!(parse_go_int("42"), Ok(42));
        assert_eq!(parse_go_int("-42"), Ok(-42));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("017"), Ok(15));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("0x_1_0"), Ok(16));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_go_int("0_17"), Ok(15));
        assert!(parse_go_int("1_000").is_err());
        assert!(parse_go_int("0x1_").is_err());
        assert!(parse_go_int("0x1__0").is_err());
        assert!(parse_go_int("08").is_err());
        assert!(parse_go_int("").is_err());
        assert!(parse_go_int("12a").is_err());
        assert_eq!(
            parse_go_int("9223372036854775808"),
            Err("value out of range")
        );
    }

    #[test]
    fn defaults_are_listed_like_go() {
        let text = print_defaults(&[&V, &PORT, &DEBUG, &CACHE, &WAIT, &NAME]);
        let expected = "  -cache\n    \tuse the cache (default true)\n  \
                        -debug\n    \tdebug mode\n  \
                        -name string\n    \tthe name\n  \
                        -port int\n    \tthe port (default 8080)\n  \
                        -v string\n    \tlog level (default \"error\")\n  \
                        -wait duration\n    \thow long to wait (default 2m0s)\n";
        assert_eq!(text, expected);
        let short = Flag::new("x", Kind::Bool, "false", "short");
        assert_eq!(print_defaults(&[&short]), "  -x\tshort\n");
    }
}
