//! The report's findings: the inputs of every verdict of `rlhf_alignbench_eval::findings` read
//! from the run directory's artefacts, and `findings.json`. A missing artefact (a stage not run,
//! an old run without per-pair length preferences) gives a "not measured" finding that names
//! it; nothing is estimated in its place.

use std::collections::BTreeMap;
use std::path::Path;

use rlhf_alignbench_eval::findings::{
    self as fx, FINDING_IDS, Finding, MATH_CATEGORIES, NEAR_ZERO_MARGIN_SD, WRITING_CATEGORIES,
};
use rlhf_alignbench_eval::{HeldOutAnswer, HeldOutSummary};
use serde_json::{Value, json};

use super::Ctx;
use super::seeds::SeedSummary;

/// The with / without values of one quantity in a seed's row.
type ArmPair<'a> = dyn Fn(&super::seeds::SeedRow) -> (Option<f64>, Option<f64>) + 'a;

/// Per held-out pair id: whether the RM scores the longer reply higher (`None`: equal lengths).
/// Reads the `prefers_longer` field of `scores.jsonl`, or derives it from the scores and lengths
/// of files written before the field existed.
fn prefers_longer(path: &Path) -> Option<BTreeMap<String, Option<bool>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = BTreeMap::new();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let Some(id) = v["id"].as_str() else { continue };
        let p = match v.get("prefers_longer") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Null) => None,
            _ => {
                let (c, r) = (v["chosen"].as_f64()?, v["rejected"].as_f64()?);
                let (lc, lr) = (v["chosen_len"].as_u64()?, v["rejected_len"].as_u64()?);
                (lc != lr).then_some(if lc > lr { c > r } else { r > c })
            }
        };
        out.insert(id.to_string(), p);
    }
    Some(out)
}

fn length_balancing(rd: &Path) -> Finding {
    let id = "length_balancing_reduces_length_preference";
    let (b, u) = (
        prefers_longer(&rd.join("rm/eval/scores.jsonl")),
        prefers_longer(&rd.join("rm_unbalanced/eval/scores.jsonl")),
    );
    let (Some(b), Some(u)) = (b, u) else {
        return Finding::not_measured(
            id,
            "Length balancing lowers the reward model's preference for longer replies",
            "rm/eval/scores.jsonl or rm_unbalanced/eval/scores.jsonl is missing",
        );
    };
    let pairs: Vec<(Option<bool>, Option<bool>)> = b
        .iter()
        .filter_map(|(id, pb)| Some((*pb, *u.get(id)?)))
        .collect();
    fx::length_balancing_reduces_length_preference(&pairs)
}

/// `(k, n)` of an RM's held-out accuracy in a stage result.
fn rm_accuracy(rm: &Value) -> Option<(usize, usize)> {
    let n = rm["eval"]["n"].as_u64()? as usize;
    let acc = rm["eval"]["accuracy"].as_f64()?;
    Some(((acc * n as f64).round() as usize, n))
}

fn tokens(rd: &Path, model: &str) -> Option<Vec<HeldOutAnswer>> {
    rlhf_util::read_jsonl(&rd.join(format!("eval/answers_{model}.jsonl"))).ok()
}

fn lengths(rd: &Path) -> Finding {
    let id = "dpo_lengthens_more_than_ppo";
    let claim = "DPO lengthens replies more than PPO (Table 6)";
    let (Some(s), Some(p), Some(d)) = (tokens(rd, "SFT"), tokens(rd, "PPO"), tokens(rd, "DPO"))
    else {
        return Finding::not_measured(id, claim, "eval/answers_{SFT,PPO,DPO}.jsonl missing");
    };
    let same = |a: &[HeldOutAnswer]| a.iter().map(|x| &x.id).eq(s.iter().map(|x| &x.id));
    if !same(&p) || !same(&d) {
        return Finding::not_measured(id, claim, "the answer files list different prompts");
    }
    let t = |a: &[HeldOutAnswer]| a.iter().map(|x| x.tokens as f64).collect::<Vec<_>>();
    fx::dpo_lengthens_more_than_ppo(&t(&s), &t(&p), &t(&d))
}

fn seeds(rd: &Path, score_std: Option<f64>) -> [Finding; 3] {
    let ids = [
        (
            "reference_reward_starts_near_zero",
            "With the reference reward, PPO's reward starts near 0 (closer than without)",
        ),
        (
            "reference_reward_slows_kl",
            "With the reference reward, KL to the SFT policy grows more slowly",
        ),
        (
            "ntp_limits_forgetting",
            "The NTP term limits forgetting of the SFT data (smaller rise of its NLL under PPO)",
        ),
    ];
    let sum: Option<SeedSummary> = std::fs::read_to_string(rd.join("ppo_seeds/summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let Some(sum) = sum else {
        return ids.map(|(id, c)| {
            Finding::not_measured(id, c, "no ppo_seeds stage ([ablations].seeds is empty)")
        });
    };
    // Seeds where both arms measured the quantity.
    let pairs = |f: &ArmPair<'_>| {
        let v: Vec<(f64, f64)> = sum
            .seeds
            .iter()
            .filter_map(|r| {
                let (a, b) = f(r);
                Some((a?, b?))
            })
            .collect();
        v.into_iter().unzip::<f64, f64, Vec<f64>, Vec<f64>>()
    };
    let (rw, ro) = pairs(&|r| (r.first_reward_ref, r.first_reward_noref));
    let start = match score_std {
        Some(sd) if sd > 0.0 => {
            fx::reference_reward_starts_near_zero(&rw, &ro, NEAR_ZERO_MARGIN_SD * sd)
        }
        _ => Finding::not_measured(
            ids[0].0,
            ids[0].1,
            "no RM score std (rm stage) for the margin",
        ),
    };
    let (kw, ko) = pairs(&|r| (r.kl_last_half_ref, r.kl_last_half_noref));
    let before = sum.nll_before;
    let rise = |x: Option<f64>| Some(x? - before?);
    let (nw, no) = pairs(&|r| (rise(r.nll_after_ref), rise(r.nll_after_nontp)));
    [
        start,
        fx::reference_reward_slows_kl(&kw, &ko),
        fx::ntp_limits_forgetting(&nw, &no),
    ]
}

/// Every finding of [`FINDING_IDS`], in that order, from the run directory `rd`.
pub(crate) fn gather(ctx: &Ctx, summary: Option<&HeldOutSummary>) -> Vec<Finding> {
    let rd = &ctx.run_dir;
    let stage = |n: &str| ctx.state.stages.get(n).map(|r| r.result.clone());
    let rm = stage("rm");
    let mut out = Vec::new();
    out.push(match rm.as_ref().and_then(rm_accuracy) {
        Some((k, n)) => fx::rm_agrees_with_labels(k, n),
        None => Finding::not_measured(
            "rm_agrees_with_labels",
            "The reward model agrees with held-out annotator labels above chance",
            "no rm stage result",
        ),
    });
    out.push(
        match summary.and_then(|s| s.rm_gold_agreement.get("rm").copied()) {
            Some((a, n)) => fx::rm_agrees_with_gold((a * n as f64).round() as usize, n),
            None => Finding::not_measured(
                "rm_agrees_with_gold",
                "The reward model agrees with the gold judge above chance",
                "no gold judge or no rm evaluation",
            ),
        },
    );
    out.push(length_balancing(rd));
    let score_std = rm.as_ref().and_then(|r| r["eval"]["score_std"].as_f64());
    out.extend(seeds(rd, score_std));
    let vs = |m: &str| summary.and_then(|s| s.versus_sft.get(m)?.get("overall").copied());
    out.push(fx::ppo_beats_sft(vs("PPO")));
    out.push(fx::dpo_beats_sft(vs("DPO")));
    out.push(lengths(rd));
    let pooled = |cats: &[&str]| summary.and_then(|s| s.versus_sft_pooled("PPO", cats));
    out.push(
        match (pooled(WRITING_CATEGORIES), pooled(MATH_CATEGORIES)) {
            (Some(w), Some(m)) => fx::gains_in_writing_not_math(w, m),
            _ => Finding::not_measured(
                "gains_in_writing_not_math",
                "PPO's gains over SFT are in writing and role-play, not maths and logic",
                "no gold-judge comparison of PPO",
            ),
        },
    );
    let vc = |m: &str| summary.and_then(|s| s.versus_control.get(m).copied());
    out.push(fx::ppo_beats_sft_on_chosen(vc("PPO")));
    out.push(fx::dpo_beats_sft_on_chosen(vc("DPO")));
    debug_assert!(
        out.iter()
            .map(|f| f.id.as_str())
            .eq(FINDING_IDS.iter().copied())
    );
    out
}

/// Writes `findings.json`: `{"alpha", "findings": [..]}`.
pub(crate) fn write(rd: &Path, findings: &[Finding]) -> anyhow::Result<()> {
    let v = json!({"alpha": fx::ALPHA, "findings": findings});
    rlhf_core::io::write_atomic(
        &rd.join("findings.json"),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_preference_per_pair_from_the_field_or_the_scores() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s.jsonl");
        std::fs::write(
            &p,
            "{\"id\":\"a\",\"prefers_longer\":true}\n{\"id\":\"b\",\"prefers_longer\":null}\n\
             {\"id\":\"c\",\"chosen\":1.0,\"rejected\":2.0,\"chosen_len\":3,\"rejected_len\":9}\n\
             {\"id\":\"d\",\"chosen\":1.0,\"rejected\":2.0,\"chosen_len\":9,\"rejected_len\":3}\n",
        )
        .unwrap();
        let m = prefers_longer(&p).unwrap();
        assert_eq!(m["a"], Some(true));
        assert_eq!(m["b"], None);
        assert_eq!(m["c"], Some(true));
        assert_eq!(m["d"], Some(false));
        assert_eq!(prefers_longer(&tmp.path().join("none")), None);
    }
}
