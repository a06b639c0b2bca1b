//! Preference pairs, encoded with the workspace's one text codec (`rlhf_core::text`: chat
//! template or plain/byte transcript, and its truncation rule, which keeps a reply's last token
//! where the score is read), and the collator that pads chosen and rejected rows into one batch.
//!
//! Lengths reported for length-bias diagnostics are response lengths in tokens **before**
//! truncation.

use std::io::BufRead;
use std::path::Path;

use rlhf_core::text::{TextCodec, truncate_row};
use rlhf_core::tokenizer::{Message, Role};
use rlhf_core::{PadSide, TokenBatch};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RewardError};

fn one() -> f32 {
    1.0
}

/// One labelled comparison: a conversation (history + the current prompt) and two replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencePair {
    /// A stable id (used in errors and for reproducible splits).
    pub id: String,
    /// Task category (the paper reports accuracy per category); `None` when unknown.
    #[serde(default)]
    pub category: Option<String>,
    /// The conversation so far, ending with the user turn being answered.
    pub prompt: Vec<Message>,
    /// The preferred reply.
    pub chosen: String,
    /// The dispreferred reply.
    pub rejected: String,
    /// Training weight (1 by default; re-weighted balancing lowers it). Must be finite and ≥ 0.
    #[serde(default = "one")]
    pub weight: f32,
}

impl PreferencePair {
    /// A pair with weight 1 and no category.
    pub fn new(
        id: impl Into<String>,
        prompt: Vec<Message>,
        chosen: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Self {
        PreferencePair {
            id: id.into(),
            category: None,
            prompt,
            chosen: chosen.into(),
            rejected: rejected.into(),
            weight: 1.0,
        }
    }

    /// Returns the pair with `category` set.
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Returns the pair with `weight` set.
    pub fn with_weight(mut self, weight: f32) -> Self {
        self.weight = weight;
        self
    }

    /// Checks the weight and that both replies are non-empty.
    ///
    /// # Errors
    /// [`RewardError::BadPair`].
    pub fn validate(&self) -> Result<()> {
        let bad = |message: &str| RewardError::BadPair {
            id: self.id.clone(),
            message: message.to_string(),
        };
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(bad(&format!(
                "weight must be finite and >= 0, got {}",
                self.weight
            )));
        }
        if self.chosen.is_empty() || self.rejected.is_empty() {
            return Err(bad("chosen and rejected must be non-empty"));
        }
        Ok(())
    }
}

/// A JSONL line: `prompt` may be a plain string (one user turn) and `id` may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    category: Option<String>,
    prompt: RawPrompt,
    chosen: String,
    rejected: String,
    #[serde(default = "one")]
    weight: f32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    Text(String),
    Messages(Vec<Message>),
}

/// Reads preference pairs from a JSON-lines file, one object per line:
/// `{"id", "category"?, "prompt": [messages] | "text", "chosen", "rejected", "weight"?}`.
/// A missing `id` becomes `line-N` (1-based); blank lines are skipped.
///
/// # Errors
/// IO errors and [`RewardError::Json`] naming the line; [`RewardError::BadPair`] from
/// [`PreferencePair::validate`].
pub fn read_pairs_jsonl(path: &Path) -> Result<Vec<PreferencePair>> {
    let file = std::fs::File::open(path).map_err(|e| RewardError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| RewardError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawPair = serde_json::from_str(&line).map_err(|e| RewardError::Json {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        let pair = PreferencePair {
            id: raw.id.unwrap_or_else(|| format!("line-{}", i + 1)),
            category: raw.category,
            prompt: match raw.prompt {
                RawPrompt::Text(t) => vec![Message::user(t)],
                RawPrompt::Messages(m) => m,
            },
            chosen: raw.chosen,
            rejected: raw.rejected,
            weight: raw.weight,
        };
        pair.validate()?;
        out.push(pair);
    }
    Ok(out)
}

/// A comparison's history and prompt as core chat messages (the prompt last, as a user turn).
pub fn prompt_messages(c: &rlhf_prefdata::Comparison) -> Vec<Message> {
    use rlhf_prefdata::Role as R;
    let conv = |m: &rlhf_prefdata::Message| Message {
        role: match m.role {
            R::System => Role::System,
            R::User => Role::User,
            R::Assistant => Role::Assistant,
        },
        content: m.content.clone(),
    };
    let mut out: Vec<Message> = c.history.iter().map(conv).collect();
    out.push(Message::user(c.prompt.clone()));
    out
}

impl From<&rlhf_prefdata::Comparison> for PreferencePair {
    /// History + prompt become the conversation ([`prompt_messages`]); weight 1.
    fn from(c: &rlhf_prefdata::Comparison) -> Self {
        PreferencePair {
            id: c.id.clone(),
            category: c.category.clone(),
            prompt: prompt_messages(c),
            chosen: c.chosen.clone(),
            rejected: c.rejected.clone(),
            weight: 1.0,
        }
    }
}

/// Reads pairs from a `rlhf-prefdata` Parquet file (`.parquet`) or a JSON-lines file (anything
/// else, see [`read_pairs_jsonl`]). With `split`, only Parquet rows assigned to it are kept.
///
/// # Errors
/// IO/format errors naming the file, and [`RewardError::BadPair`].
pub fn read_pairs(path: &Path, split: Option<rlhf_prefdata::Split>) -> Result<Vec<PreferencePair>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        let rows = rlhf_prefdata::read_comparisons(path)
            .map_err(|e| RewardError::Data(format!("{}: {e}", path.display())))?;
        let pairs: Vec<PreferencePair> = rows
            .iter()
            .filter(|c| split.is_none() || c.split == split)
            .map(PreferencePair::from)
            .collect();
        pairs.iter().try_for_each(PreferencePair::validate)?;
        Ok(pairs)
    } else {
        read_pairs_jsonl(path)
    }
}

/// Writes pairs as JSON lines (atomically).
///
/// # Errors
/// IO errors naming the file.
pub fn write_pairs_jsonl(path: &Path, pairs: &[PreferencePair]) -> Result<()> {
    Ok(rlhf_train::write_jsonl(path, pairs)?)
}

/// Splits pairs into (train, held-out) **by prompt**: every pair sharing a prompt lands on the
/// same side, so the held-out accuracy measures generalisation to new prompts. A prompt goes to
/// held-out when its seeded hash falls below `eval_fraction`; order within each side is kept.
///
/// # Panics
/// If `eval_fraction` is not in `[0, 1]`.
pub fn split_by_prompt(
    pairs: Vec<PreferencePair>,
    eval_fraction: f64,
    seed: u64,
) -> (Vec<PreferencePair>, Vec<PreferencePair>) {
    assert!(
        (0.0..=1.0).contains(&eval_fraction),
        "eval_fraction must be in [0, 1], got {eval_fraction}"
    );
    let mut train = Vec::new();
    let mut eval = Vec::new();
    for p in pairs {
        let key = serde_json::to_vec(&p.prompt).expect("serialisable");
        let u = (rlhf_train::fnv1a(seed, &key) >> 11) as f64 / (1u64 << 53) as f64;
        if u < eval_fraction {
            eval.push(p);
        } else {
            train.push(p);
        }
    }
    (train, eval)
}

/// A pair encoded once, before training (so epochs do not re-tokenise).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    /// Index of the pair in the data set it came from.
    pub index: usize,
    /// Chosen row after truncation.
    pub chosen: Vec<u32>,
    /// Rejected row after truncation.
    pub rejected: Vec<u32>,
    /// Reply length in tokens before truncation (for length diagnostics and balancing).
    pub chosen_len: usize,
    /// Reply length in tokens before truncation.
    pub rejected_len: usize,
    /// Training weight.
    pub weight: f32,
    /// Whether either row was truncated.
    pub truncated: bool,
}

/// Chosen and rejected rows of `n` pairs in one right-padded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PairBatch {
    /// Number of pairs.
    pub n: usize,
    /// `2n` rows: chosen rows `0..n`, then rejected rows `n..2n`, right-padded.
    pub tokens: TokenBatch,
    /// Per row, the index of its last real token (where the score is read).
    pub pool: Vec<usize>,
    /// `n` weights.
    pub weights: Vec<f32>,
    /// `n` chosen reply lengths (tokens, before truncation).
    pub chosen_len: Vec<usize>,
    /// `n` rejected reply lengths.
    pub rejected_len: Vec<usize>,
}

/// Turns pairs into [`PairBatch`]es.
#[derive(Debug, Clone, Copy)]
pub struct PairCollator<'a> {
    /// The encoder.
    pub encoder: TextCodec<'a>,
    /// Longest row in tokens (see the truncation rule).
    pub max_length: usize,
}

impl<'a> PairCollator<'a> {
    /// A collator.
    pub fn new(encoder: TextCodec<'a>, max_length: usize) -> Self {
        PairCollator {
            encoder,
            max_length,
        }
    }

    /// Encodes and truncates one pair.
    ///
    /// # Errors
    /// [`RewardError::BadPair`] for an invalid pair or a reply that encodes to no token, and
    /// tokenizer errors.
    pub fn encode_pair(&self, index: usize, pair: &PreferencePair) -> Result<EncodedPair> {
        pair.validate()?;
        let c = self.encoder.encode(&pair.prompt, &pair.chosen)?;
        let r = self.encoder.encode(&pair.prompt, &pair.rejected)?;
        for row in [&c, &r] {
            if row.response_start >= row.ids.len() {
                return Err(RewardError::BadPair {
                    id: pair.id.clone(),
                    message: "a reply encodes to no token".into(),
                });
            }
        }
        let bos = self.encoder.bos_id();
        let truncated = c.ids.len() > self.max_length || r.ids.len() > self.max_length;
        Ok(EncodedPair {
            index,
            chosen: truncate_row(&c, self.max_length, bos),
            rejected: truncate_row(&r, self.max_length, bos),
            chosen_len: c.ids.len() - c.response_start,
            rejected_len: r.ids.len() - r.response_start,
            weight: pair.weight,
            truncated,
        })
    }

    /// Encodes a whole data set; pair `i` gets `index = i`.
    ///
    /// # Errors
    /// As [`PairCollator::encode_pair`].
    pub fn encode_all(&self, pairs: &[PreferencePair]) -> Result<Vec<EncodedPair>> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, p)| self.encode_pair(i, p))
            .collect()
    }

    /// Pads encoded pairs into one batch (chosen rows first, then rejected rows).
    ///
    /// # Panics
    /// If `pairs` is empty.
    pub fn collate_encoded(&self, pairs: &[&EncodedPair]) -> PairBatch {
        collate(pairs, self.encoder.pad_id())
    }

    /// Encodes and pads pairs in one go.
    ///
    /// # Errors
    /// As [`PairCollator::encode_pair`].
    pub fn collate(&self, pairs: &[&PreferencePair]) -> Result<PairBatch> {
        let enc = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| self.encode_pair(i, p))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&EncodedPair> = enc.iter().collect();
        Ok(self.collate_encoded(&refs))
    }
}

/// Pads encoded pairs into one right-padded batch with `pad_id`.
///
/// # Panics
/// If `pairs` is empty.
pub fn collate(pairs: &[&EncodedPair], pad_id: u32) -> PairBatch {
    assert!(!pairs.is_empty(), "cannot collate an empty batch");
    let rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|p| p.chosen.clone())
        .chain(pairs.iter().map(|p| p.rejected.clone()))
        .collect();
    let pool = rows.iter().map(|r| r.len() - 1).collect();
    PairBatch {
        n: pairs.len(),
        tokens: TokenBatch::from_rows(&rows, pad_id, PadSide::Right),
        pool,
        weights: pairs.iter().map(|p| p.weight).collect(),
        chosen_len: pairs.iter().map(|p| p.chosen_len).collect(),
        rejected_len: pairs.iter().map(|p| p.rejected_len).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_core::text::EncodedRow;

    #[test]
    fn prompt_messages_are_the_history_then_the_prompt_as_a_user_turn() {
        use rlhf_prefdata::{Comparison, Message as M, Role as R};
        let mut c = Comparison::new("id", "test", "And Italy?", "Rome.", "No.");
        let m = |role, content: &str| M {
            role,
            content: content.into(),
        };
        c.history = vec![
            m(R::System, "Be brief."),
            m(R::User, "Capital of France?"),
            m(R::Assistant, "Paris."),
        ];
        let got: Vec<(Role, String)> = prompt_messages(&c)
            .into_iter()
            .map(|m| (m.role, m.content))
            .collect();
        assert_eq!(
            got,
            vec![
                (Role::System, "Be brief.".to_owned()),
                (Role::User, "Capital of France?".to_owned()),
                (Role::Assistant, "Paris.".to_owned()),
                (Role::User, "And Italy?".to_owned()),
            ]
        );
    }

    fn pair(id: &str, prompt: &str, c: &str, r: &str) -> PreferencePair {
        PreferencePair::new(id, vec![Message::user(prompt)], c, r)
    }

    #[test]
    fn byte_encoding_marks_the_reply() {
        let row = TextCodec::Bytes
            .encode(&[Message::user("hi")], "ok")
            .unwrap();
        let text = "User: hi\nAssistant: ";
        assert_eq!(row.response_start, 1 + text.len());
        assert_eq!(row.ids[0], 1);
        assert_eq!(*row.ids.last().unwrap(), 2);
        assert_eq!(
            &row.ids[row.response_start..],
            &[b'o' as u32 + 3, b'k' as u32 + 3, 2]
        );
    }

    #[test]
    fn truncation_drops_prompt_from_the_left_and_keeps_bos_and_reply() {
        // BOS=1, prompt 10..=15, reply 20, 21, EOS 2.
        let row = EncodedRow {
            ids: vec![1, 10, 11, 12, 13, 14, 15, 20, 21, 2],
            response_start: 7,
        };
        assert_eq!(truncate_row(&row, 10, Some(1)), row.ids);
        assert_eq!(truncate_row(&row, 6, Some(1)), vec![1, 14, 15, 20, 21, 2]);
        assert_eq!(truncate_row(&row, 4, Some(1)), vec![1, 20, 21, 2]);
        // Reply alone too long: prompt gone, reply cut on the right, last token kept.
        assert_eq!(truncate_row(&row, 3, Some(1)), vec![1, 20, 2]);
        // Without a BOS nothing is pinned.
        assert_eq!(truncate_row(&row, 4, None), vec![15, 20, 21, 2]);
    }

    #[test]
    fn collate_stacks_chosen_then_rejected_right_padded() {
        let col = PairCollator::new(TextCodec::Bytes, 64);
        let a = pair("a", "q", "yes", "no");
        let b = pair("b", "q2", "x", "longer one").with_weight(0.5);
        let batch = col.collate(&[&a, &b]).unwrap();
        assert_eq!(batch.n, 2);
        assert_eq!(batch.tokens.batch, 4);
        assert_eq!(batch.weights, vec![1.0, 0.5]);
        assert_eq!(batch.chosen_len, vec![4, 2]);
        assert_eq!(batch.rejected_len, vec![3, 11]);
        for r in 0..4 {
            let real = batch.tokens.real_tokens(r);
            assert_eq!(batch.pool[r], real.len() - 1);
            assert_eq!(*real.last().unwrap(), 2, "row {r} ends with EOS");
            // right padding: real tokens first
            assert!(
                batch.tokens.row_mask(r)[..real.len()]
                    .iter()
                    .all(|&m| m == 1)
            );
        }
        // Row 2 is a's rejected reply.
        let text = TextCodec::Bytes.encode(&a.prompt, &a.rejected).unwrap().ids;
        assert_eq!(batch.tokens.real_tokens(2), text);
    }

    #[test]
    fn bad_pairs_are_rejected() {
        let col = PairCollator::new(TextCodec::Bytes, 64);
        assert!(col.encode_pair(0, &pair("e", "q", "", "no")).is_err());
        let neg = pair("w", "q", "a", "b").with_weight(-1.0);
        assert!(matches!(
            col.encode_pair(0, &neg),
            Err(RewardError::BadPair { .. })
        ));
    }

    #[test]
    fn split_keeps_prompts_together_and_is_seeded() {
        let pairs: Vec<_> = (0..200)
            .flat_map(|i| {
                let p = format!("prompt {i}");
                [
                    pair(&format!("{i}a"), &p, "a", "b"),
                    pair(&format!("{i}b"), &p, "c", "d"),
                ]
            })
            .collect();
        let (train, eval) = split_by_prompt(pairs.clone(), 0.2, 7);
        assert_eq!(train.len() + eval.len(), 400);
        let frac = eval.len() as f64 / 400.0;
        assert!((0.1..0.3).contains(&frac), "{frac}");
        let eval_prompts: std::collections::HashSet<_> =
            eval.iter().map(|p| p.prompt[0].content.clone()).collect();
        assert!(
            train
                .iter()
                .all(|p| !eval_prompts.contains(&p.prompt[0].content))
        );
        let (train2, _) = split_by_prompt(pairs, 0.2, 7);
        assert_eq!(train, train2);
    }

    #[test]
    fn parquet_comparisons_convert_with_history_and_split() {
        use rlhf_prefdata::{Comparison, Message as PMessage, Role as PRole, Split};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.parquet");
        let mut a = Comparison::new("hh:1", "hh-rlhf", "and now?", "good", "bad");
        a.history = vec![
            PMessage::new(PRole::User, "hi"),
            PMessage::new(PRole::Assistant, "hello"),
        ];
        a.category = Some("chat".into());
        a.split = Some(Split::Train);
        let mut b = Comparison::new("hh:2", "hh-rlhf", "q", "x", "y");
        b.split = Some(Split::Test);
        rlhf_prefdata::write_comparisons(&path, [&a, &b], Default::default()).unwrap();
        let all = read_pairs(&path, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].prompt,
            vec![
                Message::user("hi"),
                Message::assistant("hello"),
                Message::user("and now?")
            ]
        );
        assert_eq!(all[0].category.as_deref(), Some("chat"));
        let test = read_pairs(&path, Some(Split::Test)).unwrap();
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].id, "hh:2");
    }

    #[test]
    fn jsonl_roundtrip_and_plain_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let pairs = vec![pair("a", "hi", "x", "y").with_category("chat")];
        write_pairs_jsonl(&path, &pairs).unwrap();
        assert_eq!(read_pairs_jsonl(&path).unwrap(), pairs);
        std::fs::write(
            &path,
            "{\"prompt\": \"hello\", \"chosen\": \"a\", \"rejected\": \"b\"}\n\n",
        )
        .unwrap();
        let got = read_pairs_jsonl(&path).unwrap();
        assert_eq!(got[0].id, "line-1");
        assert_eq!(got[0].prompt, vec![Message::user("hello")]);
        std::fs::write(&path, "{\"prompt\": 3}\n").unwrap();
        let err = read_pairs_jsonl(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
