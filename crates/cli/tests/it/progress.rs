//! What a trainer shows: burn-train's dashboard on a terminal (a real pseudo-terminal from
//! `script`), plain lines without one, and the JSON result on stdout either way.

use std::path::Path;
use std::process::Command;

use super::dpo::write_pairs;
use super::{json, rlhf};

/// A 3-step reward-model run's arguments in `dir`.
fn reward_args(dir: &Path) -> Vec<String> {
    let pairs = dir.join("pairs.jsonl");
    write_pairs(&pairs, 12);
    let cfg = dir.join("cfg.json");
    std::fs::write(
        &cfg,
        r#"{"max_steps": 3, "batch_pairs": 4, "max_length": 64, "logging_steps": 1}"#,
    )
    .unwrap();
    [
        "train-reward",
        "--train",
        pairs.to_str().unwrap(),
        "--eval-fraction",
        "0.25",
        "--config",
        cfg.to_str().unwrap(),
        "--init",
        "tiny-llama",
        "--run-dir",
        dir.join("run").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn without_a_terminal_a_trainer_prints_one_plain_line_per_logged_step() {
    let tmp = tempfile::tempdir().unwrap();
    let args = reward_args(tmp.path());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // Piped stdout and stderr: `auto` resolves to plain text.
    let out = rlhf(&refs);
    let v = json(&out);
    assert_eq!(v["status"], "Finished", "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    for step in 1..=3 {
        assert!(
            err.contains(&format!("reward step {step}/3 (")),
            "no plain line for step {step}:\n{err}"
        );
    }
    assert!(err.contains("reward eval 3/3 ("), "{err}");
    assert!(
        !err.contains("\u{1b}[?1049h"),
        "no dashboard without a terminal"
    );
}

#[test]
fn progress_off_prints_nothing_and_a_bad_view_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = reward_args(tmp.path());
    args.push("--progress".into());
    args.push("off".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = rlhf(&refs);
    assert_eq!(json(&out)["status"], "Finished");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("reward step"),
        "--progress off shows nothing"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(&args[..args.len() - 2])
        .env("RLHF_PROGRESS", "tui")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("RLHF_PROGRESS") && err.contains("`tui`"),
        "{err}"
    );
}

#[test]
fn on_a_terminal_a_trainer_shows_burn_trains_dashboard_and_still_prints_its_result() {
    let Some(script) = rlhf_testkit::require_program("script") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let args = reward_args(tmp.path());
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_rlhf").to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect();
    // `script` runs the command on a fresh pseudo-terminal (stdout and stderr both terminals)
    // and copies what it draws to our stdout.
    let cmd = format!(
        "stty rows 40 cols 140; exec {} --progress auto",
        quoted.join(" ")
    );
    let out = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{screen}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let enter = screen
        .find("\u{1b}[?1049h")
        .expect("the dashboard takes the screen");
    let leave = screen.rfind("\u{1b}[?1049l").expect("and gives it back");
    assert!(enter < leave);
    // burn-train's dashboard draws its metric names and its progress panel.
    assert!(screen.contains("loss"), "metric names drawn");
    // The JSON result comes after the dashboard closed.
    let result = &screen[leave..];
    assert!(
        result.contains("\"status\"") && result.contains("Finished"),
        "{result}"
    );
    let metrics = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 3, "{metrics}");
}

#[test]
fn ctrl_c_under_the_dashboard_stops_with_a_checkpoint_that_resumes() {
    use std::io::Write as _;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let Some(script) = rlhf_testkit::require_program("script") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut args = reward_args(tmp.path());
    // Long enough to be interrupted (the test stops it after its first logged step).
    std::fs::write(
        tmp.path().join("cfg.json"),
        r#"{"max_steps": 100000, "batch_pairs": 4, "max_length": 64, "logging_steps": 1}"#,
    )
    .unwrap();
    args.push("--progress".into());
    args.push("dashboard".into());
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_rlhf").to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{a}'"))
        .collect();
    let cmd = format!("stty rows 40 cols 140; exec {}", quoted.join(" "));
    let mut child = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = tmp.path().join("run/metrics.jsonl");
    let t = Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 2 {
        assert!(t.elapsed() < Duration::from_secs(120), "no step logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ctrl-C typed on the terminal: the line discipline turns it into SIGINT only if the
    // dashboard left the terminal's signal keys on.
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{screen}", out.status);
    let leave = screen
        .rfind("\u{1b}[?1049l")
        .expect("the dashboard gives the screen back");
    assert!(screen[leave..].contains("Stopped"), "{}", &screen[leave..]);
    // The stop wrote a checkpoint to resume from.
    let latest = std::fs::read_to_string(tmp.path().join("run/checkpoints/latest")).unwrap();
    assert!(latest.trim().starts_with("step-"), "{latest}");
}
