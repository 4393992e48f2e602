//! Awaiting promises (spec §2.3, decision §9.6).

use super::Request;
use crate::body;
use crate::reply::{self, On204, Response};
use crate::server::Ctx;
use http::StatusCode;
use kar_runtime::AwaitError;

/// `POST /kar/v1/await`, body = the promise's request id.
pub(crate) async fn await_promise(ctx: &Ctx, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let id = String::from_utf8_lossy(&body);
    match ctx.runtime.await_promise(id.trim()).await {
        Ok(reply) => reply::relay(reply, On204::KeepContentType),
        Err(AwaitError::ShuttingDown) => reply::service_unavailable(),
        // Decision §9.6: an unknown or already awaited id is a 404, not a hang.
        Err(e @ AwaitError::Unknown(_)) => reply::error(
            StatusCode::NOT_FOUND,
            format!("failed to await promise: {e}"),
        ),
        Err(AwaitError::Failed(reason)) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to await promise: {reason}"),
        ),
    }
}
