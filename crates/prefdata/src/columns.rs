//! Conversion between [`Comparison`] values and Arrow record batches of [`comparison_schema`].

use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, Float32Array, Float32Builder, Int8Array, Int8Builder, ListArray,
    StringArray, StringBuilder, StructArray, UInt32Array, UInt32Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Fields};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::schema::{
    Comparison, CriterionLabel, Message, annotator_item_field, check_schema, col,
    comparison_schema, history_item_field,
};

/// Accumulates comparisons column by column and emits them as one [`RecordBatch`].
///
/// The builder owns only the rows appended since the last [`finish`](Self::finish), so a writer
/// can stream any number of rows through it with bounded memory.
#[derive(Debug)]
pub struct ComparisonBatchBuilder {
    id: StringBuilder,
    source: StringBuilder,
    language: StringBuilder,
    category: StringBuilder,
    hist_offsets: Vec<i32>,
    hist_role: StringBuilder,
    hist_content: StringBuilder,
    prompt: StringBuilder,
    chosen: StringBuilder,
    rejected: StringBuilder,
    helpfulness: Int8Builder,
    harmlessness: Int8Builder,
    fluency: Int8Builder,
    ann_offsets: Vec<i32>,
    ann_values: StringBuilder,
    prompt_quality: StringBuilder,
    margin: Float32Builder,
    split: StringBuilder,
    prompt_tokens: UInt32Builder,
    chosen_tokens: UInt32Builder,
    rejected_tokens: UInt32Builder,
    history_tokens: UInt32Builder,
    rows: usize,
    bytes: usize,
}

impl Default for ComparisonBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn offset(n: usize) -> i32 {
    // A batch is flushed long before 2 GiB of text (see `WriterOptions::max_batch_bytes`);
    // passing that limit is a broken contract, not a data error.
    i32::try_from(n).expect("record batch exceeds i32 offsets; flush batches earlier")
}

impl ComparisonBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            id: StringBuilder::new(),
            source: StringBuilder::new(),
            language: StringBuilder::new(),
            category: StringBuilder::new(),
            hist_offsets: vec![0],
            hist_role: StringBuilder::new(),
            hist_content: StringBuilder::new(),
            prompt: StringBuilder::new(),
            chosen: StringBuilder::new(),
            rejected: StringBuilder::new(),
            helpfulness: Int8Builder::new(),
            harmlessness: Int8Builder::new(),
            fluency: Int8Builder::new(),
            ann_offsets: vec![0],
            ann_values: StringBuilder::new(),
            prompt_quality: StringBuilder::new(),
            margin: Float32Builder::new(),
            split: StringBuilder::new(),
            prompt_tokens: UInt32Builder::new(),
            chosen_tokens: UInt32Builder::new(),
            rejected_tokens: UInt32Builder::new(),
            history_tokens: UInt32Builder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// `true` when no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes of text pending (used to bound batch size).
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one row.
    pub fn push(&mut self, c: &Comparison) {
        self.id.append_value(&c.id);
        self.source.append_value(&c.source);
        self.language.append_option(c.language.as_deref());
        self.category.append_option(c.category.as_deref());
        let mut text = c.id.len() + c.prompt.len() + c.chosen.len() + c.rejected.len();
        for m in &c.history {
            self.hist_role.append_value(m.role.as_str());
            self.hist_content.append_value(&m.content);
            text += m.content.len();
        }
        self.hist_offsets.push(offset(self.hist_role.len()));
        self.prompt.append_value(&c.prompt);
        self.chosen.append_value(&c.chosen);
        self.rejected.append_value(&c.rejected);
        self.helpfulness
            .append_option(c.helpfulness.map(CriterionLabel::to_i8));
        self.harmlessness
            .append_option(c.harmlessness.map(CriterionLabel::to_i8));
        self.fluency
            .append_option(c.fluency.map(CriterionLabel::to_i8));
        for a in &c.annotators {
            self.ann_values.append_value(a);
        }
        self.ann_offsets.push(offset(self.ann_values.len()));
        self.prompt_quality
            .append_option(c.prompt_quality.map(|q| q.as_str()));
        self.margin.append_option(c.margin);
        self.split.append_option(c.split.map(|s| s.as_str()));
        self.prompt_tokens.append_option(c.prompt_tokens);
        self.chosen_tokens.append_option(c.chosen_tokens);
        self.rejected_tokens.append_option(c.rejected_tokens);
        self.history_tokens.append_option(c.history_tokens);
        self.rows += 1;
        self.bytes += text;
    }

    /// Emits the pending rows as a batch of [`comparison_schema`] and resets the builder.
    ///
    /// # Errors
    /// [`Error::Arrow`] if Arrow rejects the columns (a bug: the builder mirrors the schema).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let history = {
            let offsets = std::mem::replace(&mut self.hist_offsets, vec![0]);
            let item = history_item_field();
            let DataType::Struct(fields) = item.data_type() else {
                unreachable!("history item is a struct")
            };
            let fields: Fields = fields.clone();
            let values = StructArray::try_new(
                fields,
                vec![
                    Arc::new(self.hist_role.finish()) as ArrayRef,
                    Arc::new(self.hist_content.finish()),
                ],
                None,
            )?;
            ListArray::try_new(
                item,
                OffsetBuffer::new(offsets.into()),
                Arc::new(values),
                None,
            )?
        };
        let annotators = {
            let offsets = std::mem::replace(&mut self.ann_offsets, vec![0]);
            ListArray::try_new(
                annotator_item_field(),
                OffsetBuffer::new(offsets.into()),
                Arc::new(self.ann_values.finish()),
                None,
            )?
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.language.finish()),
            Arc::new(self.category.finish()),
            Arc::new(history),
            Arc::new(self.prompt.finish()),
            Arc::new(self.chosen.finish()),
            Arc::new(self.rejected.finish()),
            Arc::new(self.helpfulness.finish()),
            Arc::new(self.harmlessness.finish()),
            Arc::new(self.fluency.finish()),
            Arc::new(annotators),
            Arc::new(self.prompt_quality.finish()),
            Arc::new(self.margin.finish()),
            Arc::new(self.split.finish()),
            Arc::new(self.prompt_tokens.finish()),
            Arc::new(self.chosen_tokens.finish()),
            Arc::new(self.rejected_tokens.finish()),
            Arc::new(self.history_tokens.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(comparison_schema(), columns)?)
    }
}

/// Builds one batch from a slice of comparisons.
///
/// # Errors
/// See [`ComparisonBatchBuilder::finish`].
pub fn comparisons_to_batch(rows: &[Comparison]) -> Result<RecordBatch> {
    let mut b = ComparisonBatchBuilder::new();
    for c in rows {
        b.push(c);
    }
    b.finish()
}

fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Schema(format!("missing column {name:?}")))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| Error::Schema(format!("column {name:?} has an unexpected array type")))
}

fn required<'a>(a: &'a StringArray, name: &str, row: usize) -> Result<&'a str> {
    if a.is_null(row) {
        return Err(Error::Schema(format!(
            "null in non-nullable column {name:?} at row {row}"
        )));
    }
    Ok(a.value(row))
}

fn optional_str(a: &StringArray, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}

fn optional_label(a: &Int8Array, row: usize) -> Result<Option<CriterionLabel>> {
    if a.is_null(row) {
        Ok(None)
    } else {
        CriterionLabel::from_i8(a.value(row)).map(Some)
    }
}

fn optional_u32(a: &UInt32Array, row: usize) -> Option<u32> {
    (!a.is_null(row)).then(|| a.value(row))
}

fn list_strings<'a>(list: &'a ListArray, name: &str) -> Result<&'a StringArray> {
    list.values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Schema(format!("column {name:?}: list items are not strings")))
}

fn struct_child<'a>(s: &'a StructArray, name: &str) -> Result<&'a StringArray> {
    s.column_by_name(name)
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Error::Schema(format!("history item lacks string field {name:?}")))
}

/// Decodes every row of `batch` into a [`Comparison`].
///
/// Columns are looked up by name, so extra columns and a different column order are fine.
///
/// # Errors
/// [`Error::Schema`] when a column is missing, mistyped, or a required value is null.
pub fn comparisons_from_batch(batch: &RecordBatch) -> Result<Vec<Comparison>> {
    check_schema(batch.schema_ref())?;
    let id = column::<StringArray>(batch, col::ID)?;
    let source = column::<StringArray>(batch, col::SOURCE)?;
    let language = column::<StringArray>(batch, col::LANGUAGE)?;
    let category = column::<StringArray>(batch, col::CATEGORY)?;
    let history = column::<ListArray>(batch, col::HISTORY)?;
    let hist_struct = history
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| Error::Schema("history items are not structs".into()))?;
    let hist_role = struct_child(hist_struct, col::ROLE)?;
    let hist_content = struct_child(hist_struct, col::CONTENT)?;
    let prompt = column::<StringArray>(batch, col::PROMPT)?;
    let chosen = column::<StringArray>(batch, col::CHOSEN)?;
    let rejected = column::<StringArray>(batch, col::REJECTED)?;
    let helpfulness = column::<Int8Array>(batch, col::HELPFULNESS)?;
    let harmlessness = column::<Int8Array>(batch, col::HARMLESSNESS)?;
    let fluency = column::<Int8Array>(batch, col::FLUENCY)?;
    let annotators = column::<ListArray>(batch, col::ANNOTATORS)?;
    let ann_values = list_strings(annotators, col::ANNOTATORS)?;
    let prompt_quality = column::<StringArray>(batch, col::PROMPT_QUALITY)?;
    let margin = column::<Float32Array>(batch, col::MARGIN)?;
    let split = column::<StringArray>(batch, col::SPLIT)?;
    let prompt_tokens = column::<UInt32Array>(batch, col::PROMPT_TOKENS)?;
    let chosen_tokens = column::<UInt32Array>(batch, col::CHOSEN_TOKENS)?;
    let rejected_tokens = column::<UInt32Array>(batch, col::REJECTED_TOKENS)?;
    let history_tokens = column::<UInt32Array>(batch, col::HISTORY_TOKENS)?;

    let hist_offsets = history.value_offsets();
    let ann_offsets = annotators.value_offsets();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut hist = Vec::new();
        if !history.is_null(row) {
            for i in hist_offsets[row] as usize..hist_offsets[row + 1] as usize {
                hist.push(Message {
                    role: required(hist_role, "history.role", i)?.parse()?,
                    content: required(hist_content, "history.content", i)?.to_owned(),
                });
            }
        }
        let mut ann = Vec::new();
        if !annotators.is_null(row) {
            for i in ann_offsets[row] as usize..ann_offsets[row + 1] as usize {
                ann.push(required(ann_values, "annotators.item", i)?.to_owned());
            }
        }
        out.push(Comparison {
            id: required(id, col::ID, row)?.to_owned(),
            source: required(source, col::SOURCE, row)?.to_owned(),
            language: optional_str(language, row).map(str::to_owned),
            category: optional_str(category, row).map(str::to_owned),
            history: hist,
            prompt: required(prompt, col::PROMPT, row)?.to_owned(),
            chosen: required(chosen, col::CHOSEN, row)?.to_owned(),
            rejected: required(rejected, col::REJECTED, row)?.to_owned(),
            helpfulness: optional_label(helpfulness, row)?,
            harmlessness: optional_label(harmlessness, row)?,
            fluency: optional_label(fluency, row)?,
            annotators: ann,
            prompt_quality: optional_str(prompt_quality, row)
                .map(str::parse)
                .transpose()?,
            margin: (!margin.is_null(row)).then(|| margin.value(row)),
            split: optional_str(split, row).map(str::parse).transpose()?,
            prompt_tokens: optional_u32(prompt_tokens, row),
            chosen_tokens: optional_u32(chosen_tokens, row),
            rejected_tokens: optional_u32(rejected_tokens, row),
            history_tokens: optional_u32(history_tokens, row),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{PromptQuality, Role, Split};

    fn full_record() -> Comparison {
        Comparison {
            id: "x:1".into(),
            source: "test".into(),
            language: Some("zh".into()),
            category: Some("数学计算".into()),
            history: vec![
                Message::new(Role::System, "你是一个助手"),
                Message::new(Role::User, "1+1?"),
                Message::new(Role::Assistant, "2"),
            ],
            prompt: "再加一呢？".into(),
            chosen: "3".into(),
            rejected: "4".into(),
            helpfulness: Some(CriterionLabel::Chosen),
            harmlessness: Some(CriterionLabel::Tie),
            fluency: Some(CriterionLabel::Rejected),
            annotators: vec!["a1".into(), "a2".into()],
            prompt_quality: Some(PromptQuality::ClearAndAnswerable),
            margin: Some(0.5),
            split: Some(Split::Valid),
            prompt_tokens: Some(5),
            chosen_tokens: Some(1),
            rejected_tokens: Some(1),
            history_tokens: Some(10),
        }
    }

    #[test]
    fn batch_round_trip_keeps_every_field() {
        let rows = vec![
            full_record(),
            Comparison::new("x:2", "test", "p", "c", "r"),
            full_record(),
        ];
        let batch = comparisons_to_batch(&rows).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), comparison_schema());
        assert_eq!(comparisons_from_batch(&batch).unwrap(), rows);
    }

    #[test]
    fn builder_resets_after_finish() {
        let mut b = ComparisonBatchBuilder::new();
        b.push(&full_record());
        assert_eq!(b.len(), 1);
        assert!(b.pending_bytes() > 0);
        let first = b.finish().unwrap();
        assert!(b.is_empty());
        b.push(&Comparison::new("y", "s", "p", "c", "r"));
        let second = b.finish().unwrap();
        assert_eq!(first.num_rows(), 1);
        let back = comparisons_from_batch(&second).unwrap();
        assert_eq!(back, vec![Comparison::new("y", "s", "p", "c", "r")]);
    }

    #[test]
    fn empty_batch_is_valid() {
        let batch = comparisons_to_batch(&[]).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert!(comparisons_from_batch(&batch).unwrap().is_empty());
    }
}
