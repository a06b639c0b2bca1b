//! Compaction of the vote journal into preference data ([`Comparison`] rows of the
//! `rlhf-prefdata` schema), with agreement and per-annotator statistics.
//!
//! Per pair, the live votes (undone ones removed) are counted as A / B / tie. A strict
//! majority for A or B becomes one comparison (chosen = the majority's response); a tie
//! majority or a split vote is dropped and counted. The comparisons then go through
//! [`clean_comparisons`] (identical responses, duplicates, cyclic preferences among pairs
//! sharing a prompt), whose counts are part of the report.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rlhf_prefdata::{
    CleanOptions, CleanReport, Comparison, CriterionLabel, WriterOptions, clean_comparisons,
    write_comparisons,
};
use serde::{Deserialize, Serialize};

use crate::agreement::{AgreementReport, agreement, majority};
use crate::error::{Error, Result};
use crate::journal::{Choice, JOURNAL_FILE, JournalRecord, Response, VoteRecord, read_journal};
use crate::pairs::{CandidatePair, file_sha256, read_pairs};
use crate::session::SessionInfo;
use rlhf_util::write_atomic;

/// Category names of the agreement statistics, in [`Choice::index`] order.
pub const CATEGORIES: [&str; 3] = ["a", "b", "tie"];

/// Settings of [`export`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOptions {
    /// Pairs with fewer live votes are left out (and counted). Default 1.
    pub min_votes: usize,
    /// Cleaning applied to the majority comparisons. Default: everything on.
    pub clean: CleanOptions,
    /// Shared items an annotator pair needs to enter the Cohen's-kappa average. Default 2.
    pub min_shared: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            min_votes: 1,
            clean: CleanOptions::default(),
            min_shared: 2,
        }
    }
}

/// Statistics of one annotator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotatorStats {
    /// Login name.
    pub name: String,
    /// Live votes.
    pub votes: usize,
    /// Votes this annotator withdrew.
    pub undone: usize,
    /// Live votes that are ties.
    pub ties: usize,
    /// Median seconds from serving a pair to the vote (votes whose serving time is known).
    pub median_seconds: Option<f64>,
    /// Votes per hour of active time (gaps over 10 minutes between votes do not count).
    pub votes_per_hour: Option<f64>,
    /// Share of the non-tie votes that picked the response shown on the left.
    pub left_rate: Option<f64>,
    /// `(left − n/2) / sqrt(n/4)` over the non-tie votes: |z| > 2.58 means a position bias
    /// at the 1% level (two-sided binomial, normal approximation).
    pub left_z: Option<f64>,
    /// Share of votes equal to the strict majority of the *other* annotators of the pair.
    pub agreement_with_majority: Option<f64>,
    /// Votes on pairs where the others had a strict majority (the denominator above).
    pub compared_with_majority: usize,
}

/// Everything [`export`] counted and computed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    /// The pairs file.
    pub pairs_file: PathBuf,
    /// Pairs in it.
    pub pairs_total: usize,
    /// Vote records in the journal (undone ones included).
    pub votes_cast: usize,
    /// Undo records.
    pub votes_undone: usize,
    /// Votes that count.
    pub votes_live: usize,
    /// Pairs with at least one live vote.
    pub pairs_voted: usize,
    /// Pairs left out for having fewer than `min_votes` live votes.
    pub below_min_votes: usize,
    /// Pairs whose majority is "tie" (dropped).
    pub tie_majority: usize,
    /// Pairs without a strict majority, e.g. one vote A and one vote B (dropped).
    pub no_majority: usize,
    /// Pairs with a strict A or B majority (the input of cleaning).
    pub majority_pairs: usize,
    /// The cleaning pass over those (identical responses, duplicates, cycles).
    pub clean: CleanReport,
    /// Rows written.
    pub exported: usize,
    /// Inter-annotator agreement over the live votes (categories a, b, tie).
    pub agreement: AgreementReport,
    /// Per-annotator statistics, by name.
    pub annotators: Vec<AnnotatorStats>,
    /// Bytes of an unconfirmed torn last journal line that were ignored.
    pub torn_tail_bytes: u64,
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

impl ExportReport {
    /// A Markdown summary (counts, agreement, one row per annotator).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Annotation export\n");
        let _ = writeln!(
            s,
            "Pairs file `{}`: {} pairs, {} voted. Votes: {} cast, {} undone, {} live.\n",
            self.pairs_file.display(),
            self.pairs_total,
            self.pairs_voted,
            self.votes_cast,
            self.votes_undone,
            self.votes_live
        );
        let _ = writeln!(s, "| step | pairs |\n|---|---:|");
        let _ = writeln!(s, "| voted | {} |", self.pairs_voted);
        let _ = writeln!(
            s,
            "| below min votes (dropped) | {} |",
            self.below_min_votes
        );
        let _ = writeln!(s, "| tie majority (dropped) | {} |", self.tie_majority);
        let _ = writeln!(s, "| no strict majority (dropped) | {} |", self.no_majority);
        let _ = writeln!(s, "| A/B majority | {} |", self.majority_pairs);
        for (reason, n) in &self.clean.dropped {
            let _ = writeln!(s, "| cleaning: {} (dropped) | {n} |", reason.as_str());
        }
        let _ = writeln!(s, "| **exported** | **{}** |\n", self.exported);
        let a = &self.agreement;
        let _ = writeln!(s, "## Agreement\n");
        let _ = writeln!(
            s,
            "{} items with ≥ 2 votes ({} unanimous); ratings per item: {}.\n",
            a.items_multi,
            a.unanimous,
            a.ratings_per_item
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "| statistic | value |\n|---|---:|");
        let _ = writeln!(s, "| Fleiss' κ | {} |", fmt_opt(a.fleiss_kappa, 3));
        let _ = writeln!(
            s,
            "| Cohen's κ, mean over {} annotator pairs (≥ {} shared) | {} |",
            a.cohen_rater_pairs,
            a.min_shared,
            fmt_opt(a.cohen_kappa_mean, 3)
        );
        let _ = writeln!(
            s,
            "| Cohen's κ, weighted by shared items | {} |",
            fmt_opt(a.cohen_kappa_weighted, 3)
        );
        let _ = writeln!(
            s,
            "| pairwise agreement | {} |\n",
            fmt_opt(a.pairwise_agreement, 3)
        );
        let _ = writeln!(s, "## Annotators\n");
        let _ = writeln!(
            s,
            "| annotator | votes | undone | ties | median s | votes/h | left rate | left z | agrees with majority (n) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for x in &self.annotators {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) |",
                x.name,
                x.votes,
                x.undone,
                x.ties,
                fmt_opt(x.median_seconds, 1),
                fmt_opt(x.votes_per_hour, 0),
                fmt_opt(x.left_rate, 3),
                fmt_opt(x.left_z, 2),
                fmt_opt(x.agreement_with_majority, 3),
                x.compared_with_majority
            );
        }
        s
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn label(mark: Option<Choice>, winner: Response) -> Option<CriterionLabel> {
    Some(match mark? {
        Choice::Tie => CriterionLabel::Tie,
        c if c.winner() == Some(winner) => CriterionLabel::Chosen,
        _ => CriterionLabel::Rejected,
    })
}

fn criterion_majority(
    votes: &[&VoteRecord],
    get: fn(&VoteRecord) -> Option<Choice>,
) -> Option<Choice> {
    let mut counts = [0u32; 3];
    for v in votes {
        if let Some(c) = get(v) {
            counts[c.index()] += 1;
        }
    }
    majority(&counts).map(|i| [Choice::A, Choice::B, Choice::Tie][i])
}

/// The live votes of a journal: undone votes removed.
///
/// # Errors
/// A message naming the line for an undo of a vote that is not live.
fn live_votes(
    journal: &Path,
    records: &[(u64, JournalRecord)],
) -> Result<(Vec<VoteRecord>, usize, usize)> {
    let mut live: BTreeMap<u64, VoteRecord> = BTreeMap::new();
    let (mut cast, mut undone) = (0, 0);
    for (line, rec) in records {
        match rec {
            JournalRecord::Vote(v) => {
                cast += 1;
                live.insert(v.seq, v.clone());
            }
            JournalRecord::Undo(u) => {
                undone += 1;
                match live.remove(&u.undoes) {
                    Some(v) if v.annotator == u.annotator && v.pair_id == u.pair_id => {}
                    _ => {
                        return Err(Error::BadLine {
                            file: journal.to_path_buf(),
                            line: *line,
                            message: format!(
                                "undo of seq {} which is not a live vote of {:?} on {:?}",
                                u.undoes, u.annotator, u.pair_id
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok((live.into_values().collect(), cast, undone))
}

/// Builds the comparisons and the report from pairs and journal records (no I/O).
///
/// # Errors
/// [`Error::BadLine`] (with `journal` as the file) for a vote on a pair that is not in
/// `pairs` or an inconsistent undo.
pub fn build_export(
    pairs: &[CandidatePair],
    records: &[(u64, JournalRecord)],
    journal: &Path,
    opts: &ExportOptions,
) -> Result<(Vec<Comparison>, ExportReport)> {
    let index: HashMap<&str, usize> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pair_id.as_str(), i))
        .collect();
    for (line, rec) in records {
        if let JournalRecord::Vote(v) = rec
            && !index.contains_key(v.pair_id.as_str())
        {
            return Err(Error::BadLine {
                file: journal.to_path_buf(),
                line: *line,
                message: format!(
                    "vote on pair_id {:?}, which the pairs file does not have",
                    v.pair_id
                ),
            });
        }
    }
    let (live, cast, undone) = live_votes(journal, records)?;
    let mut rep = ExportReport {
        pairs_total: pairs.len(),
        votes_cast: cast,
        votes_undone: undone,
        votes_live: live.len(),
        ..ExportReport::default()
    };
    let mut by_pair: Vec<Vec<&VoteRecord>> = vec![Vec::new(); pairs.len()];
    for v in &live {
        by_pair[index[v.pair_id.as_str()]].push(v);
    }

    // Majorities → comparisons.
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (i, votes) in by_pair.iter().enumerate() {
        if votes.is_empty() {
            continue;
        }
        rep.pairs_voted += 1;
        items.push(
            votes
                .iter()
                .map(|v| (v.annotator.clone(), v.choice.index()))
                .collect::<Vec<_>>(),
        );
        if votes.len() < opts.min_votes {
            rep.below_min_votes += 1;
            continue;
        }
        let mut counts = [0u32; 3];
        for v in votes {
            counts[v.choice.index()] += 1;
        }
        let winner = match majority(&counts) {
            None => {
                rep.no_majority += 1;
                continue;
            }
            Some(2) => {
                rep.tie_majority += 1;
                continue;
            }
            Some(0) => Response::A,
            Some(_) => Response::B,
        };
        rep.majority_pairs += 1;
        let p = &pairs[i];
        let (chosen, rejected) = match winner {
            Response::A => (&p.response_a, &p.response_b),
            Response::B => (&p.response_b, &p.response_a),
        };
        let mut annotators: Vec<String> = votes.iter().map(|v| v.annotator.clone()).collect();
        annotators.sort();
        let won = counts[winner as usize];
        let lost = counts[winner.other() as usize];
        rows.push(Comparison {
            id: format!("annotate:{}", p.pair_id),
            source: "annotate".into(),
            language: p.language.clone(),
            category: p.category.clone(),
            history: p.history.clone(),
            prompt: p.prompt.clone(),
            chosen: chosen.clone(),
            rejected: rejected.clone(),
            helpfulness: label(
                criterion_majority(votes, |v| v.criteria.helpfulness),
                winner,
            ),
            harmlessness: label(
                criterion_majority(votes, |v| v.criteria.harmlessness),
                winner,
            ),
            fluency: label(criterion_majority(votes, |v| v.criteria.fluency), winner),
            annotators,
            prompt_quality: p.prompt_quality,
            margin: Some((won - lost) as f32),
            ..Comparison::default()
        });
    }
    let (rows, clean) = clean_comparisons(rows, &opts.clean);
    rep.clean = clean;
    rep.exported = rows.len();
    rep.agreement = agreement(&items, &CATEGORIES, opts.min_shared);
    rep.annotators = annotator_stats(&live, records, &by_pair, &index);
    Ok((rows, rep))
}

fn annotator_stats(
    live: &[VoteRecord],
    records: &[(u64, JournalRecord)],
    by_pair: &[Vec<&VoteRecord>],
    index: &HashMap<&str, usize>,
) -> Vec<AnnotatorStats> {
    let mut mine: BTreeMap<&str, Vec<&VoteRecord>> = BTreeMap::new();
    for v in live {
        mine.entry(v.annotator.as_str()).or_default().push(v);
    }
    let mut undone: HashMap<&str, usize> = HashMap::new();
    for (_, r) in records {
        if let JournalRecord::Undo(u) = r {
            *undone.entry(u.annotator.as_str()).or_default() += 1;
            mine.entry(u.annotator.as_str()).or_default();
        }
    }
    mine.into_iter()
        .map(|(name, votes)| {
            let mut st = AnnotatorStats {
                name: name.to_owned(),
                votes: votes.len(),
                undone: undone.get(name).copied().unwrap_or(0),
                ties: votes.iter().filter(|v| v.choice == Choice::Tie).count(),
                ..AnnotatorStats::default()
            };
            let mut secs: Vec<f64> = votes
                .iter()
                .filter_map(|v| {
                    v.served_ms
                        .map(|s| v.at_ms.saturating_sub(s) as f64 / 1000.0)
                })
                .collect();
            st.median_seconds = median(&mut secs);
            let mut times: Vec<u64> = votes.iter().map(|v| v.at_ms).collect();
            times.sort_unstable();
            let active_ms: u64 = times
                .windows(2)
                .map(|w| w[1] - w[0])
                .filter(|&g| g <= 600_000)
                .sum();
            if times.len() >= 2 && active_ms > 0 {
                st.votes_per_hour = Some((times.len() - 1) as f64 * 3_600_000.0 / active_ms as f64);
            }
            let decided: Vec<&&VoteRecord> =
                votes.iter().filter(|v| v.choice != Choice::Tie).collect();
            if !decided.is_empty() {
                let n = decided.len() as f64;
                let left = decided.iter().filter(|v| v.picked_left()).count() as f64;
                st.left_rate = Some(left / n);
                st.left_z = Some((left - n / 2.0) / (n / 4.0).sqrt());
            }
            let mut agree = 0usize;
            for v in &votes {
                let mut counts = [0u32; 3];
                for o in &by_pair[index[v.pair_id.as_str()]] {
                    if o.annotator != v.annotator {
                        counts[o.choice.index()] += 1;
                    }
                }
                if let Some(m) = majority(&counts) {
                    st.compared_with_majority += 1;
                    agree += usize::from(m == v.choice.index());
                }
            }
            if st.compared_with_majority > 0 {
                st.agreement_with_majority = Some(agree as f64 / st.compared_with_majority as f64);
            }
            st
        })
        .collect()
}

/// Exports the session in `dir` to `out` (Parquet, the `rlhf-prefdata` schema, atomic) and
/// writes the report next to it as `<out stem>.report.json` and `.report.md`.
///
/// `pairs` defaults to the pairs file the session was served with (`session.json`); a given
/// file must have the same SHA-256 as that one.
///
/// # Errors
/// [`Error::BadFile`] if there is no session in `dir` or the pairs file differs from the one
/// served; journal and pairs read errors; write errors.
pub fn export(
    dir: &Path,
    pairs: Option<&Path>,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let session = SessionInfo::read(dir)?.ok_or_else(|| {
        Error::bad_file(
            dir.join(crate::session::SESSION_FILE),
            "not found: this directory was never served (run `annotate serve --out DIR` first)",
        )
    })?;
    let pairs_path = pairs.map_or_else(|| session.pairs_path.clone(), Path::to_path_buf);
    let sha = file_sha256(&pairs_path)?;
    if sha != session.pairs_sha256 {
        return Err(Error::bad_file(
            &pairs_path,
            format!(
                "SHA-256 {sha} differs from the pairs file this session was served with ({}, {}); votes would be matched to the wrong texts",
                session.pairs_path.display(),
                session.pairs_sha256
            ),
        ));
    }
    let pairs = read_pairs(&pairs_path)?;
    let journal = dir.join(JOURNAL_FILE);
    let contents = read_journal(&journal)?;
    let (rows, mut rep) = build_export(&pairs, &contents.records, &journal, opts)?;
    rep.pairs_file = pairs_path;
    rep.torn_tail_bytes = contents.torn_tail;
    write_comparisons(out, &rows, WriterOptions::default())?;
    let stem = out.with_extension("");
    let json_path = PathBuf::from(format!("{}.report.json", stem.display()));
    let md_path = PathBuf::from(format!("{}.report.md", stem.display()));
    write_atomic(&json_path, &serde_json::to_vec_pretty(&rep)?)?;
    write_atomic(&md_path, rep.to_markdown().as_bytes())?;
    tracing::info!(rows = rep.exported, out = %out.display(), "annotation export written");
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Criteria, UndoRecord};
    use rlhf_prefdata::DropReason;

    fn pair(id: &str, prompt: &str, a: &str, b: &str) -> CandidatePair {
        CandidatePair {
            pair_id: id.into(),
            source: "t".into(),
            prompt: prompt.into(),
            response_a: a.into(),
            response_b: b.into(),
            ..CandidatePair::default()
        }
    }

    struct J(Vec<(u64, JournalRecord)>);

    impl J {
        fn vote(&mut self, who: &str, pair: &str, choice: Choice, left: Response) -> u64 {
            let seq = self.0.len() as u64 + 1;
            self.0.push((
                seq,
                JournalRecord::Vote(VoteRecord {
                    seq,
                    at_ms: seq * 10_000,
                    annotator: who.into(),
                    pair_id: pair.into(),
                    vote_id: None,
                    left,
                    choice,
                    criteria: Criteria {
                        helpfulness: Some(choice),
                        ..Criteria::default()
                    },
                    comment: String::new(),
                    served_ms: Some(seq * 10_000 - 4_000),
                }),
            ));
            seq
        }
        fn undo(&mut self, who: &str, pair: &str, undoes: u64) {
            let seq = self.0.len() as u64 + 1;
            self.0.push((
                seq,
                JournalRecord::Undo(UndoRecord {
                    seq,
                    at_ms: seq * 10_000,
                    annotator: who.into(),
                    undoes,
                    pair_id: pair.into(),
                }),
            ));
        }
    }

    #[test]
    fn majorities_ties_cycles_and_undos_are_counted() {
        use Choice::*;
        use Response as R;
        let pairs = vec![
            pair("p1", "q1", "x", "y"),
            pair("p2", "q2", "x", "y"),
            pair("p3", "q3", "x", "y"),
            // p4 and p5 share a prompt and contradict each other: a cycle x > y > x.
            pair("p4", "q4", "x", "y"),
            pair("p5", "q4", "y", "x"),
            pair("p6", "q6", "same", "same"),
            pair("p7", "q7", "x", "y"),
        ];
        let mut j = J(Vec::new());
        // p1: B, B, A → chosen = y, margin 1.
        j.vote("u1", "p1", B, R::A);
        j.vote("u2", "p1", B, R::B);
        j.vote("u3", "p1", A, R::A);
        // p2: tie majority.
        j.vote("u1", "p2", Tie, R::A);
        j.vote("u2", "p2", Tie, R::A);
        // p3: split A vs B.
        j.vote("u1", "p3", A, R::A);
        j.vote("u2", "p3", B, R::A);
        // p4: x wins; p5: response_a = y wins → y > x: cycle.
        j.vote("u1", "p4", A, R::A);
        j.vote("u1", "p5", A, R::A);
        // p6: identical responses → cleaning drops it as a tie.
        j.vote("u1", "p6", A, R::A);
        // p7: u3 votes B, then undoes it and votes A.
        let s = j.vote("u3", "p7", B, R::B);
        j.undo("u3", "p7", s);
        j.vote("u3", "p7", A, R::B);
        let (rows, rep) = build_export(
            &pairs,
            &j.0,
            Path::new("votes.jsonl"),
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(rep.votes_cast, 12);
        assert_eq!(rep.votes_undone, 1);
        assert_eq!(rep.votes_live, 11);
        assert_eq!(rep.pairs_voted, 7);
        assert_eq!(rep.tie_majority, 1);
        assert_eq!(rep.no_majority, 1);
        assert_eq!(rep.majority_pairs, 5);
        assert_eq!(rep.clean.dropped_for(DropReason::Cycle), 2);
        assert_eq!(rep.clean.dropped_for(DropReason::Tie), 1);
        assert_eq!(rep.exported, 2);
        let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["annotate:p1", "annotate:p7"]);
        let p1 = &rows[0];
        assert_eq!((p1.chosen.as_str(), p1.rejected.as_str()), ("y", "x"));
        assert_eq!(p1.margin, Some(1.0));
        assert_eq!(p1.annotators, ["u1", "u2", "u3"]);
        assert_eq!(p1.helpfulness, Some(CriterionLabel::Chosen));
        assert_eq!(rows[1].chosen, "x");

        let u3 = rep.annotators.iter().find(|a| a.name == "u3").unwrap();
        assert_eq!((u3.votes, u3.undone), (2, 1));
        // u3 on p1 voted A with A on the left (picked left); on p7 A with B on the left.
        assert_eq!(u3.left_rate, Some(0.5));
        assert_eq!(u3.median_seconds, Some(4.0));
        // u3 vs the others' majority: p1 others = B, B → disagree; p7 no others.
        assert_eq!(
            (u3.compared_with_majority, u3.agreement_with_majority),
            (1, Some(0.0))
        );
        let md = rep.to_markdown();
        assert!(md.contains("| tie majority (dropped) | 1 |"), "{md}");
        assert!(md.contains("cleaning: cycle (dropped) | 2 |"), "{md}");
    }

    #[test]
    fn min_votes_and_foreign_pairs() {
        let pairs = vec![pair("p1", "q", "x", "y")];
        let mut j = J(Vec::new());
        j.vote("u1", "p1", Choice::A, Response::A);
        let opts = ExportOptions {
            min_votes: 2,
            ..ExportOptions::default()
        };
        let (rows, rep) = build_export(&pairs, &j.0, Path::new("v"), &opts).unwrap();
        assert!(rows.is_empty());
        assert_eq!(rep.below_min_votes, 1);
        j.vote("u1", "nope", Choice::A, Response::A);
        let err = build_export(&pairs, &j.0, Path::new("v.jsonl"), &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("v.jsonl:2:") && err.contains("nope"), "{err}");
    }
}
