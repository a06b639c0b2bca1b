//! The SFT set's declared mixed quality and the pairs that contrast its flaws.

use std::collections::{BTreeMap, HashMap};

use rlhf_world::{
    Dataset, Error, FluencyIssue, Language, PairKind, PairSource, Prompt, Quality, SftMix, Task,
    WorldConfig,
};

use crate::common::default_set;

fn prompts(data: &Dataset) -> HashMap<&str, &Prompt> {
    data.train.iter().map(|p| (p.id.as_str(), p)).collect()
}

fn small(seed: u64) -> Dataset {
    let cfg = WorldConfig {
        train_prompts: 800,
        eval_prompts: 40,
        ..WorldConfig::with_seed(seed)
    };
    Dataset::generate(&cfg).unwrap()
}

fn check_shares(data: &Dataset) {
    let n = data.sft.len() as f64;
    let mix = &data.config.sft_mix;
    let mut flawed = 0.0;
    for q in Quality::FLAWS {
        let got = data.sft.iter().filter(|s| s.quality == q).count() as f64 / n;
        flawed += got;
        assert!(
            (got - mix.share(q)).abs() <= 0.02,
            "seed {}: {q:?} {got} vs declared {}",
            data.config.seed,
            mix.share(q)
        );
    }
    assert!((flawed - mix.flawed()).abs() <= 0.02, "{flawed}");
    assert!((0.35..=0.5).contains(&flawed), "{flawed}");
}

#[test]
fn the_declared_shares_are_met() {
    check_shares(default_set());
    check_shares(&small(7));
    let s = default_set().stats().sft;
    assert_eq!(s.by_quality[&Quality::Wrong], 120);
    assert_eq!(s.by_quality[&Quality::Unhelpful], 120);
    assert_eq!(s.by_quality[&Quality::Harmful], 70);
    assert_eq!(s.by_quality[&Quality::WrongLanguage], 600);
    assert_eq!(s.by_quality[&Quality::Clean], 1090);
    assert_eq!(s.flawed_share, 0.455);
}

/// Language confusion is declared mostly on the Chinese prompts, and there it is the majority
/// behaviour (what makes it the SFT model's mode); a fifth of it goes the other way, so the
/// flaw is about the prompt's language, not about one language being better.
#[test]
fn language_confusion_is_the_majority_on_chinese_prompts() {
    let data = default_set();
    let by_id = prompts(data);
    let wl = |s: &rlhf_world::SftRecord| s.quality == Quality::WrongLanguage;
    let of = |l| data.sft.iter().filter(|s| wl(s) && s.language == l).count();
    assert_eq!((of(Language::Zh), of(Language::En)), (480, 120));
    // Per language, prompts whose answer has words (not translation, not bare arithmetic).
    let share = |l| {
        let text: Vec<_> = data
            .sft
            .iter()
            .filter(|s| {
                let t = by_id[s.prompt_id.as_str()].task;
                s.language == l && !matches!(t, Task::Translation | Task::Arithmetic)
            })
            .collect();
        text.iter().filter(|s| wl(s)).count() as f64 / text.len() as f64
    };
    let (zh, en) = (share(Language::Zh), share(Language::En));
    assert!(
        (0.55..0.7).contains(&zh),
        "wrong language on {zh} of Chinese prompts"
    );
    assert!(
        (0.1..0.2).contains(&en),
        "wrong language on {en} of English prompts"
    );
}

/// Each flaw lowers the gold score against the clean demonstration of the same prompt (the
/// prompt's reference, which scores 8), for the reason the flaw names.
#[test]
fn every_flaw_kind_lowers_the_gold_score() {
    let data = default_set();
    let judge = data.judge();
    let by_id = prompts(data);
    let mut seen: BTreeMap<Quality, usize> = BTreeMap::new();
    for s in &data.sft {
        let p = by_id[s.prompt_id.as_str()];
        let clean = judge.verdict(p, &p.reference);
        let v = judge.verdict(p, &s.response);
        *seen.entry(s.quality).or_default() += 1;
        let why = format!("{} {:?} -> {v:?}: {}", p.id, s.quality, s.response);
        assert_eq!(clean.score, 8, "{}", p.reference);
        match s.quality {
            Quality::Clean => assert_eq!(v.score, 8, "{why}"),
            Quality::Wrong => assert!(!v.correct && v.harmless && v.fluent, "{why}"),
            Quality::Unhelpful => {
                assert!(!v.correct && v.harmless && v.fluent && !v.refused, "{why}")
            }
            Quality::Harmful => assert!(!v.correct && !v.harmless && v.fluent, "{why}"),
            Quality::WrongLanguage => assert!(
                v.correct && v.harmless && v.issue == Some(FluencyIssue::WrongLanguage),
                "{why}"
            ),
        }
        if s.quality != Quality::Clean {
            assert!(v.score < clean.score, "{why}");
            assert_eq!(
                judge.compare(p, &p.reference, &s.response),
                rlhf_world::Preference::Win
            );
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

/// Flaws only where the prompt decides them: wrong answers on tasks the prompt or the closed
/// vocabulary settles, compliance only on unsafe prompts, no wrong language in translation.
#[test]
fn flaws_are_of_learnable_kinds() {
    let data = default_set();
    let by_id = prompts(data);
    for s in &data.sft {
        let task = by_id[s.prompt_id.as_str()].task;
        assert!(s.quality.applies_to(task), "{:?} on {task:?}", s.quality);
    }
}

/// In a contrast pair one response is clean and the other carries exactly one flaw of the mix,
/// neither rude nor garbled; the gold judge prefers the clean one.
#[test]
fn contrast_pairs_differ_in_one_flaw() {
    let data = default_set();
    let mut n = 0;
    for p in data
        .pairs
        .iter()
        .filter(|p| p.source == PairSource::Contrast)
    {
        n += 1;
        assert_eq!(p.kind, PairKind::Regular);
        let (good, bad) = if p.chosen.quality == Quality::Clean {
            (&p.chosen, &p.rejected)
        } else {
            (&p.rejected, &p.chosen)
        };
        assert_eq!(good.quality, Quality::Clean, "{}", p.id);
        assert_ne!(bad.quality, Quality::Clean, "{}", p.id);
        assert!(good.garble.is_none() && bad.garble.is_none());
        assert_eq!(good.verdict.score, 8, "{}", good.text);
        assert!(bad.verdict.score < 8, "{}", bad.text);
        let gold_for_good = if std::ptr::eq(good, &p.chosen) { 1 } else { -1 };
        assert_eq!(p.gold, gold_for_good, "{}", p.id);
    }
    assert!(n > 800, "{n} contrast pairs");
}

/// The annotator agrees with the gold judge at the rate its flip probabilities predict. In a
/// contrast pair exactly one criterion decides (helpfulness for wrong, unhelpful and harmful
/// responses: a harmful one is also unhelpful, and helpfulness comes first; fluency for the
/// wrong language), so the expected agreement is the mean of `1 − flip` of those criteria.
#[test]
fn pair_labels_agree_with_gold_at_the_stated_rate() {
    let data = default_set();
    let a = &data.config.annotator;
    let contrast: Vec<_> = data
        .pairs
        .iter()
        .filter(|p| p.source == PairSource::Contrast)
        .collect();
    let expected: f64 = contrast
        .iter()
        .map(|p| {
            let flaw = if p.chosen.quality == Quality::Clean {
                p.rejected.quality
            } else {
                p.chosen.quality
            };
            match flaw {
                Quality::WrongLanguage => 1.0 - a.flip_fluency,
                _ => 1.0 - a.flip_helpfulness,
            }
        })
        .sum::<f64>()
        / contrast.len() as f64;
    let agree = contrast.iter().filter(|p| p.gold > 0).count() as f64 / contrast.len() as f64;
    assert!((agree - expected).abs() < 0.025, "{agree} vs {expected}");

    let stats = data.stats().pairs;
    assert!(stats.annotator_gold_agreement >= 0.9, "{stats:?}");
    for source in [PairSource::Contrast, PairSource::Sampled] {
        assert!(
            stats.annotator_gold_agreement_by_source[&source] >= 0.88,
            "{source:?}: {stats:?}"
        );
    }
    assert_eq!(stats.gold_ties_by_source[&PairSource::Contrast], 0.0);
    // The length bias is kept: where quality looks equal, the longer response mostly wins.
    assert!(
        (stats.length_decided_longer_chosen - a.p_len).abs() < 0.08,
        "{stats:?}"
    );
}

/// Sampled pairs are drawn the paper's way: the simulated SFT model shows the SFT set's flaws
/// at about the set's rates (plus its own errors, which make `wrong` more common).
#[test]
fn sampled_pairs_imitate_the_sft_mix() {
    let data = default_set();
    let s = data.stats();
    for q in [Quality::WrongLanguage, Quality::Unhelpful, Quality::Harmful] {
        let sft = s.sft.quality_share[&q];
        let sampled = s.pairs.sampled_quality[&q];
        assert!((sampled - sft).abs() <= 0.03, "{q:?}: {sampled} vs {sft}");
    }
    assert!(s.pairs.sampled_quality[&Quality::Wrong] > s.sft.quality_share[&Quality::Wrong]);
}

#[test]
fn another_seed_is_deterministic_and_similar() {
    let (a, b) = (small(7), small(7));
    assert_eq!(a.sft, b.sft);
    assert_eq!(a.pairs, b.pairs);
    let (sa, sd) = (a.stats(), default_set().stats());
    assert!((sa.sft.flawed_share - sd.sft.flawed_share).abs() <= 0.01);
    let (x, y) = (
        sa.pairs.annotator_gold_agreement,
        sd.pairs.annotator_gold_agreement,
    );
    assert!((x - y).abs() <= 0.04, "{x} vs {y}");
}

#[test]
fn a_mix_the_prompts_cannot_carry_is_refused() {
    let cfg = WorldConfig {
        train_prompts: 300,
        eval_prompts: 30,
        sft_mix: SftMix {
            harmful: 0.3,
            ..SftMix::default()
        },
        ..WorldConfig::default()
    };
    let e = Dataset::generate(&cfg).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("sft_mix.harmful"), "{e}");
    let cfg = WorldConfig {
        sft_mix: SftMix {
            wrong: 0.7,
            wrong_language: 0.4,
            ..SftMix::default()
        },
        ..WorldConfig::default()
    };
    assert!(cfg.validate().unwrap_err().to_string().contains("sft_mix"));
}
