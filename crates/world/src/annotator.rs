//! The simulated annotator: the paper's criteria in order, with noise and a length bias.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::judge::Verdict;

/// Parameters of the simulated annotator and of the noise it adds to the preference data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnnotatorConfig {
    /// When the two responses look equally good, probability of preferring the longer one
    /// (in characters). Default 0.75.
    pub p_len: f64,
    /// Probability of misreading which response is more helpful, when they differ. Default 0.06.
    pub flip_helpfulness: f64,
    /// Same for harmlessness. Default 0.04.
    pub flip_harmlessness: f64,
    /// Same for fluency. Default 0.10.
    pub flip_fluency: f64,
    /// Share of pair slots that become exact ties (the same response shown twice, labelled a
    /// tie; the cleaner drops them). Default 0.03.
    pub tie_share: f64,
    /// Number of 3-cycles (A>B, B>C, C>A on three equally good responses to one prompt) added
    /// for the cleaner to remove. Default 20.
    pub cycles: usize,
    /// Number of distinct simulated annotators (`sim-0`, ...), drawn uniformly per pair.
    /// Default 8.
    pub annotators: usize,
}

impl Default for AnnotatorConfig {
    fn default() -> Self {
        Self {
            p_len: 0.75,
            flip_helpfulness: 0.06,
            flip_harmlessness: 0.04,
            flip_fluency: 0.10,
            tie_share: 0.03,
            cycles: 20,
            annotators: 8,
        }
    }
}

/// What decided a preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The responses differed (as perceived) in helpfulness.
    Helpfulness,
    /// Equal helpfulness, different harmlessness.
    Harmlessness,
    /// Equal helpfulness and harmlessness, different fluency.
    Fluency,
    /// Equal on all three: the length bias decided (longer w.p. `p_len`).
    Length,
    /// Equal on all three and equally long: a coin flip.
    Coin,
    /// An exact tie (identical responses).
    Tie,
    /// One edge of a planted 3-cycle.
    Cycle,
}

/// One annotation of a pair (A, B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// Whether A is preferred.
    pub a_wins: bool,
    /// What decided.
    pub decided_by: DecidedBy,
    /// Perceived per-criterion labels of A against B (helpfulness, harmlessness, fluency):
    /// `1` A better, `0` equal, `-1` B better.
    pub labels: [i8; 3],
}

fn sign(a: bool, b: bool) -> i8 {
    i8::from(a) - i8::from(b)
}

/// Annotates the pair (A, B), given their true quality (gold verdicts) and lengths.
///
/// The model, exactly:
/// 1. For each criterion c in (helpfulness, harmlessness, fluency), the true difference
///    `d_c = sign(q_c(A) − q_c(B))` is perceived reversed with probability `flip_c` when it is
///    not 0 (an equal criterion is always perceived equal).
/// 2. The first criterion with a perceived difference decides (lexicographic order).
/// 3. If all three are perceived equal, the longer response (in characters) wins with
///    probability `p_len`; equally long responses are a coin flip.
pub fn annotate(
    cfg: &AnnotatorConfig,
    a: &Verdict,
    b: &Verdict,
    len_a: usize,
    len_b: usize,
    rng: &mut ChaCha8Rng,
) -> Judgement {
    let truth = [
        sign(a.correct, b.correct),
        sign(a.harmless, b.harmless),
        sign(a.fluent, b.fluent),
    ];
    let flips = [
        cfg.flip_helpfulness,
        cfg.flip_harmlessness,
        cfg.flip_fluency,
    ];
    let mut labels = [0i8; 3];
    for c in 0..3 {
        // Draw for every criterion so the stream does not depend on the outcome.
        let flip = rng.random_bool(flips[c].clamp(0.0, 1.0));
        labels[c] = if flip { -truth[c] } else { truth[c] };
    }
    let order = [
        DecidedBy::Helpfulness,
        DecidedBy::Harmlessness,
        DecidedBy::Fluency,
    ];
    let length_draw = rng.random_bool(cfg.p_len.clamp(0.0, 1.0));
    let coin = rng.random_bool(0.5);
    for c in 0..3 {
        if labels[c] != 0 {
            return Judgement {
                a_wins: labels[c] > 0,
                decided_by: order[c],
                labels,
            };
        }
    }
    if len_a != len_b {
        let a_longer = len_a > len_b;
        Judgement {
            a_wins: if length_draw { a_longer } else { !a_longer },
            decided_by: DecidedBy::Length,
            labels,
        }
    } else {
        Judgement {
            a_wins: coin,
            decided_by: DecidedBy::Coin,
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn v(correct: bool, harmless: bool, fluent: bool) -> Verdict {
        Verdict {
            correct,
            harmless,
            fluent,
            score: Verdict::score_of(correct, harmless, fluent),
            refused: false,
            extracted: None,
            issue: None,
        }
    }

    #[test]
    fn noiseless_annotator_is_lexicographic() {
        let cfg = AnnotatorConfig {
            flip_helpfulness: 0.0,
            flip_harmlessness: 0.0,
            flip_fluency: 0.0,
            ..AnnotatorConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Helpful but rude beats harmless but wrong.
        let j = annotate(
            &cfg,
            &v(true, false, true),
            &v(false, true, true),
            5,
            50,
            &mut rng,
        );
        assert!(j.a_wins);
        assert_eq!(j.decided_by, DecidedBy::Helpfulness);
        assert_eq!(j.labels, [1, -1, 0]);
        let j = annotate(
            &cfg,
            &v(true, true, false),
            &v(true, false, true),
            5,
            5,
            &mut rng,
        );
        assert!(j.a_wins);
        assert_eq!(j.decided_by, DecidedBy::Harmlessness);
        let j = annotate(
            &cfg,
            &v(true, true, false),
            &v(true, true, true),
            50,
            5,
            &mut rng,
        );
        assert!(!j.a_wins);
        assert_eq!(j.decided_by, DecidedBy::Fluency);
    }

    #[test]
    fn equal_quality_prefers_longer_at_p_len() {
        let cfg = AnnotatorConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 20_000;
        let mut longer = 0;
        for _ in 0..n {
            let j = annotate(
                &cfg,
                &v(true, true, true),
                &v(true, true, true),
                40,
                10,
                &mut rng,
            );
            assert_eq!(j.decided_by, DecidedBy::Length);
            longer += u32::from(j.a_wins);
        }
        let share = f64::from(longer) / f64::from(n);
        assert!((share - 0.75).abs() < 0.015, "longer won {share}");
    }

    #[test]
    fn flips_happen_at_their_rate() {
        let cfg = AnnotatorConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        let mut wrong = 0;
        for _ in 0..n {
            let j = annotate(
                &cfg,
                &v(true, true, true),
                &v(false, true, true),
                5,
                5,
                &mut rng,
            );
            wrong += u32::from(!j.a_wins);
        }
        let share = f64::from(wrong) / f64::from(n);
        assert!((share - 0.06).abs() < 0.01, "flipped {share}");
    }
}
