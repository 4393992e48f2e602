//! The component of the recovery workload, run as its own process under `kar run`
//! (`kar-bench recovery-app --port P --replica NAME --log FILE`) so that a kill -9 of
//! its sidecar takes it down too (parent-death signal). Service routes:
//!
//! - `POST /block` with a trial number: appends `<trial> <replica> <pid> <unix µs>` to
//!   the shared log (one `write` on an `O_APPEND` file, so lines of several processes
//!   never interleave), then holds the request until the trial is released;
//! - `POST /release` with a trial number (called directly by the benchmark, not through
//!   kar): releases every held trial up to it;
//! - `POST /echo`: the short calls of the steady load.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The argument that selects this mode of the `kar-bench` binary.
pub const COMMAND: &str = "recovery-app";

struct Shared {
    replica: String,
    log: Mutex<std::fs::File>,
    /// The highest released trial.
    released: watch::Sender<u64>,
}

pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Serves until killed. `args` follow the command name.
pub async fn serve(args: &[String]) -> Result<()> {
    let (mut port, mut replica, mut log) = (None, None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = Some(value()?.parse::<u16>()?),
            "--replica" => replica = Some(value()?.clone()),
            "--log" => log = Some(PathBuf::from(value()?)),
            other => bail!("unknown option {other}"),
        }
    }
    let (Some(port), Some(replica), Some(log)) = (port, replica, log) else {
        bail!("usage: kar-bench {COMMAND} --port P --replica NAME --log FILE");
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let shared = Arc::new(Shared {
        replica,
        log: Mutex::new(log),
        released: watch::Sender::new(0),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    crate::app::serve(listener, move |request| handle(shared.clone(), request)).await;
    Ok(())
}

/// A trial number in a body such as `7`, `"7"` or `[7]`.
fn trial_of(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body)
        .ok()?
        .trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '[' || c == ']')
        .parse()
        .ok()
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await?.to_bytes();
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain"),
        );
        Ok(response)
    };
    let trial = trial_of(&body);
    match (path.as_str(), trial) {
        ("/echo", _) => reply(StatusCode::OK, body),
        ("/block", Some(trial)) => {
            let line = format!(
                "{trial} {} {} {}\n",
                shared.replica,
                std::process::id(),
                unix_micros()
            );
            let written = match shared.log.lock() {
                Ok(mut file) => file.write_all(line.as_bytes()),
                Err(_) => Err(std::io::Error::other("log lock poisoned")),
            };
            if let Err(e) = written {
                return reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Bytes::from(format!("cannot log: {e}")),
                );
            }
            let mut released = shared.released.subscribe();
            // Only fails if the sender is gone, i.e. never while we serve.
            let _ = released.wait_for(|upto| *upto >= trial).await;
            reply(StatusCode::OK, Bytes::from(shared.replica.clone()))
        }
        ("/release", Some(trial)) => {
            shared
                .released
                .send_modify(|upto| *upto = (*upto).max(trial));
            reply(StatusCode::OK, Bytes::new())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"expected POST /echo, /block <trial> or /release <trial>"),
        ),
    }
}
