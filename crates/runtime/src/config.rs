use std::time::Duration;

/// What a runtime needs to know about itself.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub app: String,
    /// The `-service` name (`kar.none` by default).
    pub service: String,
    /// The `-actors` types.
    pub actors: Vec<String>,
    /// The port the component reaches the runtime on (advertised in membership).
    pub runtime_port: u16,
    /// Start deadline of requests (`-missing_component_timeout`); `None` = no deadline.
    pub missing_component_timeout: Option<Duration>,
}

impl RuntimeConfig {
    pub fn new(app: impl Into<String>) -> Self {
        RuntimeConfig {
            app: app.into(),
            service: "kar.none".to_string(),
            actors: Vec::new(),
            runtime_port: 0,
            missing_component_timeout: Some(Duration::from_secs(120)),
        }
    }
}
