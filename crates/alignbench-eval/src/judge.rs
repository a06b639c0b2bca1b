//! The `Judge` trait and `judge_all`: many prompts judged with bounded concurrency, an on-disk
//! cache and optional re-asking on parse failures.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::cache::{CachedJudgment, JudgmentCache, cache_key};
use crate::error::{Error, Result};
use crate::parse::{ParsedJudgment, parse_judgment};

/// Something that turns a judge prompt into a judgment text (analysis plus a rating dict).
///
/// Implementations: [`OpenAiJudge`](crate::OpenAiJudge) (an OpenAI-compatible API),
/// [`ReferenceOverlapJudge`](crate::ReferenceOverlapJudge) and
/// [`ScoreFnJudge`](crate::ScoreFnJudge) (offline). For a judge chosen at run time use
/// [`BoxedJudge`].
pub trait Judge: Send + Sync {
    /// The judge model id; part of the cache key, so two judges must not share one.
    fn model_id(&self) -> &str;

    /// Judges one prompt and returns the raw judgment text.
    fn judge(&self, prompt: &str) -> impl Future<Output = Result<String>> + Send;
}

/// The object-safe twin of [`Judge`], implemented for every `Judge`.
pub trait DynJudge: Send + Sync {
    /// See [`Judge::model_id`].
    fn dyn_model_id(&self) -> &str;

    /// See [`Judge::judge`].
    fn dyn_judge<'a>(
        &'a self,
        prompt: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;
}

impl<J: Judge> DynJudge for J {
    fn dyn_model_id(&self) -> &str {
        self.model_id()
    }

    fn dyn_judge<'a>(
        &'a self,
        prompt: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(self.judge(prompt))
    }
}

/// A judge chosen at run time (e.g. from a command-line flag).
pub type BoxedJudge = Box<dyn DynJudge>;

impl Judge for BoxedJudge {
    fn model_id(&self) -> &str {
        self.as_ref().dyn_model_id()
    }

    async fn judge(&self, prompt: &str) -> Result<String> {
        self.as_ref().dyn_judge(prompt).await
    }
}

impl<J: Judge> Judge for Arc<J> {
    fn model_id(&self) -> &str {
        self.as_ref().model_id()
    }

    fn judge(&self, prompt: &str) -> impl Future<Output = Result<String>> + Send {
        self.as_ref().judge(prompt)
    }
}

/// One prompt to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeJob {
    /// The caller's key (e.g. the question id); recorded in the cache for readability.
    pub key: String,
    /// The full judge prompt.
    pub prompt: String,
}

/// Options of [`judge_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeAllOptions {
    /// Most judge calls in flight at once (at least 1).
    pub max_concurrency: usize,
    /// Strict mode: re-ask the judge up to this many times while its output cannot be parsed
    /// (0 = keep the first answer, as AlignBench does). Only the final judgment is cached.
    pub strict_reasks: u32,
}

impl Default for JudgeAllOptions {
    fn default() -> Self {
        JudgeAllOptions {
            max_concurrency: 8,
            strict_reasks: 0,
        }
    }
}

/// A finished judgment.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedText {
    /// The raw judgment text.
    pub judgment: String,
    /// Its parse.
    pub parsed: ParsedJudgment,
    /// Whether it came from the cache (no judge call made).
    pub from_cache: bool,
    /// How many times the judge was asked (0 when cached).
    pub asks: u32,
}

/// The result of one job of [`judge_all`], in job order.
#[derive(Debug)]
pub struct JudgeOutcome {
    /// The job's key.
    pub key: String,
    /// The cache key of (judge model, prompt).
    pub hash: String,
    /// The judgment, or why there is none (this job can be retried by a re-run).
    pub result: Result<JudgedText>,
}

/// A judgment text before it is parsed, as [`judge_texts`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawJudged {
    /// The raw judgment text.
    pub(crate) judgment: String,
    /// Whether it came from the cache.
    pub(crate) from_cache: bool,
    /// How many times the judge was asked (0 when cached).
    pub(crate) asks: u32,
}

/// One job's result from [`judge_texts`], in job order.
#[derive(Debug)]
pub(crate) struct RawOutcome {
    /// The job's key.
    pub(crate) key: String,
    /// The cache key of (judge model, prompt).
    pub(crate) hash: String,
    /// The judgment, or why there is none.
    pub(crate) result: Result<RawJudged>,
}

/// Whether a judgment text can be used; strict mode re-asks while it cannot.
pub(crate) type Accept = dyn Fn(&str) -> bool + Sync;

async fn judge_one<J: Judge + ?Sized>(
    judge: &J,
    job: &JudgeJob,
    hash: &str,
    cache: Option<&JudgmentCache>,
    semaphore: &Semaphore,
    options: &JudgeAllOptions,
    accept: &Accept,
) -> Result<RawJudged> {
    if let Some(hit) = cache.and_then(|c| c.get(hash)) {
        return Ok(RawJudged {
            judgment: hit.judgment,
            from_cache: true,
            asks: 0,
        });
    }
    let (judgment, asks) = {
        let _permit = semaphore
            .acquire()
            .await
            .map_err(|_| Error::Judge("concurrency limiter closed".into()))?;
        let mut asks = 0;
        loop {
            asks += 1;
            let judgment = judge.judge(&job.prompt).await?;
            if accept(&judgment) || asks > options.strict_reasks {
                break (judgment, asks);
            }
            tracing::warn!(key = %job.key, asks, "judgment could not be parsed; asking again");
        }
    };
    if let Some(cache) = cache {
        cache.insert(CachedJudgment {
            hash: hash.to_owned(),
            key: job.key.clone(),
            judge_model: judge.model_id().to_owned(),
            judgment: judgment.clone(),
        })?;
    }
    tracing::debug!(key = %job.key, asks, "judged");
    Ok(RawJudged {
        judgment,
        from_cache: false,
        asks,
    })
}

/// The engine of [`judge_all`] for any output format: `accept` says whether a judgment text
/// parses (strict mode re-asks while it does not).
pub(crate) async fn judge_texts<J: Judge + ?Sized>(
    judge: &J,
    jobs: &[JudgeJob],
    cache: Option<&JudgmentCache>,
    options: &JudgeAllOptions,
    accept: &Accept,
) -> Vec<RawOutcome> {
    let semaphore = Semaphore::new(options.max_concurrency.max(1));
    let model = judge.model_id();
    let hashes: Vec<String> = jobs.iter().map(|j| cache_key(model, &j.prompt)).collect();
    // Judge each distinct hash once; later duplicates reuse the first job's result.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    let mut unique = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        if !first_of.contains_key(hash.as_str()) {
            first_of.insert(hash, unique.len());
            unique.push(i);
        }
    }
    tracing::info!(
        jobs = jobs.len(),
        distinct = unique.len(),
        judge = model,
        "judging"
    );
    let results = join_all(unique.iter().map(|&i| {
        judge_one(
            judge, &jobs[i], &hashes[i], cache, &semaphore, options, accept,
        )
    }))
    .await;

    let mut results: Vec<Option<Result<RawJudged>>> = results.into_iter().map(Some).collect();
    let mut shared: Vec<Option<std::result::Result<RawJudged, String>>> = vec![None; results.len()];
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let u = first_of[hashes[i].as_str()];
        let result = match results[u].take() {
            Some(result) => {
                shared[u] = Some(match &result {
                    Ok(text) => Ok(text.clone()),
                    Err(e) => Err(e.to_string()),
                });
                result
            }
            None => match shared[u].clone().expect("first occurrence comes first") {
                Ok(text) => Ok(text),
                Err(message) => Err(Error::Judge(message)),
            },
        };
        outcomes.push(RawOutcome {
            key: job.key.clone(),
            hash: hashes[i].clone(),
            result,
        });
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let cached = outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(|t| t.from_cache))
        .count();
    tracing::info!(jobs = jobs.len(), cached, failed, "judging finished");
    outcomes
}

/// Judges every job, at most `options.max_concurrency` at a time.
///
/// Cached judgments (same judge model and prompt) are returned without a call; every new
/// judgment is appended to the cache as soon as it is finished. Jobs with identical prompts
/// are judged once. A failing job does not stop the others; its error is in its outcome.
pub async fn judge_all<J: Judge + ?Sized>(
    judge: &J,
    jobs: &[JudgeJob],
    cache: Option<&JudgmentCache>,
    options: &JudgeAllOptions,
) -> Vec<JudgeOutcome> {
    let accept = |text: &str| !parse_judgment(text).is_failure();
    judge_texts(judge, jobs, cache, options, &accept)
        .await
        .into_iter()
        .map(|o| JudgeOutcome {
            key: o.key,
            hash: o.hash,
            result: o.result.map(|raw| JudgedText {
                parsed: parse_judgment(&raw.judgment),
                judgment: raw.judgment,
                from_cache: raw.from_cache,
                asks: raw.asks,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scripted {
        calls: AtomicU32,
        replies: Vec<&'static str>,
    }

    impl Judge for Scripted {
        fn model_id(&self) -> &str {
            "scripted"
        }

        async fn judge(&self, _prompt: &str) -> Result<String> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            Ok(self.replies[n.min(self.replies.len() - 1)].to_owned())
        }
    }

    fn jobs(prompts: &[&str]) -> Vec<JudgeJob> {
        prompts
            .iter()
            .enumerate()
            .map(|(i, p)| JudgeJob {
                key: i.to_string(),
                prompt: (*p).to_owned(),
            })
            .collect()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn strict_mode_reasks_until_parsable() {
        let judge = Scripted {
            calls: AtomicU32::new(0),
            replies: vec!["oops", "still no", "{'综合得分': 6}"],
        };
        let options = JudgeAllOptions {
            max_concurrency: 1,
            strict_reasks: 5,
        };
        let out = block_on(judge_all(&judge, &jobs(&["p"]), None, &options));
        let text = out[0].result.as_ref().unwrap();
        assert_eq!(text.asks, 3);
        assert_eq!(text.parsed.score, 6.0);

        let judge = Scripted {
            calls: AtomicU32::new(0),
            replies: vec!["oops"],
        };
        let options = JudgeAllOptions {
            max_concurrency: 1,
            strict_reasks: 2,
        };
        let out = block_on(judge_all(&judge, &jobs(&["p"]), None, &options));
        let text = out[0].result.as_ref().unwrap();
        assert_eq!(text.asks, 3);
        assert!(text.parsed.is_failure());
    }

    #[test]
    fn duplicate_prompts_are_judged_once_and_boxed_judges_work() {
        let judge: BoxedJudge = Box::new(Scripted {
            calls: AtomicU32::new(0),
            replies: vec!["{'综合得分': 4}"],
        });
        let out = block_on(judge_all(
            &judge,
            &jobs(&["a", "b", "a"]),
            None,
            &JudgeAllOptions::default(),
        ));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].hash, out[2].hash);
        assert_eq!(out[2].key, "2");
        assert!(out.iter().all(|o| o.result.is_ok()));
        assert_eq!(judge.model_id(), "scripted");
    }
}
