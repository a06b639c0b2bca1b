//! The whole pipeline on a micro config (a slice of the embedded world, tiny models, a few
//! steps per stage): every artefact exists and every metric is finite; a run interrupted
//! mid-stage and resumed ends with the same model as an uninterrupted one; a bad config fails
//! before any work with one clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn head(src: &Path, dst: &Path, n: usize) {
    let text = std::fs::read_to_string(src).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(dst, lines.join("\n") + "\n").unwrap();
}

/// Writes the micro config and its data slices into `dir`; returns the config path.
fn micro(dir: &Path) -> PathBuf {
    let world = repo().join("data/world");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    head(&world.join("pairs.jsonl"), &data.join("pairs.jsonl"), 120);
    head(&world.join("sft.jsonl"), &data.join("sft.jsonl"), 48);
    head(&world.join("prompts.jsonl"), &data.join("prompts.jsonl"), 8);
    head(
        &world.join("eval_prompts.jsonl"),
        &data.join("eval_prompts.jsonl"),
        6,
    );
    let d = |f: &str| data.join(f).display().to_string();
    let text = format!(
        r#"
[run]
runs_dir = "{runs}"
seed = 3

[data]
pairs = "{pairs}"
sft = "{sft}"
prompts = "{prompts}"
eval_prompts = "{eval}"
world = "{world}"
test_fraction = 0.2
# As the embedded default: PPO's NTP term on the chosen replies.
ntp_data = "chosen"

[model]
base = "scratch"
vocab_size = 400
preset = "tiny-llama"

[sft]
max_steps = 4
batch_size = 8
max_length = 96
warmup_steps = 1
logging_steps = 1
eval_steps = 2
save_steps = 2

[rm]
learning_rate = 1e-3
max_steps = 3
batch_pairs = 8
max_length = 96
logging_steps = 1
save_steps = 2

[rm.balance]

[ppo]
total_steps = 2
batch_prompts = 4
mini_batch_size = 2
ppo_epochs = 1
max_new_tokens = 8
max_prompt_length = 64
learning_rate = 1e-4
critic_learning_rate = 1e-4
ntp_coef = 0.1
ntp_batch_size = 4
ntp_max_length = 96
save_steps = 1

[dpo_pairs]
k = 2
max_new_tokens = 8
min_margin = 0.0
batch_prompts = 8
max_length = 96

[dpo]
learning_rate = 1e-3
max_steps = 2
batch_pairs = 4
max_length = 96
logging_steps = 1

[eval]
max_new_tokens = 8
batch = 8

[ablations]
seeds = [1, 2]
seed_steps = 2

[ablations.sft_on_chosen]
max_steps = 2
batch_size = 4
max_length = 96

[compare]
methods = ["grpo", "rloo", "reinforce_pp", "remax"]
num_generations = 2
"#,
        runs = dir.join("runs").display(),
        pairs = d("pairs.jsonl"),
        sft = d("sft.jsonl"),
        prompts = d("prompts.jsonl"),
        eval = d("eval_prompts.jsonl"),
        world = world.display(),
    );
    let p = dir.join("micro.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn pipeline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlhf"));
    c.arg("pipeline").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run rlhf pipeline")
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "pipeline failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON result")
}

/// Every number in every line of a metrics file is finite (NaN is written as null).
fn finite_metrics(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for (k, x) in v.as_object().unwrap() {
            // Without the reference reward there is no reference score to log.
            let optional = k == "objective/reference_scores";
            assert!(
                optional || !x.is_null(),
                "{}: {k} is null (NaN?) in {line}",
                path.display()
            );
            if let Some(f) = x.as_f64() {
                assert!(f.is_finite(), "{}: {k} = {f}", path.display());
            }
        }
        n += 1;
    }
    n
}

/// `findings.json` lists every finding id once, in order, each with the declared keys; values
/// may be null on the micro config (two seeds and six prompts decide little), but a null
/// `reproduced` comes with a reason and a decided one with its test.
fn findings_have_the_schema(run: &Path) {
    let ids = [
        "rm_agrees_with_labels",
        "rm_agrees_with_gold",
        "length_balancing_reduces_length_preference",
        "reference_reward_starts_near_zero",
        "reference_reward_slows_kl",
        "ntp_limits_forgetting",
        "ppo_beats_sft",
        "dpo_beats_sft",
        "dpo_lengthens_more_than_ppo",
        "gains_in_writing_not_math",
        "ppo_beats_sft_on_chosen",
        "dpo_beats_sft_on_chosen",
    ];
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("findings.json")).unwrap()).unwrap();
    assert_eq!(v["alpha"], 0.05);
    let list = v["findings"].as_array().expect("a findings list");
    let got: Vec<&str> = list.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids);
    for f in list {
        for k in [
            "id",
            "finding",
            "measured",
            "test",
            "p_value",
            "effect",
            "reproduced",
            "verdict",
        ] {
            assert!(f.get(k).is_some(), "{k} missing in {f}");
        }
        match f["reproduced"].as_bool() {
            None => assert!(
                f["verdict"] == "not_measured"
                    && f["measured"]
                        .as_str()
                        .unwrap()
                        .starts_with("not measured: "),
                "{f}"
            ),
            Some(_) => {
                assert!(f["test"]["n"].as_u64().unwrap() > 0, "{f}");
                let p = f["p_value"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&p), "{f}");
                assert!(f["effect"]["value"].as_f64().unwrap().is_finite(), "{f}");
            }
        }
    }
    // The seed ablations ran, so their findings are measured unless the seeds agree exactly.
    let seeds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("ppo_seeds/summary.json")).unwrap())
            .unwrap();
    assert_eq!(seeds["seeds"].as_array().unwrap().len(), 2, "{seeds}");
    assert!(seeds["nll_before"].as_f64().unwrap() > 0.0, "{seeds}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("| finding | measured | test | n | statistic | p | effect | reproduced |"),
        "{report}"
    );
}

#[test]
fn the_micro_pipeline_produces_every_artefact() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = micro(tmp.path());
    let out = ok(&pipeline(
        &["--config", cfg.to_str().unwrap(), "--run-id", "m"],
        &[],
    ));
    let run = tmp.path().join("runs/m");
    assert_eq!(out["run_dir"], run.display().to_string());
    for stage in [
        "data",
        "tokenizer",
        "sft",
        "sft_chosen",
        "rm",
        "rm_unbalanced",
        "ppo",
        "ppo_noref",
        "ppo_seeds",
        "compare",
        "dpo_pairs",
        "dpo",
        "eval",
        "report",
    ] {
        assert!(
            out["stages"][stage].is_number(),
            "stage {stage} missing: {out}"
        );
    }
    for f in [
        "config.toml",
        "stages.json",
        "data/pairs.parquet",
        "data/stats.md",
        "tokenizer/tokenizer.json",
        "sft/final/model.safetensors",
        "rm/final/model.safetensors",
        "rm/eval/eval.json",
        "rm_unbalanced/final/model.safetensors",
        "ppo/final/model.safetensors",
        "ppo_noref/final/model.safetensors",
        "dpo_pairs.jsonl",
        "dpo/final/model.safetensors",
        "eval/summary.json",
        "eval/answers_SFT.jsonl",
        "eval/answers_PPO.jsonl",
        "eval/answers_DPO.jsonl",
        "eval/answers_SFT-chosen.jsonl",
        "sft_chosen/final/model.safetensors",
        "ppo_seeds/summary.json",
        "ppo_seeds/sft_heldout.jsonl",
        "ppo_seeds/s2/nontp/final/model.safetensors",
        "compare/summary.json",
        "compare/grpo/final/model.safetensors",
        "compare/remax/final/model.safetensors",
        "eval/answers_GRPO.jsonl",
        "eval/answers_REINFORCE++.jsonl",
        "report.md",
        "report.html",
        "findings.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // The control ran from the SFT model on the chosen replies, and PPO and DPO are compared
    // with it on every prompt.
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval/summary.json")).unwrap())
            .unwrap();
    for m in ["PPO", "DPO"] {
        let o = &sum["versus_control"][m];
        let n = ["wins", "ties", "losses"].map(|k| o[k].as_u64().unwrap());
        assert_eq!(n.iter().sum::<u64>(), 6, "{m}: {o}");
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("stages.json")).unwrap()).unwrap();
    let ctl = &state["stages"]["sft_chosen"]["result"];
    assert_eq!(ctl["step"], 2, "{ctl}");
    assert!(ctl["train_examples"].as_u64().unwrap() > 0, "{ctl}");
    for m in [
        "sft",
        "sft_chosen",
        "rm",
        "rm_unbalanced",
        "ppo",
        "ppo_noref",
        "dpo",
        "compare/grpo",
        "compare/rloo",
        "compare/reinforce_pp",
        "compare/remax",
    ] {
        let n = finite_metrics(&run.join(m).join("metrics.jsonl"));
        assert!(n > 0, "{m}: no metrics");
    }
    // Critic-free runs keep no critic; the comparison table has a row per method, measured.
    let ckpt = run.join("compare/grpo/checkpoints");
    let steps: Vec<_> = std::fs::read_dir(&ckpt).unwrap().flatten().collect();
    assert!(!steps.is_empty());
    for s in steps {
        assert!(
            !s.path().join("critic.mpk").exists(),
            "{}",
            s.path().display()
        );
    }
    let cmp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("compare/summary.json")).unwrap())
            .unwrap();
    let labels: Vec<&str> = cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["PPO", "PPO-noref", "GRPO", "RLOO", "REINFORCE++", "ReMax"]
    );
    for r in cmp["rows"].as_array().unwrap() {
        assert!(r["seconds"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["kl_last"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(cmp["rows"][2]["num_generations"], 2);
    let report_md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report_md.contains("## Beyond the paper: critic-free baselines"));
    assert!(report_md.contains("| GRPO | 2 | "), "{report_md}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("findings"),
        "report without plots"
    );
    findings_have_the_schema(&run);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval/summary.json")).unwrap())
            .unwrap();
    for model in [
        "SFT",
        "PPO",
        "PPO-noref",
        "DPO",
        "GRPO",
        "RLOO",
        "REINFORCE++",
        "ReMax",
    ] {
        let o = &summary["table"][model]["overall"];
        assert_eq!(o["n"], 6, "{model}: {summary}");
        assert!(o["gold"].as_f64().unwrap() >= 1.0, "gold scores are 1..=8");
    }
    // A second invocation of a finished run does nothing and says so.
    let again = pipeline(&["--config", cfg.to_str().unwrap(), "--resume", "m"], &[]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("done earlier, skipped"));
}

#[test]
fn an_interrupted_stage_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = micro(tmp.path());
    let c = cfg.to_str().unwrap();
    let stages = "data,tokenizer,sft";
    ok(&pipeline(
        &["--config", c, "--stages", stages, "--run-id", "straight"],
        &[],
    ));
    // Stop the SFT stage after 2 of its 4 steps, as Ctrl-C would.
    let cut = pipeline(
        &["--config", c, "--stages", stages, "--run-id", "cut"],
        &[("RLHF_STOP_AFTER", "2")],
    );
    assert_eq!(
        cut.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let err = String::from_utf8_lossy(&cut.stderr);
    assert!(
        err.contains("stopped during sft") && err.contains("--resume cut"),
        "{err}"
    );
    let runs = tmp.path().join("runs");
    assert!(!runs.join("cut/sft/final").exists());
    ok(&pipeline(
        &["--config", c, "--stages", stages, "--resume", "cut"],
        &[],
    ));
    super::assert_safetensors_close(
        "resumed SFT vs the uninterrupted one",
        &runs.join("cut/sft/final/model.safetensors"),
        &runs.join("straight/sft/final/model.safetensors"),
        1e-6,
    );
}

#[test]
fn a_bad_config_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = micro(tmp.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    for (bad, needle) in [
        (
            text.replace("[sft]\n", "[sft]\nlearning_rat = 1.0\n"),
            "learning_rat",
        ),
        (
            text.replace("vocab_size = 400", "vocab_size = 5"),
            "vocab_size",
        ),
        (text.replace("pairs.jsonl\"", "nope.jsonl\""), "nope.jsonl"),
        (
            text.replace("[ppo]\n", "[ppo]\ncliprange = -1.0\n"),
            "cliprange",
        ),
        (
            text.replace("\"grpo\", \"rloo\"", "\"grpo\", \"ppo\""),
            "unknown method \"ppo\"",
        ),
        (
            text.replace("num_generations = 2", "num_generations = 3"),
            "compare.num_generations",
        ),
        // Seed runs need an NTP coefficient to compare with none.
        (
            text.replace("ntp_coef = 0.1", "ntp_coef = 0.0"),
            "ablations.ntp_coef",
        ),
        (
            text.replace("[ablations]\n", "[ablations]\nntp_coef = -0.1\n"),
            "ablations.ntp_coef must be > 0",
        ),
        (
            text.replace("ntp_data = \"chosen\"", "ntp_data = \"rejected\""),
            "unknown variant `rejected`",
        ),
        (
            text.replace(
                "ntp_data = \"chosen\"",
                "ntp_data = \"chosen\"\ndpo_data = \"rm\"",
            ),
            "unknown variant `rm`",
        ),
    ] {
        let p = tmp.path().join("bad.toml");
        std::fs::write(&p, bad).unwrap();
        let out = pipeline(&["--config", p.to_str().unwrap(), "--run-id", "x"], &[]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(
            !tmp.path().join("runs/x").exists(),
            "work started despite {needle}"
        );
    }
}

#[test]
fn data_parallel_stages_give_the_single_device_models() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = micro(tmp.path());
    // DPO on the annotator's pairs here (the micro pipeline test covers the RM-labelled ones).
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "ntp_data = \"chosen\"",
        "ntp_data = \"chosen\"\ndpo_data = \"annotator\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let c = cfg.to_str().unwrap();
    let stages = "data,tokenizer,sft,rm,ppo,dpo_pairs,dpo";
    ok(&pipeline(
        &["--config", c, "--stages", stages, "--run-id", "one"],
        &[],
    ));
    let out = ok(&pipeline(
        &[
            "--config",
            c,
            "--stages",
            stages,
            "--run-id",
            "two",
            "--devices",
            "cpu,cpu",
        ],
        &[],
    ));
    assert!(out["stages"]["dpo"].is_number(), "{out}");
    let runs = tmp.path().join("runs");
    // `[data].ntp_data = "chosen"`: PPO's NTP term reads the training pairs' chosen replies
    // (the micro run's 120 pairs less the held-out fifth and the import's drops).
    let ppo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("one/ppo.json")).unwrap()).unwrap();
    let ntp = runs.join("one/data/chosen.jsonl");
    assert_eq!(ppo["sft_data"].as_str(), ntp.to_str(), "{ppo}");
    let n = std::fs::read_to_string(&ntp).unwrap().lines().count();
    assert!((60..120).contains(&n), "{n} chosen replies");
    // `[data].dpo_data = "annotator"`: no RM-labelled pairs (the stage is skipped though
    // named); DPO trained on the RM's split of the pairs, the chosen replies' count.
    assert!(!runs.join("one/dpo_pairs.jsonl").exists());
    assert!(out["stages"].get("dpo_pairs").is_none(), "{out}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("one/stages.json")).unwrap())
            .unwrap();
    let dpo = &state["stages"]["dpo"]["result"];
    assert_eq!(dpo["train_pairs"].as_u64(), Some(n as u64), "{dpo}");
    assert!(dpo["eval_pairs"].as_u64().unwrap() > 0, "{dpo}");
    let toml = std::fs::read_to_string(runs.join("two/config.toml")).unwrap();
    assert!(toml.contains("devices = [\"cpu\", \"cpu\"]"), "{toml}");
    // The reward stage ran the data-parallel loop (its checkpoints record the world size).
    let ck = runs.join("two/rm/checkpoints");
    let worlds: Vec<String> = std::fs::read_dir(&ck)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("state.json")).ok())
        .collect();
    assert!(
        !worlds.is_empty() && worlds.iter().all(|w| w.contains("\"world\": 2")),
        "{worlds:?}"
    );
    for m in ["rm", "ppo", "dpo"] {
        let f = |run: &str| runs.join(run).join(m).join("final/model.safetensors");
        super::assert_safetensors_close(
            &format!("{m}: 2 devices vs 1"),
            &f("two"),
            &f("one"),
            1e-4,
        );
    }
    let bad = pipeline(
        &["--config", c, "--run-id", "x", "--devices", "cpu,cuda:1"],
        &[],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("run.devices"), "{err}");
}
