//! `kar invoke [OPTIONS] ACTOR_TYPE ACTOR_ID METHOD [ARGS...]` (spec §5.4).

use super::run::MISSING_COMPONENT_TIMEOUT;
use super::Context;
use crate::flags::{Flag, Kind};
use anyhow::{bail, Result};

const ACTOR_BUSY_TIMEOUT: Flag = Flag::new(
    "actor_busy_timeout",
    Kind::Duration,
    "2m",
    "Time to wait on a busy actor before timing out (0 is infinite)",
);

pub const FLAGS: &[&Flag] = &[&ACTOR_BUSY_TIMEOUT, &MISSING_COMPONENT_TIMEOUT];

pub async fn run(ctx: Context) -> Result<i32> {
    if ctx.matches.args.len() < 3 {
        bail!("invoke expects at least three arguments");
    }
    bail!("kar invoke is not implemented yet: the runtime does not host actors yet")
}
