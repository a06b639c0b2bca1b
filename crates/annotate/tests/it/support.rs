//! Shared helpers: pair fixtures, an in-process server, and a small HTTP client that keeps the
//! session cookie and CSRF token of one annotator.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rlhf_annotate::{
    AnnotationServer, CandidatePair, CommitStats, ServeConfig, add_annotator, write_pairs,
};
use rlhf_prefdata::{Message, PromptQuality, Role};
use serde_json::{Value, json};

/// The response text that must render as text, not run.
pub(crate) const SCRIPT_RESPONSE: &str =
    "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> & <b>bold?</b>";

/// `n` pairs; pair `p0000` is multi-turn and has [`SCRIPT_RESPONSE`] as `response_b`;
/// pair `p0001` is flagged as unclear intent.
pub(crate) fn pairs(n: usize) -> Vec<CandidatePair> {
    (0..n)
        .map(|i| {
            let mut p = CandidatePair {
                pair_id: format!("p{i:04}"),
                source: "test".into(),
                language: Some("en".into()),
                category: Some("test".into()),
                history: Vec::new(),
                prompt: format!("Explain topic number {i} in two sentences."),
                response_a: format!("Answer A to {i}."),
                response_b: format!("Answer B to {i}."),
                prompt_quality: Some(PromptQuality::ClearAndAnswerable),
                generator: Some("fixture".into()),
            };
            if i == 0 {
                p.history = vec![
                    Message::new(Role::User, "我们来聊聊网页安全。"),
                    Message::new(Role::Assistant, "好的，你想了解什么？"),
                ];
                p.prompt = "What does an XSS payload look like?".into();
                p.response_b = SCRIPT_RESPONSE.into();
            }
            if i == 1 {
                p.prompt = "hi".into();
                p.prompt_quality = Some(PromptQuality::UnclearIntent);
            }
            p
        })
        .collect()
}

/// Writes [`pairs`]`(n)` to `dir/pairs.parquet`.
pub(crate) fn write_fixture(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("pairs.parquet");
    write_pairs(&path, &pairs(n)).unwrap();
    path
}

/// Creates accounts and returns `(name, token)` pairs.
pub(crate) fn accounts(dir: &Path, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), add_annotator(dir, n, false).unwrap()))
        .collect()
}

/// A server running on its own task.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<rlhf_annotate::Result<CommitStats>>,
}

impl Running {
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful shutdown; returns the journal's commit statistics.
    pub(crate) async fn stop(mut self) -> CommitStats {
        let _ = self.shutdown.take().unwrap().send(());
        self.handle.await.unwrap().unwrap()
    }
}

/// A config on an ephemeral loopback port.
pub(crate) fn config(pairs: &Path, dir: &Path, per_pair: usize) -> ServeConfig {
    let mut cfg = ServeConfig::new(pairs, dir);
    cfg.addr = "127.0.0.1:0".parse().unwrap();
    cfg.annotators_per_pair = per_pair;
    cfg
}

pub(crate) async fn start(cfg: ServeConfig) -> Running {
    let server = AnnotationServer::bind(cfg).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        shutdown: Some(tx),
        handle,
    }
}

/// One annotator's view of the API.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) cookie: Option<String>,
    pub(crate) csrf: Option<String>,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl Client {
    pub(crate) fn new(base: &str) -> Self {
        Client {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            cookie: None,
            csrf: None,
        }
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("rlhf_annotate={c}"));
        }
        if let Some(t) = &self.csrf {
            r = r.header("x-csrf-token", t);
        }
        r
    }

    pub(crate) async fn send(r: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    pub(crate) async fn login(&mut self, name: &str, token: &str) -> Answer {
        let resp = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&json!({"name": name, "token": token}))
            .send()
            .await
            .unwrap();
        if let Some(sc) = resp.headers().get("set-cookie") {
            let sc = sc.to_str().unwrap();
            assert!(
                sc.contains("HttpOnly") && sc.contains("SameSite=Strict"),
                "{sc}"
            );
            let v = sc
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("rlhf_annotate=");
            self.cookie = Some(v.to_owned());
        }
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        if status == 200 {
            self.csrf = Some(body["csrf"].as_str().unwrap().to_owned());
        }
        Answer { status, body }
    }

    pub(crate) async fn next(&self) -> reqwest::Result<Answer> {
        Self::send(self.request(reqwest::Method::GET, "/api/next")).await
    }

    pub(crate) async fn vote(&self, body: &Value) -> reqwest::Result<Answer> {
        Self::send(self.request(reqwest::Method::POST, "/api/vote").json(body)).await
    }

    pub(crate) async fn undo(&self) -> reqwest::Result<Answer> {
        Self::send(self.request(reqwest::Method::POST, "/api/undo")).await
    }

    pub(crate) async fn me(&self) -> reqwest::Result<Answer> {
        Self::send(self.request(reqwest::Method::GET, "/api/me")).await
    }
}

/// The vote records of a journal file.
pub(crate) fn journal_votes(dir: &Path) -> Vec<rlhf_annotate::VoteRecord> {
    rlhf_annotate::read_journal(&dir.join(rlhf_annotate::JOURNAL_FILE))
        .unwrap()
        .records
        .into_iter()
        .filter_map(|(_, r)| match r {
            rlhf_annotate::JournalRecord::Vote(v) => Some(v),
            rlhf_annotate::JournalRecord::Undo(_) => None,
        })
        .collect()
}
