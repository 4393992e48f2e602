//! The reply of an application component, relayed verbatim to the caller (spec §1.3).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Status, Content-Type (absent when the app sent none) and body of a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            content_type: content_type.map(str::to_string),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` reply, as Go's content sniffing produces for text.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Reply::new(status, Some("text/plain; charset=utf-8"), body.into())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
