//! The tensor `dpo_loss` against values computed independently in numpy from TRL's definitions
//! (`tests/golden/dpo_losses.py`, committed with its output `tests/golden/dpo_losses.json`).
//!
//! Each case in the file has an `ours` block (the crate's documented choices) and a `trl` block
//! (TRL's `DPOTrainer.dpo_loss` / `CPOTrainer` SimPO), or `null` where TRL has no such option.
//! The two differ on purpose in two places, pinned here: IPO on summed log-probs (TRL divides
//! by the length; ours does only with `length_normalize = true`) and the RPO term (TRL: one
//! token-level mean over the batch's chosen tokens; ours: the mean of each reply's per-token
//! mean).

use burn::prelude::*;
use rlhf_core::backend::{Cpu, FlexDevice};
use rlhf_policy_dpo::{DpoLossConfig, DpoLossType, PairLogps, dpo_loss};
use serde_json::Value;

const GOLDEN: &str = include_str!("../golden/dpo_losses.json");

/// Relative tolerance (absolute below 1): f32 tensors against float64 numpy.
const TOL: f64 = 1e-5;

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("tests/golden/dpo_losses.json parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|x| {
            x.as_f64()
                .unwrap_or_else(|| panic!("expected a number, got {x}"))
        })
        .collect()
}

fn t1(v: &[f64]) -> Tensor<Cpu, 1> {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(f, [v.len()]), &FlexDevice)
}

fn host(t: Tensor<Cpu, 1>) -> Vec<f64> {
    t.into_data().iter::<f32>().map(f64::from).collect()
}

/// What the crate's tensor `dpo_loss` gives for one case: `(losses, loss, chosen_rewards,
/// rejected_rewards)`.
struct Got {
    losses: Vec<f64>,
    loss: f64,
    chosen_rewards: Vec<f64>,
    rejected_rewards: Vec<f64>,
}

fn run_case(pairs: &Value, case: &Value) -> Got {
    let cfg: DpoLossConfig =
        serde_json::from_value(case["config"].clone()).expect("the golden config deserialises");
    cfg.validate().expect("the golden config is valid");
    let p = |k: &str| t1(&floats(&pairs[k]));
    let weights = (!case["weights"].is_null()).then(|| t1(&floats(&case["weights"])));
    let out = dpo_loss(
        PairLogps {
            chosen: p("policy_chosen"),
            rejected: p("policy_rejected"),
        },
        PairLogps {
            chosen: p("reference_chosen"),
            rejected: p("reference_rejected"),
        },
        p("chosen_tokens"),
        p("rejected_tokens"),
        weights,
        &cfg,
    );
    Got {
        losses: host(out.losses),
        loss: out.loss.into_scalar().elem(),
        chosen_rewards: host(out.chosen_rewards),
        rejected_rewards: host(out.rejected_rewards),
    }
}

fn close(got: f64, want: f64) -> bool {
    got.is_finite() && (got - want).abs() <= TOL * want.abs().max(1.0)
}

/// Every value of `got` against the block `want`; the message names the case, block, field
/// and pair.
fn assert_matches(name: &str, block: &str, got: &Got, want: &Value) {
    let fields: [(&str, Vec<f64>); 4] = [
        ("losses", got.losses.clone()),
        ("loss", vec![got.loss]),
        ("chosen_rewards", got.chosen_rewards.clone()),
        ("rejected_rewards", got.rejected_rewards.clone()),
    ];
    for (field, g) in fields {
        let w = if field == "loss" {
            vec![want[field].as_f64().expect("loss is a number")]
        } else {
            floats(&want[field])
        };
        assert_eq!(g.len(), w.len(), "{name}/{block}/{field}: length");
        for (i, (g, w)) in g.iter().zip(&w).enumerate() {
            assert!(
                close(*g, *w),
                "{name}: {field}[{i}] = {g} from dpo_loss, {block} golden value {w}"
            );
        }
    }
}

/// Whether `got` differs from the block `want` somewhere by more than the tolerance.
fn differs(got: &Got, want: &Value) -> bool {
    let loss = want["loss"].as_f64().expect("loss is a number");
    let losses = floats(&want["losses"]);
    assert_eq!(got.losses.len(), losses.len(), "losses: length");
    !close(got.loss, loss) || got.losses.iter().zip(losses).any(|(g, w)| !close(*g, w))
}

fn case<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["cases"]
        .as_array()
        .expect("cases is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

#[test]
fn the_golden_pairs_have_varied_margins_including_zero() {
    let g = golden();
    let p = &g["pairs"];
    let f = |k: &str| floats(&p[k]);
    let (pc, pr, rc, rr) = (
        f("policy_chosen"),
        f("policy_rejected"),
        f("reference_chosen"),
        f("reference_rejected"),
    );
    let z: Vec<f64> = (0..pc.len())
        .map(|i| (pc[i] - rc[i]) - (pr[i] - rr[i]))
        .collect();
    assert!(z.len() >= 3, "{z:?}");
    assert!(z.contains(&0.0), "no zero margin: {z:?}");
    assert!(
        z.iter().any(|&x| x > 0.0) && z.iter().any(|&x| x < 0.0),
        "{z:?}"
    );
}

#[test]
fn every_loss_matches_the_independent_numpy_values() {
    let g = golden();
    let cases = g["cases"].as_array().expect("cases is an array");
    let mut types = Vec::new();
    for c in cases {
        let name = c["name"].as_str().expect("name is a string");
        let got = run_case(&g["pairs"], c);
        assert_matches(name, "ours", &got, &c["ours"]);
        if c["ours_equals_trl"] == true {
            assert_matches(name, "trl", &got, &c["trl"]);
        }
        let cfg: DpoLossConfig = serde_json::from_value(c["config"].clone()).unwrap();
        types.push((
            cfg.loss_type,
            cfg.label_smoothing > 0.0,
            cfg.rpo_alpha.is_some(),
        ));
    }
    // Every loss type is covered, and cDPO (label smoothing) and RPO too.
    for t in [
        DpoLossType::Sigmoid,
        DpoLossType::Robust,
        DpoLossType::Hinge,
        DpoLossType::Ipo,
        DpoLossType::Simpo,
    ] {
        assert!(types.iter().any(|x| x.0 == t), "no golden case for {t:?}");
    }
    assert!(types.iter().any(|x| x.0 == DpoLossType::Sigmoid && x.1));
    assert!(types.iter().any(|x| x.2));
    // Where ours and TRL differ is exactly the documented set.
    let differ: Vec<&str> = cases
        .iter()
        .filter(|c| !c["trl"].is_null() && c["ours_equals_trl"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(differ, ["ipo", "rpo"]);
}

#[test]
fn ipo_sums_log_probs_unless_length_normalize_which_gives_trls_ipo() {
    let g = golden();
    let ipo = case(&g, "ipo");
    let got = run_case(&g["pairs"], ipo);
    assert_matches("ipo", "ours", &got, &ipo["ours"]);
    // (z − 1/(2β))² on sums: pair 3 has z = 24, β = 0.1 ⇒ (24 − 5)² = 361.
    assert!(close(got.losses[3], 361.0), "{:?}", got.losses);
    assert!(
        differs(&got, &ipo["trl"]),
        "IPO on sums now equals TRL's per-token IPO"
    );

    let normed = case(&g, "ipo_length_normalized");
    let got = run_case(&g["pairs"], normed);
    assert_matches("ipo_length_normalized", "trl", &got, &normed["trl"]);
}

#[test]
fn rpo_term_is_the_mean_of_per_reply_token_means_not_trls_batch_token_mean() {
    let g = golden();
    let rpo = case(&g, "rpo");
    let got = run_case(&g["pairs"], rpo);
    assert_matches("rpo", "ours", &got, &rpo["ours"]);
    // The DPO part is TRL's; only the NLL term's averaging differs.
    let trl_losses = floats(&rpo["trl"]["losses"]);
    assert_eq!(got.losses.len(), trl_losses.len(), "TRL losses: length");
    for (i, (a, b)) in got.losses.iter().zip(trl_losses).enumerate() {
        assert!(close(*a, b), "losses[{i}]: {a} vs TRL {b}");
    }
    let trl = rpo["trl"]["loss"].as_f64().unwrap();
    assert!(
        !close(got.loss, trl),
        "RPO loss {} now equals TRL's {trl}",
        got.loss
    );
}
