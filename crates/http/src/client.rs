//! [`Client`]: JSON requests with timeouts, retries and scrubbed errors; [`BlockingClient`]:
//! the same on a private runtime, for synchronous callers (the PPO loop).
//!
//! A call is retried (up to [`RetryPolicy::max_attempts`] requests in all) on 5xx, 429 and 408
//! statuses, timeouts, connection errors and malformed 2xx bodies, after the server's
//! `Retry-After` (in seconds, capped) or an exponential back-off with jitter. Other 4xx
//! statuses and bodies the caller rejects end the call at once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::error::HttpError;
use crate::retry::{RetryPolicy, retry_after};

/// A secret bearer token. Its `Debug` prints `ApiKey(***)`; it has no `Display` and no
/// `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// How a [`Client`] connects and retries.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// What the requests are, for log lines (`judge request`, `reward request`).
    pub label: String,
    /// Whole-request timeout (connect, send, wait, read the body).
    pub request_timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Whether to use the proxies named by the usual environment variables (`HTTPS_PROXY`,
    /// …). Turn off for servers on the local machine or network.
    pub use_system_proxy: bool,
    /// Bearer token sent with every request, scrubbed from every error.
    pub bearer: Option<ApiKey>,
}

impl HttpConfig {
    /// Defaults: 300 s request timeout, 10 s connect timeout, the default [`RetryPolicy`],
    /// system proxies used, no token.
    pub fn new(label: impl Into<String>) -> Self {
        HttpConfig {
            label: label.into(),
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            use_system_proxy: true,
            bearer: None,
        }
    }
}

/// Parses a 2xx body as JSON; on failure a retryable [`HttpError::Malformed`] naming the
/// serde error and the first 80 characters of the body.
///
/// # Errors
/// [`HttpError::Malformed`].
pub fn json_body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, HttpError> {
    serde_json::from_str(text).map_err(|e| {
        HttpError::Malformed(format!(
            "{e}; body starts {:?}",
            text.chars().take(80).collect::<String>()
        ))
    })
}

/// A JSON-over-HTTP client that retries (module docs).
pub struct Client {
    inner: reqwest::Client,
    config: HttpConfig,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client.
    ///
    /// # Errors
    /// [`HttpError::Config`] for zero attempts or when the TLS client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        if config.retry.max_attempts == 0 {
            return Err(HttpError::Config("max_attempts must be at least 1".into()));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout);
        if !config.use_system_proxy {
            builder = builder.no_proxy();
        }
        let inner = builder
            .build()
            .map_err(|e| HttpError::Config(e.to_string()))?;
        Ok(Client {
            inner,
            config,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Retries so far (requests after a failed attempt of the same call).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The first 500 characters of `text` with the bearer token replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text: String = text.chars().take(500).collect();
        if let Some(key) = &self.config.bearer
            && !key.expose().is_empty()
        {
            text = text.replace(key.expose(), "***");
        }
        text
    }

    fn transport_error(&self, e: &reqwest::Error) -> HttpError {
        if e.is_timeout() {
            HttpError::Timeout {
                connect: self.config.connect_timeout,
                request: self.config.request_timeout,
            }
        } else {
            // reqwest's messages hold the URL, never headers; scrub anyway.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            HttpError::Transport(self.scrub(&message))
        }
    }

    async fn attempt<T>(
        &self,
        url: &str,
        body: Option<&Value>,
        parse: &impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        let mut request = match body {
            Some(b) => self.inner.post(url).json(b),
            None => self.inner.get(url),
        };
        if let Some(key) = &self.config.bearer {
            request = request.bearer_auth(key.expose());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(HttpError::Status {
                status: status.as_u16(),
                body: self.scrub(&text),
                retry_after: wait,
            });
        }
        parse(&text).map_err(|e| match e {
            HttpError::Malformed(m) => HttpError::Malformed(self.scrub(&m)),
            HttpError::Rejected(m) => HttpError::Rejected(self.scrub(&m)),
            other => other,
        })
    }

    async fn call<T>(
        &self,
        url: &str,
        body: Option<&Value>,
        parse: impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        let policy = self.config.retry;
        let mut attempt = 1;
        loop {
            let error = match self.attempt(url, body, &parse).await {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            if attempt >= policy.max_attempts {
                return Err(HttpError::Exhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let server_wait = match &error {
                HttpError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = policy.delay(attempt, server_wait);
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                url,
                %error,
                "{} failed; retrying",
                self.config.label
            );
            tokio::time::sleep(delay).await;
            self.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
        }
    }

    /// POSTs `body` as JSON to `url` and parses the 2xx reply's text with `parse`, retrying
    /// as the module docs say. `parse` returns [`HttpError::Malformed`] for a reply worth
    /// asking for again, [`HttpError::Rejected`] for one that is not.
    ///
    /// # Errors
    /// A non-retryable error as it came, or [`HttpError::Exhausted`] with the last one.
    pub async fn post_json<T>(
        &self,
        url: &str,
        body: &Value,
        parse: impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        self.call(url, Some(body), parse).await
    }

    /// GETs `url` and parses the 2xx reply's text with `parse`, retrying as
    /// [`Client::post_json`].
    ///
    /// # Errors
    /// As [`Client::post_json`].
    pub async fn get<T>(
        &self,
        url: &str,
        parse: impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        self.call(url, None, parse).await
    }
}

/// A [`Client`] on a private runtime (one worker thread, which also keeps pooled connections
/// alive between calls), for synchronous code.
pub struct BlockingClient {
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// Builds the client and its runtime.
    ///
    /// # Errors
    /// As [`Client::new`], and [`HttpError::Config`] when the runtime cannot start.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        let client = Client::new(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rlhf-http")
            .enable_all()
            .build()
            .map_err(|e| HttpError::Config(format!("starting the runtime: {e}")))?;
        Ok(BlockingClient { client, runtime })
    }

    /// The async client (configuration and counters).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn block_on<T>(&self, f: impl Future<Output = Result<T, HttpError>>) -> Result<T, HttpError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(HttpError::Config(
                "a blocking call from inside an async runtime (use the async Client there)".into(),
            ));
        }
        self.runtime.block_on(f)
    }

    /// [`Client::post_json`], blocking.
    ///
    /// # Errors
    /// As [`Client::post_json`], and [`HttpError::Config`] when called from async code.
    pub fn post_json<T>(
        &self,
        url: &str,
        body: &Value,
        parse: impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        self.block_on(self.client.post_json(url, body, parse))
    }

    /// [`Client::get`], blocking.
    ///
    /// # Errors
    /// As [`Client::get`], and [`HttpError::Config`] when called from async code.
    pub fn get<T>(
        &self,
        url: &str,
        parse: impl Fn(&str) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        self.block_on(self.client.get(url, parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key_and_scrub_replaces_it() {
        let mut config = HttpConfig::new("test request");
        config.bearer = Some(ApiKey::new("sk-secret-123"));
        let client = Client::new(config.clone()).unwrap();
        for text in [
            format!("{config:?}"),
            format!("{client:?}"),
            format!("{:?}", ApiKey::new("sk-secret-123")),
        ] {
            assert!(!text.contains("sk-secret-123"), "{text}");
        }
        assert_eq!(client.scrub("bad key sk-secret-123!"), "bad key ***!");
        assert_eq!(client.scrub(&"x".repeat(900)).len(), 500);
    }

    #[test]
    fn zero_attempts_is_a_config_error() {
        let mut config = HttpConfig::new("test request");
        config.retry.max_attempts = 0;
        assert!(matches!(Client::new(config), Err(HttpError::Config(_))));
    }

    #[test]
    fn json_body_names_the_error_and_the_body_start() {
        let e = json_body::<Value>("{\"scores\": [").unwrap_err();
        let HttpError::Malformed(m) = e else {
            panic!("{e}")
        };
        assert!(m.contains("body starts \"{\\\"scores\\\": [\""), "{m}");
    }
}
