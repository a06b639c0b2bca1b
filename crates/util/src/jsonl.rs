//! JSON-lines files: one JSON value per line, `\n`-terminated.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::fs::write_atomic;

/// `rows` as JSON lines in memory (each line `\n`-terminated).
///
/// # Errors
/// serde_json's error when a row cannot be serialised (for example a map with non-string keys).
pub fn to_jsonl<T: Serialize>(rows: impl IntoIterator<Item = T>) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut out, &row)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Appends `entry` to `path` as one line (created if missing; its directory must exist). The
/// line goes out in a single `write`; it is not fsynced, so this suits metrics logs, not
/// journals that must survive a power loss.
///
/// # Errors
/// [`Error::Serialize`] or [`Error::Io`], naming the file.
pub fn append_jsonl<T: Serialize + ?Sized>(path: &Path, entry: &T) -> Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(|source| Error::Serialize {
        path: path.to_owned(),
        source,
    })?;
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(|e| Error::io(path, e))
}

/// Replaces `path` with exactly `rows`, one JSON line each, atomically ([`write_atomic`]).
///
/// # Errors
/// [`Error::Serialize`] (nothing is written then) or as [`write_atomic`].
pub fn write_jsonl<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let bytes = to_jsonl(rows).map_err(|source| Error::Serialize {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Reads a JSON-lines file of `T`, in file order. Blank (whitespace-only) lines and a leading
/// byte-order mark are skipped.
///
/// # Errors
/// [`Error::Io`] naming the file; [`Error::JsonLine`] naming the file and the 1-based line of
/// the first record that does not parse as `T` (or is not UTF-8).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = serde_json::from_slice(line).map_err(|source| Error::JsonLine {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        step: u32,
        loss: f64,
    }

    fn row(step: u32) -> Row {
        Row {
            step,
            loss: 1.0 / f64::from(step + 1),
        }
    }

    #[test]
    fn write_append_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/m.jsonl");
        write_jsonl(&path, [row(0), row(1)]).unwrap();
        append_jsonl(&path, &row(2)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":0,\"loss\":1.0}\n{\"step\":1,\"loss\":0.5}\n\
             {\"step\":2,\"loss\":0.3333333333333333}\n"
        );
        assert_eq!(
            read_jsonl::<Row>(&path).unwrap(),
            vec![row(0), row(1), row(2)]
        );
        // Rewriting replaces everything; a slice of references works too.
        let rows = vec![row(7)];
        write_jsonl(&path, &rows).unwrap();
        assert_eq!(read_jsonl::<Row>(&path).unwrap(), rows);
        write_jsonl(&path, Vec::<Row>::new()).unwrap();
        assert!(read_jsonl::<Row>(&path).unwrap().is_empty());
    }

    #[test]
    fn append_creates_the_file_but_not_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.jsonl");
        append_jsonl(&path, &row(0)).unwrap();
        assert_eq!(read_jsonl::<Row>(&path).unwrap(), vec![row(0)]);
        let missing = dir.path().join("no/such.jsonl");
        let e = append_jsonl(&missing, &row(0)).unwrap_err();
        assert!(
            matches!(&e, Error::Io { path, .. } if path == &missing),
            "{e}"
        );
    }

    #[test]
    fn blank_lines_crlf_and_a_bom_are_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(
            &path,
            "\u{feff}{\"step\":1,\"loss\":0.5}\r\n\n   \n{\"step\":2,\"loss\":0.25}",
        )
        .unwrap();
        let rows: Vec<Row> = read_jsonl(&path).unwrap();
        assert_eq!(rows.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(
            &path,
            "{\"step\":1,\"loss\":0.5}\n\n{\"step\":\"two\",\"loss\":0.5}\n",
        )
        .unwrap();
        let e = read_jsonl::<Row>(&path).unwrap_err();
        assert!(matches!(e, Error::JsonLine { line: 3, .. }), "{e}");
        let msg = e.to_string();
        let shown = format!("{}:3: invalid JSON line: ", path.display());
        assert!(msg.starts_with(&shown), "{msg}");
        assert_eq!(msg.matches(&path.display().to_string()).count(), 1, "{msg}");
        // Invalid UTF-8 is a bad line too, not a panic.
        std::fs::write(&path, b"{\"step\":1,\"loss\":0.5}\n\xff\n").unwrap();
        let e = read_jsonl::<Row>(&path).unwrap_err();
        assert!(matches!(e, Error::JsonLine { line: 2, .. }), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.jsonl");
        let e = read_jsonl::<Row>(&path).unwrap_err();
        assert!(matches!(&e, Error::Io { path: p, .. } if p == &path), "{e}");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn an_unserialisable_row_writes_nothing() {
        use std::collections::HashMap;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        write_jsonl(&path, [row(1)]).unwrap();
        let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        let e = write_jsonl(&path, [&bad]).unwrap_err();
        assert!(matches!(e, Error::Serialize { .. }), "{e}");
        assert!(matches!(
            append_jsonl(&path, &bad),
            Err(Error::Serialize { .. })
        ));
        assert_eq!(read_jsonl::<Row>(&path).unwrap(), vec![row(1)]);
        assert!(to_jsonl([&bad]).is_err());
    }
}
