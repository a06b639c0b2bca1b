//! The annotation web server (axum): login, the next pair, votes, undo, and the static page.
//!
//! # HTTP API
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | `/`, `/app.js`, `/style.css` | | the page (no third-party resources) |
//! | POST | `/api/login` | `{"name", "token"}` | `{"name", "csrf"}` + session cookie |
//! | POST | `/api/logout` | | clears the cookie |
//! | GET | `/api/me` | | `{"name", "csrf", "progress", "can_undo", "per_pair"}` |
//! | GET | `/api/next` | | `{"pair": {pair_id, history, prompt, left, right, …} \| null, "progress", "can_undo"}` |
//! | POST | `/api/vote` | `{"pair_id", "choice": "left"\|"right"\|"tie", "criteria"?, "comment"?, "vote_id"?}` | `{"recorded", "replayed", "seq", "progress", "can_undo"}` |
//! | POST | `/api/undo` | empty or `{"pair_id"?}` | `{"undone", "progress", "can_undo"}` |
//!
//! Every `/api/*` call except login and `me` needs the session cookie **and** the
//! `X-CSRF-Token` header; POST bodies must be `application/json` (so a cross-site form cannot
//! send them) and at most [`MAX_BODY_BYTES`]. Errors are JSON `{"error": "..."}` with a 4xx
//! status (5xx only when the journal cannot be written). A vote is confirmed (200) only after
//! its journal line has been fsynced.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rlhf_prefdata::{PromptClassifier as _, PromptQuality, RuleBasedClassifier};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Annotators, Keys, MAX_NAME_LEN};
use crate::error::{Error, Result};
use crate::journal::{
    Choice, CommitStats, Criteria, JOURNAL_FILE, JournalRecord, JournalWriter, Response as Resp,
    UndoRecord, VoteRecord, read_journal,
};
use crate::pairs::{file_sha256, read_pairs};
use crate::session::SessionInfo;
use crate::state::{Assignment, Refusal, VoteCheck, VoteContent};
use crate::util::now_ms;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Longest token accepted at login, in bytes.
pub const MAX_TOKEN_LEN: usize = 256;
/// Longest pair id accepted in a request, in bytes.
pub const MAX_PAIR_ID_LEN: usize = 256;
/// Longest `vote_id`, in bytes (ASCII letters, digits, `-`, `_`).
pub const MAX_VOTE_ID_LEN: usize = 64;
/// Name of the session cookie.
pub const COOKIE: &str = "rlhf_annotate";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Settings of [`AnnotationServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// The candidate-pair Parquet file.
    pub pairs: PathBuf,
    /// Session directory: `votes.jsonl`, `annotators.json`, `server.key`, `session.json`.
    pub dir: PathBuf,
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// Annotators per pair (N). Default 3.
    pub annotators_per_pair: usize,
    /// Skip pairs whose prompt is not clear and answerable (the stored `prompt_quality`, or
    /// the rule-based classifier for pairs without one). Default false.
    pub skip_flagged: bool,
    /// How long a pair shown to an annotator stays reserved for them, in seconds. Default 900.
    pub lease_secs: u64,
    /// Session lifetime in hours. Default 12.
    pub session_hours: u64,
    /// Allow a non-loopback `addr` (plain HTTP on a network: put a TLS proxy in front).
    /// Default false.
    pub allow_remote: bool,
}

impl ServeConfig {
    /// Defaults for `pairs` and `dir`.
    pub fn new(pairs: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            pairs: pairs.into(),
            dir: dir.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            annotators_per_pair: 3,
            skip_flagged: false,
            lease_secs: 900,
            session_hours: 12,
            allow_remote: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.annotators_per_pair) {
            return Err(Error::InvalidConfig(format!(
                "annotators per pair must be in 1..=1000, got {}",
                self.annotators_per_pair
            )));
        }
        if self.lease_secs == 0 || self.session_hours == 0 {
            return Err(Error::InvalidConfig(
                "lease_secs and session_hours must be > 0".into(),
            ));
        }
        if !self.addr.ip().is_loopback() && !self.allow_remote {
            return Err(Error::InvalidConfig(format!(
                "{} is not a loopback address; the server speaks plain HTTP, so it binds to \
                 localhost unless remote access is allowed explicitly (behind a TLS proxy)",
                self.addr
            )));
        }
        Ok(())
    }
}

/// What a started server serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// The page's URL.
    pub url: String,
    /// Session directory.
    pub dir: PathBuf,
    /// Pairs in the file.
    pub pairs: usize,
    /// Pairs skipped by the prompt-quality check.
    pub skipped: usize,
    /// Annotators per pair.
    pub annotators_per_pair: usize,
    /// Live votes found in the journal at start.
    pub votes_replayed: usize,
    /// Annotator accounts.
    pub annotators: usize,
}

struct App {
    keys: Keys,
    annotators: RwLock<Annotators>,
    state: Mutex<Assignment>,
    journal: JournalWriter,
    per_pair: usize,
    session_ms: u64,
    loopback_only: bool,
    port: u16,
}

/// A bound, not yet running annotation server.
pub struct AnnotationServer {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    info: ServerInfo,
    journal_thread: std::thread::JoinHandle<CommitStats>,
}

impl std::fmt::Debug for AnnotationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnotationServer")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn skip_flags(pairs: &[crate::pairs::CandidatePair], skip_flagged: bool) -> Vec<bool> {
    if !skip_flagged {
        return vec![false; pairs.len()];
    }
    let classifier = RuleBasedClassifier::default();
    pairs
        .iter()
        .map(|p| match p.prompt_quality {
            Some(q) => q != PromptQuality::ClearAndAnswerable,
            None => {
                classifier.classify_in_context(&p.history, &p.prompt)
                    != PromptQuality::ClearAndAnswerable
            }
        })
        .collect()
}

impl AnnotationServer {
    /// Loads the pairs, the accounts and the journal (replaying every vote), opens the
    /// journal for appending and binds the listener.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad settings (including a non-loopback address without
    /// `allow_remote`); [`Error::BadFile`] if `dir` was served with a different pairs file;
    /// [`Error::BadLine`] for a corrupt journal line; I/O errors (including a journal locked
    /// by another server, or an address in use).
    pub async fn bind(cfg: ServeConfig) -> Result<Self> {
        cfg.validate()?;
        let pairs_path = std::fs::canonicalize(&cfg.pairs).map_err(|e| Error::io(&cfg.pairs, e))?;
        std::fs::create_dir_all(&cfg.dir).map_err(|e| Error::io(&cfg.dir, e))?;
        let sha = file_sha256(&pairs_path)?;
        let pairs = read_pairs(&pairs_path)?;
        match SessionInfo::read(&cfg.dir)? {
            Some(s) if s.pairs_sha256 != sha => {
                return Err(Error::bad_file(
                    &pairs_path,
                    format!(
                        "{} was started with another pairs file ({}, SHA-256 {}); use a new --out directory for new pairs",
                        cfg.dir.display(),
                        s.pairs_path.display(),
                        s.pairs_sha256
                    ),
                ));
            }
            Some(_) => {}
            None => SessionInfo {
                version: 1,
                pairs_path: pairs_path.clone(),
                pairs_sha256: sha,
                pairs: pairs.len(),
                created_ms: now_ms(),
            }
            .write(&cfg.dir)?,
        }
        let skipped = skip_flags(&pairs, cfg.skip_flagged);
        let n_skipped = skipped.iter().filter(|s| **s).count();
        let keys = Keys::load_or_create(&cfg.dir)?;
        let annotators = Annotators::load(&cfg.dir)?;
        if annotators.is_empty() {
            tracing::warn!(
                "no annotator accounts in {}: add some with `annotate add-annotator`",
                cfg.dir.display()
            );
        }
        let journal_path = cfg.dir.join(JOURNAL_FILE);
        let contents = read_journal(&journal_path)?;
        let mut state = Assignment::new(
            Arc::new(pairs),
            skipped,
            cfg.annotators_per_pair,
            cfg.lease_secs * 1000,
        );
        let now = now_ms();
        for (line, rec) in &contents.records {
            state.apply(rec, now).map_err(|message| Error::BadLine {
                file: journal_path.clone(),
                line: *line,
                message,
            })?;
        }
        let (journal, journal_thread) = JournalWriter::open(&journal_path, contents.valid_len)?;
        let listener = tokio::net::TcpListener::bind(cfg.addr)
            .await
            .map_err(|e| Error::io(format!("{}", cfg.addr), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("{}", cfg.addr), e))?;
        let info = ServerInfo {
            url: format!("http://{addr}/"),
            dir: cfg.dir.clone(),
            pairs: state.pairs().len(),
            skipped: n_skipped,
            annotators_per_pair: cfg.annotators_per_pair,
            votes_replayed: state.live_votes(),
            annotators: annotators.len(),
        };
        tracing::info!(?info, "annotation server bound");
        let app = Arc::new(App {
            keys,
            annotators: RwLock::new(annotators),
            state: Mutex::new(state),
            journal,
            per_pair: cfg.annotators_per_pair,
            session_ms: cfg.session_hours * 3_600_000,
            loopback_only: !cfg.allow_remote,
            port: addr.port(),
        });
        Ok(AnnotationServer {
            listener,
            app,
            info,
            journal_thread,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// What is served.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight, closes the
    /// journal and returns its commit statistics.
    ///
    /// # Errors
    /// [`Error::Io`] if the listener fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<CommitStats> {
        let AnnotationServer {
            listener,
            app,
            info,
            journal_thread,
        } = self;
        let router = router(app);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io(info.url.clone(), e))?;
        let stats = tokio::task::spawn_blocking(move || journal_thread.join())
            .await
            .ok()
            .and_then(std::result::Result::ok)
            .unwrap_or_default();
        tracing::info!(lines = stats.lines, syncs = stats.syncs, "journal closed");
        Ok(stats)
    }
}

/// Binds, calls `on_ready` with the server's [`ServerInfo`], and serves until Ctrl-C (or
/// SIGTERM), on a runtime of its own. For the command-line tool.
///
/// # Errors
/// See [`AnnotationServer::bind`] and [`AnnotationServer::run_until`].
pub fn serve_blocking(cfg: ServeConfig, on_ready: impl FnOnce(&ServerInfo)) -> Result<CommitStats> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    rt.block_on(async move {
        let server = AnnotationServer::bind(cfg).await?;
        on_ready(server.info());
        server.run_until(rlhf_http::shutdown_signal()).await
    })
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/next", get(next_pair))
        .route("/api/vote", post(vote))
        .route("/api/undo", post(undo))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// An error answer: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(status, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r {
            Refusal::UnknownPair(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        ApiError(status, r.to_string())
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

/// Host and origin checks before routing; security headers after.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Err(e) = check_request_origin(&app, &req) {
        return with_security_headers(e.into_response());
    }
    with_security_headers(next.run(req).await)
}

fn check_request_origin(app: &App, req: &Request) -> std::result::Result<(), ApiError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if app.loopback_only {
        let p = app.port;
        let ok = [
            format!("127.0.0.1:{p}"),
            format!("localhost:{p}"),
            format!("[::1]:{p}"),
        ];
        if !ok.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            // DNS rebinding: a foreign name resolving to 127.0.0.1 must not reach the API.
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {host:?} is not this server (expected 127.0.0.1:{p} or localhost:{p})"
                ),
            ));
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host));
            if !same {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("cross-origin request from {origin:?} refused"),
                ));
            }
        }
        if req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-site request refused",
            ));
        }
    }
    Ok(())
}

fn with_security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such resource: {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Parses a JSON body, answering 413/415/400 with a message saying what was expected.
fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
    expected: &str,
    allow_empty: bool,
) -> std::result::Result<Option<T>, ApiError> {
    let body = body.map_err(|rej| {
        ApiError::new(
            rej.status(),
            format!(
                "cannot read the request body ({}); at most {MAX_BODY_BYTES} bytes are accepted",
                rej.body_text()
            ),
        )
    })?;
    if allow_empty && body.is_empty() {
        return Ok(None);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type: application/json, got {ct:?}"),
        ));
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}; expected {expected}"),
        )
    })
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl App {
    /// The logged-in annotator and their cookie; with `csrf`, also checks the CSRF header.
    fn session(
        &self,
        headers: &HeaderMap,
        csrf: bool,
    ) -> std::result::Result<(String, String), ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "not logged in (or the session expired)",
            )
        };
        let cookie = cookie_value(headers).ok_or_else(unauthorized)?;
        {
            let mut a = self.annotators.write().expect("annotators lock");
            a.refresh();
        }
        let name = {
            let a = self.annotators.read().expect("annotators lock");
            self.keys
                .check_session(&cookie, &a, now_ms(), self.session_ms)
                .ok_or_else(unauthorized)?
        };
        if csrf {
            let token = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !self.keys.check_csrf(&cookie, token) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "missing or wrong X-CSRF-Token header",
                ));
            }
        }
        Ok((name, cookie))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Assignment> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ok_json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    name: String,
    token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b: LoginBody = parse_json(
        &headers,
        body,
        r#"{"name": string, "token": string}"#,
        false,
    )?
    .expect("non-empty");
    if b.name.len() > MAX_NAME_LEN || b.token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("name is at most {MAX_NAME_LEN} bytes and token at most {MAX_TOKEN_LEN}"),
        ));
    }
    {
        app.annotators.write().expect("annotators lock").refresh();
    }
    let rec = {
        let a = app.annotators.read().expect("annotators lock");
        if !a.verify(&b.name, &b.token) {
            tracing::info!(name = %b.name, "failed login");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown annotator or wrong token",
            ));
        }
        a.get(&b.name).cloned().expect("verified")
    };
    let cookie = app.keys.session(&rec, now_ms());
    let csrf = app.keys.csrf(&cookie);
    let mut resp = ok_json(json!({ "name": rec.name, "csrf": csrf }));
    let set = format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        app.session_ms / 1000
    );
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).expect("cookie is ASCII"),
    );
    tracing::info!(name = %rec.name, "login");
    Ok(resp)
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    app.session(&headers, true)?;
    let mut resp = ok_json(json!({ "logged_out": true }));
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        ))
        .expect("ASCII"),
    );
    Ok(resp)
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let (name, cookie) = app.session(&headers, false)?;
    let (progress, can_undo) = {
        let st = app.state();
        (st.progress(&name, now_ms()), st.can_undo(&name))
    };
    Ok(ok_json(json!({
        "name": name,
        "csrf": app.keys.csrf(&cookie),
        "progress": progress,
        "can_undo": can_undo,
        "per_pair": app.per_pair,
    })))
}

async fn next_pair(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let (name, _) = app.session(&headers, true)?;
    let now = now_ms();
    let st = &mut *app.state();
    let pair = st.next_for(&name, now).map(|i| {
        let p = &st.pairs()[i];
        let (left, right) = if app.keys.left_is_b(&name, &p.pair_id) {
            (&p.response_b, &p.response_a)
        } else {
            (&p.response_a, &p.response_b)
        };
        json!({
            "pair_id": p.pair_id,
            "category": p.category,
            "language": p.language,
            "history": p.history,
            "prompt": p.prompt,
            "left": left,
            "right": right,
        })
    });
    Ok(ok_json(json!({
        "pair": pair,
        "progress": st.progress(&name, now),
        "can_undo": st.can_undo(&name),
    })))
}

/// A side of the screen, as the page sends it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Left,
    Right,
    Tie,
}

impl Side {
    fn to_choice(self, left: Resp) -> Choice {
        let pick = match self {
            Side::Left => left,
            Side::Right => left.other(),
            Side::Tie => return Choice::Tie,
        };
        match pick {
            Resp::A => Choice::A,
            Resp::B => Choice::B,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriteriaBody {
    #[serde(default)]
    helpfulness: Option<Side>,
    #[serde(default)]
    harmlessness: Option<Side>,
    #[serde(default)]
    fluency: Option<Side>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    pair_id: String,
    choice: Side,
    #[serde(default)]
    criteria: CriteriaBody,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    vote_id: Option<String>,
}

const VOTE_SHAPE: &str = r#"{"pair_id": string, "choice": "left"|"right"|"tie", "criteria"?: {"helpfulness"?|"harmlessness"?|"fluency"?: "left"|"right"|"tie"|null}, "comment"?: string, "vote_id"?: string}"#;

fn check_vote_body(b: &VoteBody) -> std::result::Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(StatusCode::BAD_REQUEST, m));
    if b.pair_id.is_empty() || b.pair_id.len() > MAX_PAIR_ID_LEN {
        return bad(format!("pair_id must be 1 to {MAX_PAIR_ID_LEN} bytes"));
    }
    let chars = b.comment.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return bad(format!(
            "comment has {chars} characters, at most {MAX_COMMENT_CHARS} are accepted"
        ));
    }
    if let Some(id) = &b.vote_id
        && (id.is_empty()
            || id.len() > MAX_VOTE_ID_LEN
            || !id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    {
        return bad(format!(
            "vote_id must be 1 to {MAX_VOTE_ID_LEN} characters of A-Z a-z 0-9 - _"
        ));
    }
    Ok(())
}

fn journal_failed(msg: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("NOT recorded: {msg}; the server accepts no more votes until it is restarted"),
    )
}

async fn vote(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (name, _) = app.session(&headers, true)?;
    let b: VoteBody = parse_json(&headers, body, VOTE_SHAPE, false)?.expect("non-empty");
    check_vote_body(&b)?;
    if app.journal.is_broken() {
        return Err(journal_failed("the journal failed earlier".into()));
    }
    let left = if app.keys.left_is_b(&name, &b.pair_id) {
        Resp::B
    } else {
        Resp::A
    };
    let now = now_ms();
    let content = VoteContent {
        left,
        choice: b.choice.to_choice(left),
        criteria: Criteria {
            helpfulness: b.criteria.helpfulness.map(|s| s.to_choice(left)),
            harmlessness: b.criteria.harmlessness.map(|s| s.to_choice(left)),
            fluency: b.criteria.fluency.map(|s| s.to_choice(left)),
        },
        comment: b.comment.clone(),
    };
    let (ack, seq, replayed, progress) = {
        let mut st = app.state();
        match st.check_vote(&name, &b.pair_id, b.vote_id.as_deref(), &content, now)? {
            VoteCheck::Replay { seq } => {
                // The original may still be waiting for its fsync: wait for everything
                // queued so far before confirming.
                (app.journal.barrier(), seq, true, st.progress(&name, now))
            }
            VoteCheck::New { served_ms, .. } => {
                let seq = st.next_seq();
                let rec = JournalRecord::Vote(VoteRecord {
                    seq,
                    at_ms: now,
                    annotator: name.clone(),
                    pair_id: b.pair_id.clone(),
                    vote_id: b.vote_id.clone(),
                    left,
                    choice: content.choice,
                    criteria: content.criteria,
                    comment: content.comment,
                    served_ms,
                });
                st.apply(&rec, now)
                    .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m))?;
                (
                    app.journal.append(&rec),
                    seq,
                    false,
                    st.progress(&name, now),
                )
            }
        }
    };
    match ack.await {
        Ok(Ok(())) => Ok(ok_json(json!({
            "recorded": true,
            "replayed": replayed,
            "seq": seq,
            "progress": progress,
            "can_undo": true,
        }))),
        Ok(Err(m)) => Err(journal_failed(m)),
        Err(_) => Err(journal_failed("the journal writer stopped".into())),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoBody {
    #[serde(default)]
    pair_id: Option<String>,
}

async fn undo(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (name, _) = app.session(&headers, true)?;
    let b: UndoBody =
        parse_json(&headers, body, r#"nothing, or {"pair_id": string}"#, true)?.unwrap_or_default();
    if app.journal.is_broken() {
        return Err(journal_failed("the journal failed earlier".into()));
    }
    let now = now_ms();
    let (ack, pair_id, progress) = {
        let mut st = app.state();
        let (undoes, pair) = st.check_undo(&name)?;
        let pair_id = st.pairs()[pair].pair_id.clone();
        if let Some(want) = &b.pair_id
            && want != &pair_id
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("your last vote was on pair {pair_id:?}, not {want:?}; nothing undone"),
            ));
        }
        let rec = JournalRecord::Undo(UndoRecord {
            seq: st.next_seq(),
            at_ms: now,
            annotator: name.clone(),
            undoes,
            pair_id: pair_id.clone(),
        });
        st.apply(&rec, now)
            .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m))?;
        (app.journal.append(&rec), pair_id, st.progress(&name, now))
    };
    match ack.await {
        Ok(Ok(())) => Ok(ok_json(json!({
            "undone": pair_id,
            "progress": progress,
            "can_undo": false,
        }))),
        Ok(Err(m)) => Err(journal_failed(m)),
        Err(_) => Err(journal_failed("the journal writer stopped".into())),
    }
}
