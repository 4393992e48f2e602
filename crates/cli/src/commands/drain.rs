//! `kar drain` (spec §5.7): delete pending requests, keep actor state.

use super::Context;
use anyhow::{bail, Result};

pub async fn run(_ctx: Context) -> Result<i32> {
    // The store has no transition that deletes requests only; purging everything
    // instead would silently destroy actor state.
    bail!("kar drain is not implemented yet (kar purge deletes requests and state)")
}
