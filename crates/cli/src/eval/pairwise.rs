//! `rlhf eval pairwise` (win/tie/lose of two answer files in both orders, plus a rating sheet
//! for human raters) and `rlhf eval tabulate` (a filled-in sheet).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use clap::Args;
use rlhf_alignbench_eval as ab;
use rlhf_alignbench_eval::{
    AnswerRecord, CombineRule, JudgeAllOptions, JudgmentCache, PairItem, ReferenceOverlapJudge,
};
use rlhf_core::backend::DeviceSpec;
use rlhf_core::tokenizer::Message;
use serde::Serialize;

use super::{
    ApiJudgeArgs, JudgeSpec, NOT_COMPARABLE, parse_judge, print, read_answers, rm_scores, runtime,
    write,
};
use crate::device::parse_device;

#[derive(Debug, Args)]
pub(super) struct PairwiseArgs {
    /// Answers of model A (an answers JSONL file).
    #[arg(long)]
    a: PathBuf,
    /// Answers of model B.
    #[arg(long)]
    b: PathBuf,
    /// AlignBench questions (JSONL).
    #[arg(long)]
    questions: PathBuf,
    /// overlap | rm:RM_DIR | openai (an LLM judge asked in both orders, verdicts cached in
    /// OUT/judgments.jsonl).
    #[arg(long, value_parser = parse_judge)]
    judge: JudgeSpec,
    #[command(flatten)]
    api: ApiJudgeArgs,
    /// LLM judge: re-ask up to twice while a verdict cannot be parsed (remaining failures
    /// still count as a tie vote).
    #[arg(long)]
    strict: bool,
    /// Scores closer than this are a tie (rm judge; the overlap judge ties on equal 1–10 scores).
    #[arg(long, default_value_t = 0.0)]
    tie_margin: f64,
    /// `consistent` (win only if preferred in both orders) or `sum`.
    #[arg(long, default_value = "consistent", value_parser = parse_rule)]
    rule: CombineRule,
    /// Seed of the left/right order in the rating sheet (keep it for `tabulate`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N (rm judge).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Output directory (pairwise.md, pairwise.json, rating_sheet.csv; judgments.jsonl for
    /// the LLM judge).
    #[arg(long)]
    out: PathBuf,
}

fn parse_rule(s: &str) -> Result<CombineRule, String> {
    match s {
        "consistent" => Ok(CombineRule::Consistent),
        "sum" => Ok(CombineRule::Sum),
        _ => Err(format!("invalid rule `{s}`: expected consistent or sum")),
    }
}

#[derive(Debug, Serialize)]
struct PairwiseSummary<'a> {
    judge: String,
    comparable_with_gpt4: bool,
    items: usize,
    only_in_one_file: usize,
    net_win_rate: Option<f64>,
    tally: &'a ab::PairwiseTally,
    rating_sheet: PathBuf,
    seed: u64,
    /// LLM judge only: verdicts that could not be parsed (each voted for a tie).
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_failures: Option<usize>,
    /// LLM judge only: items left out because a judge call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    judge_errors: Option<usize>,
    /// LLM judge only: judgments read from OUT/judgments.jsonl.
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_judgments: Option<usize>,
    /// LLM judge only: how the judge used the two positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<ab::PositionStats>,
}

pub(super) fn pairwise(a: PairwiseArgs) -> anyhow::Result<()> {
    let questions = ab::load_questions(&a.questions)?;
    let (model_a, ans_a) = read_answers(&a.a)?;
    let (model_b, ans_b) = read_answers(&a.b)?;
    if model_a == model_b {
        tracing::warn!(model = %model_a, "both answer files carry the same model id");
    }
    let b_by_id: HashMap<u32, &AnswerRecord> = ans_b.iter().map(|r| (r.question_id, r)).collect();
    let a_by_id: HashMap<u32, &AnswerRecord> = ans_a.iter().map(|r| (r.question_id, r)).collect();
    let mut items = Vec::new();
    for q in &questions {
        if let (Some(x), Some(y)) = (a_by_id.get(&q.question_id), b_by_id.get(&q.question_id)) {
            items.push(PairItem {
                id: q.question_id.to_string(),
                category: q.category.label().to_owned(),
                prompt: q.question.clone(),
                answer_a: x.answer.clone(),
                answer_b: y.answer.clone(),
                reference: Some(q.reference.clone()),
            });
        }
    }
    let only_in_one = a_by_id.len() + b_by_id.len() - 2 * items.len();
    if items.is_empty() {
        bail!("no question is answered in both files");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (report, llm, judge_label) = match &a.judge {
        JudgeSpec::OpenAi => {
            let judge = a.api.judge()?;
            let cache = JudgmentCache::open(&a.out.join("judgments.jsonl"))?;
            let options = JudgeAllOptions {
                max_concurrency: a.api.judge_concurrency.max(1),
                strict_reasks: if a.strict { 2 } else { 0 },
            };
            let llm = runtime()?.block_on(ab::evaluate_pairwise_llm(
                &judge,
                &model_a,
                &model_b,
                &items,
                a.rule,
                Some(&cache),
                &options,
            ))?;
            if let Some(first) = llm.judge_errors.first() {
                if llm.report.items.is_empty() {
                    bail!(
                        "the judge failed on every item (first, question {}: {})",
                        first.id,
                        first.error
                    );
                }
                tracing::warn!(
                    failed = llm.judge_errors.len(),
                    "items left out after judge errors; rerun to retry them"
                );
            }
            let label = llm.judge_model.clone();
            (llm.report.clone(), Some(llm), label)
        }
        JudgeSpec::Overlap | JudgeSpec::Rm(_) => {
            let rm = match &a.judge {
                JudgeSpec::Rm(dir) => Some(dir.as_path()),
                _ => None,
            };
            let (scores, label) = pair_scores(&a, rm, &items)?;
            let report = ab::evaluate_pairwise_scored(
                &model_a,
                &model_b,
                &items,
                a.rule,
                &scores,
                a.tie_margin,
            )?;
            (report, None, label)
        }
    };
    let mut md = format!(
        "# Pairwise: {model_a} vs {model_b}\n\nJudge: `{judge_label}` (both orders, rule {:?}).",
        a.rule
    );
    match &llm {
        None => md.push_str(&format!(" **{NOT_COMPARABLE}.**\n\n")),
        Some(l) => md.push_str(&format!(
            " LLM judge with the built-in pairwise prompt (`[[A]]`/`[[B]]`/`[[C]]`).\n\n\
             Unparseable verdicts (counted as a tie vote): {}. Items left out after judge errors: {}. \
             Verdicts for the first / second position / tie: {} / {} / {}; items whose verdict \
             changed when the answers were swapped: {}.\n\n",
            l.parse_failures,
            l.judge_errors.len(),
            l.position.first,
            l.position.second,
            l.position.tie,
            l.position.inconsistent_items
        )),
    }
    md.push_str(&report.tally.to_markdown());
    write(&a.out.join("pairwise.md"), &md)?;
    let json = match &llm {
        Some(l) => serde_json::to_string_pretty(l)?,
        None => serde_json::to_string_pretty(&report)?,
    };
    write(&a.out.join("pairwise.json"), &json)?;
    let sheet = a.out.join("rating_sheet.csv");
    ab::write_rating_sheet(&sheet, &items, a.seed)?;
    print(&PairwiseSummary {
        judge: judge_label,
        comparable_with_gpt4: llm.is_some(),
        items: report.items.len(),
        only_in_one_file: only_in_one,
        net_win_rate: report.tally.overall.net_win_rate(),
        tally: &report.tally,
        rating_sheet: sheet,
        seed: a.seed,
        parse_failures: llm.as_ref().map(|l| l.parse_failures),
        judge_errors: llm.as_ref().map(|l| l.judge_errors.len()),
        cached_judgments: llm.as_ref().map(|l| l.cached),
        position: llm.as_ref().map(|l| l.position),
    })
}

/// Pointwise scores of both answers of every item: the reward model's raw reward (the model in
/// `rm`), else the overlap judge's 1–10 score against the item's reference. Returns them with
/// the judge's label.
fn pair_scores(
    a: &PairwiseArgs,
    rm: Option<&Path>,
    items: &[PairItem],
) -> anyhow::Result<(Vec<(f64, f64)>, String)> {
    let Some(dir) = rm else {
        let scores = items
            .iter()
            .map(|it| {
                let reference = it.reference.as_deref().unwrap_or_default();
                let score = |ans: &str| f64::from(ReferenceOverlapJudge::score(ans, reference));
                (score(&it.answer_a), score(&it.answer_b))
            })
            .collect();
        return Ok((scores, ReferenceOverlapJudge::MODEL_ID.to_owned()));
    };
    let prompts: Vec<[Message; 1]> = items.iter().map(|it| [Message::user(&it.prompt)]).collect();
    let scored: Vec<(&[Message], &str)> = prompts
        .iter()
        .zip(items)
        .flat_map(|(m, it)| {
            [
                (&m[..], it.answer_a.as_str()),
                (&m[..], it.answer_b.as_str()),
            ]
        })
        .collect();
    let raw = rm_scores(dir, &scored, a.device, DType::F32)?;
    let scores = raw.chunks_exact(2).map(|r| (r[0], r[1])).collect();
    Ok((scores, format!("rm:{} (raw reward)", dir.display())))
}

#[derive(Debug, Args)]
pub(super) struct TabulateArgs {
    /// A rating sheet filled in by a rater (verdict column: left, right or tie).
    #[arg(long)]
    sheet: PathBuf,
    /// Name of model A (as in the pairwise run).
    #[arg(long, default_value = "A")]
    model_a: String,
    /// Name of model B.
    #[arg(long, default_value = "B")]
    model_b: String,
    /// The seed the sheet was made with.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write tabulated.md and tabulated.json here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) fn tabulate(a: TabulateArgs) -> anyhow::Result<()> {
    let t = ab::read_rating_sheet(&a.sheet, &a.model_a, &a.model_b, a.seed)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(
            &dir.join("tabulated.md"),
            &format!(
                "# Human ratings\n\n{}\nUnrated rows: {}\n",
                t.tally.to_markdown(),
                t.unrated
            ),
        )?;
        write(
            &dir.join("tabulated.json"),
            &serde_json::to_string_pretty(&t)?,
        )?;
    }
    print(&serde_json::json!({
        "net_win_rate": t.tally.overall.net_win_rate(),
        "unrated": t.unrated,
        "tally": t.tally,
    }))
}
