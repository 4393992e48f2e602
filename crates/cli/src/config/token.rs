//! `-api_token` of `kar run`: the flag, else `KAR_API_TOKEN`, else the file
//! `api_token` of `-config_dir` (the injector mounts the runtime-config secret there).

use super::Env;
use crate::flags::Matches;
use anyhow::{Context, Result};
use std::path::Path;

/// The token, or `None` when it is configured nowhere (or empty).
pub fn api_token(matches: &Matches, env: &dyn Env) -> Result<Option<String>> {
    let token = if matches.is_set("api_token") {
        matches.str("api_token").to_string()
    } else if let Some(token) = env.get("KAR_API_TOKEN") {
        token
    } else {
        from_config_dir(matches.str("config_dir"))?.unwrap_or_default()
    };
    Ok(Some(token).filter(|t| !t.is_empty()))
}

fn from_config_dir(dir: &str) -> Result<Option<String>> {
    if dir.is_empty() {
        return Ok(None);
    }
    let path = Path::new(dir).join("api_token");
    match std::fs::read_to_string(&path) {
        // Unlike the other files, a trailing newline is dropped: a token never ends
        // with one, and `echo token > file` is the usual way to write it.
        Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::FakeEnv;
    use crate::flags::{parse, Flag, Kind};

    const API_TOKEN: Flag = Flag::new("api_token", Kind::String, "", "");
    const CONFIG_DIR: Flag = Flag::new("config_dir", Kind::String, "", "");

    fn token(args: &[&str], env: &[(&str, &str)]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let m = parse(&[&API_TOKEN, &CONFIG_DIR], &args).unwrap();
        api_token(&m, &FakeEnv::new(env)).unwrap()
    }

    #[test]
    fn flag_then_environment_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(token(&["-config_dir", d], &[]), None);
        std::fs::write(dir.path().join("api_token"), "from-file\n").unwrap();
        assert_eq!(
            token(&["-config_dir", d], &[]).as_deref(),
            Some("from-file")
        );
        let env = [("KAR_API_TOKEN", "from-env")];
        assert_eq!(
            token(&["-config_dir", d], &env).as_deref(),
            Some("from-env")
        );
        let args = ["-config_dir", d, "-api_token", "from-flag"];
        assert_eq!(token(&args, &env).as_deref(), Some("from-flag"));
        // An explicitly empty flag turns authentication off.
        assert_eq!(token(&["-config_dir", d, "-api_token="], &env), None);
    }
}
