//! The page of `kar dashboard` (README, "Dashboard"): one HTML file with its script
//! inline (`assets/dashboard.html`), embedded in the binary, no build step. It reads
//! and acts through the admin API only (`routes/admin.rs`), so everything it shows
//! can be scripted against the same routes.

use crate::reply::{self, Response};
use crate::routes::Request;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use http::{Method, StatusCode};

const PAGE: &str = include_str!("../assets/dashboard.html");

/// Whether the request asks for the page (which holds no data, so it needs no API
/// token: the page asks for one when the API refuses it).
pub(crate) fn is_page(request: &Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && matches!(request.uri().path(), "/" | "/index.html" | "/favicon.ico")
}

/// The page, or a JSON 404 for anything that is neither the page nor the admin API.
pub(crate) fn page(request: &Request) -> Response {
    if !is_page(request) {
        return reply::json_error(
            StatusCode::NOT_FOUND,
            format!(
                "kar dashboard serves / and /kar/admin/v1/ only, not {}",
                request.uri().path()
            ),
        );
    }
    if request.uri().path() == "/favicon.ico" {
        return reply::empty(StatusCode::NO_CONTENT);
    }
    let mut response = reply::typed(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Everything is inline and same-origin: nothing else may load or run.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
        ),
    );
    response
}
