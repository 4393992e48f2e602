//! KAR's pod annotations (spec §5.9) and their defaults, as upstream's injector reads
//! them.

use std::collections::BTreeMap;
use thiserror::Error;

pub const APP: &str = "kar.ibm.com/app";
pub const SERVICE: &str = "kar.ibm.com/service";
pub const ACTORS: &str = "kar.ibm.com/actors";
pub const APP_PORT: &str = "kar.ibm.com/appPort";
pub const RUNTIME_PORT: &str = "kar.ibm.com/runtimePort";
pub const VERBOSE: &str = "kar.ibm.com/verbose";
pub const EXTRA_ARGS: &str = "kar.ibm.com/extraArgs";
pub const SIDECAR_CONTAINER: &str = "kar.ibm.com/sidecarContainer";
/// Set by the injector on the pods it changed (`sidecar` or `container`): a pod that
/// has it is left alone.
pub const INJECTED: &str = "kar.ibm.com/injected";

pub const DEFAULT_APP_PORT: u16 = 8080;
pub const DEFAULT_RUNTIME_PORT: u16 = 3500;

/// What a pod's annotations ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KarAnnotations {
    pub app: String,
    pub service: Option<String>,
    pub actors: Option<String>,
    pub app_port: u16,
    pub runtime_port: u16,
    pub verbose: Option<String>,
    pub extra_args: Vec<String>,
    /// `true` (default): kar runs in a container of its own; `false`: the component
    /// runs under `kar run` in its own container.
    pub sidecar_container: bool,
}

/// An annotation with a value the injector cannot use: the pod is refused with this
/// reason.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AnnotationError {
    #[error("annotation {APP} is empty")]
    EmptyApp,
    #[error("annotation {name} must be a port number (1-65535), not {value:?}")]
    BadPort { name: &'static str, value: String },
    #[error("annotation {SIDECAR_CONTAINER} must be true or false, not {0:?}")]
    BadBool(String),
    #[error("annotations {APP_PORT} and {RUNTIME_PORT} are both {0}: they must differ")]
    SamePorts(u16),
}

impl KarAnnotations {
    /// `None` when the pod has no `kar.ibm.com/app` annotation (nothing to inject).
    pub fn parse(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<KarAnnotations>, AnnotationError> {
        let Some(app) = annotations.get(APP) else {
            return Ok(None);
        };
        let app = app.trim();
        if app.is_empty() {
            return Err(AnnotationError::EmptyApp);
        }
        let text = |name: &str| {
            annotations
                .get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let port = |name: &'static str, default: u16| match text(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(AnnotationError::BadPort { name, value }),
        };
        let sidecar_container = match text(SIDECAR_CONTAINER) {
            None => true,
            Some(value) => parse_go_bool(&value).ok_or(AnnotationError::BadBool(value))?,
        };
        let parsed = KarAnnotations {
            app: app.to_string(),
            service: text(SERVICE),
            actors: text(ACTORS),
            app_port: port(APP_PORT, DEFAULT_APP_PORT)?,
            runtime_port: port(RUNTIME_PORT, DEFAULT_RUNTIME_PORT)?,
            verbose: text(VERBOSE),
            extra_args: text(EXTRA_ARGS)
                .map(|args| {
                    args.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            sidecar_container,
        };
        if parsed.app_port == parsed.runtime_port {
            return Err(AnnotationError::SamePorts(parsed.app_port));
        }
        Ok(Some(parsed))
    }

    /// The `kar run` flags after `-app APP`, as upstream's injector builds them:
    /// `-kubernetes_mode` (probes come from the node) and `-config_dir` (the mounted
    /// runtime-config secret) always; `-sidecar_mode` in a sidecar container.
    pub fn run_flags(&self, config_dir: &str) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(service) = &self.service {
            flags.extend(["-service".to_string(), service.clone()]);
        }
        if let Some(actors) = &self.actors {
            flags.extend(["-actors".to_string(), actors.clone()]);
        }
        flags.extend([
            "-app_port".to_string(),
            self.app_port.to_string(),
            "-runtime_port".to_string(),
            self.runtime_port.to_string(),
            "-kubernetes_mode".to_string(),
            "-config_dir".to_string(),
            config_dir.to_string(),
        ]);
        if self.sidecar_container {
            flags.push("-sidecar_mode".to_string());
        }
        if let Some(verbose) = &self.verbose {
            flags.extend(["-v".to_string(), verbose.clone()]);
        }
        flags.extend(self.extra_args.iter().cloned());
        flags
    }
}

/// Go's `strconv.ParseBool`, as upstream reads the annotation.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<KarAnnotations>, AnnotationError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KarAnnotations::parse(&map)
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[("other", "x")]), Ok(None));
        let a = parse(&[(APP, "greeter")]).unwrap().unwrap();
        assert_eq!(a.app, "greeter");
        assert_eq!((a.app_port, a.runtime_port), (8080, 3500));
        assert!(a.sidecar_container && a.service.is_none() && a.extra_args.is_empty());
        assert_eq!(
            a.run_flags("/cfg"),
            [
                "-app_port",
                "8080",
                "-runtime_port",
                "3500",
                "-kubernetes_mode",
                "-config_dir",
                "/cfg",
                "-sidecar_mode"
            ]
        );
    }

    #[test]
    fn every_annotation() {
        let a = parse(&[
            (APP, "a"),
            (SERVICE, "s"),
            (ACTORS, "A,B"),
            (APP_PORT, "9000"),
            (RUNTIME_PORT, "3600"),
            (VERBOSE, "info"),
            (EXTRA_ARGS, "-h2c, -max_attempts=5,"),
            (SIDECAR_CONTAINER, "false"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.run_flags("/cfg"),
            [
                "-service",
                "s",
                "-actors",
                "A,B",
                "-app_port",
                "9000",
                "-runtime_port",
                "3600",
                "-kubernetes_mode",
                "-config_dir",
                "/cfg",
                "-v",
                "info",
                "-h2c",
                "-max_attempts=5"
            ]
        );
    }

    #[test]
    fn bad_values() {
        assert_eq!(parse(&[(APP, " ")]), Err(AnnotationError::EmptyApp));
        for port in ["0", "70000", "http", "-1"] {
            assert!(matches!(
                parse(&[(APP, "a"), (APP_PORT, port)]),
                Err(AnnotationError::BadPort { .. })
            ));
        }
        assert_eq!(
            parse(&[(APP, "a"), (SIDECAR_CONTAINER, "yes")]),
            Err(AnnotationError::BadBool("yes".into()))
        );
        assert_eq!(
            parse(&[(APP, "a"), (RUNTIME_PORT, "8080")]),
            Err(AnnotationError::SamePorts(8080))
        );
    }
}
