//! Offline judges through the whole pipeline: jobs, judge_all with a cache, aggregation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rlhf_alignbench_eval::{
    AnswerRecord, BoxedJudge, Category, Decoding, Error, Judge, JudgeAllOptions, JudgeTemplate,
    JudgmentCache, ReferenceOverlapJudge, ResultsTable, ScoreFnJudge, ScoreMode, Summary,
    aggregate, judge_all, judge_jobs, judged_items, judged_summary, parse_judgment,
    reward_to_score,
};

use crate::common::{synthetic_config, synthetic_questions};

fn answers() -> Vec<AnswerRecord> {
    let questions = synthetic_questions();
    questions
        .iter()
        .map(|q| AnswerRecord {
            question_id: q.question_id,
            model_id: "sft".into(),
            // Question 2 copies the reference; the others answer loosely.
            answer: if q.question_id == 2 {
                q.reference.clone()
            } else {
                format!("我认为：{}", &q.question)
            },
            decoding: Decoding::greedy(),
        })
        .collect()
}

#[test]
fn reference_overlap_judge_end_to_end_with_cache() {
    let questions = synthetic_questions();
    let config = synthetic_config();
    let jobs = judge_jobs(&questions, &answers(), &JudgeTemplate::builtin(), &config).unwrap();
    assert_eq!(jobs.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    let cache = JudgmentCache::open(&dir.path().join("judgments.jsonl")).unwrap();
    let judge = ReferenceOverlapJudge;
    let outcomes = judge_all(&judge, &jobs, Some(&cache), &JudgeAllOptions::default()).await_now();
    assert!(
        outcomes
            .iter()
            .all(|o| o.result.as_ref().is_ok_and(|t| !t.from_cache))
    );
    let items = judged_items(&outcomes).unwrap();
    let by_id = |id: u32| items.iter().find(|i| i.question_id == id).unwrap().score;
    assert_eq!(by_id(2), 10.0);
    assert!(by_id(1) < 10.0);
    let summary = aggregate(&questions, &items, ScoreMode::Compat).unwrap();
    assert_eq!(summary.judged, 4);
    assert_eq!(summary.category(Category::Mathematics), Some(10.0));
    assert_eq!(summary.dimensions[0].name, "综合得分");
    assert_eq!(cache.len(), 4);

    let again = judge_all(&judge, &jobs, Some(&cache), &JudgeAllOptions::default()).await_now();
    assert!(
        again
            .iter()
            .all(|o| o.result.as_ref().is_ok_and(|t| t.from_cache))
    );
    assert_eq!(judged_items(&again).unwrap(), items);
}

#[test]
fn score_fn_judge_keeps_decimals_and_clamps() {
    let questions = synthetic_questions();
    let config = synthetic_config();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let judge = ScoreFnJudge::new(
        "toy-reward-model",
        &questions,
        Box::new(move |q, answer| {
            counter.fetch_add(1, Ordering::SeqCst);
            match q.question_id {
                1 => 6.375,
                2 => -3.0,
                3 => 42.0,
                _ => answer.chars().count() as f64 / 4.0,
            }
        }),
    );
    let boxed: BoxedJudge = Box::new(judge);
    let jobs = judge_jobs(&questions, &answers(), &JudgeTemplate::builtin(), &config).unwrap();
    let outcomes = judge_all(&boxed, &jobs, None, &JudgeAllOptions::default()).await_now();
    let scores: Vec<f64> = outcomes
        .iter()
        .map(|o| o.result.as_ref().unwrap().parsed.score)
        .collect();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(&scores[..3], [6.38, 1.0, 10.0]);
    assert!(scores[3] > 1.0 && scores[3] < 10.0);
    // The judgment text goes through the ordinary parser.
    let text = &outcomes[0].result.as_ref().unwrap().judgment;
    assert_eq!(parse_judgment(text).score, 6.38);

    // A prompt for a question the judge does not know is an error for that job only.
    let mut foreign = jobs[0].clone();
    foreign.prompt = foreign.prompt.replace("一丝不苟", "马马虎虎");
    let out = judge_all(
        &boxed,
        &[foreign, jobs[1].clone()],
        None,
        &JudgeAllOptions::default(),
    )
    .await_now();
    assert!(out[0].result.is_err());
    assert!(out[1].result.is_ok());
}

/// A judge that fails on the questions listed in `fail` (all of them when empty).
struct FailingJudge {
    fail: Vec<u32>,
}

impl Judge for FailingJudge {
    fn model_id(&self) -> &str {
        "failing-judge"
    }

    async fn judge(&self, prompt: &str) -> rlhf_alignbench_eval::Result<String> {
        let failing = self.fail.is_empty()
            || self
                .fail
                .iter()
                .any(|id| prompt.contains(&format!("我认为：{}", synthetic_question(*id))));
        if failing {
            Err(Error::Judge("the judge is down".into()))
        } else {
            ReferenceOverlapJudge.judge(prompt).await
        }
    }
}

fn synthetic_question(id: u32) -> String {
    synthetic_questions()
        .into_iter()
        .find(|q| q.question_id == id)
        .unwrap()
        .question
}

#[test]
fn nothing_judged_is_an_error_and_failed_judgments_are_reported() {
    let questions = synthetic_questions();
    let config = synthetic_config();
    let jobs = judge_jobs(&questions, &answers(), &JudgeTemplate::builtin(), &config).unwrap();
    assert_eq!(jobs.len(), 4);
    let opts = JudgeAllOptions::default();

    // The judge fails on every item: an error that says so, with the first failure.
    let all = judge_all(&FailingJudge { fail: vec![] }, &jobs, None, &opts).await_now();
    let err = judged_summary(&questions, &all, ScoreMode::Compat).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NothingJudged {
                failed: 4,
                jobs: 4,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("4 of 4"), "{text}");
    assert!(text.contains("the judge is down"), "{text}");
    assert!(text.contains("question 1"), "{text}");
    // No job at all: nothing judged either.
    let err = judged_summary(&questions, &[], ScoreMode::Compat).unwrap_err();
    assert!(
        matches!(err, Error::NothingJudged { jobs: 0, .. }),
        "{err:?}"
    );

    // One failure out of four: a summary that counts it, in the JSON and the Markdown.
    let some = judge_all(&FailingJudge { fail: vec![3] }, &jobs, None, &opts).await_now();
    let (items, summary) = judged_summary(&questions, &some, ScoreMode::Compat).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!((summary.judged, summary.judge_errors), (3, 1));
    assert_eq!(summary.missing, 1);
    let mut table = ResultsTable::default();
    table.push("SFT", summary.clone());
    let md = table.to_markdown();
    assert!(md.contains("1 of 4 judgments failed"), "{md}");
    let rows: serde_json::Value = serde_json::from_str(&table.to_json().unwrap()).unwrap();
    assert_eq!(rows[0]["judge_errors"], 1, "{rows}");
    let back: Summary = serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
    assert_eq!(back.judge_errors, 1);
    // Without failures the table has no such line.
    let fine = judge_all(&ReferenceOverlapJudge, &jobs, None, &opts).await_now();
    let (_, summary) = judged_summary(&questions, &fine, ScoreMode::Compat).unwrap();
    assert_eq!(summary.judge_errors, 0);
    let mut table = ResultsTable::default();
    table.push("SFT", summary);
    assert!(!table.to_markdown().contains("failed"));
}

#[test]
fn a_reward_model_judges_through_its_precomputed_rewards() {
    assert!((reward_to_score(0.0) - 5.5).abs() < 1e-12);
    assert!((reward_to_score(2.0) - (1.0 + 9.0 / (1.0 + (-2.0f64).exp()))).abs() < 1e-12);
    assert!(reward_to_score(-50.0) < 1.0 + 1e-9 && reward_to_score(50.0) > 10.0 - 1e-9);
    let questions = synthetic_questions();
    let config = synthetic_config();
    let answers = answers();
    // Rewards for every answer but question 4's.
    let rewards = answers.iter().zip([0.0, 2.0, -2.0]).map(|(a, r)| {
        let q = questions
            .iter()
            .find(|q| q.question_id == a.question_id)
            .unwrap();
        ((q.question.clone(), a.answer.clone()), r)
    });
    let judge = ScoreFnJudge::reward_model("runs/rm", &questions, rewards);
    let boxed: BoxedJudge = Box::new(judge);
    assert_eq!(
        rlhf_alignbench_eval::Judge::model_id(&boxed),
        "rm:runs/rm+sigmoid-1to10-v1 (not comparable with GPT-4)"
    );
    let jobs = judge_jobs(&questions, &answers, &JudgeTemplate::builtin(), &config).unwrap();
    let outcomes = judge_all(&boxed, &jobs, None, &JudgeAllOptions::default()).await_now();
    let scores: Vec<Option<f64>> = outcomes
        .iter()
        .map(|o| o.result.as_ref().ok().map(|t| t.parsed.score))
        .collect();
    let want = |r: f64| Some((reward_to_score(r) * 100.0).round() / 100.0);
    assert_eq!(scores, [want(0.0), want(2.0), want(-2.0), None]);
}

/// Runs a future to completion on a fresh current-thread runtime.
trait AwaitNow: std::future::Future + Sized {
    fn await_now(self) -> Self::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self)
    }
}

impl<F: std::future::Future> AwaitNow for F {}
