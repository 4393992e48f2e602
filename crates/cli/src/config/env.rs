//! Where values come from outside the command line: the process environment
//! (injectable, see [`Env`]), the embedded store's directory and the port variables
//! of `kar run` (spec §5.2, §9.8).

use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// Reads environment variables; injectable so tests need not touch the process
/// environment.
pub trait Env {
    /// The variable's value; empty values count as unset, like Go's `os.Getenv` checks.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// The directory of the embedded store: `$KAR_HOME`, else `$XDG_DATA_HOME/kar`, else
/// `~/.local/share/kar`.
pub fn kar_home(env: &dyn Env) -> Result<PathBuf> {
    if let Some(home) = env.get("KAR_HOME") {
        return Ok(PathBuf::from(home));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(data) = env
        .get("XDG_DATA_HOME")
        .filter(|d| Path::new(d).is_absolute())
    {
        return Ok(Path::new(&data).join("kar"));
    }
    if let Some(home) = env.get("HOME") {
        return Ok(Path::new(&home).join(".local").join("share").join("kar"));
    }
    bail!("cannot locate the embedded store: set KAR_HOME (or HOME)")
}

/// The runtime port of `kar run`: the flag, or `KAR_RUNTIME_PORT` when the flag is 0.
pub fn runtime_port(flag: i64, env: &dyn Env) -> Result<u16> {
    let port = match env.get("KAR_RUNTIME_PORT").filter(|_| flag == 0) {
        Some(text) => parse_port_var("KAR_RUNTIME_PORT", &text)?,
        None => flag,
    };
    u16::try_from(port).map_err(|_| anyhow!("invalid runtime port {port}"))
}

/// The app port of `kar run`: the flag, or `KAR_APP_PORT` when the flag is exactly its
/// default 8080.
pub fn app_port(flag: i64, env: &dyn Env) -> Result<u16> {
    let port = match env.get("KAR_APP_PORT").filter(|_| flag == 8080) {
        Some(text) => parse_port_var("KAR_APP_PORT", &text)?,
        None => flag,
    };
    u16::try_from(port).map_err(|_| anyhow!("invalid app port {port}"))
}

fn parse_port_var(var: &str, text: &str) -> Result<i64> {
    text.parse::<i64>()
        .map_err(|_| anyhow!("invalid value {text:?} for environment variable {var}: parse error"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of fixed variables.
    pub(crate) struct FakeEnv(HashMap<String, String>);

    impl FakeEnv {
        pub(crate) fn new(vars: &[(&str, &str)]) -> FakeEnv {
            FakeEnv(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        }
    }

    impl Env for FakeEnv {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned().filter(|v| !v.is_empty())
        }
    }

    #[test]
    fn port_variables() {
        let env = FakeEnv::new(&[("KAR_RUNTIME_PORT", "3500"), ("KAR_APP_PORT", "9000")]);
        assert_eq!(runtime_port(0, &env).unwrap(), 3500);
        assert_eq!(runtime_port(4000, &env).unwrap(), 4000);
        assert_eq!(app_port(8080, &env).unwrap(), 9000);
        assert_eq!(app_port(8081, &env).unwrap(), 8081);
        let none = FakeEnv::new(&[]);
        assert_eq!(runtime_port(0, &none).unwrap(), 0);
        assert_eq!(app_port(8080, &none).unwrap(), 8080);
        let bad = FakeEnv::new(&[("KAR_RUNTIME_PORT", "x"), ("KAR_APP_PORT", "99999")]);
        assert!(runtime_port(0, &bad).is_err());
        assert!(app_port(8080, &bad).is_err());
        assert!(runtime_port(-1, &none).is_err());
    }
}
