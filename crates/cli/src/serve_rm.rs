//! `rlhf serve-rm`: a local reward model (HF `*ForSequenceClassification` directory, as
//! `rlhf score` loads it) served over HTTP with the protocol of
//! `rlhf_policy_ppo::RemoteScorer` (docs/rewards.md), so PPO on one machine can use a reward
//! model on another.
//!
//! - `POST /score` `{"prompts", "responses", "prompt_ids", "response_ids"}` →
//!   `{"scores": [...]}`: scored from the ids when they are given (exactly the tokens the
//!   policy produced), else from the text, encoded with the model's tokenizer and chat template
//!   (a prompt is a string, one user turn, or a list of `{"role", "content"}` messages);
//! - `GET /info` → `{"fingerprint", "model", "vocab_size", "max_position_embeddings",
//!   "max_batch"}`; `GET /health` → `{"status": "ok"}`.
//!
//! A bad request gets 400 with `{"error": "..."}` naming the field and what was expected. The
//! bound address is printed as the first line of stdout (`--addr 127.0.0.1:0` picks a free
//! port); Ctrl-C (or SIGTERM) stops the server after the requests in flight, and a last JSON
//! line says how much it scored.
//!
//! The model lives on the main thread; the HTTP server runs on a runtime of its own and hands
//! each request to it over a channel, so requests are scored one batch at a time.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::prelude::Backend;
use burn::tensor::DType;
use clap::Args;
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::LoadOptions;
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::Message;
use rlhf_policy_ppo::{PackedSequences, RewardModel, Scorer};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::device::{parse_device, parse_dtype, with_backend};
use crate::reward::{LoadedRewardModel, load_reward_model};

/// `rlhf serve-rm`.
#[derive(Debug, Args)]
pub(crate) struct ServeRmArgs {
    /// The reward model: an HF `*ForSequenceClassification` directory (one label).
    #[arg(long)]
    model: PathBuf,
    /// Tokenizer directory, or its `tokenizer.json` (default: the model's, else byte-level ids).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Address to listen on (`0.0.0.0:8000` for other machines; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Rows per forward pass; a larger request is scored in several.
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Parameter dtype on the device: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
}

/// One prompt of a text request: a user turn, or a conversation.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    Text(String),
    Messages(Vec<Message>),
}

/// The body of `POST /score`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    #[serde(default)]
    prompts: Option<Vec<PromptField>>,
    #[serde(default)]
    responses: Option<Vec<String>>,
    #[serde(default)]
    prompt_ids: Option<Vec<Vec<i64>>>,
    #[serde(default)]
    response_ids: Option<Vec<Vec<i64>>>,
}

const EXPECTED: &str = "expected a JSON object {\"prompts\": [text or messages], \"responses\": \
                        [text]} and/or {\"prompt_ids\": [[id]], \"response_ids\": [[id]]}";

/// What the model needs to know about a request's rows.
struct Limits<'a> {
    codec: TextCodec<'a>,
    vocab_size: usize,
    max_positions: usize,
}

/// A request's rows: prompt ids and response ids.
type Rows = (Vec<Vec<u32>>, Vec<Vec<u32>>);

/// The rows of a request, or the 400 message.
fn request_rows(req: &ScoreRequest, lim: &Limits<'_>) -> Result<Rows, String> {
    let lens = [
        ("prompts", req.prompts.as_ref().map(Vec::len)),
        ("responses", req.responses.as_ref().map(Vec::len)),
        ("prompt_ids", req.prompt_ids.as_ref().map(Vec::len)),
        ("response_ids", req.response_ids.as_ref().map(Vec::len)),
    ];
    let given: Vec<(&str, usize)> = lens
        .iter()
        .filter_map(|(k, n)| n.map(|n| (*k, n)))
        .collect();
    if let Some(w) = given.windows(2).find(|w| w[0].1 != w[1].1) {
        return Err(format!(
            "`{}` has {} rows but `{}` has {}: expected one entry per row in each",
            w[0].0, w[0].1, w[1].0, w[1].1
        ));
    }
    let (prompts, responses) = match (&req.prompt_ids, &req.response_ids) {
        (Some(p), Some(r)) => {
            let check = |field: &str, rows: &[Vec<i64>]| -> Result<Vec<Vec<u32>>, String> {
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| {
                        row.iter()
                            .enumerate()
                            .map(|(j, &id)| {
                                u32::try_from(id)
                                    .ok()
                                    .filter(|&x| (x as usize) < lim.vocab_size)
                                    .ok_or_else(|| {
                                        format!(
                                            "`{field}[{i}][{j}]` = {id} is outside the \
                                             vocabulary: expected an id in 0..{}",
                                            lim.vocab_size
                                        )
                                    })
                            })
                            .collect()
                    })
                    .collect()
            };
            (check("prompt_ids", p)?, check("response_ids", r)?)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err("`prompt_ids` and `response_ids` go together: give both or neither".into());
        }
        (None, None) => {
            let (Some(prompts), Some(responses)) = (&req.prompts, &req.responses) else {
                return Err(format!("no rows: {EXPECTED}"));
            };
            let mut p_out = Vec::with_capacity(prompts.len());
            let mut r_out = Vec::with_capacity(prompts.len());
            for (i, (p, r)) in prompts.iter().zip(responses).enumerate() {
                let messages = match p {
                    PromptField::Text(t) => vec![Message::user(t.clone())],
                    PromptField::Messages(m) if m.is_empty() => {
                        return Err(format!(
                            "`prompts[{i}]` is an empty conversation: expected a string or at \
                             least one message"
                        ));
                    }
                    PromptField::Messages(m) => m.clone(),
                };
                let row = lim
                    .codec
                    .encode(&messages, r)
                    .map_err(|e| format!("encoding row {i}: {e}"))?;
                let (p, r) = row.ids.split_at(row.response_start);
                p_out.push(p.to_vec());
                r_out.push(r.to_vec());
            }
            (p_out, r_out)
        }
    };
    for (i, (p, r)) in prompts.iter().zip(&responses).enumerate() {
        if p.is_empty() {
            return Err(format!(
                "row {i}: the prompt has no tokens: expected at least one prompt token per row"
            ));
        }
        if p.len() + r.len() > lim.max_positions {
            return Err(format!(
                "row {i} has {} tokens (prompt {} + response {}), more than the model's {} \
                 positions (max_position_embeddings)",
                p.len() + r.len(),
                p.len(),
                r.len(),
                lim.max_positions
            ));
        }
    }
    Ok((prompts, responses))
}

/// How a request ended.
enum Outcome {
    Scores(Vec<f32>),
    BadRequest(String),
    Failed(String),
}

struct Job {
    request: ScoreRequest,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

struct AppState {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
    info: Value,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn score(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return error(StatusCode::BAD_REQUEST, format!("empty body: {EXPECTED}"));
    }
    let request: ScoreRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}; {EXPECTED}"),
            );
        }
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = app
        .jobs
        .lock()
        .map(|j| j.send(Job { request, reply: tx }).is_ok())
        .unwrap_or(false);
    if !sent {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reward model has stopped",
        );
    }
    match rx.await {
        Ok(Outcome::Scores(s)) => axum::Json(json!({ "scores": s })).into_response(),
        Ok(Outcome::BadRequest(m)) => error(StatusCode::BAD_REQUEST, m),
        Ok(Outcome::Failed(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the reward model stopped while scoring",
        ),
    }
}

async fn info(State(app): State<Arc<AppState>>) -> Response {
    axum::Json(app.info.clone()).into_response()
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/score", post(score))
        .route("/info", get(info))
        .route("/health", get(health))
        .with_state(app)
}

/// Scores one request's rows with `rm`, `max_batch` rows per forward pass.
fn score_rows<B: Backend>(
    rm: &mut RewardModel<B>,
    (prompts, responses): Rows,
    max_batch: usize,
    pad_id: u32,
    dev: &B::Device,
) -> Outcome {
    let mut out = Vec::with_capacity(prompts.len());
    for (p, r) in prompts.chunks(max_batch).zip(responses.chunks(max_batch)) {
        let seqs = PackedSequences::new(p, r, pad_id);
        match rm.score(&seqs, dev) {
            Ok(s) => out.extend(s),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
    Outcome::Scores(out)
}

/// `--tokenizer`: a directory, or its `tokenizer.json`.
fn tokenizer_dir(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        path.to_path_buf()
    }
}

fn run_serve<B: Backend>(a: &ServeRmArgs, dev: B::Device) -> anyhow::Result<()> {
    if a.max_batch == 0 {
        anyhow::bail!("--max-batch must be at least 1");
    }
    let tok = a.tokenizer.as_deref().map(tokenizer_dir);
    let m = load_reward_model::<B>(
        &a.model,
        tok.as_deref(),
        None,
        LoadOptions { dtype: a.dtype },
        &dev,
    )?;
    let LoadedRewardModel {
        model,
        cfg,
        tokenizer,
        ..
    } = m;
    let codec = tokenizer
        .as_ref()
        .map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let lim = Limits {
        codec,
        vocab_size: cfg.vocab_size,
        max_positions: cfg.max_position_embeddings,
    };
    let pad_id = codec.pad_id();
    let mut rm = RewardModel::new(model, false);
    let fingerprint = Scorer::<B>::fingerprint(&rm);
    let info = json!({
        "fingerprint": fingerprint,
        "model": a.model.display().to_string(),
        "vocab_size": lim.vocab_size,
        "max_position_embeddings": lim.max_positions,
        "max_batch": a.max_batch,
        "tokenizer": if tokenizer.is_some() { "tokenizer.json" } else { "bytes" },
    });
    let listener = std::net::TcpListener::bind(a.addr)
        .with_context(|| format!("--addr {}: cannot listen", a.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let app = Arc::new(AppState {
        jobs: std::sync::Mutex::new(tx),
        info: info.clone(),
    });
    let ready = json!({
        "listening": addr.to_string(),
        "url": format!("http://{addr}/score"),
        "fingerprint": fingerprint,
        "vocab_size": lim.vocab_size,
    });
    let server = std::thread::Builder::new()
        .name("serve-rm-http".into())
        .spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the HTTP runtime")?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let stop = rlhf_http::shutdown_signal();
                println!("{ready}");
                std::io::stdout().flush()?;
                eprintln!("serve-rm: http://{addr}/score (GET /info, /health); Ctrl-C stops it");
                axum::serve(listener, router(app))
                    .with_graceful_shutdown(stop)
                    .await
                    .context("serving")
            })
        })
        .context("starting the HTTP thread")?;
    let (mut requests, mut rows) = (0u64, 0u64);
    for job in rx {
        requests += 1;
        let outcome = match request_rows(&job.request, &lim) {
            Ok(r) => {
                rows += r.0.len() as u64;
                score_rows(&mut rm, r, a.max_batch, pad_id, &dev)
            }
            Err(m) => Outcome::BadRequest(m),
        };
        let _ = job.reply.send(outcome);
    }
    server
        .join()
        .map_err(|_| anyhow::anyhow!("the HTTP thread panicked"))??;
    println!(
        "{}",
        json!({"stopped": true, "requests": requests, "rows": rows})
    );
    Ok(())
}

pub(crate) fn run(a: ServeRmArgs) -> anyhow::Result<()> {
    with_backend!(a.device, |B, dev| run_serve::<B>(&a, dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(body: Value, max_positions: usize) -> Result<Rows, String> {
        let req: ScoreRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
        let lim = Limits {
            codec: TextCodec::Bytes,
            vocab_size: 259,
            max_positions,
        };
        request_rows(&req, &lim)
    }

    #[test]
    fn requests_become_rows_or_one_clear_message() {
        let (p, r) = rows(json!({"prompt_ids": [[1, 5]], "response_ids": [[7, 2]]}), 8).unwrap();
        assert_eq!((p, r), (vec![vec![1, 5]], vec![vec![7, 2]]));
        // Text: a user turn through the codec (bytes: the plain transcript, EOS appended).
        let (p, r) = rows(json!({"prompts": ["hi"], "responses": ["yo"]}), 64).unwrap();
        let want = TextCodec::Bytes
            .encode(&[Message::user("hi")], "yo")
            .unwrap();
        assert_eq!([p[0].clone(), r[0].clone()].concat(), want.ids);
        let conv = json!({"prompts": [[{"role": "user", "content": "hi"}]], "responses": ["yo"]});
        assert_eq!(rows(conv, 64).unwrap().0, p);
        // Ids win over text when both are given.
        let both = json!({"prompts": ["hi"], "responses": ["yo"],
                          "prompt_ids": [[9]], "response_ids": [[]]});
        assert_eq!(rows(both, 64).unwrap(), (vec![vec![9]], vec![vec![]]));
        assert_eq!(
            rows(json!({"prompts": [], "responses": []}), 8)
                .unwrap()
                .0
                .len(),
            0
        );

        let bad = |body: Value, needle: &str| {
            let e = rows(body, 8).unwrap_err();
            assert!(e.contains(needle), "`{e}` should say `{needle}`");
        };
        bad(
            json!({"prompt_ids": [[1], [2]], "response_ids": [[3]]}),
            "`prompt_ids` has 2 rows but `response_ids` has 1",
        );
        bad(
            json!({"prompts": ["a"], "responses": ["b", "c"]}),
            "`prompts` has 1 rows but `responses` has 2",
        );
        bad(
            json!({"prompt_ids": [[1]], "response_ids": [[3, 259]]}),
            "`response_ids[0][1]` = 259 is outside the vocabulary: expected an id in 0..259",
        );
        bad(
            json!({"prompt_ids": [[-1]], "response_ids": [[3]]}),
            "`prompt_ids[0][0]` = -1 is outside the vocabulary",
        );
        bad(
            json!({"prompt_ids": [vec![1; 5]], "response_ids": [vec![3; 4]]}),
            "row 0 has 9 tokens (prompt 5 + response 4), more than the model's 8 positions",
        );
        bad(json!({"prompt_ids": [[1]]}), "give both or neither");
        bad(
            json!({"prompt_ids": [[]], "response_ids": [[3]]}),
            "row 0: the prompt has no tokens",
        );
        bad(json!({"prompts": ["a"]}), "no rows: expected a JSON object");
        bad(
            json!({"prompts": [[]], "responses": ["b"]}),
            "`prompts[0]` is an empty conversation",
        );
        bad(json!({"query": ["a"]}), "unknown field `query`");
    }
}
