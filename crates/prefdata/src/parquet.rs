//! Streaming Parquet writer and reader for comparison rows (zstd, atomic writes).

use std::fs::File;
use std::path::{Path, PathBuf};

use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use ::parquet::schema::types::ColumnPath;
use arrow::record_batch::RecordBatch;
use rlhf_util::AtomicFile;
use serde::{Deserialize, Serialize};

use crate::columns::{ComparisonBatchBuilder, comparisons_from_batch};
use crate::error::{Error, Result};
use crate::schema::{Comparison, check_schema, col, comparison_schema};
use crate::sink::ComparisonSink;

/// Settings of [`ComparisonWriter`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriterOptions {
    /// Rows per Parquet row group. Default 65,536.
    pub row_group_size: usize,
    /// Rows per in-memory record batch handed to the Parquet encoder. Default 8,192.
    pub batch_size: usize,
    /// A batch is also flushed once it holds this many bytes of text. Default 64 MiB.
    pub max_batch_bytes: usize,
    /// zstd level, 1..=22. Default 3.
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_size: 65_536,
            batch_size: 8_192,
            max_batch_bytes: 64 << 20,
            zstd_level: 3,
        }
    }
}

impl WriterOptions {
    /// Checks that every value is in range.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.row_group_size == 0 || self.batch_size == 0 || self.max_batch_bytes == 0 {
            return Err(Error::InvalidConfig(
                "row_group_size, batch_size and max_batch_bytes must be > 0".into(),
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(Error::InvalidConfig(format!(
                "zstd_level must be in 1..=22, got {}",
                self.zstd_level
            )));
        }
        Ok(())
    }

    fn properties(&self) -> Result<WriterProperties> {
        let mut b = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_max_row_group_row_count(Some(self.row_group_size))
            .set_created_by(concat!("rlhf-prefdata ", env!("CARGO_PKG_VERSION")).to_owned());
        // Long free text is almost never repeated: a dictionary only costs time, and min/max
        // statistics of whole replies are useless.
        for name in [col::ID, col::PROMPT, col::CHOSEN, col::REJECTED] {
            b = b
                .set_column_dictionary_enabled(ColumnPath::from(name), false)
                .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
        }
        Ok(b.build())
    }
}

/// What a finished [`ComparisonWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSummary {
    /// Final path of the file.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// Row groups written.
    pub row_groups: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Writes comparisons to a Parquet file, one row at a time, with bounded memory.
///
/// Rows go into a [`ComparisonBatchBuilder`]; full batches go to the Parquet encoder, which
/// flushes a row group every [`WriterOptions::row_group_size`] rows. The data goes to a
/// temporary file in the destination directory, which [`finish`](Self::finish) renames over
/// the destination, so readers never see a half-written file. Dropping the writer without
/// calling `finish` deletes the temporary file and leaves the destination untouched.
///
/// The file is written through [`rlhf_util::AtomicFile`]: missing parent directories are
/// created, a new file gets mode 0644 and a file it replaces keeps its mode; the temporary file
/// is `.<name>.tmp.<pid>.<n>`, and such files left by a process that was killed are removed
/// (with a warning) when this process first writes into the same directory.
pub struct ComparisonWriter {
    path: PathBuf,
    options: WriterOptions,
    builder: ComparisonBatchBuilder,
    writer: ArrowWriter<AtomicFile>,
    rows: u64,
}

impl std::fmt::Debug for ComparisonWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComparisonWriter")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ComparisonWriter {
    /// Starts writing to `path` with default options.
    ///
    /// # Errors
    /// See [`create_with`](Self::create_with).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(path, WriterOptions::default())
    }

    /// Starts writing to `path`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad options; [`Error::Io`] if the temporary file cannot be
    /// created next to `path`; [`Error::Output`] if `path` names no file; [`Error::Parquet`] if
    /// the encoder cannot start.
    pub fn create_with(path: impl AsRef<Path>, options: WriterOptions) -> Result<Self> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let file = AtomicFile::create(&path)?;
        tracing::debug!(path = %path.display(), tmp = %file.temp_path().display(), "parquet writer started");
        let writer = ArrowWriter::try_new(file, comparison_schema(), Some(options.properties()?))?;
        Ok(Self {
            path,
            options,
            builder: ComparisonBatchBuilder::new(),
            writer,
            rows: 0,
        })
    }

    /// Rows written so far (including rows still buffered).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one comparison.
    ///
    /// # Errors
    /// [`Error::Arrow`] / [`Error::Parquet`] if encoding a full batch fails.
    pub fn write(&mut self, c: &Comparison) -> Result<()> {
        self.builder.push(c);
        self.rows += 1;
        if self.builder.len() >= self.options.batch_size
            || self.builder.pending_bytes() >= self.options.max_batch_bytes
        {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Appends a record batch of [`comparison_schema`] as is.
    ///
    /// # Errors
    /// [`Error::Schema`] if the batch schema differs; encoder errors otherwise.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != comparison_schema().fields() {
            check_schema(batch.schema_ref())?;
            return Err(Error::Schema(
                "batch schema differs from comparison_schema() (nullability or order)".into(),
            ));
        }
        self.flush_batch()?;
        self.writer
            .write(&batch.clone().with_schema(comparison_schema())?)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if !self.builder.is_empty() {
            let batch = self.builder.finish()?;
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    /// Flushes everything, syncs the file and renames it to its destination.
    ///
    /// # Errors
    /// Encoder errors, or [`Error::Io`] if syncing or renaming fails.
    pub fn finish(mut self) -> Result<WriteSummary> {
        self.flush_batch()?;
        let row_groups = self.writer.flushed_row_groups().len()
            + usize::from(self.writer.in_progress_rows() > 0);
        self.writer.into_inner()?.commit()?;
        let bytes = std::fs::metadata(&self.path)
            .map_err(|e| Error::io(&self.path, e))?
            .len();
        tracing::info!(path = %self.path.display(), rows = self.rows, row_groups, bytes, "parquet written");
        Ok(WriteSummary {
            path: self.path,
            rows: self.rows,
            row_groups,
            bytes,
        })
    }
}

impl ComparisonSink for ComparisonWriter {
    fn accept(&mut self, c: Comparison) -> Result<()> {
        self.write(&c)
    }
}

/// Writes all `rows` to `path` (atomically) with `options`.
///
/// # Errors
/// See [`ComparisonWriter`].
pub fn write_comparisons<'a>(
    path: impl AsRef<Path>,
    rows: impl IntoIterator<Item = &'a Comparison>,
    options: WriterOptions,
) -> Result<WriteSummary> {
    let mut w = ComparisonWriter::create_with(path, options)?;
    for c in rows {
        w.write(c)?;
    }
    w.finish()
}

/// Streams record batches of [`comparison_schema`] out of a Parquet file.
///
/// Iterate it for [`RecordBatch`]es, or call [`comparisons`](Self::comparisons) for decoded
/// rows. Only one batch is decoded at a time.
pub struct ComparisonReader {
    inner: ParquetRecordBatchReader,
    path: PathBuf,
    rows: u64,
}

impl std::fmt::Debug for ComparisonReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComparisonReader")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ComparisonReader {
    /// Opens `path` with batches of 8,192 rows.
    ///
    /// # Errors
    /// See [`open_with_batch_size`](Self::open_with_batch_size).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_batch_size(path, 8_192)
    }

    /// Opens `path`, decoding `batch_size` rows at a time.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened; [`Error::ParquetFile`] naming the file,
    /// around [`Error::Parquet`] if it is not Parquet or [`Error::Schema`] if it lacks a
    /// comparison column.
    pub fn open_with_batch_size(path: impl AsRef<Path>, batch_size: usize) -> Result<Self> {
        let path = path.as_ref();
        let in_file = |e: Error| Error::parquet_file(path, e);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| in_file(e.into()))?;
        check_schema(builder.schema()).map_err(in_file)?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let inner = builder
            .with_batch_size(batch_size.max(1))
            .build()
            .map_err(|e| in_file(e.into()))?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            rows,
        })
    }

    /// Total rows in the file (from its footer).
    pub fn num_rows(&self) -> u64 {
        self.rows
    }

    /// Turns the reader into an iterator of decoded comparisons.
    pub fn comparisons(self) -> ComparisonIter {
        ComparisonIter {
            reader: self,
            buffer: Vec::new().into_iter(),
        }
    }
}

impl Iterator for ComparisonReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            let batch = r.map_err(|e| Error::parquet_file(&self.path, e))?;
            // The decoded batches lose the schema metadata; give them back the canonical schema
            // when the columns are exactly ours.
            if batch.schema().fields() == comparison_schema().fields() {
                batch
                    .with_schema(comparison_schema())
                    .map_err(|e| Error::parquet_file(&self.path, e))
            } else {
                Ok(batch)
            }
        })
    }
}

/// Iterator over the comparisons of a Parquet file, decoded one batch at a time.
#[derive(Debug)]
pub struct ComparisonIter {
    reader: ComparisonReader,
    buffer: std::vec::IntoIter<Comparison>,
}

impl Iterator for ComparisonIter {
    type Item = Result<Comparison>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(c) = self.buffer.next() {
                return Some(Ok(c));
            }
            match self.reader.next()? {
                Ok(batch) => match comparisons_from_batch(&batch) {
                    Ok(rows) => self.buffer = rows.into_iter(),
                    Err(e) => return Some(Err(Error::parquet_file(&self.reader.path, e))),
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Reads every comparison of `path` into memory.
///
/// # Errors
/// See [`ComparisonReader::open`].
pub fn read_comparisons(path: impl AsRef<Path>) -> Result<Vec<Comparison>> {
    ComparisonReader::open(path)?.comparisons().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Message, Role};

    fn rows(n: usize) -> Vec<Comparison> {
        (0..n)
            .map(|i| {
                let mut c =
                    Comparison::new(format!("t:{i}"), "test", format!("prompt {i}"), "yes", "no");
                if i % 3 == 0 {
                    c.history = vec![
                        Message::new(Role::User, format!("hi {i}")),
                        Message::new(Role::Assistant, "hello"),
                    ];
                }
                c.margin = (i % 2 == 0).then_some(i as f32);
                c
            })
            .collect()
    }

    #[test]
    fn write_then_read_is_identity_across_batches_and_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let data = rows(1000);
        let opts = WriterOptions {
            row_group_size: 300,
            batch_size: 128,
            ..WriterOptions::default()
        };
        let summary = write_comparisons(&path, &data, opts).unwrap();
        assert_eq!(summary.rows, 1000);
        assert_eq!(summary.row_groups, 4);
        let reader = ComparisonReader::open_with_batch_size(&path, 77).unwrap();
        assert_eq!(reader.num_rows(), 1000);
        let back: Vec<_> = reader.comparisons().collect::<Result<_>>().unwrap();
        assert_eq!(back, data);
        // Nothing but the final file is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn whole_batches_can_be_written_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let data = rows(10);
        let mut w = ComparisonWriter::create(&path).unwrap();
        w.write(&data[0]).unwrap();
        w.write_batch(&crate::columns::comparisons_to_batch(&data[1..]).unwrap())
            .unwrap();
        let other = RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int8, true),
            ])),
            vec![std::sync::Arc::new(arrow::array::Int8Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(w.write_batch(&other), Err(Error::Schema(_))));
        assert_eq!(w.rows(), 10);
        w.finish().unwrap();
        assert_eq!(read_comparisons(&path).unwrap(), data);
    }

    #[test]
    fn dropped_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        {
            let mut w = ComparisonWriter::create(&path).unwrap();
            w.write(&rows(1)[0]).unwrap();
        }
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn finish_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, b"old").unwrap();
        write_comparisons(&path, &rows(3), WriterOptions::default()).unwrap();
        assert_eq!(read_comparisons(&path).unwrap().len(), 3);
    }

    #[test]
    fn zstd_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        write_comparisons(&path, &rows(10), WriterOptions::default()).unwrap();
        let reader =
            ::parquet::file::reader::SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        use ::parquet::file::reader::FileReader;
        let col = reader.metadata().row_group(0).column(0).compression();
        assert!(matches!(col, Compression::ZSTD(_)), "{col:?}");
    }

    #[test]
    fn options_are_validated() {
        let bad = WriterOptions {
            zstd_level: 0,
            ..WriterOptions::default()
        };
        assert!(bad.validate().is_err());
        let bad = WriterOptions {
            batch_size: 0,
            ..WriterOptions::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn reading_a_non_parquet_file_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, b"definitely not parquet").unwrap();
        let err = ComparisonReader::open(&path).unwrap_err();
        match &err {
            Error::ParquetFile { path: p, source } => {
                assert_eq!(p, &path);
                assert!(matches!(**source, Error::Parquet(_)), "{source:?}");
            }
            other => panic!("expected ParquetFile, got {other:?}"),
        }
        // The message names the file.
        assert!(err.to_string().contains("x.parquet"), "{err}");
    }
}
