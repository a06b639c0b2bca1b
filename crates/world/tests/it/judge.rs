//! The gold judge on the whole generated set.

use std::collections::HashMap;

use rlhf_world::{Garble, PairKind, Preference, Prompt, Quality, Task};

use crate::common::default_set;

#[test]
fn clean_sft_demonstrations_and_references_are_perfect() {
    let data = default_set();
    let judge = data.judge();
    for s in data.sft.iter().filter(|s| s.quality == Quality::Clean) {
        let v = judge.verdict_by_id(&s.prompt_id, &s.response).unwrap();
        assert_eq!(v.score, 8, "{} -> {:?}: {}", s.prompt_id, v, s.response);
    }
    for p in data.train.iter().chain(&data.eval) {
        assert_eq!(
            judge.verdict(p, &p.reference).score,
            8,
            "{}: {}",
            p.id,
            p.reference
        );
    }
}

#[test]
fn every_candidate_is_read_as_generated() {
    let data = default_set();
    let mut garbled = 0;
    for pair in &data.pairs {
        for c in [&pair.chosen, &pair.rejected] {
            let v = &c.verdict;
            if let Some(g) = c.garble {
                garbled += 1;
                assert!(!v.fluent, "garbled but fluent: {}", c.text);
                // Loops keep the harm; a stutter inside a Chinese marker (猜出密密密密码),
                // junk and shuffling may break its phrase.
                if g == Garble::Loop {
                    assert_eq!(v.harmless, c.intended[1], "{}", c.text);
                }
            } else {
                assert_eq!(
                    [v.correct, v.harmless, v.fluent],
                    c.intended,
                    "{} [{}] -> {v:?}: {}",
                    pair.prompt_id,
                    pair.task.name(),
                    c.text
                );
            }
        }
    }
    assert!(garbled > 100, "{garbled} garbled candidates");
}

#[test]
fn clean_sft_demonstrations_beat_every_worse_candidate() {
    let data = default_set();
    let judge = data.judge();
    let sft: HashMap<&str, &str> = data
        .sft
        .iter()
        .filter(|s| s.quality == Quality::Clean)
        .map(|s| (s.prompt_id.as_str(), s.response.as_str()))
        .collect();
    let prompts: HashMap<&str, &Prompt> = data.train.iter().map(|p| (p.id.as_str(), p)).collect();
    let (mut worse, mut equal) = (0, 0);
    for pair in &data.pairs {
        let p = prompts[pair.prompt_id.as_str()];
        let Some(demo) = sft.get(pair.prompt_id.as_str()) else {
            continue;
        };
        for c in [&pair.chosen, &pair.rejected] {
            let expected = if c.verdict.score < 8 {
                worse += 1;
                Preference::Win
            } else {
                equal += 1;
                Preference::Tie
            };
            assert_eq!(
                judge.compare(p, demo, &c.text),
                expected,
                "{demo} vs {}",
                c.text
            );
        }
    }
    assert!(
        worse > 1000 && equal > 900,
        "{worse} worse, {equal} as good"
    );
}

#[test]
fn candidates_vary_along_every_criterion_and_in_length() {
    let data = default_set();
    let regular: Vec<_> = data
        .pairs
        .iter()
        .filter(|p| p.kind == PairKind::Regular)
        .flat_map(|p| [&p.chosen, &p.rejected])
        .collect();
    let share = |f: &dyn Fn(&&rlhf_world::Candidate) -> bool| {
        regular.iter().filter(|c| f(c)).count() as f64 / regular.len() as f64
    };
    let correct = share(&|c| c.verdict.correct);
    let harmless = share(&|c| c.verdict.harmless);
    let fluent = share(&|c| c.verdict.fluent);
    assert!((0.5..0.8).contains(&correct), "correct {correct}");
    assert!((0.85..0.98).contains(&harmless), "harmless {harmless}");
    assert!((0.65..0.92).contains(&fluent), "fluent {fluent}");
    // Unsafe prompts: some refusals, some compliance.
    let unsafe_pairs: Vec<_> = data
        .pairs
        .iter()
        .filter(|p| p.task == Task::Unsafe)
        .collect();
    assert!(unsafe_pairs.iter().any(|p| p.chosen.verdict.refused));
    assert!(
        unsafe_pairs
            .iter()
            .any(|p| !p.chosen.verdict.harmless || !p.rejected.verdict.harmless)
    );
    // Length varies for the same content: padded and verbose responses are longer.
    let mean = |verbose: bool| {
        let v: Vec<_> = regular
            .iter()
            .filter(|c| c.style.is_verbose() == verbose && c.garble.is_none())
            .map(|c| c.text.chars().count() as f64)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        mean(true) > 1.5 * mean(false),
        "{} vs {}",
        mean(true),
        mean(false)
    );
}
