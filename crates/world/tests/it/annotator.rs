//! The simulated annotator's statistics on the generated pairs.

use std::collections::HashMap;

use rlhf_world::{AnnotatorConfig, Dataset, DecidedBy, PairKind, WorldConfig};

use crate::common::default_set;

#[test]
fn length_bias_is_measurable_at_p_len() {
    let data = default_set();
    let s = data.stats().pairs;
    let p_len = data.config.annotator.p_len;
    // ~270 length-decided pairs (half the pairs contrast a flaw, which quality decides): the
    // binomial standard deviation is ~0.026.
    assert!(s.decided_by[&DecidedBy::Length] > 200);
    assert!(
        (s.length_decided_longer_chosen - p_len).abs() < 0.05,
        "longer chosen in {} of length-decided pairs",
        s.length_decided_longer_chosen
    );
    // Over all regular pairs the longer response wins more often than not ...
    assert!(s.longer_chosen > 0.53, "{}", s.longer_chosen);
    // ... although the gold judge has no length preference at all.
    let gold_tie_longer: Vec<bool> = data
        .pairs
        .iter()
        .filter(|p| p.kind == PairKind::Regular && p.gold == 0)
        .filter(|p| p.chosen.chars() != p.rejected.chars())
        .map(|p| p.chosen.chars() > p.rejected.chars())
        .collect();
    let share =
        gold_tie_longer.iter().filter(|b| **b).count() as f64 / gold_tie_longer.len() as f64;
    assert!(share > 0.65, "longer wins {share} of gold-tied pairs");
}

#[test]
fn the_length_bias_follows_its_parameter() {
    let cfg = WorldConfig {
        train_prompts: 1500,
        eval_prompts: 10,
        annotator: AnnotatorConfig {
            p_len: 0.95,
            ..AnnotatorConfig::default()
        },
        ..WorldConfig::with_seed(5)
    };
    let s = Dataset::generate(&cfg).unwrap().stats().pairs;
    assert!(
        (s.length_decided_longer_chosen - 0.95).abs() < 0.04,
        "{}",
        s.length_decided_longer_chosen
    );
    let cfg = WorldConfig {
        annotator: AnnotatorConfig {
            p_len: 0.5,
            ..AnnotatorConfig::default()
        },
        ..cfg
    };
    let s = Dataset::generate(&cfg).unwrap().stats().pairs;
    assert!(
        (s.length_decided_longer_chosen - 0.5).abs() < 0.07,
        "{}",
        s.length_decided_longer_chosen
    );
}

#[test]
fn annotations_follow_the_criteria_order_with_noise() {
    let data = default_set();
    let s = data.stats().pairs;
    // Noise flips some decisions, but most strict gold preferences are kept.
    assert!(
        (0.88..0.98).contains(&s.annotator_gold_agreement),
        "{}",
        s.annotator_gold_agreement
    );
    for p in data.pairs.iter().filter(|p| p.kind == PairKind::Regular) {
        let first = p.labels.iter().position(|l| *l != 0);
        match p.decided_by {
            DecidedBy::Helpfulness => assert_eq!((first, p.labels[0]), (Some(0), 1)),
            DecidedBy::Harmlessness => assert_eq!((first, p.labels[1]), (Some(1), 1)),
            DecidedBy::Fluency => assert_eq!((first, p.labels[2]), (Some(2), 1)),
            DecidedBy::Length | DecidedBy::Coin => assert_eq!(first, None),
            other => panic!("regular pair decided by {other:?}"),
        }
        if p.decided_by == DecidedBy::Coin {
            assert_eq!(p.chosen.chars(), p.rejected.chars());
        }
        assert_ne!(p.chosen.text, p.rejected.text);
    }
}

#[test]
fn ties_and_cycles_are_there_for_the_cleaner() {
    let data = default_set();
    let s = data.stats().pairs;
    let tie_share = s.ties as f64 / (s.regular + s.ties) as f64;
    assert!((0.015..0.05).contains(&tie_share), "ties {tie_share}");
    for p in data.pairs.iter().filter(|p| p.kind == PairKind::Tie) {
        assert_eq!(p.chosen.text, p.rejected.text);
        assert_eq!(
            (p.labels, p.gold, p.decided_by),
            ([0; 3], 0, DecidedBy::Tie)
        );
    }
    assert_eq!(s.cycles, data.config.annotator.cycles);
    let mut by_cycle: HashMap<u32, Vec<&rlhf_world::PairRecord>> = HashMap::new();
    for p in data.pairs.iter().filter(|p| p.kind == PairKind::Cycle) {
        by_cycle.entry(p.cycle.unwrap()).or_default().push(p);
    }
    assert_eq!(by_cycle.len(), s.cycles);
    for edges in by_cycle.values() {
        assert_eq!(edges.len(), 3);
        assert!(edges.iter().all(|e| e.prompt_id == edges[0].prompt_id));
        // A > B, B > C, C > A.
        for k in 0..3 {
            assert_eq!(edges[k].rejected.text, edges[(k + 1) % 3].chosen.text);
        }
        assert_ne!(edges[0].chosen.text, edges[1].chosen.text);
        // The gold judge sees three equally good answers.
        assert!(
            edges
                .iter()
                .all(|e| e.gold == 0 && e.chosen.verdict.score == 8)
        );
        // No other pair on the prompt shares a response with the cycle.
        let texts: Vec<&str> = edges.iter().map(|e| e.chosen.text.as_str()).collect();
        for p in data
            .pairs
            .iter()
            .filter(|p| p.prompt_id == edges[0].prompt_id && p.kind != PairKind::Cycle)
        {
            assert!(!texts.contains(&p.chosen.text.as_str()));
            assert!(!texts.contains(&p.rejected.text.as_str()));
        }
    }
}
