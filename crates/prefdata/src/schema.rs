//! The comparison record: its Rust struct and its Arrow schema (one row per preference pair).
//!
//! `docs/data-format.md` documents every column; keep the two in sync.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the Parquet layout, stored in the schema metadata under [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: &str = "1";
/// Schema-metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "rlhf_prefdata.schema_version";

/// Column names, in schema order.
pub mod col {
    /// Unique record id.
    pub const ID: &str = "id";
    /// Data set the record came from.
    pub const SOURCE: &str = "source";
    /// Language tag of the prompt.
    pub const LANGUAGE: &str = "language";
    /// Task category.
    pub const CATEGORY: &str = "category";
    /// Earlier turns.
    pub const HISTORY: &str = "history";
    /// Current user prompt.
    pub const PROMPT: &str = "prompt";
    /// Preferred reply.
    pub const CHOSEN: &str = "chosen";
    /// Dispreferred reply.
    pub const REJECTED: &str = "rejected";
    /// Per-criterion label: helpfulness.
    pub const HELPFULNESS: &str = "helpfulness";
    /// Per-criterion label: harmlessness.
    pub const HARMLESSNESS: &str = "harmlessness";
    /// Per-criterion label: fluency.
    pub const FLUENCY: &str = "fluency";
    /// Annotator ids.
    pub const ANNOTATORS: &str = "annotators";
    /// Prompt-quality label.
    pub const PROMPT_QUALITY: &str = "prompt_quality";
    /// Preference strength.
    pub const MARGIN: &str = "margin";
    /// Data split.
    pub const SPLIT: &str = "split";
    /// Token count of the prompt.
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    /// Token count of the chosen reply.
    pub const CHOSEN_TOKENS: &str = "chosen_tokens";
    /// Token count of the rejected reply.
    pub const REJECTED_TOKENS: &str = "rejected_tokens";
    /// Token count of the history.
    pub const HISTORY_TOKENS: &str = "history_tokens";
    /// Role of a history message (struct child).
    pub const ROLE: &str = "role";
    /// Text of a history message (struct child).
    pub const CONTENT: &str = "content";
}

/// Speaker of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// The human user (HH-RLHF's `Human:`).
    User,
    /// The model (HH-RLHF's `Assistant:`).
    Assistant,
}

impl Role {
    /// The lowercase name stored in Parquet (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    /// Accepts the stored names plus the common aliases `human`, `gpt`, `bot` and `model`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "system" => Ok(Role::System),
            "user" | "human" => Ok(Role::User),
            "assistant" | "gpt" | "bot" | "model" => Ok(Role::Assistant),
            other => Err(Error::Schema(format!("unknown role {other:?}"))),
        }
    }
}

/// One message of a conversation history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// Builds a message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Which side wins on one criterion (stored as Int8: `1`, `0`, `-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionLabel {
    /// `1`: the chosen reply is better on this criterion.
    Chosen,
    /// `0`: both replies are equally good on this criterion.
    Tie,
    /// `-1`: the rejected reply is better on this criterion (it lost overall).
    Rejected,
}

impl CriterionLabel {
    /// The Int8 code (`1`, `0`, `-1`).
    pub fn to_i8(self) -> i8 {
        match self {
            CriterionLabel::Chosen => 1,
            CriterionLabel::Tie => 0,
            CriterionLabel::Rejected => -1,
        }
    }

    /// Decodes the Int8 code.
    ///
    /// # Errors
    /// [`Error::Schema`] for any value other than `-1`, `0`, `1`.
    pub fn from_i8(v: i8) -> Result<Self> {
        match v {
            1 => Ok(CriterionLabel::Chosen),
            0 => Ok(CriterionLabel::Tie),
            -1 => Ok(CriterionLabel::Rejected),
            other => Err(Error::Schema(format!(
                "criterion label {other} not in -1/0/1"
            ))),
        }
    }
}

/// Prompt-quality classes of the paper's Table 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptQuality {
    /// Intent and meaning are clear and the prompt can be answered: the only class kept for training.
    ClearAndAnswerable,
    /// Well-formed, but what the user wants is unclear (greeting only, a bare word, "help me").
    UnclearIntent,
    /// The text itself cannot be understood (keyboard mashing, symbol soup, repeated characters).
    UnclearSemantics,
    /// Clear, but no model can answer it (future lottery numbers, the user's own thoughts).
    Unanswerable,
}

impl PromptQuality {
    /// All classes, in declaration order.
    pub const ALL: [PromptQuality; 4] = [
        PromptQuality::ClearAndAnswerable,
        PromptQuality::UnclearIntent,
        PromptQuality::UnclearSemantics,
        PromptQuality::Unanswerable,
    ];

    /// The snake-case name stored in Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptQuality::ClearAndAnswerable => "clear_and_answerable",
            PromptQuality::UnclearIntent => "unclear_intent",
            PromptQuality::UnclearSemantics => "unclear_semantics",
            PromptQuality::Unanswerable => "unanswerable",
        }
    }
}

impl fmt::Display for PromptQuality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PromptQuality {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PromptQuality::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| Error::Schema(format!("unknown prompt quality {s:?}")))
    }
}

/// Data split of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data.
    Valid,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// The lowercase name stored in Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "valid" | "validation" | "val" | "dev" => Ok(Split::Valid),
            "test" => Ok(Split::Test),
            other => Err(Error::Schema(format!("unknown split {other:?}"))),
        }
    }
}

/// One preference comparison: a (history, prompt) context with a preferred and a dispreferred reply.
///
/// Mirrors [`comparison_schema`] field by field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Unique id within the data set (`<source>:<locator>` for imported data).
    pub id: String,
    /// Data set or pipeline the record came from (`hh-rlhf`, `oasst1-zh`, ...).
    pub source: String,
    /// Language tag of the prompt (`en`, `zh`), if known.
    pub language: Option<String>,
    /// Task / intent category, if known.
    pub category: Option<String>,
    /// Earlier turns, oldest first; empty for single-turn data.
    pub history: Vec<Message>,
    /// The current user prompt.
    pub prompt: String,
    /// The preferred reply.
    pub chosen: String,
    /// The dispreferred reply.
    pub rejected: String,
    /// Which side wins on helpfulness, if labelled.
    pub helpfulness: Option<CriterionLabel>,
    /// Which side wins on harmlessness (safety), if labelled.
    pub harmlessness: Option<CriterionLabel>,
    /// Which side wins on fluency, if labelled.
    pub fluency: Option<CriterionLabel>,
    /// Ids of the annotators who labelled the pair; empty when unknown.
    pub annotators: Vec<String>,
    /// Prompt-quality label, if classified.
    pub prompt_quality: Option<PromptQuality>,
    /// Preference strength (e.g. a Likert gap or a rank difference), if known.
    pub margin: Option<f32>,
    /// Assigned split, if any.
    pub split: Option<Split>,
    /// Token count of `prompt` (derived; `None` until counted).
    pub prompt_tokens: Option<u32>,
    /// Token count of `chosen` (derived).
    pub chosen_tokens: Option<u32>,
    /// Token count of `rejected` (derived).
    pub rejected_tokens: Option<u32>,
    /// Summed token count of all history contents (derived).
    pub history_tokens: Option<u32>,
}

impl Comparison {
    /// A record with the required fields set and every optional one empty.
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        prompt: impl Into<String>,
        chosen: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            prompt: prompt.into(),
            chosen: chosen.into(),
            rejected: rejected.into(),
            ..Self::default()
        }
    }

    /// Number of user turns in the conversation, the current prompt included.
    pub fn turns(&self) -> usize {
        1 + self.history.iter().filter(|m| m.role == Role::User).count()
    }

    /// `true` when the record has earlier turns.
    pub fn is_multi_turn(&self) -> bool {
        !self.history.is_empty()
    }
}

fn message_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::ROLE, DataType::Utf8, false),
        Field::new(col::CONTENT, DataType::Utf8, false),
    ])
}

/// Arrow type of the `history` column: `List<Struct<role: Utf8, content: Utf8>>`.
pub(crate) fn history_item_field() -> Arc<Field> {
    Arc::new(Field::new(
        "item",
        DataType::Struct(message_fields()),
        false,
    ))
}

/// Arrow item field of the `annotators` column.
pub(crate) fn annotator_item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields = vec![
        Field::new(col::ID, DataType::Utf8, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new(col::LANGUAGE, DataType::Utf8, true),
        Field::new(col::CATEGORY, DataType::Utf8, true),
        Field::new(col::HISTORY, DataType::List(history_item_field()), false),
        Field::new(col::PROMPT, DataType::Utf8, false),
        Field::new(col::CHOSEN, DataType::Utf8, false),
        Field::new(col::REJECTED, DataType::Utf8, false),
        Field::new(col::HELPFULNESS, DataType::Int8, true),
        Field::new(col::HARMLESSNESS, DataType::Int8, true),
        Field::new(col::FLUENCY, DataType::Int8, true),
        Field::new(
            col::ANNOTATORS,
            DataType::List(annotator_item_field()),
            false,
        ),
        Field::new(col::PROMPT_QUALITY, DataType::Utf8, true),
        Field::new(col::MARGIN, DataType::Float32, true),
        Field::new(col::SPLIT, DataType::Utf8, true),
        Field::new(col::PROMPT_TOKENS, DataType::UInt32, true),
        Field::new(col::CHOSEN_TOKENS, DataType::UInt32, true),
        Field::new(col::REJECTED_TOKENS, DataType::UInt32, true),
        Field::new(col::HISTORY_TOKENS, DataType::UInt32, true),
    ];
    let metadata: std::collections::HashMap<String, String> =
        [(SCHEMA_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_owned())]
            .into_iter()
            .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
});

/// The Arrow schema of one comparison row (shared, cheap to clone).
pub fn comparison_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Checks that `schema` has every column of [`comparison_schema`] with the same type and a
/// nullability at least as strict. Extra columns are allowed and ignored.
///
/// # Errors
/// [`Error::Schema`] naming the first missing or mistyped column.
pub fn check_schema(schema: &Schema) -> Result<()> {
    for want in comparison_schema().fields() {
        let got = schema
            .field_with_name(want.name())
            .map_err(|_| Error::Schema(format!("missing column {:?}", want.name())))?;
        if !types_compatible(got.data_type(), want.data_type()) {
            return Err(Error::Schema(format!(
                "column {:?} has type {}, expected {}",
                want.name(),
                got.data_type(),
                want.data_type()
            )));
        }
    }
    Ok(())
}

/// Type equality that ignores nested field names and nullability (readers cope with both).
fn types_compatible(got: &DataType, want: &DataType) -> bool {
    match (got, want) {
        (DataType::List(a), DataType::List(b)) => types_compatible(a.data_type(), b.data_type()),
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() == b.len()
                && b.iter().all(|fb| {
                    a.iter().any(|fa| {
                        fa.name() == fb.name() && types_compatible(fa.data_type(), fb.data_type())
                    })
                })
        }
        _ => got == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_documented_column_in_order() {
        let names: Vec<_> = comparison_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "source",
                "language",
                "category",
                "history",
                "prompt",
                "chosen",
                "rejected",
                "helpfulness",
                "harmlessness",
                "fluency",
                "annotators",
                "prompt_quality",
                "margin",
                "split",
                "prompt_tokens",
                "chosen_tokens",
                "rejected_tokens",
                "history_tokens"
            ]
        );
        check_schema(&comparison_schema()).unwrap();
    }

    #[test]
    fn docs_mention_every_column() {
        let doc = include_str!("../../../docs/data-format.md");
        for f in comparison_schema().fields() {
            assert!(
                doc.contains(&format!("`{}`", f.name())),
                "docs/data-format.md lacks column {}",
                f.name()
            );
        }
    }

    #[test]
    fn check_schema_rejects_missing_and_mistyped_columns() {
        let s = comparison_schema();
        let fewer: Vec<Field> = s
            .fields()
            .iter()
            .filter(|f| f.name() != "prompt")
            .map(|f| f.as_ref().clone())
            .collect();
        let err = check_schema(&Schema::new(fewer)).unwrap_err();
        assert!(err.to_string().contains("prompt"), "{err}");

        let mistyped: Vec<Field> = s
            .fields()
            .iter()
            .map(|f| {
                if f.name() == "margin" {
                    Field::new("margin", DataType::Utf8, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        assert!(check_schema(&Schema::new(mistyped)).is_err());
    }

    #[test]
    fn enums_round_trip_through_their_stored_names() {
        for q in PromptQuality::ALL {
            assert_eq!(q.as_str().parse::<PromptQuality>().unwrap(), q);
        }
        for s in Split::ALL {
            assert_eq!(s.as_str().parse::<Split>().unwrap(), s);
        }
        for r in [Role::System, Role::User, Role::Assistant] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert_eq!("Human".parse::<Role>().unwrap(), Role::User);
        for l in [
            CriterionLabel::Chosen,
            CriterionLabel::Tie,
            CriterionLabel::Rejected,
        ] {
            assert_eq!(CriterionLabel::from_i8(l.to_i8()).unwrap(), l);
        }
        assert!(CriterionLabel::from_i8(2).is_err());
    }

    #[test]
    fn turns_count_user_messages() {
        let mut c = Comparison::new("a", "t", "p", "c", "r");
        assert_eq!(c.turns(), 1);
        assert!(!c.is_multi_turn());
        c.history = vec![
            Message::new(Role::System, "be nice"),
            Message::new(Role::User, "hi"),
            Message::new(Role::Assistant, "hello"),
        ];
        assert_eq!(c.turns(), 2);
        assert!(c.is_multi_turn());
    }
}
