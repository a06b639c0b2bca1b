//! Every verdict with a clear "yes", a not-significant "no", a reversed "no" and input that
//! cannot be tested.

use super::*;

fn wtl(wins: usize, ties: usize, losses: usize) -> WinTieLoss {
    WinTieLoss { wins, ties, losses }
}

#[track_caller]
fn is(f: &Finding, v: Verdict) {
    assert_eq!(f.verdict, v, "{f:#?}");
    assert_eq!(
        f.reproduced,
        match v {
            Verdict::Reproduced => Some(true),
            Verdict::NotMeasured => None,
            _ => Some(false),
        }
    );
    assert!(FINDING_IDS.contains(&f.id.as_str()), "{}", f.id);
    if v == Verdict::NotMeasured {
        assert!(f.p_value.is_none() && f.test.is_none() && f.measured.starts_with("not measured"));
    } else {
        assert!(f.test.is_some() && f.effect.is_some());
    }
    match v {
        Verdict::Reversed => assert!(f.measured.contains("reversed"), "{}", f.measured),
        Verdict::NotSignificant => {
            assert!(f.measured.contains("not significant"), "{}", f.measured)
        }
        _ => {}
    }
}

#[test]
fn rm_agreement() {
    // 9 of 10: p = 11/1024 by hand.
    let f = rm_agrees_with_gold(9, 10);
    is(&f, Verdict::Reproduced);
    assert!((f.p_value.unwrap() - 11.0 / 1024.0).abs() < 1e-12);
    assert!((f.effect.as_ref().unwrap().value - 0.4).abs() < 1e-12);
    assert_eq!(f.test.as_ref().unwrap().n, 10);
    // 79 of 147 (the engine run): p = 0.205.
    is(&rm_agrees_with_gold(79, 147), Verdict::NotSignificant);
    is(&rm_agrees_with_labels(20, 60), Verdict::Reversed);
    is(&rm_agrees_with_labels(0, 0), Verdict::NotMeasured);
}

#[test]
fn length_balancing() {
    let pair = |b, u| (Some(b), Some(u));
    // 12 pairs only the unbalanced RM prefers longer, 1 only the balanced: McNemar p = 14/8192.
    let mut yes = vec![pair(false, true); 12];
    yes.push(pair(true, false));
    yes.extend([pair(true, true), (None, None), (Some(true), None)].repeat(5));
    let f = length_balancing_reduces_length_preference(&yes);
    is(&f, Verdict::Reproduced);
    assert!((f.p_value.unwrap() - 14.0 / 8192.0).abs() < 1e-12, "{f:?}");
    assert_eq!(f.test.as_ref().unwrap().n, 13);
    // 18 usable pairs: balanced 6/18, unbalanced 17/18.
    assert!((f.effect.as_ref().unwrap().value - (6.0 - 17.0) / 18.0).abs() < 1e-12);
    let no = [pair(false, true), pair(false, true), pair(true, false)];
    is(
        &length_balancing_reduces_length_preference(&no),
        Verdict::NotSignificant,
    );
    let rev = vec![pair(true, false); 8];
    is(
        &length_balancing_reduces_length_preference(&rev),
        Verdict::Reversed,
    );
    let none = [pair(true, true), (None, Some(true))];
    is(
        &length_balancing_reduces_length_preference(&none),
        Verdict::NotMeasured,
    );
}

#[test]
fn reference_reward_start() {
    let without = [0.52, 0.61, 0.47];
    // Near 0 (within ±0.19) and closer than without.
    let f = reference_reward_starts_near_zero(&[0.02, -0.01, 0.03], &without, 0.19);
    is(&f, Verdict::Reproduced);
    assert_eq!(f.test.as_ref().unwrap().n, 3);
    // Closer than without, but the spread is too wide to say it is within ±0.19.
    let wide = reference_reward_starts_near_zero(&[0.3, -0.25, 0.1], &without, 0.19);
    is(&wide, Verdict::NotSignificant);
    // Farther from 0 than without, in every seed.
    let rev = reference_reward_starts_near_zero(&[0.9, 1.0, 0.95], &[0.1, 0.05, 0.12], 0.19);
    is(&rev, Verdict::Reversed);
    is(
        &reference_reward_starts_near_zero(&[0.1], &[0.5], 0.19),
        Verdict::NotMeasured,
    );
    is(
        &reference_reward_starts_near_zero(&[0.1, 0.2], &[0.5], 0.19),
        Verdict::NotMeasured,
    );
    is(
        &reference_reward_starts_near_zero(&[0.0, 0.1], &[0.5, 0.6], 0.0),
        Verdict::NotMeasured,
    );
}

#[test]
fn kl_and_forgetting_over_seeds() {
    // The stats golden sample: paired t = -3.71 on 3 df, one-sided p ≈ 0.017.
    let with = [0.071, 0.064, 0.090, 0.052];
    let without = [0.188, 0.102, 0.131, 0.140];
    let f = reference_reward_slows_kl(&with, &without);
    is(&f, Verdict::Reproduced);
    let e = f.effect.as_ref().unwrap().value;
    assert!((e - (-0.071)).abs() < 1e-12, "{e}");
    assert!(f.measured.contains("bootstrap 95 % CI"), "{}", f.measured);
    is(
        &reference_reward_slows_kl(&[0.07, 0.2, 0.05], &[0.1, 0.06, 0.12]),
        Verdict::NotSignificant,
    );
    is(
        &reference_reward_slows_kl(&without, &with),
        Verdict::Reversed,
    );
    is(
        &reference_reward_slows_kl(&[0.1, 0.2], &[0.2, 0.3]),
        Verdict::NotMeasured,
    );
    is(
        &ntp_limits_forgetting(&[0.01, 0.02, 0.015], &[0.09, 0.12, 0.1]),
        Verdict::Reproduced,
    );
    is(
        &ntp_limits_forgetting(&[0.01, 0.1, 0.05], &[0.03, 0.04, 0.09]),
        Verdict::NotSignificant,
    );
    is(
        &ntp_limits_forgetting(&[0.09, 0.12, 0.1], &[0.01, 0.02, 0.015]),
        Verdict::Reversed,
    );
    is(&ntp_limits_forgetting(&[], &[]), Verdict::NotMeasured);
}

#[test]
fn beating_sft() {
    // 9 wins, 1 loss: p = 11/1024; effect (9 − 1)/20.
    let f = ppo_beats_sft(Some(wtl(9, 10, 1)));
    is(&f, Verdict::Reproduced);
    assert!((f.p_value.unwrap() - 11.0 / 1024.0).abs() < 1e-12);
    assert!((f.effect.as_ref().unwrap().value - 0.4).abs() < 1e-12);
    assert_eq!(f.test.as_ref().unwrap().n, 10);
    // The engine run: 5/192/3.
    is(
        &ppo_beats_sft(Some(wtl(5, 192, 3))),
        Verdict::NotSignificant,
    );
    // DPO 9/134/57: reversed.
    let d = dpo_beats_sft(Some(wtl(9, 134, 57)));
    is(&d, Verdict::Reversed);
    assert_eq!(d.id, "dpo_beats_sft");
    is(&dpo_beats_sft(Some(wtl(0, 6, 0))), Verdict::NotMeasured);
    is(&ppo_beats_sft(None), Verdict::NotMeasured);
    // Against the control: the same sign test, its own id and claim.
    let c = ppo_beats_sft_on_chosen(Some(wtl(30, 145, 25)));
    assert_eq!(c.id, "ppo_beats_sft_on_chosen");
    assert!(c.finding.contains("control"), "{}", c.finding);
    is(&c, Verdict::NotSignificant);
    // P(X ≥ 30 | n = 55, ½) = Σ_{k≥30} C(55, k) / 2^55 = 0.295027 (Python's math.comb).
    assert!(
        (c.p_value.unwrap() - 0.295027).abs() < 1e-6,
        "{:?}",
        c.p_value
    );
    let d = dpo_beats_sft_on_chosen(Some(wtl(9, 10, 1)));
    assert_eq!(d.id, "dpo_beats_sft_on_chosen");
    is(&d, Verdict::Reproduced);
    is(&dpo_beats_sft_on_chosen(None), Verdict::NotMeasured);
}

#[test]
fn lengths() {
    let sft: Vec<f64> = (0..20).map(|i| 10.0 + f64::from(i % 5)).collect();
    let ppo: Vec<f64> = sft
        .iter()
        .enumerate()
        .map(|(i, s)| s + (i % 3) as f64 - 1.0)
        .collect();
    let dpo: Vec<f64> = sft
        .iter()
        .enumerate()
        .map(|(i, s)| s + 8.0 + (i % 4) as f64)
        .collect();
    let f = dpo_lengthens_more_than_ppo(&sft, &ppo, &dpo);
    is(&f, Verdict::Reproduced);
    assert_eq!(f.test.as_ref().unwrap().n, 20);
    let e = f.effect.as_ref().unwrap().value;
    let want = (dpo.iter().sum::<f64>() - ppo.iter().sum::<f64>()) / 20.0;
    assert!((e - want).abs() < 1e-12, "{e} vs {want}");
    let near: Vec<f64> = ppo
        .iter()
        .enumerate()
        .map(|(i, p)| p + [1.0, -1.0][i % 2] * 0.5 + if i == 0 { 0.3 } else { 0.0 })
        .collect();
    is(
        &dpo_lengthens_more_than_ppo(&sft, &ppo, &near),
        Verdict::NotSignificant,
    );
    is(
        &dpo_lengthens_more_than_ppo(&sft, &dpo, &ppo),
        Verdict::Reversed,
    );
    is(
        &dpo_lengthens_more_than_ppo(&sft, &sft, &sft),
        Verdict::NotMeasured,
    );
    is(
        &dpo_lengthens_more_than_ppo(&sft, &ppo, &dpo[1..]),
        Verdict::NotMeasured,
    );
}

#[test]
fn writing_versus_maths() {
    let f = gains_in_writing_not_math(wtl(12, 28, 1), wtl(1, 70, 3));
    is(&f, Verdict::Reproduced);
    assert_eq!(f.test.as_ref().unwrap().n, 115);
    let e = f.effect.as_ref().unwrap().value;
    assert!((e - (11.0 / 41.0 - (-2.0 / 74.0))).abs() < 1e-12);
    // The engine run: 3/37/1 vs 0/73/1.
    is(
        &gains_in_writing_not_math(wtl(3, 37, 1), wtl(0, 73, 1)),
        Verdict::NotSignificant,
    );
    is(
        &gains_in_writing_not_math(wtl(0, 30, 8), wtl(10, 60, 0)),
        Verdict::Reversed,
    );
    is(
        &gains_in_writing_not_math(wtl(0, 0, 0), wtl(1, 2, 0)),
        Verdict::NotMeasured,
    );
}

#[test]
fn the_json_record_has_the_declared_keys() {
    let v = serde_json::to_value(rm_agrees_with_gold(9, 10)).unwrap();
    for k in [
        "id",
        "finding",
        "measured",
        "test",
        "p_value",
        "effect",
        "reproduced",
        "verdict",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    assert_eq!(v["verdict"], "reproduced");
    assert_eq!(v["test"]["n"], 10);
    let n = serde_json::to_value(ppo_beats_sft(None)).unwrap();
    assert!(n["reproduced"].is_null() && n["p_value"].is_null(), "{n}");
    assert_eq!(n["verdict"], "not_measured");
}
