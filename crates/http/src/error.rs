//! [`HttpError`]: what a call of the retrying client can end with.

use std::time::Duration;

/// Why a call failed. No variant ever carries the bearer token: bodies and transport messages
/// are scrubbed of it before they are stored here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with an HTTP error status (5xx, 429 and 408 are retried, other
    /// statuses are not).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body (scrubbed of the token).
        body: String,
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// No complete reply within the client's timeouts.
    #[error("no reply within the timeouts (connect {connect:?}, whole request {request:?})")]
    Timeout {
        /// The connection timeout.
        connect: Duration,
        /// The whole-request timeout.
        request: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("transport error: {0}")]
    Transport(String),
    /// A 2xx reply whose body is not what was expected in a way a retry may fix (broken or
    /// truncated JSON, a missing field).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A 2xx reply that is well formed but wrong (a wrong number of values, a value that is not
    /// finite): asking again would give the same answer, so it is not retried.
    #[error("{0}")]
    Rejected(String),
    /// Every attempt failed with a retryable error.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    Exhausted {
        /// How many requests were made.
        attempts: u32,
        /// The last error seen.
        last: Box<HttpError>,
    },
    /// The client could not be built (zero attempts, no TLS backend, no runtime).
    #[error("HTTP client: {0}")]
    Config(String),
}

impl HttpError {
    /// Whether a new attempt may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            HttpError::Timeout { .. } | HttpError::Transport(_) | HttpError::Malformed(_) => true,
            HttpError::Rejected(_) | HttpError::Exhausted { .. } | HttpError::Config(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_rate_limits_and_timeouts_are_retried_client_errors_are_not() {
        let status = |status| HttpError::Status {
            status,
            body: String::new(),
            retry_after: None,
        };
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!status(s).is_retryable(), "{s}");
        }
        assert!(HttpError::Malformed("x".into()).is_retryable());
        assert!(!HttpError::Rejected("x".into()).is_retryable());
    }
}
