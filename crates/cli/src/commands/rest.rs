//! `kar rest [OPTIONS] REST_METHOD SERVICE_NAME PATH [REQUEST_BODY]` (spec §5.5).

use super::run::MISSING_COMPONENT_TIMEOUT;
use super::{join_as_client, Context, Signals};
use crate::config::optional_duration;
use crate::flags::{Flag, Kind};
use anyhow::{bail, Result};
use bytes::Bytes;
use kar_protocol::{Invocation, RequestKind, Target};
use kar_runtime::Accepted;
use std::io::Write;

const CONTENT_TYPE: Flag = Flag::new(
    "content_type",
    Kind::String,
    "application/json",
    "Content-Type of the request body",
);

pub const FLAGS: &[&Flag] = &[&CONTENT_TYPE, &MISSING_COMPONENT_TIMEOUT];

/// The request `kar rest` makes, from its positional arguments.
#[derive(Debug, PartialEq)]
pub struct RestRequest {
    pub service: String,
    pub invocation: Invocation,
}

pub fn build_request(args: &[String], content_type: &str) -> Result<RestRequest> {
    let [method, service, path, body @ ..] = args else {
        bail!(
            "rest expects either three or four arguments; got {}",
            args.len()
        );
    };
    if body.len() > 1 {
        bail!(
            "rest expects either three or four arguments; got {}",
            args.len()
        );
    }
    let path = if path.starts_with('/') {
        path.clone()
    } else {
        format!("/{path}")
    };
    // The invocation carries the query separately; it is forwarded as given.
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path, None),
    };
    let (headers, body) = match body.first() {
        Some(body) => (
            vec![("Content-Type".to_string(), content_type.to_string())],
            Bytes::from(body.clone()),
        ),
        None => (Vec::new(), Bytes::new()),
    };
    Ok(RestRequest {
        service: service.clone(),
        invocation: Invocation {
            method: method.to_uppercase(),
            path,
            query,
            headers,
            body,
        },
    })
}

pub async fn run(ctx: Context) -> Result<i32> {
    let request = build_request(&ctx.matches.args, ctx.matches.str("content_type"))?;
    let mut signals = Signals::new()?;
    let timeout = optional_duration(ctx.matches.duration("missing_component_timeout"));
    let runtime = join_as_client(&ctx.global, timeout).await?;
    let target = Target::Service {
        name: request.service,
    };
    let result = tokio::select! {
        result = runtime.request(target, request.invocation, RequestKind::Call, None, None) => Some(result),
        name = signals.recv() => {
            tracing::info!("received {name}");
            None
        }
    };
    runtime.shutdown().await;
    let code = match result {
        Some(Ok(Accepted::Reply(reply))) => {
            if reply.status == 200 {
                let mut out = std::io::stdout().lock();
                // A closed stdout leaves nobody to tell.
                let _ = out.write_all(&reply.body);
                let _ = out.write_all(b"\n");
                let _ = out.flush();
            } else {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "[STDERR] HTTP status: {}", reply.status);
                let _ = err.write_all(b"[STDERR] ");
                let _ = err.write_all(&reply.body);
                let _ = err.write_all(b"\n");
            }
            0
        }
        Some(Ok(Accepted::Queued(id))) => {
            tracing::error!("error invoking the service: call {id} was queued instead of answered");
            1
        }
        Some(Err(e)) => {
            tracing::error!("error invoking the service: {e}");
            1
        }
        None => 1,
    };
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Result<RestRequest> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        build_request(&args, "text/plain")
    }

    #[test]
    fn builds_calls() {
        let r = req(&["post", "greeter", "helloText", "Gandalf"]).unwrap();
        assert_eq!(r.service, "greeter");
        assert_eq!(r.invocation.method, "POST");
        assert_eq!(r.invocation.path, "/helloText");
        assert_eq!(r.invocation.query, None);
        assert_eq!(
            r.invocation.headers,
            vec![("Content-Type".to_string(), "text/plain".to_string())]
        );
        assert_eq!(r.invocation.body, Bytes::from("Gandalf"));

        let r = req(&["get", "svc", "/a/b?x=1&y=2"]).unwrap();
        assert_eq!(r.invocation.method, "GET");
        assert_eq!(r.invocation.path, "/a/b");
        assert_eq!(r.invocation.query.as_deref(), Some("x=1&y=2"));
        assert!(r.invocation.headers.is_empty());
        assert!(r.invocation.body.is_empty());
    }

    #[test]
    fn argument_count() {
        assert_eq!(
            req(&["get", "svc"]).unwrap_err().to_string(),
            "rest expects either three or four arguments; got 2"
        );
        assert_eq!(
            req(&["get", "svc", "/p", "b", "extra"])
                .unwrap_err()
                .to_string(),
            "rest expects either three or four arguments; got 5"
        );
    }
}
