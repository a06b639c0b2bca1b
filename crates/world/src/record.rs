//! The records written to the data files: prompts, answer keys, SFT demonstrations.

use serde::{Deserialize, Serialize};

use crate::lang::{Category, Language, Task, TermClass, TermRef};
use crate::quality::Quality;

/// Speaker of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The assistant.
    Assistant,
}

/// One chat message (`{"role", "content"}`, as in HF chat templates and TRL).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Which part of the prompt set a prompt belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// SFT, preference pairs, RM, PPO and DPO prompts.
    Train,
    /// Held out: the evaluation prompts (never in SFT or pairs).
    Eval,
}

/// What the gold judge accepts as a correct answer to a prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerKey {
    /// The last number in the response must equal `value`.
    Number {
        /// The correct number.
        value: i64,
    },
    /// The last mention of a term of `classes` (in `lang`, or either language when `None`)
    /// must be `term`.
    Term {
        /// The correct term.
        term: TermRef,
        /// Classes whose mentions count as an answer.
        classes: Vec<TermClass>,
        /// Language the answer must be in (translation), or `None` for either.
        #[serde(default)]
        lang: Option<Language>,
    },
    /// Every term of `terms` must be mentioned (either language) and, when `words` is not
    /// empty, at least one of `words`.
    AllOf {
        /// Required terms.
        terms: Vec<TermRef>,
        /// Alternatives of which one is required (e.g. `birthday`, `生日`).
        words: Vec<String>,
    },
    /// At least one of `words` must occur (advice keywords, both languages).
    AnyOf {
        /// Accepted keywords.
        words: Vec<String>,
    },
    /// A harmful request: the response must refuse and must not comply (no harmful-compliance
    /// marker).
    Refusal,
}

/// One prompt of the world (one line of `prompts.jsonl` / `eval_prompts.jsonl`).
///
/// The fields `id`, `category`, `subcategory`, `prompt` and `reference` have the names and
/// types of `rlhf_prefdata::PromptRecord`, so the files read as a prompt set there too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Unique id (`world-train-00001`, `world-eval-0001`).
    pub id: String,
    /// Train or held-out eval.
    pub split: Split,
    /// AlignBench main category.
    pub category: Category,
    /// AlignBench subcategory label.
    pub subcategory: String,
    /// The world's task family.
    pub task: Task,
    /// Language of the prompt and of the expected answer.
    pub language: Language,
    /// Earlier turns (role-play follow-ups), oldest first; empty for single-turn prompts.
    pub history: Vec<Message>,
    /// The current user message.
    pub prompt: String,
    /// The short correct answer, for people (`38`, `青川城`, `Mira / birthday`).
    pub answer: String,
    /// A good concise response.
    pub reference: String,
    /// What the gold judge checks.
    pub key: AnswerKey,
}

impl Prompt {
    /// History plus the current user message: the input of a chat template.
    pub fn messages(&self) -> Vec<Message> {
        let mut m = self.history.clone();
        m.push(Message::user(self.prompt.clone()));
        m
    }

    /// Whether the prompt has earlier turns.
    pub fn is_multi_turn(&self) -> bool {
        !self.history.is_empty()
    }
}

/// Style of a response: how long it is for the same content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// The answer in one short sentence.
    Concise,
    /// The answer with an explanation that adds nothing new.
    Verbose,
    /// Concise, plus a polite closing sentence.
    ConcisePadded,
    /// Verbose, plus a polite closing sentence.
    VerbosePadded,
}

impl Style {
    /// Whether the base text is the verbose one.
    pub fn is_verbose(self) -> bool {
        matches!(self, Style::Verbose | Style::VerbosePadded)
    }

    /// Whether a closing sentence is appended.
    pub fn is_padded(self) -> bool {
        matches!(self, Style::ConcisePadded | Style::VerbosePadded)
    }
}

/// One SFT demonstration (a line of `sft.jsonl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftRecord {
    /// Unique id (`world-sft-00001`).
    pub id: String,
    /// The prompt it answers.
    pub prompt_id: String,
    /// AlignBench category of the prompt.
    pub category: Category,
    /// Language.
    pub language: Language,
    /// Style of the response.
    pub style: Style,
    /// What the demonstration gets wrong by construction (`clean` for none); the shares are
    /// declared in `WorldConfig::sft_mix`.
    pub quality: Quality,
    /// History plus the user prompt.
    pub messages: Vec<Message>,
    /// The demonstration (correct, harmless and fluent when `quality` is `clean`).
    pub response: String,
}
