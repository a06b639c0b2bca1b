//! `rlhf data …` on bad input: nothing kept is an error, outputs never clobber inputs or
//! existing files without `--force`, stale temporary files are cleaned, and every error is
//! one line that says each thing once and names the file.

use std::path::Path;
use std::process::Output;

use crate::rlhf;

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
