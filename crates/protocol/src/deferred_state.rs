//! An actor method's state writes handed over with its reply: kar's own exchange
//! between its sidecar and its Rust SDK (other SDKs never see it).
//!
//! The sidecar offers it on every actor method invocation with the request header
//! [`OFFER`]. A component that takes the offer holds the method's writes of the
//! instance's flat state entries and answers with the response header
//! [`UPDATE_LENGTH`]: the first that many bytes of the body are a stateUpdateOp (the
//! body of `POST .../state`, see [`crate::state_ops::parse_update`]), the rest is the
//! reply. The sidecar commits the update in the store transition that records the
//! request's outcome, before it releases the instance lock: the method's writes
//! become durable together with its result or not at all, one commit (and one HTTP
//! exchange) less per call.
//!
//! Either side may be older: a sidecar that does not offer gets the writes through
//! the state API, and a component that ignores the offer sends them that way itself.

use bytes::Bytes;

/// Request header (value `1`): the sidecar takes state writes with the reply.
pub const OFFER: &str = "kar-state-with-reply";

/// Response header: the length in bytes of the stateUpdateOp at the start of the body.
pub const UPDATE_LENGTH: &str = "kar-state-update-length";

/// Response header: the reply's status, when the response's cannot be it (a `204`
/// has no body to carry the update: it is sent as a `200` with this header).
pub const REPLY_STATUS: &str = "kar-reply-status";

/// Splits a reply body by the value of its [`UPDATE_LENGTH`] header into the
/// stateUpdateOp and the reply's own body.
pub fn split(mut body: Bytes, length: &[u8]) -> Result<(Bytes, Bytes), String> {
    let length = std::str::from_utf8(length)
        .ok()
        .and_then(|length| length.trim().parse::<usize>().ok())
        .ok_or_else(|| format!("{UPDATE_LENGTH} is not a length"))?;
    if length > body.len() {
        return Err(format!(
            "{UPDATE_LENGTH} {length} exceeds the body's {} bytes",
            body.len()
        ));
    }
    let update = body.split_to(length);
    Ok((update, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_update_from_the_reply() {
        let body = Bytes::from_static(br#"{"updates":{"n":1}}{"value":1}"#);
        let (update, reply) = split(body, b"19").unwrap();
        assert_eq!(&update[..], br#"{"updates":{"n":1}}"#);
        assert_eq!(&reply[..], br#"{"value":1}"#);
        assert_eq!(split(Bytes::from_static(b"{}"), b"2").unwrap().1.len(), 0);
        assert!(split(Bytes::from_static(b"{}"), b"3").is_err());
        assert!(split(Bytes::from_static(b"{}"), b"x").is_err());
        assert!(split(Bytes::from_static(b"{}"), b"-1").is_err());
    }
}
