//! A judge that calls an OpenAI-compatible chat-completions API, with timeouts and retries.
//!
//! As AlignBench's `judge.py`: one user message, no system message, temperature 0. Retries use
//! exponential back-off with jitter on 408/429/5xx, timeouts, connection errors and malformed
//! 2xx bodies, and honour `Retry-After` given in seconds. The API key is sent as a bearer
//! token and never appears in `Debug` output, logs or errors.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::judge::Judge;

/// A secret API key. Its `Debug` prints `ApiKey(***)`; it has no `Display` and no `Serialize`.
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

/// When and how often to retry a judge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most requests per prompt, the first included (at least 1).
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubles for each further attempt.
    pub initial_backoff: Duration,
    /// Cap of the exponential back-off.
    pub max_backoff: Duration,
    /// Cap applied to a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 1 s doubling up to 20 s (AlignBench: random exponential 1–20 s),
    /// `Retry-After` honoured up to 120 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl RetryPolicy {
    /// The back-off after failed attempt number `attempt` (1-based), "equal jitter": a
    /// uniform draw from `[d/2, d]` where `d = min(max_backoff, initial_backoff · 2^(attempt−1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        full.mul_f64(0.5 + 0.5 * random_unit())
    }

    /// The wait before the next attempt: the server's `Retry-After` if it sent one (capped by
    /// `max_retry_after`), else [`RetryPolicy::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }
}

/// Configuration of an [`OpenAiJudge`].
#[derive(Debug, Clone)]
pub struct OpenAiJudgeConfig {
    /// API base URL up to the version, e.g. `https://api.openai.com/v1`;
    /// the client posts to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The judge model (AlignBench used `gpt-4-0613`).
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<ApiKey>,
    /// Whole-request timeout (connect, send, wait, read the body).
    pub request_timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// `max_tokens` to send; `None` sends none (as AlignBench).
    pub max_tokens: Option<u32>,
    /// Whether to use the proxies named by the usual environment variables (`HTTPS_PROXY`,
    /// …). Turn off for endpoints on the local machine.
    pub use_system_proxy: bool,
}

impl OpenAiJudgeConfig {
    /// A config with defaults: no key, 300 s request timeout, 10 s connect timeout, the
    /// default [`RetryPolicy`], no `max_tokens`, system proxies used.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiJudgeConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            max_tokens: None,
            use_system_proxy: true,
        }
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }
}

/// A judge on an OpenAI-compatible `/chat/completions` endpoint.
pub struct OpenAiJudge {
    client: reqwest::Client,
    url: String,
    config: OpenAiJudgeConfig,
}

impl fmt::Debug for OpenAiJudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiJudge")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

/// How a failed attempt should be handled.
enum Attempt {
    Retry(Error),
    Fatal(Error),
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

impl OpenAiJudge {
    /// Builds the HTTP client.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty model or base URL or zero attempts,
    /// [`Error::Transport`] if the TLS client cannot be built.
    pub fn new(config: OpenAiJudgeConfig) -> Result<Self> {
        if config.model.is_empty() || config.base_url.is_empty() {
            return Err(Error::InvalidArgument(
                "judge model and base URL must not be empty".into(),
            ));
        }
        if config.retry.max_attempts == 0 {
            return Err(Error::InvalidArgument(
                "max_attempts must be at least 1".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout);
        if !config.use_system_proxy {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(OpenAiJudge {
            client,
            url,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiJudgeConfig {
        &self.config
    }

    fn scrub(&self, text: &str) -> String {
        let mut text: String = text.chars().take(500).collect();
        if let Some(key) = &self.config.api_key
            && !key.expose().is_empty()
        {
            text = text.replace(key.expose(), "***");
        }
        text
    }

    fn transport_error(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout
        } else {
            // reqwest's messages hold the URL, never headers; scrub anyway.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            Error::Transport(self.scrub(&message))
        }
    }

    async fn attempt(&self, prompt: &str) -> std::result::Result<String, Attempt> {
        let mut body = json!({
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
        });
        if let Some(max_tokens) = self.config.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Retry(self.transport_error(&e)))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| Attempt::Retry(self.transport_error(&e)))?;
        if !status.is_success() {
            let error = Error::HttpStatus {
                status: status.as_u16(),
                body: self.scrub(&text),
                retry_after: wait,
            };
            let retryable = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(if retryable {
                Attempt::Retry(error)
            } else {
                Attempt::Fatal(error)
            });
        }
        let parsed: ChatResponse = serde_json::from_str(&text).map_err(|e| {
            Attempt::Retry(Error::MalformedResponse(format!(
                "{e}; body starts {:?}",
                self.scrub(&text.chars().take(80).collect::<String>())
            )))
        })?;
        parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| {
                Attempt::Retry(Error::MalformedResponse(
                    "no choices[0].message.content".into(),
                ))
            })
    }
}

impl Judge for OpenAiJudge {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn judge(&self, prompt: &str) -> Result<String> {
        let policy = self.config.retry;
        let mut attempt = 1;
        loop {
            match self.attempt(prompt).await {
                Ok(text) => return Ok(text),
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry(error)) => {
                    if attempt >= policy.max_attempts {
                        return Err(Error::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(error),
                        });
                    }
                    let server_wait = match &error {
                        Error::HttpStatus { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = policy.delay(attempt, server_wait);
                    tracing::warn!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        %error,
                        "judge request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b9 = p.backoff(9);
            assert!(b9 >= Duration::from_millis(500) && b9 <= Duration::from_millis(1000));
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert!(p.backoff(u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = OpenAiJudgeConfig::new("http://127.0.0.1:9/v1", "gpt-4")
            .with_api_key(ApiKey::new("sk-secret-123"));
        let judge = OpenAiJudge::new(config.clone()).unwrap();
        for text in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{judge:?}"),
            format!("{:?}", ApiKey::new("sk-secret-123")),
        ] {
            assert!(!text.contains("sk-secret-123"), "{text}");
        }
        assert!(format!("{config:?}").contains("ApiKey(***)"));
        assert_eq!(judge.scrub("bad key sk-secret-123!"), "bad key ***!");
    }
}
