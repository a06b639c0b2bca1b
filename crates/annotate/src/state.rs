//! Who has voted on what, which pair to show next, and whether a vote or an undo is allowed.
//!
//! Pure bookkeeping (no I/O): the server holds one [`Assignment`] behind a mutex, checks a
//! request with it, appends the journal record while still holding the lock (so journal order
//! equals decision order), and applies the record. Replaying the journal on start goes
//! through the same [`Assignment::apply`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::journal::{Choice, Criteria, JournalRecord, Response, UndoRecord, VoteRecord};
use crate::pairs::CandidatePair;

/// Why a vote or undo is refused (mapped to 4xx responses by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No pair with this id.
    UnknownPair(String),
    /// The pair is skipped (flagged by the prompt-quality check).
    Skipped(String),
    /// The annotator already has a vote on this pair (with another or no `vote_id`).
    AlreadyVoted(String),
    /// A re-sent `vote_id` whose vote differs from the one recorded under it.
    ReplayDiffers {
        /// The pair.
        pair_id: String,
        /// The re-sent `vote_id`.
        vote_id: String,
        /// What was recorded under it.
        stored: VoteContent,
    },
    /// The pair already has its N votes (or N reservations by others).
    Full(String),
    /// Nothing to undo: no vote yet, or the last action was already an undo.
    NothingToUndo,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownPair(p) => write!(f, "unknown pair_id {p:?}"),
            Refusal::Skipped(p) => write!(
                f,
                "pair {p:?} is skipped (its prompt was flagged by the prompt-quality check)"
            ),
            Refusal::AlreadyVoted(p) => write!(
                f,
                "you already voted on pair {p:?}; duplicates are refused (undo your last vote to change it)"
            ),
            Refusal::ReplayDiffers {
                pair_id,
                vote_id,
                stored,
            } => write!(
                f,
                "vote_id {vote_id:?} was already recorded on pair {pair_id:?} with choice {:?}; \
                 this request differs from it, so nothing was changed (undo your last vote to \
                 change it)",
                stored.screen_choice()
            ),
            Refusal::Full(p) => write!(f, "pair {p:?} already has all the votes it needs"),
            Refusal::NothingToUndo => {
                f.write_str("nothing to undo: only your most recent vote can be undone, once")
            }
        }
    }
}

/// What a vote says, in file terms: compared when a `vote_id` is sent again, so that a retry
/// is confirmed only if it is the same vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteContent {
    /// Which response was shown on the left.
    pub left: Response,
    /// The overall judgement.
    pub choice: Choice,
    /// Per-criterion judgements.
    pub criteria: Criteria,
    /// The comment (may be empty).
    pub comment: String,
}

impl VoteContent {
    /// The content of a journal record.
    pub fn of(v: &VoteRecord) -> Self {
        VoteContent {
            left: v.left,
            choice: v.choice,
            criteria: v.criteria,
            comment: v.comment.clone(),
        }
    }

    /// The overall choice as the annotator saw it: `left`, `right` or `tie`.
    pub fn screen_choice(&self) -> &'static str {
        match self.choice.winner() {
            None => "tie",
            Some(r) if r == self.left => "left",
            Some(_) => "right",
        }
    }
}

/// Outcome of [`Assignment::check_vote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteCheck {
    /// A new vote; `served_ms` is when the pair was served to this annotator, if known.
    New {
        /// Index of the pair.
        pair: usize,
        /// When it was served (from the annotator's reservation).
        served_ms: Option<u64>,
    },
    /// The same `vote_id` was already recorded (a retry): nothing to write.
    Replay {
        /// `seq` of the recorded vote.
        seq: u64,
    },
}

#[derive(Debug, Clone)]
struct LiveVote {
    seq: u64,
    vote_id: Option<String>,
    content: VoteContent,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    pair: usize,
    served_ms: u64,
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct AnnotatorState {
    /// pair index → seq of the live vote.
    voted: HashMap<usize, u64>,
    /// seq of the last vote if the annotator's last action was a (live) vote.
    last_vote: Option<(u64, usize)>,
    lease: Option<Lease>,
}

/// An annotator's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Live votes of this annotator.
    pub done: usize,
    /// Pairs this annotator could still be shown (including the one on screen).
    pub remaining: usize,
    /// Pairs that are not skipped.
    pub total: usize,
}

/// The assignment state of one annotation session.
#[derive(Debug)]
pub struct Assignment {
    pairs: Arc<Vec<CandidatePair>>,
    index: HashMap<String, usize>,
    skipped: Vec<bool>,
    per_pair: usize,
    lease_ms: u64,
    live: Vec<Vec<LiveVote>>,
    /// Per pair: (annotator, expires_ms) of reservations; at most one per annotator overall.
    leases: Vec<Vec<(String, u64)>>,
    annotators: HashMap<String, AnnotatorState>,
    last_seq: u64,
    live_votes: usize,
    undone: usize,
}

impl Assignment {
    /// A fresh state for `pairs`, each to be shown to `per_pair` annotators, reservations
    /// lasting `lease_ms`. Pairs with `skipped[i]` are never shown.
    ///
    /// # Panics
    /// If `skipped` and `pairs` differ in length or `per_pair` is 0.
    pub fn new(
        pairs: Arc<Vec<CandidatePair>>,
        skipped: Vec<bool>,
        per_pair: usize,
        lease_ms: u64,
    ) -> Self {
        assert_eq!(pairs.len(), skipped.len(), "one skip flag per pair");
        assert!(per_pair > 0, "per_pair must be > 0");
        let index = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pair_id.clone(), i))
            .collect();
        let n = pairs.len();
        Assignment {
            pairs,
            index,
            skipped,
            per_pair,
            lease_ms,
            live: vec![Vec::new(); n],
            leases: vec![Vec::new(); n],
            annotators: HashMap::new(),
            last_seq: 0,
            live_votes: 0,
            undone: 0,
        }
    }

    /// The pairs.
    pub fn pairs(&self) -> &Arc<Vec<CandidatePair>> {
        &self.pairs
    }

    /// Index of a pair id.
    pub fn pair_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The `seq` the next record must carry.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// Live (not undone) votes in total.
    pub fn live_votes(&self) -> usize {
        self.live_votes
    }

    /// Undos applied in total.
    pub fn undone(&self) -> usize {
        self.undone
    }

    /// Pairs not skipped.
    pub fn active_pairs(&self) -> usize {
        self.skipped.iter().filter(|s| !**s).count()
    }

    /// Live votes on pair `i`.
    pub fn votes_on(&self, i: usize) -> usize {
        self.live[i].len()
    }

    fn others_leases(&self, pair: usize, who: &str, now_ms: u64) -> usize {
        self.leases[pair]
            .iter()
            .filter(|(a, exp)| a != who && *exp > now_ms)
            .count()
    }

    fn open_to(&self, pair: usize, who: &str, st: Option<&AnnotatorState>, now_ms: u64) -> bool {
        !self.skipped[pair]
            && !st.is_some_and(|s| s.voted.contains_key(&pair))
            && self.live[pair].len() + self.others_leases(pair, who, now_ms) < self.per_pair
    }

    /// The progress of `who`.
    pub fn progress(&self, who: &str, now_ms: u64) -> Progress {
        let st = self.annotators.get(who);
        let remaining = (0..self.pairs.len())
            .filter(|&i| self.open_to(i, who, st, now_ms))
            .count();
        Progress {
            done: st.map_or(0, |s| s.voted.len()),
            remaining,
            total: self.active_pairs(),
        }
    }

    /// `true` when `who` may undo now.
    pub fn can_undo(&self, who: &str) -> bool {
        self.annotators
            .get(who)
            .is_some_and(|s| s.last_vote.is_some())
    }

    fn drop_lease(&mut self, who: &str) {
        if let Some(l) = self.annotators.get_mut(who).and_then(|s| s.lease.take()) {
            self.leases[l.pair].retain(|(a, _)| a != who);
        }
    }

    fn set_lease(&mut self, who: &str, pair: usize, now_ms: u64) {
        self.drop_lease(who);
        let expires_ms = now_ms.saturating_add(self.lease_ms);
        self.leases[pair].retain(|(_, exp)| *exp > now_ms);
        self.leases[pair].push((who.to_owned(), expires_ms));
        self.annotators.entry(who.to_owned()).or_default().lease = Some(Lease {
            pair,
            served_ms: now_ms,
            expires_ms,
        });
    }

    /// The pair to show `who` next, reserving it for them: their current reservation if it is
    /// still valid, else the first pair (in file order) they have not voted on whose votes
    /// plus others' reservations are below N. `None` when nothing is left for them.
    pub fn next_for(&mut self, who: &str, now_ms: u64) -> Option<usize> {
        let st = self.annotators.get(who);
        if let Some(l) = st.and_then(|s| s.lease)
            && l.expires_ms > now_ms
            && self.open_to(l.pair, who, st, now_ms)
        {
            // Refresh the reservation but keep the original serving time.
            let served = l.served_ms;
            self.set_lease(who, l.pair, now_ms);
            if let Some(lease) = self.annotators.get_mut(who).and_then(|s| s.lease.as_mut()) {
                lease.served_ms = served;
            }
            return Some(l.pair);
        }
        let next = (0..self.pairs.len()).find(|&i| self.open_to(i, who, st, now_ms));
        match next {
            Some(i) => self.set_lease(who, i, now_ms),
            None => self.drop_lease(who),
        }
        next
    }

    /// Checks a vote of `who` on `pair_id` with optional idempotency key `vote_id` and the
    /// vote's `content`.
    ///
    /// A vote is accepted when the annotator has no live vote on the pair and either holds
    /// the pair's reservation or the pair still has room (votes + others' reservations < N).
    /// A vote whose `vote_id` is the one of the annotator's live vote on the pair is a replay
    /// when its content is the same, and refused when it differs.
    ///
    /// # Errors
    /// A [`Refusal`] saying why not.
    pub fn check_vote(
        &self,
        who: &str,
        pair_id: &str,
        vote_id: Option<&str>,
        content: &VoteContent,
        now_ms: u64,
    ) -> Result<VoteCheck, Refusal> {
        let pair = self
            .pair_index(pair_id)
            .ok_or_else(|| Refusal::UnknownPair(pair_id.to_owned()))?;
        let st = self.annotators.get(who);
        if let Some(&seq) = st.and_then(|s| s.voted.get(&pair)) {
            let replayed = self.live[pair]
                .iter()
                .find(|v| v.seq == seq && v.vote_id.is_some() && v.vote_id.as_deref() == vote_id);
            return match replayed {
                Some(v) if v.content == *content => Ok(VoteCheck::Replay { seq }),
                Some(v) => Err(Refusal::ReplayDiffers {
                    pair_id: pair_id.to_owned(),
                    vote_id: vote_id.unwrap_or_default().to_owned(),
                    stored: v.content.clone(),
                }),
                None => Err(Refusal::AlreadyVoted(pair_id.to_owned())),
            };
        }
        if self.skipped[pair] {
            return Err(Refusal::Skipped(pair_id.to_owned()));
        }
        let lease = st
            .and_then(|s| s.lease)
            .filter(|l| l.pair == pair && l.expires_ms > now_ms);
        if lease.is_none()
            && self.live[pair].len() + self.others_leases(pair, who, now_ms) >= self.per_pair
        {
            return Err(Refusal::Full(pair_id.to_owned()));
        }
        Ok(VoteCheck::New {
            pair,
            served_ms: st
                .and_then(|s| s.lease)
                .filter(|l| l.pair == pair)
                .map(|l| l.served_ms),
        })
    }

    /// Checks an undo by `who`: returns `(seq, pair index)` of the vote to withdraw.
    ///
    /// # Errors
    /// [`Refusal::NothingToUndo`].
    pub fn check_undo(&self, who: &str) -> Result<(u64, usize), Refusal> {
        self.annotators
            .get(who)
            .and_then(|s| s.last_vote)
            .ok_or(Refusal::NothingToUndo)
    }

    /// Applies a record (live or replayed). After an undo, the pair is reserved for the
    /// annotator again so that it is shown to them next.
    ///
    /// # Errors
    /// A message when the record contradicts the state (unknown pair, second live vote, undo
    /// of a vote that is not live or not the annotator's, `seq` not increasing); only a
    /// corrupt or foreign journal causes this.
    pub fn apply(&mut self, rec: &JournalRecord, now_ms: u64) -> Result<(), String> {
        if rec.seq() <= self.last_seq {
            return Err(format!("seq {} after seq {}", rec.seq(), self.last_seq));
        }
        match rec {
            JournalRecord::Vote(v) => self.apply_vote(v)?,
            JournalRecord::Undo(u) => self.apply_undo(u, now_ms)?,
        }
        self.last_seq = rec.seq();
        Ok(())
    }

    fn apply_vote(&mut self, v: &VoteRecord) -> Result<(), String> {
        let pair = self.pair_index(&v.pair_id).ok_or_else(|| {
            format!(
                "vote on unknown pair_id {:?} (was the pairs file changed?)",
                v.pair_id
            )
        })?;
        let st = self.annotators.entry(v.annotator.clone()).or_default();
        if st.voted.contains_key(&pair) {
            return Err(format!(
                "second live vote of {:?} on pair {:?}",
                v.annotator, v.pair_id
            ));
        }
        st.voted.insert(pair, v.seq);
        st.last_vote = Some((v.seq, pair));
        if st.lease.is_some_and(|l| l.pair == pair) {
            st.lease = None;
            self.leases[pair].retain(|(a, _)| a != &v.annotator);
        }
        self.live[pair].push(LiveVote {
            seq: v.seq,
            vote_id: v.vote_id.clone(),
            content: VoteContent::of(v),
        });
        self.live_votes += 1;
        Ok(())
    }

    fn apply_undo(&mut self, u: &UndoRecord, now_ms: u64) -> Result<(), String> {
        let pair = self
            .pair_index(&u.pair_id)
            .ok_or_else(|| format!("undo on unknown pair_id {:?}", u.pair_id))?;
        let st = self
            .annotators
            .get_mut(&u.annotator)
            .ok_or_else(|| format!("undo by {:?}, who never voted", u.annotator))?;
        if st.voted.get(&pair) != Some(&u.undoes) {
            return Err(format!(
                "undo of seq {} which is not a live vote of {:?} on {:?}",
                u.undoes, u.annotator, u.pair_id
            ));
        }
        st.voted.remove(&pair);
        st.last_vote = None;
        self.live[pair].retain(|v| v.seq != u.undoes);
        self.live_votes -= 1;
        self.undone += 1;
        self.set_lease(&u.annotator, pair, now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n_pairs: usize, per_pair: usize) -> Assignment {
        let pairs = (0..n_pairs)
            .map(|i| CandidatePair {
                pair_id: format!("p{i}"),
                ..CandidatePair::default()
            })
            .collect();
        Assignment::new(Arc::new(pairs), vec![false; n_pairs], per_pair, 1000)
    }

    fn plain() -> VoteContent {
        VoteContent {
            left: Response::A,
            choice: Choice::A,
            criteria: Criteria::default(),
            comment: String::new(),
        }
    }

    fn vote(st: &mut Assignment, who: &str, pair: &str, now: u64) -> Result<u64, Refusal> {
        match st.check_vote(who, pair, None, &plain(), now)? {
            VoteCheck::Replay { seq } => Ok(seq),
            VoteCheck::New { served_ms, .. } => {
                let seq = st.next_seq();
                st.apply(
                    &JournalRecord::Vote(VoteRecord {
                        seq,
                        at_ms: now,
                        annotator: who.into(),
                        pair_id: pair.into(),
                        vote_id: None,
                        left: Response::A,
                        choice: Choice::A,
                        criteria: Criteria::default(),
                        comment: String::new(),
                        served_ms,
                    }),
                    now,
                )
                .unwrap();
                Ok(seq)
            }
        }
    }

    #[test]
    fn each_pair_goes_to_n_annotators_and_nobody_twice() {
        let mut st = state(3, 2);
        let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
        for round in 0..5 {
            for who in ["a", "b", "c"] {
                if let Some(p) = st.next_for(who, round) {
                    let id = st.pairs()[p].pair_id.clone();
                    vote(&mut st, who, &id, round).unwrap();
                    seen.entry(who).or_default().push(p);
                }
            }
        }
        for i in 0..3 {
            assert_eq!(st.votes_on(i), 2, "pair {i}");
        }
        for v in seen.values() {
            let mut u = v.clone();
            u.dedup();
            assert_eq!(&u, v, "an annotator saw a pair twice");
        }
        assert_eq!(st.live_votes(), 6);
        assert_eq!(st.progress("a", 10).remaining, 0);
    }

    #[test]
    fn reservations_keep_concurrent_annotators_apart() {
        let mut st = state(2, 1);
        let pa = st.next_for("a", 0).unwrap();
        let pb = st.next_for("b", 0).unwrap();
        assert_ne!(pa, pb, "a reserved pair is not handed out again");
        assert_eq!(
            st.next_for("a", 1),
            Some(pa),
            "a reload shows the same pair"
        );
        assert_eq!(st.next_for("c", 1), None);
        // b's vote on a's reserved pair is refused; after expiry it would be allowed.
        let ida = st.pairs()[pa].pair_id.clone();
        assert_eq!(vote(&mut st, "b", &ida, 2), Err(Refusal::Full(ida.clone())));
        assert!(st.check_vote("c", &ida, None, &plain(), 5000).is_ok());
    }

    #[test]
    fn duplicates_are_refused_but_retries_with_the_same_vote_id_are_replays() {
        let mut st = state(1, 3);
        st.next_for("a", 0);
        vote(&mut st, "a", "p0", 0).unwrap();
        assert_eq!(
            vote(&mut st, "a", "p0", 1),
            Err(Refusal::AlreadyVoted("p0".into()))
        );
        assert_eq!(
            st.check_vote("a", "nope", None, &plain(), 1),
            Err(Refusal::UnknownPair("nope".into()))
        );
        let mut st = state(1, 3);
        let rec = JournalRecord::Vote(VoteRecord {
            seq: 1,
            at_ms: 0,
            annotator: "a".into(),
            pair_id: "p0".into(),
            vote_id: Some("v1".into()),
            left: Response::A,
            choice: Choice::Tie,
            criteria: Criteria::default(),
            comment: String::new(),
            served_ms: None,
        });
        st.apply(&rec, 0).unwrap();
        let tie = VoteContent {
            choice: Choice::Tie,
            ..plain()
        };
        assert_eq!(
            st.check_vote("a", "p0", Some("v1"), &tie, 0),
            Ok(VoteCheck::Replay { seq: 1 })
        );
        assert!(st.check_vote("a", "p0", Some("v2"), &tie, 0).is_err());
        // The same vote_id with another choice or comment is not a replay.
        let refused = st.check_vote("a", "p0", Some("v1"), &plain(), 0);
        assert_eq!(
            refused,
            Err(Refusal::ReplayDiffers {
                pair_id: "p0".into(),
                vote_id: "v1".into(),
                stored: tie.clone(),
            })
        );
        assert!(refused.unwrap_err().to_string().contains(r#"choice "tie""#));
        let commented = VoteContent {
            comment: "x".into(),
            ..tie
        };
        assert!(matches!(
            st.check_vote("a", "p0", Some("v1"), &commented, 0),
            Err(Refusal::ReplayDiffers { .. })
        ));
    }

    #[test]
    fn only_the_last_vote_can_be_undone_once_and_comes_back_next() {
        let mut st = state(3, 1);
        assert_eq!(st.check_undo("a"), Err(Refusal::NothingToUndo));
        let p = st.next_for("a", 0).unwrap();
        let id = st.pairs()[p].pair_id.clone();
        let seq = vote(&mut st, "a", &id, 0).unwrap();
        assert!(st.can_undo("a"));
        let (s, pair) = st.check_undo("a").unwrap();
        assert_eq!((s, pair), (seq, p));
        st.apply(
            &JournalRecord::Undo(UndoRecord {
                seq: st.next_seq(),
                at_ms: 1,
                annotator: "a".into(),
                undoes: seq,
                pair_id: id.clone(),
            }),
            1,
        )
        .unwrap();
        assert_eq!(st.live_votes(), 0);
        assert_eq!(st.check_undo("a"), Err(Refusal::NothingToUndo));
        assert_eq!(
            st.next_for("b", 2),
            Some(1),
            "the undone pair stays reserved for a"
        );
        assert_eq!(st.next_for("a", 2), Some(p));
        vote(&mut st, "a", &id, 3).unwrap();
    }

    #[test]
    fn skipped_pairs_are_never_shown_nor_votable() {
        let pairs = (0..2)
            .map(|i| CandidatePair {
                pair_id: format!("p{i}"),
                ..CandidatePair::default()
            })
            .collect();
        let mut st = Assignment::new(Arc::new(pairs), vec![true, false], 2, 1000);
        assert_eq!(st.next_for("a", 0), Some(1));
        assert_eq!(
            st.check_vote("b", "p0", None, &plain(), 0),
            Err(Refusal::Skipped("p0".into()))
        );
        assert_eq!(st.progress("b", 0).total, 1);
    }

    #[test]
    fn inconsistent_records_are_rejected() {
        let mut st = state(1, 2);
        let undo = JournalRecord::Undo(UndoRecord {
            seq: 1,
            at_ms: 0,
            annotator: "a".into(),
            undoes: 9,
            pair_id: "p0".into(),
        });
        assert!(st.apply(&undo, 0).is_err());
    }
}
