//! `rlhf serve-rm` (the real binary, on 127.0.0.1 port 0) with a tiny random reward model: it
//! scores through `RemoteScorer` what the local `RewardModel` scores, answers bad requests with
//! 400 and one clear error, and stops cleanly on Ctrl-C; `rlhf train-ppo` trains against it
//! (and refuses a reference cache built with another reward model), and against the world's
//! gold judge.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use burn::backend::Flex;
use rlhf_core::backend::FlexDevice;
use rlhf_core::checkpoint::{LoadOptions, SaveDtype, load_scalar_model, save_scalar_model};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::Message;
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_http::{BlockingClient, HttpConfig, HttpError, json_body};
use rlhf_policy_ppo::{PackedSequences, RemoteRewardConfig, RemoteScorer, RewardModel, Scorer};
use serde_json::{Value, json};

use super::{json, rlhf};

/// A random byte-level reward model (`tiny_llama`, 512 positions) saved in HF layout.
fn tiny_rm(dir: &Path, seed: u64) -> PathBuf {
    let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    let model = ScalarModel::<Flex>::init(&cfg, 0.02, seed, &FlexDevice);
    std::fs::create_dir_all(dir).unwrap();
    save_scalar_model(&model, &cfg, dir, SaveDtype::F32).unwrap();
    dir.to_path_buf()
}

/// A running `rlhf serve-rm`; killed if a test fails before stopping it.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
    base: String,
    ready: Value,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
            .args(["serve-rm", "--model", model.to_str().unwrap()])
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rlhf serve-rm");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("serve-rm did not start: {err}");
        }
        let ready: Value = serde_json::from_str(&line).unwrap();
        let url = ready["url"].as_str().unwrap().to_string();
        let base = url.trim_end_matches("/score").to_string();
        Server {
            child,
            stdout,
            url,
            base,
            ready,
        }
    }

    /// Ctrl-C; the exit status and the last stdout line.
    fn interrupt(mut self) -> (std::process::ExitStatus, Value) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let last = rest.lines().last().unwrap_or("null");
        (status, serde_json::from_str(last).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> BlockingClient {
    let mut cfg = HttpConfig::new("test request");
    cfg.use_system_proxy = false;
    cfg.retry.max_attempts = 1;
    BlockingClient::new(cfg).unwrap()
}

fn post(url: &str, body: &Value) -> Result<Value, HttpError> {
    client().post_json(url, body, json_body)
}

/// The 400 error text of `body`.
fn bad_request(url: &str, body: &Value) -> String {
    match post(url, body) {
        Err(HttpError::Status {
            status: 400, body, ..
        }) => {
            let v: Value = serde_json::from_str(&body).unwrap();
            v["error"].as_str().unwrap().to_string()
        }
        other => panic!("expected a 400 for {body}, got {other:?}"),
    }
}

fn bytes(s: &str) -> Vec<u32> {
    s.bytes().map(|b| u32::from(b) + 3).collect()
}

fn dec(ids: &[u32]) -> rlhf_core::Result<String> {
    TextCodec::Bytes.decode(ids)
}

/// Five rows of different prompt and reply lengths (some replies ending with EOS).
fn rows() -> PackedSequences {
    let prompts: Vec<Vec<u32>> = ["hi", "tell me a story", "2+2?", "x", "why is the sky blue"]
        .iter()
        .map(|p| {
            TextCodec::Bytes
                .encode_prompt(&[Message::user(*p)])
                .unwrap()
        })
        .collect();
    let mut replies: Vec<Vec<u32>> = ["hello", "once", "4", "", "scattering of light"]
        .iter()
        .map(|r| bytes(r))
        .collect();
    replies[0].push(2);
    replies[2].push(2);
    replies[3].push(2);
    PackedSequences::new(&prompts, &replies, 0)
}

#[test]
fn serve_rm_scores_like_the_local_reward_model_and_stops_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_rm(&tmp.path().join("rm"), 7);
    let server = Server::start(&model, &["--max-batch", "2"]);

    let (rm, _) = load_scalar_model::<Flex>(&model, LoadOptions::default(), &FlexDevice).unwrap();
    let mut local = RewardModel::new(rm, false);
    let want = Scorer::<Flex>::score(&mut local, &rows(), &FlexDevice).unwrap();

    let cfg = RemoteRewardConfig {
        batch_size: 3,
        ..RemoteRewardConfig::new(&server.url)
    };
    let mut remote = RemoteScorer::connect(cfg, dec).unwrap();
    let got = Scorer::<Flex>::score(&mut remote, &rows(), &FlexDevice).unwrap();
    let diff = rlhf_testkit::assert_close("serve-rm vs local RewardModel", &got, &want, 1e-5);
    eprintln!("serve-rm vs local RewardModel: max |Δ| {diff:e}");
    // The same weights: the remote fingerprint is the local one behind `remote:`.
    assert_eq!(
        Scorer::<Flex>::fingerprint(&remote),
        format!("remote:{}", Scorer::<Flex>::fingerprint(&local))
    );
    assert_eq!(
        server.ready["fingerprint"],
        json!(Scorer::<Flex>::fingerprint(&local))
    );

    // Text only: the server encodes a user turn and the reply with its codec.
    let text = post(
        &server.url,
        &json!({"prompts": ["hi"], "responses": ["hello"]}),
    )
    .unwrap();
    assert!(
        (text["scores"][0].as_f64().unwrap() - f64::from(want[0])).abs() < 1e-5,
        "{text} vs {}",
        want[0]
    );
    let info = client()
        .get(&format!("{}/info", server.base), json_body::<Value>)
        .unwrap();
    assert_eq!(info["vocab_size"], BYTE_VOCAB);
    assert_eq!(info["max_position_embeddings"], 512);
    assert_eq!(info["max_batch"], 2);
    let health = client()
        .get(&format!("{}/health", server.base), json_body::<Value>)
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let (status, last) = server.interrupt();
    assert!(status.success(), "{status:?}");
    assert_eq!(last["stopped"], true, "{last}");
    assert_eq!(
        last["rows"], 6,
        "5 rows through RemoteScorer, 1 as text: {last}"
    );
}

#[test]
fn serve_rm_answers_bad_requests_with_400_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_rm(&tmp.path().join("rm"), 8);
    let server = Server::start(&model, &[]);
    let url = &server.url;
    let cases = [
        (
            json!({"prompt_ids": [[1, 5], [1]], "response_ids": [[7]]}),
            "`prompt_ids` has 2 rows but `response_ids` has 1",
        ),
        (
            json!({"prompt_ids": [[1, 5]], "response_ids": [[7, 99999]]}),
            "`response_ids[0][1]` = 99999 is outside the vocabulary: expected an id in 0..259",
        ),
        (
            json!({"prompt_ids": [vec![5; 500]], "response_ids": [vec![6; 20]]}),
            "row 0 has 520 tokens (prompt 500 + response 20), more than the model's 512 positions",
        ),
        (
            json!({"prompts": ["a", "b"], "responses": ["c"]}),
            "`prompts` has 2 rows but `responses` has 1",
        ),
        (json!({"query": ["a"]}), "unknown field `query`"),
        (json!([1, 2]), "invalid request body"),
        (json!({}), "no rows: expected a JSON object"),
    ];
    for (body, needle) in cases {
        let e = bad_request(url, &body);
        assert!(e.contains(needle), "`{e}` should say `{needle}`");
    }
    // An empty body (raw HTTP: the JSON client always sends one).
    let addr = server.ready["listening"].as_str().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("empty body: expected a JSON object"),
        "{reply}"
    );
    // The server still scores after all that.
    let ok = post(
        url,
        &json!({"prompt_ids": [[1, 5]], "response_ids": [[7, 2]]}),
    )
    .unwrap();
    assert_eq!(ok["scores"].as_array().unwrap().len(), 1);
}

/// Six byte-level prompts (JSON lines).
fn prompts_file(dir: &Path) -> PathBuf {
    let p = dir.join("prompts.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|i| {
            json!({"id": format!("q{i}"), "prompt": format!("say {i}{}", "!".repeat(i % 3))})
                .to_string()
        })
        .collect();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn ppo_toml(prompts: &Path, extra: &str) -> String {
    format!(
        "init = \"tiny-llama\"\nprompts = \"{}\"\ntotal_steps = 2\nbatch_prompts = 2\n\
         mini_batch_size = 1\nmax_new_tokens = 4\nlearning_rate = 1e-3\n\
         critic_learning_rate = 1e-3\nntp_coef = 0.0\n{extra}",
        prompts.display()
    )
}

fn train_ppo(cfg: &Path, run_dir: &Path) -> std::process::Output {
    rlhf(&[
        "train-ppo",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ])
}

#[test]
fn train_ppo_scores_with_a_served_reward_model_and_refuses_another_models_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let server = Server::start(&tiny_rm(&t.join("rm"), 9), &[]);
    let prompts = prompts_file(t);
    let cfg = t.join("ppo.toml");
    std::fs::write(
        &cfg,
        ppo_toml(
            &prompts,
            &format!(
                "remote_rm_url = \"{}\"\n[remote_rm]\nmax_attempts = 2\nbatch_size = 3\n",
                server.url
            ),
        ),
    )
    .unwrap();
    let out = json(&train_ppo(&cfg, &t.join("run")));
    assert_eq!(out["status"], "Finished", "{out}");
    assert_eq!(out["reward_source"], "remote");
    assert!(
        out["last"]["objective/scores"]
            .as_f64()
            .unwrap()
            .is_finite(),
        "{out}"
    );
    let cache = t.join("run/reference_rewards.parquet");
    assert!(cache.is_file());

    // Another reward model behind the server: the first run's reference cache is refused.
    let other = Server::start(&tiny_rm(&t.join("rm2"), 10), &[]);
    let cfg2 = t.join("ppo2.toml");
    std::fs::write(
        &cfg2,
        ppo_toml(
            &prompts,
            &format!(
                "remote_rm_url = \"{}\"\n[reference]\ncache = \"{}\"\n",
                other.url,
                cache.display()
            ),
        ),
    )
    .unwrap();
    let res = train_ppo(&cfg2, &t.join("run2"));
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("does not belong to this run") && err.contains("remote:"),
        "{err}"
    );

    // Nobody listening: one clear line naming the url, before any training.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg3 = t.join("ppo3.toml");
    std::fs::write(
        &cfg3,
        ppo_toml(
            &prompts,
            &format!("[remote_rm]\nurl = \"http://{addr}/score\"\nmax_attempts = 1\n"),
        ),
    )
    .unwrap();
    let res = train_ppo(&cfg3, &t.join("run3"));
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&format!("http://{addr}/score")), "{err}");
}

#[test]
fn train_ppo_scores_with_the_worlds_gold_judge() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let world = t.join("world");
    let cfg = rlhf_world::WorldConfig {
        train_prompts: 40,
        eval_prompts: 8,
        ..Default::default()
    };
    let data = rlhf_world::Dataset::generate(&cfg).unwrap();
    data.write(&world).unwrap();
    let prompts = t.join("prompts.jsonl");
    let lines: Vec<String> = data
        .train
        .iter()
        .map(|p| json!({"id": p.id, "prompt": p.messages()}).to_string())
        .collect();
    std::fs::write(&prompts, lines.join("\n") + "\n").unwrap();
    let ppo = t.join("ppo.toml");
    std::fs::write(
        &ppo,
        ppo_toml(
            &prompts,
            &format!(
                "reward_source = \"gold\"\ngold_world = \"{}\"\nmax_prompt_length = 256\n",
                world.display()
            ),
        ),
    )
    .unwrap();
    let out = json(&train_ppo(&ppo, &t.join("run")));
    assert_eq!(out["status"], "Finished", "{out}");
    assert_eq!(out["reward_source"], "gold");
    let reference = out["last"]["objective/reference_scores"].as_f64().unwrap();
    assert!(
        (1.0..=8.0).contains(&reference),
        "gold scores are 1..=8: {out}"
    );

    // A prompt that is not the world's is refused before training.
    std::fs::write(&prompts, "{\"id\": \"mine\", \"prompt\": \"hello\"}\n").unwrap();
    let res = train_ppo(&ppo, &t.join("run2"));
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("prompt `mine` is not one of the world's prompts"),
        "{err}"
    );
}
