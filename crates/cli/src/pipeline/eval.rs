//! The `eval` stage: greedy answers of SFT, PPO (with and without the reference reward) and
//! DPO to the held-out prompts; the gold judge's score per category (the AlignBench-style
//! table), the reward model's score, win/tie/lose against SFT by the gold judge (Table 4) and
//! reply lengths (Table 6).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Backend;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model};
use rlhf_core::generate::{GenerationConfig, generate};
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::Message;
use rlhf_reward::score_replies;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, s};
use crate::device::{parse_device, with_backend};
use crate::dpo::read_prompts;
use crate::reward::load_tokenizer;

/// One model's answer to one prompt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Answer {
    pub id: String,
    pub category: Option<String>,
    pub answer: String,
    pub tokens: usize,
    pub rm_score: f32,
    pub gold_score: Option<f64>,
    pub correct: Option<bool>,
}

/// Per model, per category aggregates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub n: usize,
    pub gold: f64,
    pub accuracy: f64,
    pub rm: f64,
    pub chars: f64,
    pub tokens: f64,
}

/// Win/tie/lose of a model against SFT.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Wtl {
    pub win: usize,
    pub tie: usize,
    pub lose: usize,
}

impl Wtl {
    pub(crate) fn net(&self) -> f64 {
        let n = (self.win + self.tie + self.lose).max(1) as f64;
        (self.win as f64 - self.lose as f64) / n
    }
}

/// The stage's summary (`eval/summary.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// model → category ("overall" included) → cell.
    pub table: BTreeMap<String, BTreeMap<String, Cell>>,
    /// model → category → win/tie/lose against SFT by the gold judge.
    pub versus_sft: BTreeMap<String, BTreeMap<String, Wtl>>,
    /// Whether a gold judge scored the answers.
    pub gold: bool,
    /// RM run (`rm`, `rm_unbalanced`) → agreement with the gold preference on its held-out
    /// pairs where the gold judge is not indifferent, and how many such pairs.
    pub rm_gold_agreement: BTreeMap<String, (f64, usize)>,
}

/// Agreement of an RM's held-out scores (`RUN/<rm>/eval/scores.jsonl`) with the gold
/// preference of each pair in `pairs_meta.jsonl` (`{"id", "gold": 1 | 0 | -1}`).
fn gold_agreement(scores: &Path, meta: &Path) -> Option<(f64, usize)> {
    let gold: BTreeMap<String, i64> = std::fs::read_to_string(meta)
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v["id"].as_str()?.to_string(), v["gold"].as_i64()?)))
        .collect();
    let (mut agree, mut n) = (0usize, 0usize);
    for l in std::fs::read_to_string(scores).ok()?.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let (Some(id), Some(c), Some(r)) = (
            v["id"].as_str(),
            v["chosen"].as_f64(),
            v["rejected"].as_f64(),
        ) else {
            continue;
        };
        match gold.get(id) {
            Some(&g) if g != 0 => {
                n += 1;
                if (c - r) * g as f64 > 0.0 {
                    agree += 1;
                }
            }
            _ => {}
        }
    }
    (n > 0).then(|| (agree as f64 / n as f64, n))
}

/// The models evaluated: name → HF directory (those that exist in this run).
fn models(ctx: &Ctx) -> Vec<(String, PathBuf)> {
    let mut out = vec![("SFT".to_string(), ctx.sft_model())];
    for (name, dir) in [("PPO", "ppo"), ("PPO-noref", "ppo_noref"), ("DPO", "dpo")] {
        let d = ctx.dir(dir).join("final");
        if d.join("config.json").is_file() {
            out.push((name.to_string(), d));
        }
    }
    out
}

#[allow(clippy::type_complexity)]
fn answer_all<B: Backend>(
    dir: &Path,
    prompts: &[(String, Option<String>, Vec<Message>)],
    max_new: usize,
    batch: usize,
    dev: B::Device,
) -> anyhow::Result<Vec<(String, usize)>> {
    let tok = load_tokenizer(None, Some(dir))?;
    let enc = tok.as_ref().map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let (model, _) = load_causal_lm::<B>(dir, LoadOptions::default(), &dev)
        .with_context(|| format!("loading {}", dir.display()))?;
    let mut out = Vec::with_capacity(prompts.len());
    let pb = crate::progress::bar(prompts.len(), "answers");
    for chunk in prompts.chunks(batch) {
        let rows = chunk
            .iter()
            .map(|(_, _, m)| enc.encode_prompt(m))
            .collect::<Result<Vec<_>, _>>()?;
        let cfg = GenerationConfig {
            eos_ids: enc.eos_ids(),
            ..GenerationConfig::greedy(max_new, enc.pad_id())
        };
        let g = generate(&model, &rows, &cfg, &dev)?;
        for ids in &g.new_ids {
            let text = enc.decode(ids)?;
            let eos = enc.eos_ids();
            let n = ids.iter().take_while(|i| !eos.contains(i)).count();
            out.push((text, n));
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(out)
}

#[allow(clippy::type_complexity)]
fn rm_scores<B: Backend>(
    rm_dir: &Path,
    prompts: &[(String, Option<String>, Vec<Message>)],
    answers: &[String],
    dev: B::Device,
) -> anyhow::Result<Vec<f32>> {
    let tok = load_tokenizer(None, Some(rm_dir))?;
    let enc = tok.as_ref().map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let (rm, _) = load_scalar_model::<B>(rm_dir, LoadOptions::default(), &dev)?;
    let items: Vec<(&[Message], &str)> = prompts
        .iter()
        .zip(answers)
        .map(|((_, _, m), a)| {
            (
                m.as_slice(),
                if a.trim().is_empty() { " " } else { a.as_str() },
            )
        })
        .collect();
    Ok(score_replies(&rm, &enc, &items, 1024, 32, &dev)?)
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let c = &ctx.cfg;
    let mut prompts = read_prompts(&c.data.eval_prompts)?;
    if let Some(l) = c.eval.limit {
        prompts.truncate(l);
    }
    let out_dir = ctx.dir("eval");
    std::fs::create_dir_all(&out_dir)?;
    let judge = super::gold::GoldJudge::load(c.data.world.as_deref())?;
    let device = parse_device(&c.run.device).map_err(anyhow::Error::msg)?;
    let rm_dir = ctx.dir("rm").join("final");
    let mut all: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    for (name, dir) in models(ctx) {
        let path = out_dir.join(format!("answers_{name}.jsonl"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let done: Vec<Answer> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if done.len() == prompts.len() {
                all.insert(name, done);
                continue;
            }
        }
        eprintln!("  answers of {name} ({} prompts)", prompts.len());
        let (max_new, batch) = (c.eval.max_new_tokens, c.eval.batch);
        let generated = with_backend!(device, |B, dev| answer_all::<B>(
            &dir, &prompts, max_new, batch, dev
        ))?;
        let texts: Vec<String> = generated.iter().map(|(t, _)| t.clone()).collect();
        let scores = with_backend!(device, |B, dev| rm_scores::<B>(
            &rm_dir, &prompts, &texts, dev
        ))?;
        let answers: Vec<Answer> = prompts
            .iter()
            .zip(generated)
            .zip(scores)
            .map(|(((id, cat, _), (answer, tokens)), rm_score)| {
                let v = judge.as_ref().map(|j| j.judge(id, &answer));
                Answer {
                    id: id.clone(),
                    category: cat.clone(),
                    gold_score: v.map(|v| v.score),
                    correct: v.map(|v| v.correct),
                    answer,
                    tokens,
                    rm_score,
                }
            })
            .collect();
        let text: String = answers
            .iter()
            .map(|a| serde_json::to_string(a).expect("serialisable") + "\n")
            .collect();
        rlhf_core::io::write_atomic(&path, text.as_bytes())?;
        all.insert(name, answers);
    }
    let mut sum = Summary {
        gold: judge.is_some(),
        ..Default::default()
    };
    for (name, answers) in &all {
        let t = sum.table.entry(name.clone()).or_default();
        for a in answers {
            for cat in [
                "overall".to_string(),
                a.category.clone().unwrap_or("-".into()),
            ] {
                let cell = t.entry(cat).or_default();
                cell.n += 1;
                cell.gold += a.gold_score.unwrap_or(0.0);
                cell.accuracy += f64::from(u8::from(a.correct.unwrap_or(false)));
                cell.rm += a.rm_score as f64;
                cell.chars += a.answer.chars().count() as f64;
                cell.tokens += a.tokens as f64;
            }
        }
        for cell in t.values_mut() {
            let n = cell.n.max(1) as f64;
            cell.gold /= n;
            cell.accuracy /= n;
            cell.rm /= n;
            cell.chars /= n;
            cell.tokens /= n;
        }
    }
    if let (Some(j), Some(sft)) = (&judge, all.get("SFT")) {
        for (name, answers) in &all {
            if name == "SFT" {
                continue;
            }
            let v = sum.versus_sft.entry(name.clone()).or_default();
            for (a, b) in answers.iter().zip(sft) {
                let o = j.compare(&a.id, &a.answer, &b.answer);
                for cat in [
                    "overall".to_string(),
                    a.category.clone().unwrap_or("-".into()),
                ] {
                    let w = v.entry(cat).or_default();
                    match o {
                        std::cmp::Ordering::Greater => w.win += 1,
                        std::cmp::Ordering::Equal => w.tie += 1,
                        std::cmp::Ordering::Less => w.lose += 1,
                    }
                }
            }
        }
    }
    if let Some(w) = &c.data.world {
        for rm in ["rm", "rm_unbalanced"] {
            let scores = ctx.dir(rm).join("eval/scores.jsonl");
            if let Some(a) = gold_agreement(&scores, &w.join("pairs_meta.jsonl")) {
                sum.rm_gold_agreement.insert(rm.to_string(), a);
            }
        }
    }
    let text = serde_json::to_string_pretty(&sum)?;
    rlhf_core::io::write_atomic(&out_dir.join("summary.json"), text.as_bytes())?;
    Ok(
        json!({"summary": s(out_dir.join("summary.json")), "models": all.keys().collect::<Vec<_>>()}),
    )
}
