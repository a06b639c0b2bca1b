//! [`RemoteScorer`]: the reward of a reward-model server, over HTTP (`rlhf serve-rm`, or any
//! server speaking the protocol below; docs/rewards.md).
//!
//! # Protocol
//!
//! `POST {url}` with one JSON object per batch of at most `batch_size` rows:
//!
//! ```json
//! {"prompts":      ["..." or [{"role": "user", "content": "..."}, ...], ...],
//!  "responses":    ["...", ...],
//!  "prompt_ids":   [[u32, ...], ...],
//!  "response_ids": [[u32, ...], ...]}
//! ```
//!
//! - `prompts[i]`: the conversation before the reply, as chat messages when the scorer was
//!   given them ([`RemoteScorer::with_conversations`], as `rlhf train-ppo` does), else the
//!   prompt ids decoded (the policy's rendered prompt, special tokens skipped);
//! - `responses[i]`: the generated reply, decoded up to its first EOS;
//! - `prompt_ids[i]` / `response_ids[i]` (unless `send_ids = false`): exactly the tokens the
//!   policy saw and produced, padding removed (the response's EOS included when it ended
//!   with one). A server with the policy's tokenizer scores these, so no text round trip
//!   changes the tokens.
//!
//! The reply is `{"scores": [number, ...]}` (or `{"rewards": [...]}`, OpenRLHF's key): one
//! finite number per row, in order.
//!
//! `GET {base}/info`, where `base` is `url` without its last path segment
//! (`http://h:8000/score` → `http://h:8000/info`), answers
//! `{"fingerprint": "...", "model": "...", "vocab_size": N}`; the scorer's
//! [`Scorer::fingerprint`] is `remote:` + the server's fingerprint, so a reference-reward cache
//! built with another reward model is refused. A server without `/info` is used by setting
//! [`RemoteRewardConfig::fingerprint`] to a name of the model it serves.
//!
//! # Failures
//!
//! Requests are retried by `rlhf-http` (5xx, 429, 408, timeouts, refused connections and
//! broken JSON, up to `max_attempts` requests with exponential back-off or `Retry-After`);
//! another 4xx, a wrong number of scores and a score that is null or not finite are not
//! retried. Every failure is a [`PpoError::Scorer`] naming the url and what was expected; the
//! PPO loop then saves a checkpoint and stops, and the run resumes once the server is back.

use std::collections::HashMap;
use std::time::Duration;

use burn::prelude::Backend;
use rlhf_core::tokenizer::Message;
use rlhf_http::{BlockingClient, HttpConfig, HttpError, RetryPolicy, json_body};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{PpoError, Result};
use crate::scorer::Scorer;
use crate::sequences::PackedSequences;

/// Where the reward server is and how patiently to ask it (TOML `[remote_rm]` of
/// `rlhf train-ppo`; unknown keys are errors, absent ones take the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteRewardConfig {
    /// The scoring endpoint, e.g. `http://10.0.0.7:8000/score` (`rlhf serve-rm` serves
    /// `/score`). Required.
    pub url: String,
    /// The reward model's identity when the server has no `GET /info` (e.g. OpenRLHF's
    /// `serve_rm.py`): a name that changes whenever the served model does. Default: asked
    /// from `/info`.
    pub fingerprint: Option<String>,
    /// Seconds one request may take, connection and body included (default 120).
    pub request_timeout_secs: f64,
    /// Seconds to establish the connection (default 10).
    pub connect_timeout_secs: f64,
    /// Requests per batch before giving up, the first included (default 5).
    pub max_attempts: u32,
    /// Back-off before the first retry, doubling up to `max_backoff_secs` (default 1).
    pub initial_backoff_secs: f64,
    /// Cap of the back-off, and of a server's `Retry-After` (default 30).
    pub max_backoff_secs: f64,
    /// Rows per request (default 64); a larger batch is sent as several requests.
    pub batch_size: usize,
    /// Send `prompt_ids`/`response_ids` (default true). Turn off when the server's tokenizer
    /// is not the policy's: it then scores the text.
    pub send_ids: bool,
    /// Use the proxies of the usual environment variables (default false: the reward server
    /// is usually on the local network).
    pub use_system_proxy: bool,
}

impl Default for RemoteRewardConfig {
    fn default() -> Self {
        RemoteRewardConfig {
            url: String::new(),
            fingerprint: None,
            request_timeout_secs: 120.0,
            connect_timeout_secs: 10.0,
            max_attempts: 5,
            initial_backoff_secs: 1.0,
            max_backoff_secs: 30.0,
            batch_size: 64,
            send_ids: true,
            use_system_proxy: false,
        }
    }
}

fn seconds(field: &'static str, v: f64, min_exclusive: bool) -> Result<Duration> {
    let ok = v.is_finite() && if min_exclusive { v > 0.0 } else { v >= 0.0 };
    if !ok || v > 86_400.0 {
        let range = if min_exclusive { "> 0" } else { ">= 0" };
        return Err(PpoError::config(
            field,
            format!("must be a number of seconds {range} and at most 86400, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

impl RemoteRewardConfig {
    /// A config for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        RemoteRewardConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`PpoError::Config`] naming the field (`remote_rm.url`, …) and what is expected.
    pub fn validate(&self) -> Result<()> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err(PpoError::config(
                "remote_rm.url",
                "is required: the reward server's scoring endpoint, e.g. http://host:8000/score"
                    .to_string(),
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(PpoError::config(
                "remote_rm.url",
                format!("expected http://HOST[:PORT]/PATH or https://…, got {url:?}"),
            ));
        }
        if self
            .fingerprint
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err(PpoError::config(
                "remote_rm.fingerprint",
                "must not be empty (leave it out to ask the server's /info)".to_string(),
            ));
        }
        seconds(
            "remote_rm.request_timeout_secs",
            self.request_timeout_secs,
            true,
        )?;
        seconds(
            "remote_rm.connect_timeout_secs",
            self.connect_timeout_secs,
            true,
        )?;
        let initial = seconds(
            "remote_rm.initial_backoff_secs",
            self.initial_backoff_secs,
            false,
        )?;
        let max = seconds("remote_rm.max_backoff_secs", self.max_backoff_secs, false)?;
        if max < initial {
            return Err(PpoError::config(
                "remote_rm.max_backoff_secs",
                format!(
                    "must be at least initial_backoff_secs ({}), got {}",
                    self.initial_backoff_secs, self.max_backoff_secs
                ),
            ));
        }
        if self.max_attempts == 0 {
            return Err(PpoError::config(
                "remote_rm.max_attempts",
                "must be at least 1 (the first request counts)".to_string(),
            ));
        }
        if self.batch_size == 0 {
            return Err(PpoError::config(
                "remote_rm.batch_size",
                "must be at least 1 row per request".to_string(),
            ));
        }
        Ok(())
    }

    /// `GET` here for the server's identity: `url` without its last path segment, + `/info`.
    pub fn info_url(&self) -> String {
        let url = self.url.trim().trim_end_matches('/');
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        match url[scheme_end..].rfind('/') {
            Some(i) => format!("{}/info", &url[..scheme_end + i]),
            None => format!("{url}/info"),
        }
    }

    fn http(&self) -> HttpConfig {
        let initial = Duration::from_secs_f64(self.initial_backoff_secs);
        let max = Duration::from_secs_f64(self.max_backoff_secs);
        HttpConfig {
            label: "reward request".into(),
            request_timeout: Duration::from_secs_f64(self.request_timeout_secs),
            connect_timeout: Duration::from_secs_f64(self.connect_timeout_secs),
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                initial_backoff: initial,
                max_backoff: max,
                max_retry_after: max,
            },
            use_system_proxy: self.use_system_proxy,
            bearer: None,
        }
    }
}

/// What a server's `GET /info` says about the model it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInfo {
    /// Identifies the served weights (`rlhf serve-rm`: the local reward model's fingerprint).
    pub fingerprint: String,
    /// A name of the model (its directory, for `rlhf serve-rm`).
    #[serde(default)]
    pub model: Option<String>,
    /// Vocabulary size: ids sent must be below it.
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// Longest row (prompt + response) the server scores.
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
}

/// The decoder of a [`RemoteScorer`]: token ids to text (up to the first EOS).
pub type Decoder = dyn Fn(&[u32]) -> rlhf_core::Result<String> + Send + Sync;

/// A reward model behind HTTP (module docs).
pub struct RemoteScorer {
    config: RemoteRewardConfig,
    client: BlockingClient,
    decode: Box<Decoder>,
    conversations: HashMap<Vec<u32>, Vec<Message>>,
    info: Option<RemoteInfo>,
    fingerprint: String,
}

impl std::fmt::Debug for RemoteScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteScorer")
            .field("url", &self.config.url)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// A reply that is well formed but unusable: asking again would not help.
fn rejected(message: String) -> HttpError {
    HttpError::Rejected(message)
}

/// The scores of a reply to a request of `rows` rows.
fn parse_scores(text: &str, rows: usize) -> std::result::Result<Vec<f32>, HttpError> {
    let v: Value = match json_body(text) {
        Ok(v) => v,
        Err(e) => {
            // Python's json module writes NaN and Infinity, which JSON does not have.
            if has_non_finite_literal(text) {
                return Err(rejected(
                    "the reply holds NaN or Infinity (not JSON numbers): expected a finite score \
                     per row"
                        .into(),
                ));
            }
            return Err(e);
        }
    };
    let (key, list) = match (v.get("scores"), v.get("rewards")) {
        (Some(s), _) => ("scores", s),
        (None, Some(r)) => ("rewards", r),
        (None, None) => {
            let keys: Vec<&str> = v
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(rejected(format!(
                "expected a JSON object {{\"scores\": [number, ...]}}, got {} with keys {keys:?}",
                kind(&v)
            )));
        }
    };
    let Some(list) = list.as_array() else {
        return Err(rejected(format!(
            "`{key}` is {}, expected an array of {rows} numbers",
            kind(list)
        )));
    };
    if list.len() != rows {
        return Err(rejected(format!(
            "returned {} scores for {rows} rows, expected one per row",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| match s.as_f64() {
            Some(x) if x.is_finite() && (x as f32).is_finite() => Ok(x as f32),
            _ => Err(rejected(format!(
                "{key}[{i}] is {s}, expected a finite number"
            ))),
        })
        .collect()
}

/// Whether `text` holds a bare `NaN` or `[-+]Infinity` where a JSON value would be (not
/// inside a string).
fn has_non_finite_literal(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    ["NaN", "Infinity"].iter().any(|w| {
        t.match_indices(w).any(|(i, _)| {
            let before = t[..i].chars().next_back();
            matches!(before, Some(':' | '[' | ',' | '-' | '+'))
        })
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_info(text: &str) -> std::result::Result<RemoteInfo, HttpError> {
    let v: Value = json_body(text)?;
    let info: RemoteInfo = serde_json::from_value(v).map_err(|e| {
        rejected(format!(
            "{e}: expected {{\"fingerprint\": \"...\", \"model\": \"...\", \"vocab_size\": N}}"
        ))
    })?;
    if info.fingerprint.trim().is_empty() {
        return Err(rejected("`fingerprint` is empty".into()));
    }
    Ok(info)
}

/// One line for an error of the HTTP layer: what happened and what the scorer expected.
fn describe(e: &HttpError) -> String {
    match e {
        HttpError::Exhausted { attempts, last } => {
            format!("no usable reply after {attempts} attempts; the last: {last}")
        }
        HttpError::Status { status, body, .. } => {
            let body: String = body.chars().take(200).collect();
            format!("HTTP {status} (not retried), body starts {body:?}")
        }
        other => other.to_string(),
    }
}

impl RemoteScorer {
    /// Validates `config`, builds the client and (unless `config.fingerprint` is set) asks
    /// the server's `/info` for its identity. `decode` turns ids into text (the policy's
    /// codec).
    ///
    /// # Errors
    /// [`PpoError::Config`] for a bad config, [`PpoError::Scorer`] naming the url when the
    /// server cannot be reached or its `/info` is not what the protocol says.
    pub fn connect(
        config: RemoteRewardConfig,
        decode: impl Fn(&[u32]) -> rlhf_core::Result<String> + Send + Sync + 'static,
    ) -> Result<Self> {
        config.validate()?;
        let client = BlockingClient::new(config.http()).map_err(|e| PpoError::Scorer {
            source_name: config.url.clone(),
            message: e.to_string(),
        })?;
        let (info, fingerprint) = match &config.fingerprint {
            Some(f) => (None, format!("remote:{}", f.trim())),
            None => {
                let url = config.info_url();
                let info = client.get(&url, parse_info).map_err(|e| PpoError::Scorer {
                    source_name: config.url.clone(),
                    message: format!(
                        "GET {url}: {}{}",
                        describe(&e),
                        if matches!(e, HttpError::Status { status: 404, .. }) {
                            " (a server without /info needs remote_rm.fingerprint)"
                        } else {
                            ""
                        }
                    ),
                })?;
                let fp = format!("remote:{}", info.fingerprint);
                (Some(info), fp)
            }
        };
        tracing::info!(url = %config.url, %fingerprint, "remote reward model");
        Ok(RemoteScorer {
            config,
            client,
            decode: Box::new(decode),
            conversations: HashMap::new(),
            info,
            fingerprint,
        })
    }

    /// Sends the chat messages of known prompts (by their token ids) as `prompts[i]`
    /// instead of the decoded prompt text.
    pub fn with_conversations(
        mut self,
        conversations: impl IntoIterator<Item = (Vec<u32>, Vec<Message>)>,
    ) -> Self {
        self.conversations.extend(conversations);
        self
    }

    /// What `/info` said (`None` when the config named the fingerprint).
    pub fn info(&self) -> Option<&RemoteInfo> {
        self.info.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteRewardConfig {
        &self.config
    }

    /// Requests sent so far (retries and `/info` included).
    pub fn requests(&self) -> u64 {
        self.client.client().requests()
    }

    /// Retries so far.
    pub fn retries(&self) -> u64 {
        self.client.client().retries()
    }

    fn fail(&self, message: String) -> PpoError {
        PpoError::Scorer {
            source_name: self.config.url.clone(),
            message,
        }
    }

    /// The request body of rows `rows` of `seqs`.
    fn body(&self, seqs: &PackedSequences, rows: std::ops::Range<usize>) -> Result<Value> {
        let n = rows.len();
        let (mut prompts, mut responses) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut prompt_ids, mut response_ids) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for r in rows {
            let (p, resp) = seqs.row_parts(r);
            let text = |ids: &[u32], what: &str| {
                (self.decode)(ids)
                    .map_err(|e| self.fail(format!("decoding the {what} of row {r}: {e}")))
            };
            prompts.push(match self.conversations.get(p) {
                Some(m) => json!(m),
                None => json!(text(p, "prompt")?),
            });
            responses.push(text(resp, "response")?);
            if self.config.send_ids {
                prompt_ids.push(p.to_vec());
                response_ids.push(resp.to_vec());
            }
        }
        let mut body = json!({"prompts": prompts, "responses": responses});
        if self.config.send_ids {
            body["prompt_ids"] = json!(prompt_ids);
            body["response_ids"] = json!(response_ids);
        }
        Ok(body)
    }
}

impl<B: Backend> Scorer<B> for RemoteScorer {
    fn score(&mut self, seqs: &PackedSequences, _device: &B::Device) -> Result<Vec<f32>> {
        let rows = seqs.rows();
        let mut out = Vec::with_capacity(rows);
        let mut start = 0;
        while start < rows {
            let end = (start + self.config.batch_size).min(rows);
            let body = self.body(seqs, start..end)?;
            let scores = self
                .client
                .post_json(&self.config.url, &body, |text| {
                    parse_scores(text, end - start)
                })
                .map_err(|e| {
                    let rows = if end - start == rows {
                        format!("{rows} rows")
                    } else {
                        format!("rows {start}..{end} of {rows}")
                    };
                    self.fail(format!("scoring {rows}: {}", describe(&e)))
                })?;
            out.extend(scores);
            start = end;
        }
        Ok(out)
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_validation_and_info_url() {
        let c: RemoteRewardConfig =
            serde_json::from_str(r#"{"url": "http://h:8000/score"}"#).unwrap();
        assert_eq!(c, RemoteRewardConfig::new("http://h:8000/score"));
        c.validate().unwrap();
        assert_eq!(c.info_url(), "http://h:8000/info");
        assert_eq!(
            RemoteRewardConfig::new("https://h/rm/v1/score/").info_url(),
            "https://h/rm/v1/info"
        );
        assert_eq!(
            RemoteRewardConfig::new("http://h:8000").info_url(),
            "http://h:8000/info"
        );
        assert!(
            serde_json::from_str::<RemoteRewardConfig>(r#"{"url": "x", "retries": 3}"#).is_err()
        );
        let bad = |f: &dyn Fn(&mut RemoteRewardConfig), field: &str| {
            let mut c = RemoteRewardConfig::new("http://h:1/score");
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        };
        bad(&|c| c.url = String::new(), "remote_rm.url");
        bad(&|c| c.url = "h:8000/score".into(), "remote_rm.url");
        bad(&|c| c.url = "http:///score".into(), "remote_rm.url");
        bad(&|c| c.request_timeout_secs = 0.0, "request_timeout_secs");
        bad(
            &|c| c.connect_timeout_secs = f64::NAN,
            "connect_timeout_secs",
        );
        bad(&|c| c.max_attempts = 0, "max_attempts");
        bad(&|c| c.batch_size = 0, "batch_size");
        bad(&|c| c.max_backoff_secs = 0.5, "max_backoff_secs");
        bad(&|c| c.fingerprint = Some(" ".into()), "fingerprint");
    }

    #[test]
    fn replies_are_checked_row_by_row() {
        assert_eq!(
            parse_scores(r#"{"scores": [1, -2.5]}"#, 2).unwrap(),
            vec![1.0, -2.5]
        );
        assert_eq!(parse_scores(r#"{"rewards": [0.5]}"#, 1).unwrap(), vec![0.5]);
        let err = |t: &str, n| match parse_scores(t, n).unwrap_err() {
            HttpError::Rejected(m) => (false, m),
            HttpError::Malformed(m) => (true, m),
            e => panic!("{e}"),
        };
        assert!(
            err(r#"{"scores": [1]}"#, 2)
                .1
                .contains("returned 1 scores for 2 rows")
        );
        assert!(
            err(r#"{"scores": [1, null]}"#, 2)
                .1
                .contains("scores[1] is null")
        );
        assert!(
            err(r#"{"scores": [1, "2"]}"#, 2)
                .1
                .contains("scores[1] is \"2\"")
        );
        assert!(
            err(r#"{"scores": [1, 1e39]}"#, 2)
                .1
                .contains("expected a finite number")
        );
        assert!(err(r#"{"scores": [NaN]}"#, 1).1.contains("NaN or Infinity"));
        assert!(
            err(r#"{"scores": [1, -Infinity]}"#, 2)
                .1
                .contains("NaN or Infinity")
        );
        assert!(err(r#"{"score": 1}"#, 1).1.contains("keys [\"score\"]"));
        assert!(
            err(r#"{"scores": 1}"#, 1)
                .1
                .contains("`scores` is a number")
        );
        // Broken JSON is worth asking again (a cut connection); the rest is not.
        let (retry, m) = err(r#"{"scores": [1,"#, 1);
        assert!(retry && m.contains("body starts"), "{m}");
        assert!(!err(r#"{"scores": []}"#, 1).0);
    }
}
