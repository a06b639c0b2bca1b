//! Reads an input file record by record: JSON Lines or one JSON array, plain or gzip.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use crate::error::{Error, Result};
use crate::report::DropReason;

const BUF: usize = 1 << 16;

/// A record that could not be read or parsed.
#[derive(Debug)]
pub(crate) struct RecordError {
    pub(crate) reason: DropReason,
    pub(crate) message: String,
}

impl RecordError {
    pub(crate) fn new(reason: DropReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Outcome of reading one record: its text, or why it is unusable.
pub(crate) type Record<'a> = std::result::Result<&'a str, RecordError>;

/// Calls `f(line, record)` for every record of `path`, in order, where `line` is the 1-based
/// line where the record starts.
///
/// - gzip is detected from the magic bytes, not the file name; concatenated members are read.
/// - If the first non-blank byte is `[`, the file is one JSON array and each element is a
///   record (found by a streaming bracket scanner, so the array is never held in memory);
///   otherwise every non-blank line is a record.
/// - A truncated or corrupt gzip stream yields one `TruncatedGzip` / `CorruptGzip` record
///   and ends the file (nothing after the damage can be recovered).
///
/// Stops at, and returns, the first error `f` returns.
pub(crate) fn for_each_record(
    path: &Path,
    mut f: impl FnMut(u64, Record<'_>) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = BufReader::with_capacity(BUF, file);
    let head = raw.fill_buf().map_err(|e| Error::io(path, e))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let classify = |e: io::Error| -> Result<RecordError> {
        if !gz {
            return Err(Error::io(path, e));
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(RecordError::new(
                DropReason::TruncatedGzip,
                format!("gzip stream ends early ({e}); the rest of the file is lost"),
            )),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
                Ok(RecordError::new(
                    DropReason::CorruptGzip,
                    format!("corrupt gzip stream ({e}); the rest of the file is lost"),
                ))
            }
            _ => Err(Error::io(path, e)),
        }
    };

    // Skip a BOM and leading blank lines, then look at the first byte.
    let mut line = 1u64;
    let first = loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) => return f(line, Err(classify(e)?)),
        };
        let Some(&b) = buf.first() else {
            return Ok(()); // empty file
        };
        if buf.starts_with(b"\xef\xbb\xbf") {
            reader.consume(3);
        } else if b.is_ascii_whitespace() {
            if b == b'\n' {
                line += 1;
            }
            reader.consume(1);
        } else {
            break b;
        }
    };
    if first == b'[' {
        reader.consume(1);
        scan_array(&mut *reader, line, &classify, &mut f)
    } else {
        read_lines(&mut *reader, line - 1, &classify, &mut f)
    }
}

fn trim_ascii_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn emit(line: u64, bytes: &[u8], f: &mut impl FnMut(u64, Record<'_>) -> Result<()>) -> Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(s) => f(line, Ok(s)),
        Err(e) => f(
            line,
            Err(RecordError::new(
                DropReason::InvalidUtf8,
                format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()),
            )),
        ),
    }
}

fn read_lines(
    reader: &mut dyn BufRead,
    mut line: u64,
    classify: &impl Fn(io::Error) -> Result<RecordError>,
    f: &mut impl FnMut(u64, Record<'_>) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                line += 1;
                let bytes = trim_ascii_end(&buf);
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                emit(line, bytes, f)?;
            }
            Err(e) => return f(line + 1, Err(classify(e)?)),
        }
    }
}

/// Streams the elements of a JSON array whose `[` has been consumed. `line` is the line of `[`.
fn scan_array(
    reader: &mut dyn BufRead,
    mut line: u64,
    classify: &impl Fn(io::Error) -> Result<RecordError>,
    f: &mut impl FnMut(u64, Record<'_>) -> Result<()>,
) -> Result<()> {
    let mut elem: Vec<u8> = Vec::new();
    let mut in_elem = false;
    let mut elem_line = line;
    let mut depth = 1usize;
    let mut in_str = false;
    let mut esc = false;
    let mut ended = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) => {
                let at = if in_elem { elem_line } else { line };
                return f(at, Err(classify(e)?));
            }
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        for &b in chunk {
            if b == b'\n' {
                line += 1;
            }
            if ended {
                if !b.is_ascii_whitespace() {
                    return f(
                        line,
                        Err(RecordError::new(
                            DropReason::InvalidJson,
                            "trailing data after the closing ] of the JSON array",
                        )),
                    );
                }
                continue;
            }
            if in_str {
                elem.push(b);
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            let start = |in_elem: &mut bool, elem_line: &mut u64| {
                if !*in_elem {
                    *in_elem = true;
                    *elem_line = line;
                }
            };
            match b {
                b'"' => {
                    start(&mut in_elem, &mut elem_line);
                    in_str = true;
                    elem.push(b);
                }
                b'{' | b'[' => {
                    start(&mut in_elem, &mut elem_line);
                    depth += 1;
                    elem.push(b);
                }
                b'}' | b']' if depth > 1 => {
                    depth -= 1;
                    elem.push(b);
                }
                b',' | b']' if depth == 1 => {
                    if in_elem {
                        emit(elem_line, trim_ascii_end(&elem), f)?;
                        elem.clear();
                        in_elem = false;
                    } else if b == b',' {
                        f(
                            line,
                            Err(RecordError::new(
                                DropReason::InvalidJson,
                                "empty array element",
                            )),
                        )?;
                    }
                    ended = b == b']';
                }
                _ if !in_elem && b.is_ascii_whitespace() => {}
                _ => {
                    start(&mut in_elem, &mut elem_line);
                    elem.push(b);
                }
            }
        }
        reader.consume(n);
    }
    if !ended {
        let (at, what) = if in_elem {
            (
                elem_line,
                "file ends inside this array element (truncated?)",
            )
        } else {
            (line, "file ends before the closing ] of the JSON array")
        };
        f(at, Err(RecordError::new(DropReason::InvalidJson, what)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(bytes: &[u8]) -> Vec<(u64, std::result::Result<String, DropReason>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        for_each_record(&path, |line, r| {
            out.push((line, r.map(str::to_owned).map_err(|e| e.reason)));
            Ok(())
        })
        .unwrap();
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn json_lines_with_blank_lines_crlf_and_no_final_newline() {
        let got = collect(b"{\"a\":1}\r\n\n  \n{\"a\":2}\n{\"a\":3}");
        assert_eq!(
            got,
            vec![
                (1, Ok("{\"a\":1}".into())),
                (4, Ok("{\"a\":2}".into())),
                (5, Ok("{\"a\":3}".into()))
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_line() {
        let got = collect(b"{\"a\":1}\n{\"a\":\"\xff\"}\n{\"a\":3}\n");
        assert_eq!(got[1], (2, Err(DropReason::InvalidUtf8)));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn gzip_is_detected_by_magic_and_truncation_is_reported() {
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!(
                "{{\"i\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat(i % 50)
            ));
        }
        let full = gz(text.as_bytes());
        assert_eq!(collect(&full).len(), 2000);
        let cut = &full[..full.len() / 2];
        let got = collect(cut);
        let (last_line, last) = got.last().unwrap();
        assert_eq!(*last, Err(DropReason::TruncatedGzip));
        assert_eq!(*last_line as usize, got.len());
        assert!(got[..got.len() - 1].iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn json_array_elements_with_lines() {
        let text =
            b"\xef\xbb\xbf\n[\n  {\"a\": \"x, ] }\\\"\"},\n  {\"b\": [1, 2]}\n , 3, \"s\"\n]\n";
        let got = collect(text);
        assert_eq!(
            got,
            vec![
                (3, Ok("{\"a\": \"x, ] }\\\"\"}".into())),
                (4, Ok("{\"b\": [1, 2]}".into())),
                (5, Ok("3".into())),
                (5, Ok("\"s\"".into())),
            ]
        );
    }

    #[test]
    fn truncated_json_array_is_reported() {
        let got = collect(b"[{\"a\":1},\n{\"a\":");
        assert_eq!(got[0], (1, Ok("{\"a\":1}".into())));
        assert_eq!(got[1], (2, Err(DropReason::InvalidJson)));
        let got = collect(b"[{\"a\":1}, ");
        assert_eq!(got[1].1, Err(DropReason::InvalidJson));
        let got = collect(b"[{\"a\":1}] x");
        assert_eq!(got[1].1, Err(DropReason::InvalidJson));
    }

    #[test]
    fn empty_inputs_yield_nothing() {
        assert!(collect(b"").is_empty());
        assert!(collect(b"\n\n").is_empty());
        assert!(collect(b"[]").is_empty());
        assert!(collect(&gz(b"")).is_empty());
    }
}
