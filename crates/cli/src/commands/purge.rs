//! `kar purge` (spec §5.7): delete every record of the application.

use super::{open_store, Context};
use anyhow::Result;

pub async fn run(ctx: Context) -> Result<i32> {
    // Purging does not join the mesh: it is meant for when no component runs.
    let store = open_store(&ctx.global).await?;
    match store.purge().await {
        Ok(deleted) => tracing::info!("{deleted} deleted keys"),
        // Spec §5.7: errors are only logged; the exit code stays 0.
        Err(e) => tracing::error!("failed to purge application {}: {e}", ctx.global.app),
    }
    Ok(0)
}
