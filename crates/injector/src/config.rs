//! How the injector shapes what it adds: the sidecar's image, the secret with the
//! store configuration, where kar finds it.

/// The injector's settings (its command-line flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectorConfig {
    /// The image of the injected `kar` container (its entrypoint is `kar`).
    pub sidecar_image: String,
    pub image_pull_policy: String,
    /// The name of the injected container; a pod that has one is left alone.
    pub sidecar_name: String,
    /// The secret with the runtime configuration (`redis_host`, `redis_port`,
    /// `redis_password`, `redis_ca`, `api_token`, ... one value per key), mounted at
    /// `config_dir` and read by `kar run -config_dir`.
    pub secret_name: String,
    pub config_dir: String,
    /// How the component's container calls kar when the component runs under
    /// `kar run` in it (`kar.ibm.com/sidecarContainer: "false"`).
    pub kar_command: String,
}

/// The name of the volume of the runtime-config secret.
pub const CONFIG_VOLUME: &str = "kar-ibm-com-config";

impl Default for InjectorConfig {
    fn default() -> Self {
        InjectorConfig {
            sidecar_image: "kar:latest".to_string(),
            image_pull_policy: "IfNotPresent".to_string(),
            sidecar_name: "kar".to_string(),
            secret_name: "kar.ibm.com.runtime-config".to_string(),
            config_dir: "/var/run/secrets/kar.ibm.com".to_string(),
            kar_command: "kar".to_string(),
        }
    }
}
