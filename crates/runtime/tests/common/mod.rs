//! What the runtime tests share: a runtime on the embedded store in a temporary
//! directory, with an in-process component.

use kar_runtime::{AppClient, Runtime, RuntimeConfig};
use std::path::Path;
use std::sync::Arc;

/// Starts a runtime of application `app_name` hosting `actors`, on a fresh embedded
/// store in `dir`; `tweak` adjusts the configuration first.
pub async fn start_runtime(
    dir: &Path,
    app_name: &str,
    actors: &[&str],
    app: Arc<dyn AppClient>,
    tweak: impl FnOnce(&mut RuntimeConfig),
) -> Arc<Runtime> {
    let store = kar_store::open(
        &kar_store::StoreConfig::Embedded {
            dir: dir.to_path_buf(),
            sync: Default::default(),
        },
        app_name,
    )
    .await
    .expect("store");
    let mut config = RuntimeConfig::new(app_name);
    config.actors = actors.iter().map(|a| a.to_string()).collect();
    tweak(&mut config);
    Runtime::start(config, store, Some(app))
        .await
        .expect("start")
}
