//! The paper's findings as pre-declared tests: each verdict function takes plain numbers (counts,
//! per-seed or per-prompt values), runs the one test declared for it (`docs/findings.md`) at
//! [`ALPHA`], and returns a [`Finding`] that says what was measured, which test, n, the
//! statistic, p and an effect size, and whether the finding reproduced. A "no" says whether the
//! data point significantly the other way ([`Verdict::Reversed`]) or merely do not decide
//! ([`Verdict::NotSignificant`]); input that cannot be tested gives [`Verdict::NotMeasured`]
//! with the reason, never a made-up value.
//!
//! The statistics are `rlhf_util::stats`'s; nothing here reads files.

use rlhf_util::stats::{self, Ternary, Test};
use serde::{Deserialize, Serialize};

use crate::pairwise::WinTieLoss;

/// The pre-declared significance level of every finding.
pub const ALPHA: f64 = 0.05;

/// The equivalence margin of "starts near 0", as a fraction of the reward model's held-out
/// score standard deviation.
pub const NEAR_ZERO_MARGIN_SD: f64 = 0.25;

/// Every finding's id, in report order.
pub const FINDING_IDS: &[&str] = &[
    "rm_agrees_with_labels",
    "rm_agrees_with_gold",
    "length_balancing_reduces_length_preference",
    "reference_reward_starts_near_zero",
    "reference_reward_slows_kl",
    "ntp_limits_forgetting",
    "ppo_beats_sft",
    "dpo_beats_sft",
    "dpo_lengthens_more_than_ppo",
    "gains_in_writing_not_math",
    "ppo_beats_sft_on_chosen",
    "dpo_beats_sft_on_chosen",
];

/// The held-out categories of "writing and role-play" (the world's `category` names).
pub const WRITING_CATEGORIES: &[&str] = &["文本写作", "角色扮演"];
/// The held-out categories of "maths and logic".
pub const MATH_CATEGORIES: &[&str] = &["数学计算", "逻辑推理"];

/// Which test decided, on how many observations, with which statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestInfo {
    /// The test, with its alternative (e.g. `exact binomial vs 0.5, one-sided (greater)`).
    pub name: String,
    /// Observations the test used.
    pub n: usize,
    /// The statistic's name (`k`, `t`, `b`…).
    pub statistic_name: String,
    /// Its value.
    pub statistic: f64,
}

/// An effect size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// What it measures (e.g. `agreement − 0.5`).
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// How a finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant at [`ALPHA`] in the claimed direction.
    Reproduced,
    /// Neither the claim nor its opposite is significant.
    NotSignificant,
    /// The opposite of the claim is significant at [`ALPHA`].
    Reversed,
    /// The inputs do not allow the test (missing stage, too few seeds, no variance).
    NotMeasured,
}

/// One finding, checked (`findings.json` holds a list of these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id (one of [`FINDING_IDS`]).
    pub id: String,
    /// The paper's claim.
    pub finding: String,
    /// The numbers behind the verdict, in words.
    pub measured: String,
    /// The test (`None` when not measured).
    pub test: Option<TestInfo>,
    /// The p-value of the claim's one-sided alternative.
    pub p_value: Option<f64>,
    /// The effect size.
    pub effect: Option<Effect>,
    /// `true` reproduced, `false` not (see `verdict`), `null` not measured.
    pub reproduced: Option<bool>,
    /// Reproduced, not significant, reversed or not measured.
    pub verdict: Verdict,
}

impl Finding {
    /// A finding that could not be measured, and why.
    pub fn not_measured(id: &str, finding: &str, reason: impl Into<String>) -> Self {
        Finding {
            id: id.into(),
            finding: finding.into(),
            measured: format!("not measured: {}", reason.into()),
            test: None,
            p_value: None,
            effect: None,
            reproduced: None,
            verdict: Verdict::NotMeasured,
        }
    }

    /// The verdict as report text: `yes`, `**no** (reversed)`, `**no** (not significant)` or
    /// `not measured`.
    pub fn verdict_text(&self) -> &'static str {
        match self.verdict {
            Verdict::Reproduced => "yes",
            Verdict::NotSignificant => "**no** (not significant)",
            Verdict::Reversed => "**no** (reversed)",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// A decided finding: `p_claim` is the p of the claim's one-sided alternative, `p_opposite` the
/// p of the opposite one.
fn decided(
    id: &str,
    claim: &str,
    measured: String,
    test: TestInfo,
    p_claim: f64,
    p_opposite: f64,
    effect: Effect,
) -> Finding {
    let verdict = if p_claim < ALPHA {
        Verdict::Reproduced
    } else if p_opposite < ALPHA {
        Verdict::Reversed
    } else {
        Verdict::NotSignificant
    };
    let why = match verdict {
        Verdict::Reproduced => String::new(),
        Verdict::Reversed => {
            format!("; reversed: the opposite is significant (p = {p_opposite:.3})")
        }
        _ => {
            format!("; not significant (p = {p_claim:.3} ≥ {ALPHA}; opposite p = {p_opposite:.3})")
        }
    };
    Finding {
        id: id.into(),
        finding: claim.into(),
        measured: format!("{measured}{why}"),
        test: Some(test),
        p_value: Some(p_claim),
        effect: Some(effect),
        reproduced: Some(verdict == Verdict::Reproduced),
        verdict,
    }
}

fn info(name: &str, t: &Test, statistic_name: &str) -> TestInfo {
    TestInfo {
        name: name.into(),
        n: t.n,
        statistic_name: statistic_name.into(),
        statistic: t.statistic,
    }
}

fn effect(name: &str, value: f64) -> Effect {
    Effect {
        name: name.into(),
        value,
    }
}

/// Agreement of `k` of `n` pairs above chance: exact one-sided binomial test vs 0.5.
fn agreement(id: &str, claim: &str, what: &str, k: usize, n: usize) -> Finding {
    let Some(t) = stats::binomial_test(k, n, 0.5) else {
        return Finding::not_measured(id, claim, format!("no {what} (k = {k}, n = {n})"));
    };
    let a = k as f64 / n as f64;
    let ci = stats::wilson_interval(k, n, stats::Z_95).unwrap_or((0.0, 1.0));
    decided(
        id,
        claim,
        format!(
            "agreement {k}/{n} = {a:.3} on {what} (Wilson 95 % CI {:.3}–{:.3})",
            ci.0, ci.1
        ),
        info("exact binomial vs 0.5, one-sided (greater)", &t, "k"),
        t.p_greater,
        t.p_less,
        effect("agreement − 0.5", a - 0.5),
    )
}

/// `rm_agrees_with_labels`: the RM orders `k` of `n` held-out pairs as the annotators did.
pub fn rm_agrees_with_labels(k: usize, n: usize) -> Finding {
    agreement(
        "rm_agrees_with_labels",
        "The reward model agrees with held-out annotator labels above chance",
        "held-out pairs",
        k,
        n,
    )
}

/// `rm_agrees_with_gold`: the RM agrees with the gold judge on `k` of the `n` held-out pairs the
/// gold judge decides.
pub fn rm_agrees_with_gold(k: usize, n: usize) -> Finding {
    agreement(
        "rm_agrees_with_gold",
        "The reward model agrees with the gold judge above chance",
        "held-out pairs the gold judge decides",
        k,
        n,
    )
}

/// `length_balancing_reduces_length_preference`: per held-out pair, whether the balanced RM and
/// the unbalanced RM prefer the longer reply (`None`: equal lengths, dropped). Exact McNemar on
/// the discordant pairs; the claim is that the unbalanced RM alone prefers the longer reply more
/// often than the balanced one alone.
pub fn length_balancing_reduces_length_preference(
    pairs: &[(Option<bool>, Option<bool>)],
) -> Finding {
    let id = "length_balancing_reduces_length_preference";
    let claim = "Length balancing lowers the reward model's preference for longer replies";
    let both: Vec<(bool, bool)> = pairs.iter().filter_map(|&(b, u)| Some((b?, u?))).collect();
    let b = both.iter().filter(|&&(b, u)| b && !u).count();
    let c = both.iter().filter(|&&(b, u)| !b && u).count();
    let Some(t) = stats::mcnemar_exact(b, c) else {
        return Finding::not_measured(
            id,
            claim,
            format!(
                "no discordant pair among {} pairs of unequal length",
                both.len()
            ),
        );
    };
    let n = both.len() as f64;
    let pb = both.iter().filter(|p| p.0).count() as f64 / n;
    let pu = both.iter().filter(|p| p.1).count() as f64 / n;
    decided(
        id,
        claim,
        format!(
            "prefers the longer reply: balanced {pb:.3} vs unbalanced {pu:.3} on {} pairs; \
             discordant: only balanced {b}, only unbalanced {c}",
            both.len()
        ),
        info("exact McNemar, one-sided (balanced < unbalanced)", &t, "b"),
        t.p_less,
        t.p_greater,
        effect(
            "P(balanced prefers longer) − P(unbalanced prefers longer)",
            pb - pu,
        ),
    )
}

fn seeds_short(id: &str, claim: &str, with: &[f64], without: &[f64]) -> Option<Finding> {
    if with.len() != without.len() {
        return Some(Finding::not_measured(
            id,
            claim,
            format!("{} seeds with vs {} without", with.len(), without.len()),
        ));
    }
    (with.len() < 2).then(|| {
        Finding::not_measured(
            id,
            claim,
            format!("{} seed(s); a paired test needs ≥ 2", with.len()),
        )
    })
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `reference_reward_starts_near_zero`: per seed, the mean training reward of the first PPO
/// iteration with (`with`) and without (`without`) the reference reward, paired by seed;
/// `margin` > 0 is the equivalence margin ([`NEAR_ZERO_MARGIN_SD`] × the RM's score std).
///
/// Reproduced when both hold (intersection–union test, p = the larger p): the with-reference
/// mean is within ±margin of 0 (TOST, the 90 % t CI inside ±margin) and |with| < |without|
/// (paired one-sided t-test). Reversed when |with| > |without| significantly.
pub fn reference_reward_starts_near_zero(with: &[f64], without: &[f64], margin: f64) -> Finding {
    let id = "reference_reward_starts_near_zero";
    let claim = "With the reference reward, PPO's reward starts near 0 (closer than without)";
    if let Some(f) = seeds_short(id, claim, with, without) {
        return f;
    }
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let (aw, ao) = (abs(with), abs(without));
    let (Some(eq), Some(t)) = (stats::tost(with, margin), stats::paired_t_test(&aw, &ao)) else {
        return Finding::not_measured(
            id,
            claim,
            format!(
                "no variance across seeds or no margin (with: {}; without: {}; margin {margin:.3})",
                list(with),
                list(without)
            ),
        );
    };
    let diff = stats::mean(&aw).unwrap_or(0.0) - stats::mean(&ao).unwrap_or(0.0);
    decided(
        id,
        claim,
        format!(
            "first-iteration reward per seed: with [{}], without [{}]; with: mean {:.3}, 90 % CI \
             {:.3}–{:.3} vs margin ±{margin:.3} (TOST p = {:.3}); |with| < |without|: paired t = \
             {:.2} (p = {:.3})",
            list(with),
            list(without),
            eq.mean,
            eq.ci90.0,
            eq.ci90.1,
            eq.p,
            t.statistic,
            t.p_less
        ),
        info(
            "TOST ±margin on the with-reference start ∩ paired t on |start|, one-sided (with < without)",
            &t,
            "t",
        ),
        eq.p.max(t.p_less),
        t.p_greater,
        effect("mean |with| − mean |without|", diff),
    )
}

/// A paired one-sided t-test over seeds that `with` is lower than `without`, with the mean
/// difference, d_z and a seeded 95 % bootstrap CI of the difference in `measured`.
fn lower_with(id: &str, claim: &str, what: &str, with: &[f64], without: &[f64]) -> Finding {
    if let Some(f) = seeds_short(id, claim, with, without) {
        return f;
    }
    let Some(t) = stats::paired_t_test(with, without) else {
        return Finding::not_measured(
            id,
            claim,
            format!(
                "the per-seed differences have no variance (with: {}; without: {})",
                list(with),
                list(without)
            ),
        );
    };
    let d = stats::differences(with, without).unwrap_or_default();
    let m = stats::mean(&d).unwrap_or(0.0);
    let dz = stats::cohens_dz(with, without).unwrap_or(0.0);
    let ci = stats::bootstrap_mean_ci(&d, 0.95, 2000, 0).unwrap_or((m, m));
    decided(
        id,
        claim,
        format!(
            "{what} per seed: with [{}], without [{}]; difference {m:.4} (bootstrap 95 % CI \
             {:.4}–{:.4}, d_z {dz:.2})",
            list(with),
            list(without),
            ci.0,
            ci.1
        ),
        info("paired t over seeds, one-sided (with < without)", &t, "t"),
        t.p_less,
        t.p_greater,
        effect("mean difference (with − without)", m),
    )
}

/// `reference_reward_slows_kl`: per seed, the mean KL to the SFT policy over the last half of
/// the PPO iterations, with and without the reference reward (paired by seed).
pub fn reference_reward_slows_kl(with: &[f64], without: &[f64]) -> Finding {
    lower_with(
        "reference_reward_slows_kl",
        "With the reference reward, KL to the SFT policy grows more slowly",
        "mean KL over the last half of the iterations",
        with,
        without,
    )
}

/// `ntp_limits_forgetting`: per seed, the rise of the held-out SFT NLL (nats/token, after PPO −
/// before) with the NTP term (`with`) and without it (`without`).
pub fn ntp_limits_forgetting(with: &[f64], without: &[f64]) -> Finding {
    lower_with(
        "ntp_limits_forgetting",
        "The NTP term limits forgetting of the SFT data (smaller rise of its NLL under PPO)",
        "held-out SFT NLL rise (nats/token)",
        with,
        without,
    )
}

fn beats_sft(id: &str, model: &str, o: Option<WinTieLoss>) -> Finding {
    beats(
        id,
        &format!("{model} beats SFT by the gold judge"),
        model,
        o,
    )
}

/// Sign test of `o`, `model`'s win/tie/loss against a baseline named in `claim`.
fn beats(id: &str, claim: &str, model: &str, o: Option<WinTieLoss>) -> Finding {
    let Some(o) = o else {
        return Finding::not_measured(id, claim, format!("no gold-judge comparison of {model}"));
    };
    let Some(t) = stats::sign_test(o.wins, o.losses) else {
        return Finding::not_measured(
            id,
            claim,
            format!("every one of {} prompts is a tie", o.ties),
        );
    };
    decided(
        id,
        claim,
        format!(
            "win {} / tie {} / lose {} over {} prompts",
            o.wins,
            o.ties,
            o.losses,
            o.n()
        ),
        info(
            "sign test (ties dropped), one-sided (wins > losses)",
            &t,
            "wins",
        ),
        t.p_greater,
        t.p_less,
        effect("(wins − losses) / prompts", o.net_win_rate().unwrap_or(0.0)),
    )
}

/// `ppo_beats_sft`: PPO's win/tie/loss against SFT by the gold judge over the held-out prompts.
pub fn ppo_beats_sft(o: Option<WinTieLoss>) -> Finding {
    beats_sft("ppo_beats_sft", "PPO", o)
}

/// `dpo_beats_sft`: DPO's win/tie/loss against SFT.
pub fn dpo_beats_sft(o: Option<WinTieLoss>) -> Finding {
    beats_sft("dpo_beats_sft", "DPO", o)
}

/// `ppo_beats_sft_on_chosen`: PPO's win/tie/loss against the control, the SFT model trained
/// further on the chosen replies of the training pairs (PPO's NTP data): what PPO adds beyond
/// supervised learning on the preferred replies.
pub fn ppo_beats_sft_on_chosen(o: Option<WinTieLoss>) -> Finding {
    beats(
        "ppo_beats_sft_on_chosen",
        "PPO beats the control (SFT trained further on the chosen replies) by the gold judge",
        "PPO",
        o,
    )
}

/// `dpo_beats_sft_on_chosen`: DPO's win/tie/loss against the same control.
pub fn dpo_beats_sft_on_chosen(o: Option<WinTieLoss>) -> Finding {
    beats(
        "dpo_beats_sft_on_chosen",
        "DPO beats the control (SFT trained further on the chosen replies) by the gold judge",
        "DPO",
        o,
    )
}

/// `dpo_lengthens_more_than_ppo`: per held-out prompt, the reply lengths in tokens of SFT, PPO
/// and DPO (same prompt order). Paired t over prompts of (DPO − SFT) − (PPO − SFT).
pub fn dpo_lengthens_more_than_ppo(sft: &[f64], ppo: &[f64], dpo: &[f64]) -> Finding {
    let id = "dpo_lengthens_more_than_ppo";
    let claim = "DPO lengthens replies more than PPO (Table 6)";
    if sft.len() != ppo.len() || sft.len() != dpo.len() {
        return Finding::not_measured(
            id,
            claim,
            format!("{} / {} / {} answers", sft.len(), ppo.len(), dpo.len()),
        );
    }
    let grow = |m: &[f64]| stats::differences(m, sft).unwrap_or_default();
    let (gd, gp) = (grow(dpo), grow(ppo));
    let Some(t) = stats::paired_t_test(&gd, &gp) else {
        return Finding::not_measured(
            id,
            claim,
            format!(
                "{} prompts without variation in the length differences",
                sft.len()
            ),
        );
    };
    let m = |v: &[f64]| stats::mean(v).unwrap_or(0.0);
    decided(
        id,
        claim,
        format!(
            "mean length change vs SFT ({:.1} tokens): DPO {:+.2}, PPO {:+.2} over {} prompts",
            m(sft),
            m(&gd),
            m(&gp),
            sft.len()
        ),
        info(
            "paired t over prompts, one-sided (DPO − SFT > PPO − SFT)",
            &t,
            "t",
        ),
        t.p_greater,
        t.p_less,
        effect("mean difference in tokens", m(&gd) - m(&gp)),
    )
}

/// `gains_in_writing_not_math`: PPO's win/tie/loss against SFT pooled over the writing and
/// role-play categories vs over the maths and logic ones. Exact permutation test of the
/// difference of net win rates.
pub fn gains_in_writing_not_math(writing: WinTieLoss, math: WinTieLoss) -> Finding {
    let id = "gains_in_writing_not_math";
    let claim = "PPO's gains over SFT are in writing and role-play, not maths and logic";
    let tern = |o: WinTieLoss| Ternary {
        wins: o.wins,
        ties: o.ties,
        losses: o.losses,
    };
    let Some(t) = stats::ternary_permutation_test(tern(writing), tern(math)) else {
        return Finding::not_measured(
            id,
            claim,
            format!(
                "{} writing/role-play and {} maths/logic prompts",
                writing.n(),
                math.n()
            ),
        );
    };
    let net = |o: WinTieLoss| o.net_win_rate().unwrap_or(0.0);
    decided(
        id,
        claim,
        format!(
            "net win rate: writing + role-play {:+.3} ({}/{}/{}), maths + logic {:+.3} ({}/{}/{})",
            net(writing),
            writing.wins,
            writing.ties,
            writing.losses,
            net(math),
            math.wins,
            math.ties,
            math.losses
        ),
        info(
            "exact permutation test of net win rates, one-sided (writing > maths)",
            &t,
            "difference",
        ),
        t.p_greater,
        t.p_less,
        effect("net win rate, writing − maths", t.statistic),
    )
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
