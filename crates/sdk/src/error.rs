//! The one error type of the SDK, for the client and for component code alike.

/// What can go wrong talking to the sidecar, or inside a component method.
///
/// Actor methods and service handlers return it too: the component host turns it into
/// the answer the runtime expects (an error envelope for actor methods, a `404` for
/// [`Error::NoSuchMethod`], a `500` for service handlers).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment does not say how to reach the sidecar or where to listen
    /// (`KAR_RUNTIME_PORT`, `KAR_APP_PORT`).
    #[error("configuration: {0}")]
    Config(String),
    /// The sidecar could not be reached, or the connection broke mid-request.
    #[error("cannot reach the kar sidecar: {0}")]
    Transport(String),
    /// The sidecar, or the service or actor behind it, answered with a non-2xx
    /// status (for example `404 no m in actor with type T and id I`, or `500 failed to
    /// send message: ...`). `body` is the answer's text.
    #[error("status {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The body of the answer, as text.
        body: String,
    },
    /// An actor method failed: either the error envelope (`{"error":true,...}`) of a
    /// called actor, or an error raised by component code with [`Error::msg`]. Returned
    /// from an actor method, it becomes that method's error envelope.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// Where it went wrong, when known (the envelope's `stack`); may be empty.
        stack: String,
    },
    /// An actor has no such method. Returned from [`crate::Actor::invoke`], the host
    /// answers `404 no <method> in actor with type <T> and id <I>` (spec §3.3).
    #[error("no such method: {method}")]
    NoSuchMethod {
        /// The method that was asked for.
        method: String,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// An answer did not have the expected shape (e.g. not JSON, or not the type the
    /// caller asked for).
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// A socket operation of the component host failed (binding its port).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// An application error with this message, as an actor method or service handler
    /// would raise it.
    ///
    /// ```
    /// let e = kar_sdk::Error::msg("insufficient funds");
    /// assert_eq!(e.to_string(), "insufficient funds");
    /// ```
    pub fn msg(message: impl std::fmt::Display) -> Error {
        Error::Failed {
            message: message.to_string(),
            stack: String::new(),
        }
    }

    /// The error an actor returns for a method it does not have.
    pub fn no_such_method(method: impl Into<String>) -> Error {
        Error::NoSuchMethod {
            method: method.into(),
        }
    }

    /// The HTTP status of a [`Error::Status`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
