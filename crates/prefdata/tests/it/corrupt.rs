//! Damaged inputs: every bad record is reported with its file and line, or fails strict mode.

use std::io::Write;
use std::path::Path;

use rlhf_prefdata::{
    Comparison, DropReason, Error, ImportOptions, RankedPairs, import_hh_rlhf, import_oasst,
    import_trl,
};

use crate::data_dir;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn hh_line(i: usize) -> String {
    format!(
        "{{\"chosen\": \"\\n\\nHuman: question {i}?\\n\\nAssistant: good answer {i}\", \"rejected\": \"\\n\\nHuman: question {i}?\\n\\nAssistant: bad answer {i}\"}}\n"
    )
}

fn mixed_trl() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"{\"prompt\": \"p1\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
    b.extend_from_slice(b"{\"prompt\": \"p2\", \"chosen\": \"a\", \n"); // invalid JSON
    b.extend_from_slice(b"{\"prompt\": \"p3\", \"chosen\": \"a\"}\n"); // missing field
    b.extend_from_slice(b"{\"prompt\": \"p4 \xff\xfe\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"); // bad UTF-8
    b.extend_from_slice(b"\n");
    b.extend_from_slice(b"{\"prompt\": \"p6\", \"chosen\": \"same\", \"rejected\": \" same\"}\n"); // tie
    b.extend_from_slice(b"{\"prompt\": \"p7\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.jsonl", &mixed_trl());
    let mut rows: Vec<Comparison> = Vec::new();
    let report = import_trl(&path, &ImportOptions::default(), &mut rows).unwrap();
    assert_eq!(
        rows.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["trl:1", "trl:7"]
    );
    assert_eq!(report.records, 6);
    assert_eq!(report.kept, 2);
    let located: Vec<(u64, DropReason)> =
        report.issues.iter().map(|i| (i.line, i.reason)).collect();
    assert_eq!(
        located,
        [
            (2, DropReason::InvalidJson),
            (3, DropReason::MissingField),
            (4, DropReason::InvalidUtf8),
            (6, DropReason::Tie),
        ]
    );
    assert!(
        report
            .issues
            .iter()
            .all(|i| i.file == path.display().to_string())
    );
    assert!(
        report.issues[1].message.contains("rejected"),
        "{}",
        report.issues[1].message
    );
    let md = report.to_markdown();
    assert!(
        md.contains(&format!("`{}:4` invalid_utf8", path.display())),
        "{md}"
    );
    let json = report.to_json().unwrap();
    assert!(json.contains("\"invalid_utf8\": 1"), "{json}");
}

#[test]
fn strict_mode_fails_on_the_first_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.jsonl", &mixed_trl());
    let mut rows: Vec<Comparison> = Vec::new();
    let err = import_trl(&path, &ImportOptions::strict(), &mut rows).unwrap_err();
    match &err {
        Error::BadRecord {
            file, line, reason, ..
        } => {
            assert_eq!(file, &path);
            assert_eq!(*line, 2);
            assert_eq!(*reason, DropReason::InvalidJson);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        err.to_string().contains("mixed.jsonl:2: invalid_json"),
        "{err}"
    );
    assert_eq!(rows.len(), 1, "records before the bad line were delivered");

    // Missing field and bad UTF-8 in strict mode, one at a time.
    let p = write(
        dir.path(),
        "missing.jsonl",
        b"{\"prompt\": \"p\", \"rejected\": \"b\"}\n",
    );
    let err = import_trl(&p, &ImportOptions::strict(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadRecord {
                line: 1,
                reason: DropReason::MissingField,
                ..
            }
        ),
        "{err}"
    );
    let p = write(
        dir.path(),
        "utf8.jsonl",
        b"\n\n{\"prompt\": \"\xc3\x28\"}\n",
    );
    let err = import_trl(&p, &ImportOptions::strict(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadRecord {
                line: 3,
                reason: DropReason::InvalidUtf8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_gzip_is_reported_after_the_last_complete_line() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (1..=3000).map(hh_line).collect();
    let full = gzip(text.as_bytes());
    let path = write(dir.path(), "hh.jsonl.gz", &full);
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&path, &ImportOptions::default(), &mut rows).unwrap();
    assert_eq!(report.kept, 3000);

    let cut = write(dir.path(), "cut.jsonl.gz", &full[..full.len() * 2 / 3]);
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&cut, &ImportOptions::default(), &mut rows).unwrap();
    assert!(!rows.is_empty() && rows.len() < 3000);
    assert_eq!(report.dropped_for(DropReason::TruncatedGzip), 1);
    let issue = report.issues.last().unwrap();
    assert_eq!(issue.reason, DropReason::TruncatedGzip);
    assert_eq!(issue.line, rows.len() as u64 + 1);
    assert_eq!(rows.last().unwrap().id, format!("hh-rlhf:{}", rows.len()));

    let err = import_hh_rlhf(&cut, &ImportOptions::strict(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadRecord {
                reason: DropReason::TruncatedGzip,
                ..
            }
        ),
        "{err}"
    );

    // Only the header survives.
    let stub = write(dir.path(), "stub.jsonl.gz", &full[..12]);
    let report = import_hh_rlhf(&stub, &ImportOptions::default(), &mut Vec::new()).unwrap();
    assert_eq!(report.kept, 0);
    assert_eq!(report.issues[0].line, 1);
    assert!(matches!(
        report.issues[0].reason,
        DropReason::TruncatedGzip | DropReason::CorruptGzip
    ));
}

#[test]
fn corrupt_gzip_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (1..=3000).map(hh_line).collect();
    let mut bytes = gzip(text.as_bytes());
    let n = bytes.len();
    // Damage the stored CRC32 of the trailer: the data decodes but fails its checksum.
    bytes[n - 6] ^= 0xff;
    let path = write(dir.path(), "crc.jsonl.gz", &bytes);
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&path, &ImportOptions::default(), &mut rows).unwrap();
    assert_eq!(report.dropped_for(DropReason::CorruptGzip), 1, "{report:?}");
    assert_eq!(report.issues[0].line, rows.len() as u64 + 1);
}

#[test]
fn truncated_real_hh_file_is_reported() {
    let Some(data) = data_dir() else { return };
    let full = std::fs::read(data.join("hh-rlhf-harmless/pairs.jsonl.gz")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = write(dir.path(), "pairs.jsonl.gz", &full[..full.len() / 2]);
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&cut, &ImportOptions::default(), &mut rows).unwrap();
    assert!(rows.len() > 500 && rows.len() < 1800, "{}", rows.len());
    assert_eq!(report.records, rows.len() as u64 + 1);
    assert_eq!(
        report.issues.last().unwrap().reason,
        DropReason::TruncatedGzip
    );
    assert_eq!(report.issues.last().unwrap().line, rows.len() as u64 + 1);
}

#[test]
fn broken_hh_dialogue_and_oasst_array_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = hh_line(1);
    text.push_str("{\"chosen\": \"no markers here\", \"rejected\": \"none either\"}\n");
    text.push_str(&hh_line(3));
    let p = write(dir.path(), "hh.jsonl", text.as_bytes());
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&p, &ImportOptions::default(), &mut rows).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(report.issues[0].line, 2);
    assert_eq!(report.issues[0].reason, DropReason::MalformedDialogue);

    // A JSON array cut in the middle of its third element.
    let arr = "[\n {\"instruction\": \"a\", \"output\": [\"x\", \"y\"]},\n {\"instruction\": \"b\", \"output\": [\"x\", \"z\"]},\n {\"instruction\": \"c\", \"out";
    let p = write(dir.path(), "o.json", arr.as_bytes());
    let mut rows = Vec::new();
    let report = import_oasst(
        &p,
        &ImportOptions::default(),
        RankedPairs::TopTwo,
        &mut rows,
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(report.issues[0].line, 4);
    assert_eq!(report.issues[0].reason, DropReason::InvalidJson);
}

#[test]
fn missing_file_is_an_io_error_even_when_lenient() {
    let err = import_trl(
        "/nonexistent/x.jsonl",
        &ImportOptions::default(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
