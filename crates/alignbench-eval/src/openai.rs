//! A judge that calls an OpenAI-compatible chat-completions API, with timeouts and retries.
//!
//! As AlignBench's `judge.py`: one user message, no system message, temperature 0. Retries use
//! exponential back-off with jitter on 408/429/5xx, timeouts, connection errors and malformed
//! 2xx bodies, and honour `Retry-After` given in seconds (`rlhf-http`, the workspace's one
//! retrying client). The API key is sent as a bearer token and never appears in `Debug`
//! output, logs or errors.

use std::fmt;
use std::time::Duration;

use rlhf_http::{Client, HttpConfig, HttpError, json_body};
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::judge::Judge;

pub use rlhf_http::{ApiKey, RetryPolicy};

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
    client: Client,
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

/// The judge's error for an error of the HTTP layer (the variants keep their names).
fn judge_error(e: HttpError) -> Error {
    match e {
        HttpError::Status {
            status,
            body,
            retry_after,
        } => Error::HttpStatus {
            status,
            body,
            retry_after,
        },
        HttpError::Timeout { .. } => Error::Timeout,
        HttpError::Transport(m) | HttpError::Config(m) => Error::Transport(m),
        HttpError::Malformed(m) | HttpError::Rejected(m) => Error::MalformedResponse(m),
        HttpError::Exhausted { attempts, last } => Error::RetriesExhausted {
            attempts,
            last: Box::new(judge_error(*last)),
        },
        other => Error::Transport(other.to_string()),
    }
}

/// The reply text of a chat completion (a retryable error when there is none).
fn reply_text(text: &str) -> std::result::Result<String, HttpError> {
    json_body::<ChatResponse>(text)?
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| HttpError::Malformed("no choices[0].message.content".into()))
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
        let client = Client::new(HttpConfig {
            label: "judge request".into(),
            request_timeout: config.request_timeout,
            connect_timeout: config.connect_timeout,
            retry: config.retry,
            use_system_proxy: config.use_system_proxy,
            bearer: config.api_key.clone(),
        })
        .map_err(judge_error)?;
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
}

impl Judge for OpenAiJudge {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn judge(&self, prompt: &str) -> Result<String> {
        let mut body = json!({
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
        });
        if let Some(max_tokens) = self.config.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        self.client
            .post_json(&self.url, &body, reply_text)
            .await
            .map_err(judge_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(judge.client.scrub("bad key sk-secret-123!"), "bad key ***!");
    }
}
