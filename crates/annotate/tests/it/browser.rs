//! The page in headless Chromium, driven over WebDriver (chromedriver's W3C endpoints, plain
//! JSON over HTTP): log in, vote with the keyboard, undo with the keyboard, and check that a
//! response containing `<script>` renders as text. Saves a screenshot under the test target
//! directory and prints its path.
//!
//! Skips (passing, with a `SKIP:` line) when `chromium` or `chromedriver` is absent in a user's
//! clone, but fails under `CI=true` or `RLHF_REQUIRE_SHARED=1` (`rlhf_testkit::require_program`);
//! `.ci/run` installs the Debian packages `chromium` and `chromium-driver` when it can.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian's `chromium-driver` puts chromedriver when it is not on `PATH`.
const DEBIAN_CHROMEDRIVER: &str = "/usr/lib/chromium/chromedriver";

/// chromedriver and Chromium, or `None` (with a `SKIP:` line) when either is missing; a panic
/// instead under `CI=true` or `RLHF_REQUIRE_SHARED=1`.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let driver = rlhf_testkit::resolve_program("chromedriver", std::env::var_os("PATH"))
        .or_else(|| rlhf_testkit::resolve_program(DEBIAN_CHROMEDRIVER, None))
        .or_else(|| rlhf_testkit::require_program("chromedriver"))?;
    let chromium = rlhf_testkit::require_program("chromium")?;
    Some((driver, chromium))
}

/// Kills chromedriver (a process this test started) when the test ends, even on panic.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // After a panic the session is still open: ask chromedriver to close the browser
        // (a blocking request, as Drop cannot await), or it would outlive the test.
        if let Some(s) = self.session.take() {
            let addr = self.base.trim_start_matches("http://").to_owned();
            if let Ok(mut t) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read as _, Write as _};
                let _ = t.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    t,
                    "DELETE /session/{s} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                );
                let _ = t.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(exe: &Path, chromium: &Path, profile: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            session: None,
        };
        let t0 = Instant::now();
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,1800",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = d.call("POST", "/session", Some(caps)).await;
        d.session = Some(v["sessionId"].as_str().expect("a session id").to_owned());
        d
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = match &self.session {
            Some(s) if path != "/session" => format!("{}/session/{s}{path}", self.base),
            _ => format!("{}{path}", self.base),
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(
            status.is_success(),
            "webdriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    async fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    async fn wait_for(&self, what: &str, js: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.script(js).await;
            if !v.is_null() && v != false {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT_KEY].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Presses one key (a character or a WebDriver key code such as `\u{E012}` ←).
    async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
        ]}]});
        self.call("POST", "/actions", Some(actions)).await;
    }

    async fn screenshot(&self, path: &Path) {
        let v = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    async fn quit(mut self) {
        if self.session.is_some() {
            self.call("DELETE", "", None).await;
            self.session = None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_votes_with_the_keyboard_and_shows_script_as_text() {
    // Debian packages `chromium` and `chromium-driver`; .ci/run installs them when it can.
    let Some((driver_exe, chromium)) = browser() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 3);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["browser"]);
    let server = start(config(&pairs_path, &dir, 1)).await;
    let d = Driver::start(&driver_exe, &chromium, &tmp.path().join("chrome-profile")).await;

    d.call(
        "POST",
        "/url",
        Some(json!({"url": format!("{}/", server.base())})),
    )
    .await;
    d.wait_for(
        "the login form",
        "return !document.getElementById('login-view').hidden",
    )
    .await;
    d.type_into("#login-name", &acc[0].0).await;
    d.type_into("#login-token", &acc[0].1).await;
    let submit = d.element("#login-form button[type=submit]").await;
    d.call("POST", &format!("/element/{submit}/click"), Some(json!({})))
        .await;
    d.wait_for(
        "the first pair",
        "return document.body.dataset.pair === 'p0000'",
    )
    .await;

    // The <script> response is shown as text: no script or img element was created, the
    // payload did not run, and the text is there verbatim.
    let check = d
        .script(
            "const l = document.getElementById('left'), r = document.getElementById('right');
             return {
               text: l.textContent + '\\n' + r.textContent,
               elements: l.querySelectorAll('*').length + r.querySelectorAll('*').length,
               pwned: window.__pwned === undefined ? null : window.__pwned,
               history: document.querySelectorAll('#history .turn').length,
               left: l.textContent,
             };",
        )
        .await;
    assert!(
        check["text"].as_str().unwrap().contains(SCRIPT_RESPONSE),
        "{check}"
    );
    assert_eq!(check["elements"], 0, "model text created elements: {check}");
    assert_eq!(check["pwned"], Value::Null, "the payload ran: {check}");
    assert_eq!(check["history"], 2, "{check}");
    let shot =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("annotate-browser/annotation-page.png");
    d.screenshot(&shot).await;
    println!(
        "browser: screenshot of the annotation page: {}",
        shot.display()
    );

    // Vote "A" (left) with the keyboard; the vote is in the journal once confirmed.
    let left_text = check["left"].as_str().unwrap().to_owned();
    d.press("2").await; // harmlessness mark: – → A
    d.press("a").await;
    d.wait_for(
        "the second pair",
        "return document.body.dataset.pair === 'p0001' && document.getElementById('status').textContent.includes('✓')",
    )
    .await;
    let votes = journal_votes(&dir);
    assert_eq!(votes.len(), 1);
    let v = &votes[0];
    assert_eq!(
        (v.annotator.as_str(), v.pair_id.as_str()),
        ("browser", "p0000")
    );
    assert!(v.picked_left(), "{v:?}");
    let chosen_is_script = matches!(v.choice, rlhf_annotate::Choice::B);
    assert_eq!(chosen_is_script, left_text == SCRIPT_RESPONSE);
    assert_eq!(v.criteria.harmlessness, Some(v.choice));

    // Undo with the keyboard: p0000 comes back; vote "B" (right) with the arrow key.
    d.press("u").await;
    d.wait_for(
        "the undone pair",
        "return document.body.dataset.pair === 'p0000'",
    )
    .await;
    d.press("\u{E014}").await; // ArrowRight
    d.wait_for(
        "the second pair again",
        "return document.body.dataset.pair === 'p0001'",
    )
    .await;
    let records = rlhf_annotate::read_journal(&dir.join("votes.jsonl"))
        .unwrap()
        .records;
    assert_eq!(records.len(), 3, "vote, undo, vote");
    let rlhf_annotate::JournalRecord::Vote(last) = &records[2].1 else {
        panic!("last record is not a vote")
    };
    assert_eq!(last.pair_id, "p0000");
    assert!(!last.picked_left());
    let progress = d
        .script("return document.getElementById('progress').textContent")
        .await;
    assert!(progress.as_str().unwrap().contains("1"), "{progress}");
    d.screenshot(&shot.with_file_name("after-votes.png")).await;
    d.quit().await;
    server.stop().await;
}
