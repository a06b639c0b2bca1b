//! `rlhf data …` on bad input: nothing kept is an error, outputs never clobber inputs or
//! existing files without `--force`, stale temporary files are cleaned, and every error is
//! one line that says each thing once and names the file.

use std::path::Path;
use std::process::Output;

use crate::{json, rlhf};

/// HH-RLHF records (full `chosen`/`rejected` dialogues).
const HH: &str = concat!(
    r#"{"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"}"#,
    "\n",
    r#"{"chosen": "\n\nHuman: yo\n\nAssistant: c", "rejected": "\n\nHuman: yo\n\nAssistant: d"}"#,
    "\n",
    r#"{"chosen": "\n\nHuman: hey\n\nAssistant: e", "rejected": "\n\nHuman: hey\n\nAssistant: f"}"#,
    "\n",
);

/// TRL records.
const TRL: &str = concat!(
    r#"{"prompt": "p1", "chosen": "a", "rejected": "b"}"#,
    "\n",
    r#"{"prompt": "p2", "chosen": "c", "rejected": "d"}"#,
    "\n",
);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `error: …` line of a failed run (log lines may precede it); asserts the failure and
/// that nothing was printed on stdout.
fn error_line(out: &Output, args: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure for {args:?}: {err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "one error line for {args:?}, got: {err}");
    lines[0].to_owned()
}

fn fails(args: &[&str]) -> String {
    error_line(&rlhf(args), args)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn data_import_refuses_input_that_yields_no_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let hh = tmp.path().join("hh.jsonl");
    std::fs::write(&hh, HH).unwrap();
    let out = tmp.path().join("o.parquet");
    // HH-RLHF data read as OASST: every record lacks `instruction`.
    let line = fails(&[
        "data",
        "import",
        "--format",
        "oasst",
        s(&hh),
        "--out",
        s(&out),
    ]);
    assert!(line.contains("hh.jsonl"), "{line}");
    assert!(line.contains("3 records read"), "{line}");
    assert!(line.contains("missing_field"), "{line}");
    assert!(line.contains("missing field `instruction`"), "{line}");
    assert!(!out.exists(), "no 0-row Parquet is written");

    // An empty input is an error in strict mode.
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        "--strict",
        s(&empty),
        "--out",
        s(&out),
    ]);
    assert!(line.contains("empty.jsonl"), "{line}");
    assert!(line.contains("no records"), "{line}");
    assert!(!out.exists(), "no 0-row Parquet is written");

    // A good file next to a bad one: the bad one is still named.
    let trl = tmp.path().join("good.jsonl");
    std::fs::write(&trl, TRL).unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&trl),
        s(&hh),
        "--out",
        s(&out),
    ]);
    assert!(
        line.contains("hh.jsonl") && !line.contains("good.jsonl"),
        "{line}"
    );
    assert!(line.contains("3 records read"), "{line}");
    assert!(!out.exists());

    // Every pair dropped by cleaning (ties after normalisation) is an error too.
    let ties = tmp.path().join("ties.jsonl");
    std::fs::write(
        &ties,
        r#"{"prompt": "p", "chosen": "same", "rejected": "same "}"#.to_owned() + "\n",
    )
    .unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&ties),
        "--out",
        s(&out),
    ]);
    assert!(
        line.contains("ties.jsonl") && line.contains("tie"),
        "{line}"
    );
    assert!(line.contains("1 records read"), "{line}");
    assert!(!out.exists());
    // ... and so is every pair dropped by the cleaning pass (empty replies).
    let blank = tmp.path().join("blank.jsonl");
    std::fs::write(
        &blank,
        r#"{"prompt": "p", "chosen": "a", "rejected": ""}"#.to_owned() + "\n",
    )
    .unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&blank),
        "--out",
        s(&out),
    ]);
    assert!(line.contains("blank.jsonl"), "{line}");
    assert!(line.contains("empty_response"), "{line}");
    assert!(line.contains("1 records read"), "{line}");
    assert!(!out.exists());
}

#[test]
#[cfg(unix)]
fn data_commands_never_replace_their_input_and_overwrite_only_with_force() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A new output file gets exactly 0644 (rlhf_util::AtomicFile), whatever the umask.
    let new_mode = 0o644;

    let same = dir.join("same.jsonl");
    std::fs::write(&same, TRL).unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&same),
        "--out",
        s(&same),
        "--force",
    ]);
    assert!(
        line.contains("same.jsonl") && line.contains("input"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&same).unwrap(), TRL, "input intact");

    let pq = dir.join("x.parquet");
    json(&rlhf(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&same),
        "--out",
        s(&pq),
    ]));
    assert_eq!(mode(&pq), new_mode, "a new Parquet file gets 0644");
    let parquet_bytes = std::fs::read(&pq).unwrap();

    // export X.parquet --out X.parquet, through the same path, a symlink and a hard link.
    let link = dir.join("link.jsonl");
    std::os::unix::fs::symlink(&pq, &link).unwrap();
    let hard = dir.join("hard.jsonl");
    std::fs::hard_link(&pq, &hard).unwrap();
    let dotted = dir.join(".").join("x.parquet");
    for out in [&pq, &dotted, &link, &hard] {
        let line = fails(&["data", "export", s(&pq), "--out", s(out), "--force"]);
        assert!(line.contains("input"), "{line}");
        assert_eq!(std::fs::read(&pq).unwrap(), parquet_bytes, "input intact");
    }

    // An existing output is replaced only with --force, and keeps its mode.
    let jsonl = dir.join("out.jsonl");
    std::fs::write(&jsonl, "keep me\n").unwrap();
    std::fs::set_permissions(&jsonl, std::fs::Permissions::from_mode(0o640)).unwrap();
    let line = fails(&["data", "export", s(&pq), "--out", s(&jsonl)]);
    assert!(
        line.contains("out.jsonl") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), "keep me\n");
    let v = json(&rlhf(&[
        "data",
        "export",
        s(&pq),
        "--out",
        s(&jsonl),
        "--force",
    ]));
    assert_eq!(v["written"], 2);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 2);
    assert_eq!(mode(&jsonl), 0o640, "a replaced file keeps its mode");
    let fresh = dir.join("fresh.jsonl");
    json(&rlhf(&["data", "export", s(&pq), "--out", s(&fresh)]));
    assert_eq!(mode(&fresh), new_mode, "a new JSONL file gets 0644");

    // The same for import's Parquet output and its report.
    std::fs::set_permissions(&pq, std::fs::Permissions::from_mode(0o600)).unwrap();
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&same),
        "--out",
        s(&pq),
    ]);
    assert!(
        line.contains("x.parquet") && line.contains("--force"),
        "{line}"
    );
    json(&rlhf(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&same),
        "--out",
        s(&pq),
        "--force",
    ]));
    assert_eq!(mode(&pq), 0o600, "a replaced Parquet file keeps its mode");
    let report = dir.join("report.json");
    std::fs::write(&report, "{}").unwrap();
    let other = dir.join("y.parquet");
    let line = fails(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&same),
        "--out",
        s(&other),
        "--report",
        s(&report),
    ]);
    assert!(line.contains("report.json"), "{line}");
    assert!(!other.exists());

    // stats: its three files are outputs too.
    let stats_dir = dir.join("stats");
    std::fs::create_dir(&stats_dir).unwrap();
    let args = ["data", "stats", s(&pq), "--out-dir", s(&stats_dir)];
    json(&rlhf(&args));
    let line = fails(&args);
    assert!(
        line.contains("stats.json") && line.contains("--force"),
        "{line}"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    json(&rlhf(&forced));
}

#[test]
fn data_import_cleans_its_own_stale_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.jsonl");
    std::fs::write(&input, TRL).unwrap();
    // A process that has exited: its pid is dead.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!(".prefdata-{dead}-0.parquet.tmp"));
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    // Ours (this test process is alive): it must stay.
    let live = dir.join(format!(".prefdata-{}-0.parquet.tmp", std::process::id()));
    std::fs::write(&live, b"busy").unwrap();
    // Somebody else's file that merely looks similar: never touched.
    let foreign = dir.join(".prefdata-notes.txt");
    std::fs::write(&foreign, b"mine").unwrap();

    let out = rlhf(&[
        "data",
        "import",
        "--format",
        "trl",
        s(&input),
        "--out",
        s(&dir.join("o.parquet")),
    ]);
    json(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stale.exists(),
        "the dead process's temporary file is removed"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("stale") && l.contains(&format!(".prefdata-{dead}-0.parquet.tmp"))),
        "a log line says so: {err}"
    );
    assert!(live.exists(), "a live process's temporary file stays");
    assert!(foreign.exists());
    // Nothing else of ours is left behind.
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(
        left,
        [live.file_name().unwrap().to_string_lossy()],
        "{left:?}"
    );
}

/// No `: `-separated part of `line` (longer than a few characters) occurs twice.
fn says_each_thing_once(line: &str) {
    let parts: Vec<&str> = line.split(": ").filter(|p| p.len() > 6).collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`{part}` repeated in: {line}"
        );
    }
}

#[test]
fn data_errors_say_each_thing_once_and_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let missing = dir.join("nope.parquet");
    let line = fails(&[
        "data",
        "export",
        s(&missing),
        "--out",
        s(&dir.join("o.jsonl")),
    ]);
    assert!(line.contains("nope.parquet"), "{line}");
    assert!(line.contains("No such file or directory"), "{line}");
    says_each_thing_once(&line);

    let junk = dir.join("junk.parquet");
    std::fs::write(&junk, "definitely not a parquet file").unwrap();
    let line = fails(&["data", "stats", s(&junk)]);
    assert!(line.contains("junk.parquet"), "{line}");
    assert!(line.to_lowercase().contains("footer"), "{line}");
    says_each_thing_once(&line);

    let tiny = dir.join("tiny.parquet");
    std::fs::write(&tiny, "junk").unwrap();
    let line = fails(&["data", "export", s(&tiny), "--out", s(&dir.join("o.jsonl"))]);
    assert!(line.contains("tiny.parquet"), "{line}");
    says_each_thing_once(&line);
}
