//! # rlhf-http
//!
//! The workspace's one copy of what talking to a server over HTTP needs, without burn:
//!
//! - [`Client`] (async) and [`BlockingClient`] (its own runtime, for synchronous code): JSON
//!   requests with a connect and a whole-request timeout, retries with exponential back-off
//!   and jitter ([`RetryPolicy`]) or the server's `Retry-After`, statuses classified (5xx, 429,
//!   408 retried; other 4xx fatal), malformed 2xx bodies retried, transport errors flattened
//!   into one line and scrubbed of the bearer token ([`ApiKey`]);
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM, for the servers the command-line tool runs.
//!
//! Users: `rlhf-alignbench-eval`'s OpenAI-compatible judge and `rlhf-policy-ppo`'s remote
//! reward model; `rlhf-annotate` and `rlhf serve-rm` stop on [`shutdown_signal`].
//!
//! # Example
//! ```no_run
//! use rlhf_http::{BlockingClient, HttpConfig, json_body};
//!
//! let client = BlockingClient::new(HttpConfig::new("reward request"))?;
//! let reply: serde_json::Value = client.post_json(
//!     "http://127.0.0.1:8000/score",
//!     &serde_json::json!({"prompts": ["hi"], "responses": ["hello"]}),
//!     json_body,
//! )?;
//! println!("{reply}");
//! # Ok::<(), rlhf_http::HttpError>(())
//! ```
#![warn(missing_docs)]

mod client;
mod error;
mod retry;

pub use client::{ApiKey, BlockingClient, Client, HttpConfig, json_body};
pub use error::HttpError;
pub use retry::{RetryPolicy, retry_after};

/// A server's graceful-shutdown signal: resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
///
/// On Unix the handlers are installed when this is called (so a server can announce itself
/// right after and be stopped at once); call it inside a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn recv(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            tokio::select! {
                () = recv(int) => {},
                () = recv(term) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
