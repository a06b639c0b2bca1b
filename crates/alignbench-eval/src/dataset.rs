//! AlignBench questions, categories and judge configuration (SPEC §B.2–§B.5).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The eight AlignBench main categories.
///
/// [`Category::ALL`] lists them in the column order of the published tables (SPEC §B.8):
/// the six language categories, then the two reasoning ones. `Ord` follows that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// 基本任务, Fundamental Language Ability.
    Fundamental,
    /// 中文理解, Advanced Chinese Understanding.
    Chinese,
    /// 综合问答, Open-ended Questions.
    OpenEnded,
    /// 文本写作, Writing Ability.
    Writing,
    /// 角色扮演, Task-oriented Role Play.
    RolePlay,
    /// 专业能力, Professional Knowledge.
    Professional,
    /// 数学计算, Mathematics.
    Mathematics,
    /// 逻辑推理, Logical Reasoning.
    Logic,
}

/// The two groups the overall score averages (SPEC §B.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// 中文推理: mathematics and logical reasoning.
    Reasoning,
    /// 中文语言: the other six categories.
    Language,
}

impl Group {
    /// The Chinese label used as a column name by AlignBench (`中文推理`, `中文语言`).
    pub fn label(self) -> &'static str {
        match self {
            Group::Reasoning => "中文推理",
            Group::Language => "中文语言",
        }
    }

    /// The English name (`reasoning`, `language`).
    pub fn english(self) -> &'static str {
        match self {
            Group::Reasoning => "reasoning",
            Group::Language => "language",
        }
    }

    /// The categories of this group, in table order.
    pub fn categories(self) -> &'static [Category] {
        match self {
            Group::Reasoning => &[Category::Mathematics, Category::Logic],
            Group::Language => &[
                Category::Fundamental,
                Category::Chinese,
                Category::OpenEnded,
                Category::Writing,
                Category::RolePlay,
                Category::Professional,
            ],
        }
    }
}

impl Category {
    /// All categories in the published table order: Fund., Chi., Open., Writ., Role., Pro.,
    /// Math., Logi.
    pub const ALL: [Category; 8] = [
        Category::Fundamental,
        Category::Chinese,
        Category::OpenEnded,
        Category::Writing,
        Category::RolePlay,
        Category::Professional,
        Category::Mathematics,
        Category::Logic,
    ];

    /// The exact Chinese label used in the data files (e.g. `专业能力`).
    pub fn label(self) -> &'static str {
        match self {
            Category::Fundamental => "基本任务",
            Category::Chinese => "中文理解",
            Category::OpenEnded => "综合问答",
            Category::Writing => "文本写作",
            Category::RolePlay => "角色扮演",
            Category::Professional => "专业能力",
            Category::Mathematics => "数学计算",
            Category::Logic => "逻辑推理",
        }
    }

    /// The English name from the AlignBench README.
    pub fn english(self) -> &'static str {
        match self {
            Category::Fundamental => "Fundamental Language Ability",
            Category::Chinese => "Advanced Chinese Understanding",
            Category::OpenEnded => "Open-ended Questions",
            Category::Writing => "Writing Ability",
            Category::RolePlay => "Task-oriented Role Play",
            Category::Professional => "Professional Knowledge",
            Category::Mathematics => "Mathematics",
            Category::Logic => "Logical Reasoning",
        }
    }

    /// The table abbreviation (`Fund.`, `Chi.`, `Open.`, `Writ.`, `Role.`, `Pro.`, `Math.`,
    /// `Logi.`).
    pub fn abbr(self) -> &'static str {
        match self {
            Category::Fundamental => "Fund.",
            Category::Chinese => "Chi.",
            Category::OpenEnded => "Open.",
            Category::Writing => "Writ.",
            Category::RolePlay => "Role.",
            Category::Professional => "Pro.",
            Category::Mathematics => "Math.",
            Category::Logic => "Logi.",
        }
    }

    /// A snake_case identifier, used as a JSON field name in reports.
    pub fn key(self) -> &'static str {
        match self {
            Category::Fundamental => "fundamental",
            Category::Chinese => "chinese",
            Category::OpenEnded => "open_ended",
            Category::Writing => "writing",
            Category::RolePlay => "role_play",
            Category::Professional => "professional",
            Category::Mathematics => "mathematics",
            Category::Logic => "logic",
        }
    }

    /// The group the category belongs to (SPEC §B.4.1).
    pub fn group(self) -> Group {
        match self {
            Category::Mathematics | Category::Logic => Group::Reasoning,
            _ => Group::Language,
        }
    }

    /// Parses the exact Chinese label.
    ///
    /// # Errors
    /// [`Error::UnknownCategory`] for any other string.
    pub fn from_label(label: &str) -> Result<Self> {
        Category::ALL
            .into_iter()
            .find(|c| c.label() == label)
            .ok_or_else(|| Error::UnknownCategory(label.to_owned()))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Category {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Category::from_label(s)
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        Category::from_label(&label).map_err(serde::de::Error::custom)
    }
}

/// One piece of supporting evidence (v1.1 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Source page; may carry trailing `\n\n` as in the release.
    pub url: String,
    /// Quoted passage.
    pub quote: String,
}

/// One AlignBench question (SPEC §B.3). Unknown keys in the file are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Id, 1..=683, unique; files are not sorted by it.
    pub question_id: u32,
    /// Main category.
    pub category: Category,
    /// Subcategory label (decides the answer type and so the judging dimensions).
    pub subcategory: String,
    /// The user query.
    pub question: String,
    /// The human-checked reference answer.
    pub reference: String,
    /// Evidences: absent in v1.0, `null`, `[]` or a list in v1.1.
    #[serde(default)]
    pub evidences: Option<Vec<Evidence>>,
}

/// The two released versions of the question file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataVersion {
    /// v1.0, the version the ChatGLM-RLHF paper reports (`data_release_v1.0.jsonl`).
    V1_0,
    /// v1.1, with evidences (`data_v1.1_release.jsonl`).
    V1_1,
}

impl DataVersion {
    /// The file name of this version inside the AlignBench data folder.
    pub fn file_name(self) -> &'static str {
        match self {
            DataVersion::V1_0 => "data_release_v1.0.jsonl",
            DataVersion::V1_1 => "data_v1.1_release.jsonl",
        }
    }
}

/// Loads a question file (JSONL), keeping file order.
///
/// Blank lines and a leading byte-order mark are skipped; unknown keys are ignored (the v1.0
/// stray nested key).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::JsonLine`] (with file and line) for an
/// invalid record, [`Error::DuplicateQuestionId`] if an id repeats.
pub fn load_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut seen = HashSet::new();
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let question: Question = serde_json::from_str(line).map_err(|source| Error::JsonLine {
            path: path.to_owned(),
            line: index + 1,
            source,
        })?;
        if !seen.insert(question.question_id) {
            return Err(Error::DuplicateQuestionId {
                path: path.to_owned(),
                line: index + 1,
                id: question.question_id,
            });
        }
        questions.push(question);
    }
    tracing::debug!(path = %path.display(), n = questions.len(), "loaded AlignBench questions");
    Ok(questions)
}

/// One judging dimension with its definition, as inserted into the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimension<'a> {
    /// The exact Chinese name (e.g. `事实正确性`).
    pub name: &'a str,
    /// The exact Chinese definition from `dimension_definition.json`.
    pub definition: &'a str,
}

/// The judge configuration from the `config/` folder (SPEC §B.5), with JSON order kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BenchConfig {
    /// `dimension_set.json`: answer type → dimensions, in prompt order.
    pub dimension_sets: IndexMap<String, Vec<String>>,
    /// `subcategory_question_mapping.json`: subcategory → answer type.
    pub subcategory_answer_types: IndexMap<String, String>,
    /// `dimension_definition.json`: dimension → Chinese definition.
    pub dimension_definitions: IndexMap<String, String>,
    /// `temperature.json`: main-category label → generation temperature.
    pub temperatures: IndexMap<String, f64>,
}

/// Temperature for categories missing from `temperature.json` (SPEC §B.4.1).
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })
}

impl BenchConfig {
    /// Loads the four config files from `dir` (the AlignBench `config/` folder).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Json`] naming the file.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        Ok(BenchConfig {
            dimension_sets: read_json(&dir.join("dimension_set.json"))?,
            subcategory_answer_types: read_json(&dir.join("subcategory_question_mapping.json"))?,
            dimension_definitions: read_json(&dir.join("dimension_definition.json"))?,
            temperatures: read_json(&dir.join("temperature.json"))?,
        })
    }

    /// The answer type of a subcategory (e.g. `音乐` → `事实与解释型回答`).
    ///
    /// # Errors
    /// [`Error::UnknownSubcategory`].
    pub fn answer_type(&self, subcategory: &str) -> Result<&str> {
        self.subcategory_answer_types
            .get(subcategory)
            .map(String::as_str)
            .ok_or_else(|| Error::UnknownSubcategory(subcategory.to_owned()))
    }

    /// The dimension names of an answer type, in prompt order.
    ///
    /// # Errors
    /// [`Error::UnknownAnswerType`].
    pub fn dimension_names(&self, answer_type: &str) -> Result<&[String]> {
        self.dimension_sets
            .get(answer_type)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::UnknownAnswerType(answer_type.to_owned()))
    }

    /// The definition of one dimension.
    ///
    /// # Errors
    /// [`Error::UnknownDimension`].
    pub fn definition(&self, dimension: &str) -> Result<&str> {
        self.dimension_definitions
            .get(dimension)
            .map(String::as_str)
            .ok_or_else(|| Error::UnknownDimension(dimension.to_owned()))
    }

    /// The dimensions (with definitions) used to judge `question`:
    /// subcategory → answer type → dimension set.
    ///
    /// # Errors
    /// Any of the lookup errors above.
    pub fn dimensions_for(&self, question: &Question) -> Result<Vec<Dimension<'_>>> {
        let answer_type = self.answer_type(&question.subcategory)?;
        self.dimension_names(answer_type)?
            .iter()
            .map(|name| {
                Ok(Dimension {
                    name,
                    definition: self.definition(name)?,
                })
            })
            .collect()
    }

    /// The suggested generation temperature for a category ([`DEFAULT_TEMPERATURE`] when the
    /// config has none).
    pub fn temperature(&self, category: Category) -> f64 {
        self.temperatures
            .get(category.label())
            .copied()
            .unwrap_or(DEFAULT_TEMPERATURE)
    }
}

/// A question set together with its judge configuration.
#[derive(Debug, Clone)]
pub struct AlignBench {
    /// The questions, in file order.
    pub questions: Vec<Question>,
    /// The judge configuration.
    pub config: BenchConfig,
}

impl AlignBench {
    /// Loads `dir/<version file>` and `dir/config/*.json`, where `dir` is an AlignBench data
    /// folder such as `shared/data/alignbench`.
    ///
    /// # Errors
    /// As [`load_questions`] and [`BenchConfig::load_dir`].
    pub fn load(dir: &Path, version: DataVersion) -> Result<Self> {
        let questions = load_questions(&dir.join(version.file_name()))?;
        let config = BenchConfig::load_dir(&dir.join("config"))?;
        Ok(AlignBench { questions, config })
    }

    /// The question with this id.
    pub fn question(&self, question_id: u32) -> Option<&Question> {
        self.questions.iter().find(|q| q.question_id == question_id)
    }

    /// Checks that every question's subcategory maps to a dimension set whose dimensions are
    /// all defined.
    ///
    /// # Errors
    /// The first lookup error found.
    pub fn validate(&self) -> Result<()> {
        for question in &self.questions {
            self.config.dimensions_for(question)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_labels_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_label(c.label()).unwrap(), c);
            assert_eq!(c.to_string().parse::<Category>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
        }
        assert!(matches!(
            Category::from_label("数学"),
            Err(Error::UnknownCategory(_))
        ));
    }

    #[test]
    fn groups_split_two_and_six() {
        let reasoning: Vec<_> = Category::ALL
            .into_iter()
            .filter(|c| c.group() == Group::Reasoning)
            .collect();
        assert_eq!(reasoning, Group::Reasoning.categories());
        assert_eq!(Group::Language.categories().len(), 6);
        let abbrs: Vec<_> = Category::ALL.iter().map(|c| c.abbr()).collect();
        assert_eq!(
            abbrs,
            [
                "Fund.", "Chi.", "Open.", "Writ.", "Role.", "Pro.", "Math.", "Logi."
            ]
        );
    }

    #[test]
    fn question_ignores_unknown_keys_and_missing_evidences() {
        let line = r#"{"question_id": 30, "category": "专业能力", "subcategory": "音乐", "question": "q", "reference": "r", "29": {"question_id": 29, "x": [1]}}"#;
        let q: Question = serde_json::from_str(line).unwrap();
        assert_eq!(q.question_id, 30);
        assert_eq!(q.evidences, None);
        let line = r#"{"question_id": 1, "category": "专业能力", "subcategory": "音乐", "question": "q", "reference": "r", "evidences": [{"url": "u", "quote": "x"}]}"#;
        let q: Question = serde_json::from_str(line).unwrap();
        assert_eq!(q.evidences.unwrap().len(), 1);
    }

    #[test]
    fn load_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        let good = r#"{"question_id": 1, "category": "专业能力", "subcategory": "音乐", "question": "q", "reference": "r"}"#;
        std::fs::write(&path, format!("{good}\n\n{{\"question_id\": 2}}\n")).unwrap();
        let err = load_questions(&path).unwrap_err().to_string();
        assert!(err.contains("q.jsonl:3:"), "{err}");

        std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
        let err = load_questions(&path).unwrap_err();
        assert!(matches!(
            err,
            Error::DuplicateQuestionId { line: 2, id: 1, .. }
        ));

        let bad_cat = good.replace("专业能力", "专业");
        std::fs::write(&path, bad_cat).unwrap();
        let err = load_questions(&path).unwrap_err().to_string();
        assert!(err.contains("q.jsonl:1:") && err.contains("专业"), "{err}");
    }

    #[test]
    fn temperature_defaults_to_0_7() {
        let mut config = BenchConfig::default();
        config.temperatures.insert("数学计算".into(), 0.1);
        assert_eq!(config.temperature(Category::Mathematics), 0.1);
        assert_eq!(config.temperature(Category::Writing), DEFAULT_TEMPERATURE);
    }
}
