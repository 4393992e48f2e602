//! What the self-checking examples (`bank`, `philosophers`) share: one process hosts
//! the actors and runs the check against them through its sidecar, then says how it
//! went. The actors and the checks themselves are in each `src/bin/*.rs`.

use kar_sdk::{Client, Server};
use std::future::Future;
use std::process::ExitCode;

/// Starts `server`, runs `check` with a client of the sidecar, stops the server, and
/// prints `<name>: OK: <summary>` (exit 0) or `<name>: FAILED: <reason>` (exit 1).
pub async fn serve_and_check<F, Fut>(name: &str, server: Server, check: F) -> ExitCode
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let server = match server.start().await {
        Ok(server) => server,
        Err(e) => {
            println!("{name}: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match Client::from_env() {
        Ok(client) => check(client).await,
        Err(e) => Err(e.to_string()),
    };
    server.shutdown().await;
    match result {
        Ok(summary) => {
            println!("{name}: OK: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{name}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
