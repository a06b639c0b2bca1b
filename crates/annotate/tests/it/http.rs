//! The HTTP API over real sockets: votes recorded, duplicates refused, undo, isolation between
//! annotators, and every kind of malformed or hostile request answered 4xx with a message.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_are_recorded_in_file_terms_and_duplicates_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 4);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["alice", "bob"]);
    let server = start(config(&pairs_path, &dir, 2)).await;
    let mut alice = Client::new(&server.base());
    assert_eq!(alice.login(&acc[0].0, &acc[0].1).await.status, 200);

    // The first pair: multi-turn, one response carries <script>.
    let next = alice.next().await.unwrap();
    assert_eq!(next.status, 200, "{next:?}");
    let pair = &next.body["pair"];
    assert_eq!(pair["pair_id"], "p0000");
    assert_eq!(pair["history"].as_array().unwrap().len(), 2);
    let left = pair["left"].as_str().unwrap().to_owned();
    assert!(left == SCRIPT_RESPONSE || pair["right"] == SCRIPT_RESPONSE);
    assert_eq!(next.body["progress"]["done"], 0);
    assert_eq!(next.body["progress"]["total"], 4);
    // Reloading shows the same pair, sides unchanged.
    let again = alice.next().await.unwrap();
    assert_eq!(again.body["pair"], *pair);

    let v = json!({
        "pair_id": "p0000", "choice": "left", "vote_id": "v-1",
        "criteria": {"helpfulness": "left", "fluency": "tie"},
        "comment": "left is better <3",
    });
    let a = alice.vote(&v).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["recorded"], true);
    assert_eq!(a.body["replayed"], false);
    assert_eq!(a.body["progress"]["done"], 1);

    // Journal: one line, choice in file terms matching what was on the left.
    let votes = journal_votes(&dir);
    assert_eq!(votes.len(), 1);
    let rec = &votes[0];
    assert_eq!(
        (rec.annotator.as_str(), rec.pair_id.as_str()),
        ("alice", "p0000")
    );
    let left_is_b = left == SCRIPT_RESPONSE;
    let want = if left_is_b { "b" } else { "a" };
    assert_eq!(serde_json::to_value(rec.left).unwrap(), want);
    assert!(rec.picked_left());
    assert_eq!(
        serde_json::to_value(rec.criteria.helpfulness).unwrap(),
        want
    );
    assert_eq!(serde_json::to_value(rec.criteria.fluency).unwrap(), "tie");
    assert_eq!(rec.criteria.harmlessness, None);
    assert_eq!(rec.comment, "left is better <3");
    assert!(rec.served_ms.is_some());

    // A retry with the same vote_id is confirmed again, not recorded twice.
    let r = alice.vote(&v).await.unwrap();
    assert_eq!(
        (r.status, r.body["replayed"].clone()),
        (200, json!(true)),
        "{r:?}"
    );
    assert_eq!(journal_votes(&dir).len(), 1);
    // A second, different vote on the same pair is refused.
    let d = alice
        .vote(&json!({"pair_id": "p0000", "choice": "right"}))
        .await
        .unwrap();
    assert_eq!(d.status, 409, "{d:?}");
    assert!(d.error().contains("already voted"), "{d:?}");
    assert_eq!(journal_votes(&dir).len(), 1);

    // Undo: the pair comes back, can be voted again; a second undo is refused.
    let u = alice.undo().await.unwrap();
    assert_eq!(
        (u.status, u.body["undone"].clone()),
        (200, json!("p0000")),
        "{u:?}"
    );
    let u2 = alice.undo().await.unwrap();
    assert_eq!(u2.status, 409, "{u2:?}");
    assert!(u2.error().contains("nothing to undo"), "{u2:?}");
    let back = alice.next().await.unwrap();
    assert_eq!(back.body["pair"]["pair_id"], "p0000");
    assert_eq!(back.body["progress"]["done"], 0);
    let a = alice
        .vote(&json!({"pair_id": "p0000", "choice": "tie"}))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{a:?}");

    // Bob sees the same pair (N = 2), his own progress only, and nothing of Alice's votes.
    let mut bob = Client::new(&server.base());
    bob.login(&acc[1].0, &acc[1].1).await;
    let b = bob.next().await.unwrap();
    assert_eq!(b.body["pair"]["pair_id"], "p0000");
    assert_eq!(sorted_keys(&b.body), ["can_undo", "pair", "progress"]);
    assert_eq!(b.body["progress"]["done"], 0);
    assert_eq!(b.body["can_undo"], false);
    assert_eq!(
        sorted_keys(&b.body["pair"]),
        [
            "category", "history", "language", "left", "pair_id", "prompt", "right"
        ]
    );
    // Bob's session cookie cannot be used with Alice's CSRF token.
    let mut mixed = bob.clone();
    mixed.csrf = alice.csrf.clone();
    assert_eq!(mixed.next().await.unwrap().status, 403);

    let stats = server.stop().await;
    assert_eq!(stats.lines, 3, "2 votes and 1 undo");
    let text = std::fs::read_to_string(dir.join("votes.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_vote_id_with_another_body_is_refused_naming_the_stored_choice() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 4);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["alice"]);
    let server = start(config(&pairs_path, &dir, 1)).await;
    let mut alice = Client::new(&server.base());
    assert_eq!(alice.login(&acc[0].0, &acc[0].1).await.status, 200);
    let pair_id = alice.next().await.unwrap().body["pair"]["pair_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = json!({
        "pair_id": pair_id, "choice": "left", "vote_id": "v-7",
        "criteria": {"helpfulness": "left"}, "comment": "clearer",
    });
    let a = alice.vote(&first).await.unwrap();
    assert_eq!((a.status, a.body["replayed"].clone()), (200, json!(false)));
    let stored = journal_votes(&dir);
    assert_eq!(stored.len(), 1);

    // Same vote_id, other choice / criteria / comment: refused, and the answer names the
    // choice that was recorded (in the annotator's terms).
    let mut changed = Vec::new();
    for (field, value) in [
        ("choice", json!("right")),
        ("criteria", json!({"helpfulness": "right"})),
        ("comment", json!("on second thought")),
    ] {
        let mut body = first.clone();
        body[field] = value;
        changed.push(body);
    }
    let mut no_comment = first.clone();
    no_comment.as_object_mut().unwrap().remove("comment");
    changed.push(no_comment);
    for body in &changed {
        let r = alice.vote(body).await.unwrap();
        assert_eq!(r.status, 409, "{body} → {r:?}");
        assert!(r.error().contains("v-7"), "{r:?}");
        assert!(r.error().contains(r#"choice "left""#), "{r:?}");
        assert_eq!(r.body.get("recorded"), None, "{r:?}");
    }
    assert_eq!(
        journal_votes(&dir),
        stored,
        "the journal keeps the first vote"
    );

    // The same body again is a replay.
    let r = alice.vote(&first).await.unwrap();
    assert_eq!(
        (r.status, r.body["replayed"].clone()),
        (200, json!(true)),
        "{r:?}"
    );

    // After a restart the journal still knows what was voted.
    server.stop().await;
    let server = start(config(&pairs_path, &dir, 1)).await;
    let mut alice = Client::new(&server.base());
    assert_eq!(alice.login(&acc[0].0, &acc[0].1).await.status, 200);
    let r = alice.vote(&changed[0]).await.unwrap();
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error().contains(r#"choice "left""#), "{r:?}");
    let r = alice.vote(&first).await.unwrap();
    assert_eq!(
        (r.status, r.body["replayed"].clone()),
        (200, json!(true)),
        "{r:?}"
    );
    assert_eq!(journal_votes(&dir), stored);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_pairs_and_n_annotators_per_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 3);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["a1", "a2", "a3"]);
    let mut cfg = config(&pairs_path, &dir, 2);
    cfg.skip_flagged = true;
    let server = start(cfg).await;
    let mut seen = Vec::new();
    for (name, token) in &acc {
        let mut c = Client::new(&server.base());
        c.login(name, token).await;
        let mut mine = Vec::new();
        while let Some(id) = c.next().await.unwrap().body["pair"]["pair_id"].as_str() {
            let id = id.to_owned();
            assert!(!mine.contains(&id), "{name} was shown {id} twice");
            let r = c
                .vote(&json!({"pair_id": id, "choice": "left"}))
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{r:?}");
            mine.push(id);
        }
        seen.push(mine);
    }
    // p0001 is flagged (unclear intent): never shown; 2 pairs × N = 2 votes in all.
    assert_eq!(
        seen,
        [vec!["p0000", "p0002"], vec!["p0000", "p0002"], vec![]]
    );
    let mut c = Client::new(&server.base());
    c.login(&acc[2].0, &acc[2].1).await;
    let r = c
        .vote(&json!({"pair_id": "p0001", "choice": "left"}))
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    assert!(r.error().contains("skipped"), "{r:?}");
    let r = c
        .vote(&json!({"pair_id": "p0000", "choice": "left"}))
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    assert!(r.error().contains("all the votes"), "{r:?}");
    server.stop().await;
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn raw(
    c: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let mut r = c.request(method, path).body(body.to_owned());
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    Client::send(r).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_requests_get_4xx_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 2);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["alice"]);
    let server = start(config(&pairs_path, &dir, 1)).await;
    let base = server.base();
    let anon = Client::new(&base);
    let mut alice = Client::new(&base);
    let mut no_csrf = Client::new(&base);
    alice.login(&acc[0].0, &acc[0].1).await;
    no_csrf.cookie = alice.cookie.clone();
    let json_ct = Some("application/json");
    let ok_vote = r#"{"pair_id": "p0000", "choice": "left"}"#;
    let big = format!(
        r#"{{"pair_id": "p0000", "choice": "left", "comment": "{}"}}"#,
        "x".repeat(20_000)
    );
    let long_comment = format!(
        r#"{{"pair_id": "p0000", "choice": "left", "comment": "{}"}}"#,
        "长".repeat(2001)
    );
    let long_name = format!(r#"{{"name": "{}", "token": "t"}}"#, "n".repeat(65));
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "no session",
            raw(&anon, Method::POST, "/api/vote", json_ct, ok_vote).await,
            401,
            "not logged in",
        ),
        (
            "forged cookie",
            {
                let mut c = Client::new(&base);
                c.cookie = Some("alice~1~00".into());
                raw(&c, Method::GET, "/api/me", None, "").await
            },
            401,
            "not logged in",
        ),
        (
            "no CSRF header",
            raw(&no_csrf, Method::POST, "/api/vote", json_ct, ok_vote).await,
            403,
            "X-CSRF-Token",
        ),
        (
            "form content type",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                Some("application/x-www-form-urlencoded"),
                "pair_id=p0000",
            )
            .await,
            415,
            "application/json",
        ),
        (
            "broken JSON",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "#,
            )
            .await,
            400,
            "invalid JSON body",
        ),
        (
            "unknown field",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "p0000", "choice": "left", "admin": true}"#,
            )
            .await,
            400,
            "unknown field `admin`",
        ),
        (
            "bad choice",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "p0000", "choice": "up"}"#,
            )
            .await,
            400,
            "unknown variant `up`",
        ),
        (
            "missing choice",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "p0000"}"#,
            )
            .await,
            400,
            "missing field `choice`",
        ),
        (
            "comment too long",
            raw(&alice, Method::POST, "/api/vote", json_ct, &long_comment).await,
            400,
            "at most 2000",
        ),
        (
            "body too large",
            raw(&alice, Method::POST, "/api/vote", json_ct, &big).await,
            413,
            "at most 16384 bytes",
        ),
        (
            "bad vote_id",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "p0000", "choice": "left", "vote_id": "a b"}"#,
            )
            .await,
            400,
            "vote_id",
        ),
        (
            "unknown pair",
            raw(
                &alice,
                Method::POST,
                "/api/vote",
                json_ct,
                r#"{"pair_id": "nope", "choice": "left"}"#,
            )
            .await,
            404,
            "unknown pair_id",
        ),
        (
            "nothing to undo",
            raw(&alice, Method::POST, "/api/undo", None, "").await,
            409,
            "nothing to undo",
        ),
        (
            "undo body of the wrong shape",
            raw(&alice, Method::POST, "/api/undo", json_ct, "[1]").await,
            400,
            "invalid JSON body",
        ),
        (
            "wrong token",
            raw(
                &anon,
                Method::POST,
                "/api/login",
                json_ct,
                r#"{"name": "alice", "token": "guess"}"#,
            )
            .await,
            401,
            "wrong token",
        ),
        (
            "name too long",
            raw(&anon, Method::POST, "/api/login", json_ct, &long_name).await,
            400,
            "at most 64",
        ),
        (
            "unknown path",
            raw(&anon, Method::GET, "/etc/passwd", None, "").await,
            404,
            "no such resource",
        ),
        (
            "wrong method",
            raw(&alice, Method::DELETE, "/api/vote", None, "").await,
            405,
            "not allowed",
        ),
        (
            "cross-origin POST",
            Client::send(
                alice
                    .request(Method::POST, "/api/vote")
                    .header("origin", "http://evil.example")
                    .header("content-type", "application/json")
                    .body(ok_vote),
            )
            .await
            .unwrap(),
            403,
            "cross-origin",
        ),
        (
            "cross-site fetch metadata",
            Client::send(
                anon.request(Method::POST, "/api/login")
                    .header("sec-fetch-site", "cross-site")
                    .header("content-type", "application/json")
                    .body(r#"{"name": "alice", "token": "x"}"#),
            )
            .await
            .unwrap(),
            403,
            "cross-site",
        ),
        (
            "DNS-rebinding Host",
            Client::send(
                anon.request(Method::GET, "/api/me")
                    .header("host", "evil.example"),
            )
            .await
            .unwrap(),
            421,
            "not this server",
        ),
    ];
    for (what, a, status, needle) in &cases {
        assert_eq!(a.status, *status, "{what}: {a:?}");
        assert!(
            a.error().contains(needle),
            "{what}: message {:?} lacks {needle:?}",
            a.error()
        );
    }
    // Nothing of the above reached the journal; a proper vote still works.
    assert!(journal_votes(&dir).is_empty());
    let ok = raw(&alice, Method::POST, "/api/vote", json_ct, ok_vote).await;
    assert_eq!(ok.status, 200, "{ok:?}");

    // The page and its assets come with a strict CSP and no third-party URL.
    let resp = reqwest::get(format!("{base}/")).await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let html = resp.text().await.unwrap();
    for asset in [
        html.as_str(),
        include_str!("../../src/assets/app.js"),
        include_str!("../../src/assets/style.css"),
    ] {
        assert!(
            !asset.contains("https://") && !asset.contains("http://"),
            "external URL in an asset"
        );
    }
    let js = include_str!("../../src/assets/app.js");
    assert!(
        !js.contains(".innerHTML")
            && !js.contains("insertAdjacentHTML")
            && !js.contains("document.write")
    );
    let me = alice.me().await.unwrap();
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["csrf"], Value::String(alice.csrf.clone().unwrap()));
    server.stop().await;
}

#[tokio::test]
async fn the_server_refuses_unsafe_or_inconsistent_setups() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 3);
    let dir = tmp.path().join("session");
    let mut cfg = config(&pairs_path, &dir, 1);
    cfg.addr = "0.0.0.0:0".parse().unwrap();
    let err = rlhf_annotate::AnnotationServer::bind(cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a loopback address"), "{err}");

    // First start records the pairs file; a different one is refused for the same directory.
    let server = start(config(&pairs_path, &dir, 1)).await;
    // A second server on the same directory cannot take the journal.
    let err = rlhf_annotate::AnnotationServer::bind(config(&pairs_path, &dir, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("another server"), "{err}");
    server.stop().await;
    let other = tmp.path().join("other.parquet");
    rlhf_annotate::write_pairs(&other, &pairs(5)).unwrap();
    let err = rlhf_annotate::AnnotationServer::bind(config(&other, &dir, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("another pairs file"), "{err}");
}
