//! The `eval` stage: greedy answers of SFT, the `sft_chosen` control, PPO (with and without the
//! reference reward), DPO and the `compare` stage's critic-free estimators to the held-out prompts, scored by the reward model and the gold judge. Wiring only:
//! generation is `rlhf_alignbench_eval::LocalModel`, RM scoring `crate::eval::rm_scores`, the
//! aggregation (per category, win/tie/lose against SFT, lengths) `HeldOutSummary`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Backend;
use burn::tensor::DType;
use rlhf_alignbench_eval::{Decoding, HeldOutAnswer, HeldOutSummary, LocalModel, Reply};
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm};
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::Message;
use serde_json::{Value, json};

use super::{Ctx, s};
use crate::device::{parse_device, with_backend};
use crate::dpo::read_prompts;
use crate::eval::rm_scores;
use crate::reward::load_tokenizer;

/// The models evaluated: name → HF directory (those that exist in this run).
fn models(ctx: &Ctx) -> Vec<(String, PathBuf)> {
    let mut out = vec![("SFT".to_string(), ctx.sft_model())];
    let mut runs: Vec<(String, PathBuf)> = [
        (rlhf_alignbench_eval::CONTROL, "sft_chosen"),
        ("PPO", "ppo"),
        ("PPO-noref", "ppo_noref"),
        ("DPO", "dpo"),
    ]
    .iter()
    .map(|(n, d)| (n.to_string(), ctx.dir(d)))
    .collect();
    for m in &ctx.cfg.compare.methods {
        if let Some(label) = super::compare::label(m) {
            runs.push((label.to_string(), ctx.dir("compare").join(m)));
        }
    }
    for (name, dir) in runs {
        let d = dir.join("final");
        if d.join("config.json").is_file() {
            out.push((name, d));
        }
    }
    out
}

/// Greedy replies of the model in `dir` to `prompts`, read and written as it was trained.
fn answer_all<B: Backend>(
    dir: &Path,
    prompts: &[Vec<Message>],
    max_new: usize,
    batch: usize,
    dev: B::Device,
) -> anyhow::Result<Vec<Reply>> {
    let tok = load_tokenizer(None, Some(dir))?;
    let codec = tok.as_ref().map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let (model, cfg) = load_causal_lm::<B>(dir, LoadOptions::default(), &dev)
        .with_context(|| format!("loading {}", dir.display()))?;
    let lm = LocalModel {
        model: &model,
        config: &cfg,
        codec: &codec,
        device: &dev,
    };
    let decoding = Decoding {
        max_new_tokens: Some(max_new),
        ..Decoding::greedy()
    };
    let mut out = Vec::with_capacity(prompts.len());
    let pb = crate::progress::bar(prompts.len(), "answers");
    lm.generate(prompts, &decoding, batch, |b| {
        pb.inc(b.replies.len() as u64);
        out.extend(b.replies);
        Ok(())
    })
    .with_context(|| format!("answering with {}", dir.display()))?;
    pb.finish_and_clear();
    Ok(out)
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let c = &ctx.cfg;
    let mut prompts = read_prompts(&c.data.eval_prompts)?;
    if let Some(l) = c.eval.limit {
        prompts.truncate(l);
    }
    let messages: Vec<Vec<Message>> = prompts.iter().map(|(_, _, m)| m.clone()).collect();
    let out_dir = ctx.dir("eval");
    std::fs::create_dir_all(&out_dir)?;
    let judge = super::gold::GoldJudge::load(c.data.world.as_deref())?;
    let device = parse_device(&c.run.device).map_err(anyhow::Error::msg)?;
    let rm_dir = ctx.dir("rm").join("final");
    let mut all: BTreeMap<String, Vec<HeldOutAnswer>> = BTreeMap::new();
    for (name, dir) in models(ctx) {
        let path = out_dir.join(format!("answers_{name}.jsonl"));
        if let Ok(done) = rlhf_util::read_jsonl::<HeldOutAnswer>(&path)
            && done.len() == prompts.len()
        {
            all.insert(name, done);
            continue;
        }
        eprintln!("  answers of {name} ({} prompts)", prompts.len());
        let (max_new, batch) = (c.eval.max_new_tokens, c.eval.batch);
        let replies = with_backend!(device, |B, dev| answer_all::<B>(
            &dir, &messages, max_new, batch, dev
        ))?;
        let scored: Vec<(&[Message], &str)> = messages
            .iter()
            .zip(&replies)
            .map(|(m, r)| (m.as_slice(), r.text.as_str()))
            .collect();
        let scores = rm_scores(&rm_dir, &scored, device, DType::F32)?;
        let answers: Vec<HeldOutAnswer> = prompts
            .iter()
            .zip(replies)
            .zip(scores)
            .map(|(((id, cat, _), reply), rm_score)| {
                let v = judge.as_ref().map(|j| j.judge(id, &reply.text));
                HeldOutAnswer {
                    id: id.clone(),
                    category: cat.clone(),
                    gold_score: v.map(|v| v.score),
                    correct: v.map(|v| v.correct),
                    answer: reply.text,
                    tokens: reply.tokens,
                    rm_score: rm_score as f32,
                }
            })
            .collect();
        rlhf_util::write_jsonl(&path, &answers)?;
        all.insert(name, answers);
    }
    let mut sum = HeldOutSummary::new(&all, judge.is_some());
    if let Some(j) = &judge {
        sum.compare_with_baseline(&all, |id, a, b| j.compare(id, a, b));
    }
    if let Some(w) = &c.data.world {
        for rm in ["rm", "rm_unbalanced"] {
            let scores = ctx.dir(rm).join("eval/scores.jsonl");
            let meta = w.join("pairs_meta.jsonl");
            if let Some(a) = rlhf_alignbench_eval::gold_agreement(&scores, &meta) {
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
