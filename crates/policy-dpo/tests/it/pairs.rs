//! RM-labelled pairs: best vs worst of k samples, margins respected, decoding.

use burn::module::AutodiffModule;
use rlhf_core::backend::{Cpu, FlexDevice};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::Message;
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_policy_dpo::{PairBuildConfig, build_rm_pairs};

use crate::common::tiny_policy;

#[test]
fn pairs_are_best_versus_worst_above_the_margin() {
    let policy = tiny_policy(0).0.valid();
    let rm = ScalarModel::<Cpu>::init(&ModelConfig::tiny_llama(BYTE_VOCAB), 0.5, 9, &FlexDevice);
    let prompts: Vec<(String, Option<String>, Vec<Message>)> = (0..6)
        .map(|i| {
            (
                format!("q{i}"),
                Some("cat".to_string()),
                vec![Message::user(format!("hello {i}"))],
            )
        })
        .collect();
    let cfg = PairBuildConfig {
        k: 4,
        max_new_tokens: 12,
        min_margin: 0.0,
        batch_prompts: 4,
        max_length: 96,
        ..Default::default()
    };
    let mut seen = 0;
    let (pairs, report) = build_rm_pairs(
        &policy,
        &rm,
        &TextCodec::Bytes,
        &prompts,
        &cfg,
        &FlexDevice,
        |d| seen = d,
    )
    .unwrap();
    assert_eq!(seen, 6);
    assert_eq!(report.prompts, 6);
    assert_eq!(
        report.pairs + report.skipped_identical + report.skipped_margin,
        6
    );
    assert!(!pairs.is_empty());
    for p in &pairs {
        assert_eq!(p.scores.len(), 4);
        // A NaN score would vanish in the folds below.
        rlhf_testkit::assert_finite("RM scores of the samples", &p.scores);
        let max = p.scores.iter().cloned().fold(f32::MIN, f32::max);
        let min = p.scores.iter().cloned().fold(f32::MAX, f32::min);
        assert!(p.chosen_score >= p.rejected_score);
        assert!(p.chosen_score <= max && p.rejected_score >= min);
        assert_eq!(p.pair.category.as_deref(), Some("cat"));
        assert_ne!(p.pair.chosen, p.pair.rejected);
    }
    // a margin above every observed one skips everything
    let high = PairBuildConfig {
        min_margin: 1e9,
        ..cfg
    };
    let (none, r) = build_rm_pairs(
        &policy,
        &rm,
        &TextCodec::Bytes,
        &prompts,
        &high,
        &FlexDevice,
        |_| {},
    )
    .unwrap();
    assert!(none.is_empty());
    assert_eq!(r.skipped_margin + r.skipped_identical, 6);
}

#[test]
fn decoding_stops_at_eos() {
    let ids: Vec<u32> = "hi!"
        .bytes()
        .map(|b| b as u32 + 3)
        .chain([2, 80, 81])
        .collect();
    assert_eq!(TextCodec::Bytes.decode(&ids).unwrap(), "hi!");
}
