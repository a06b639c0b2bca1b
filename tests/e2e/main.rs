//! End-to-end: real HH-RLHF pairs go through the prefdata importer, cleaning and the prompt-hash
//! split, become reward-model pairs, train a tiny reward model for a few steps (metrics and a
//! checkpoint on disk), export in HF layout, and reload through rlhf-core's loader with the same
//! scores.

mod golden;
mod golden_runs;

use std::path::PathBuf;

use burn::module::AutodiffModule;
use rlhf_core::ModelConfig;
use rlhf_core::backend::{Cpu, CpuTrain, FlexDevice};
use rlhf_core::checkpoint::{LoadOptions, SaveDtype, load_scalar_model};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_prefdata::{
    CleanOptions, Comparison, ImportOptions, SplitConfig, assign_splits, clean_comparisons,
    import_hh_rlhf, read_comparisons, write_comparisons,
};
use rlhf_reward::{
    PairCollator, PreferencePair, RewardTrainConfig, export_hf, read_pairs, score_pairs, train,
};
use rlhf_train::TrainOptions;

/// `../shared/data`, or `None` (with a `SKIP:` line) in a user's clone; a test failure under
/// `CI=true` or `RLHF_REQUIRE_SHARED=1`.
fn data_dir() -> Option<PathBuf> {
    rlhf_testkit::shared_path("data")
}

#[test]
fn hh_pairs_to_a_trained_exported_and_reloaded_reward_model() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();

    // Data: import, clean, split, Parquet.
    let mut rows: Vec<Comparison> = Vec::new();
    let report = import_hh_rlhf(
        data.join("hh-rlhf-harmless/pairs.jsonl.gz"),
        &ImportOptions::default(),
        &mut rows,
    )
    .unwrap();
    assert_eq!(report.records, 1800);
    let (mut rows, clean) = clean_comparisons(rows, &CleanOptions::default());
    assert_eq!(rows.len(), 1796, "{clean:?}");
    rows.truncate(48);
    assign_splits(&mut rows, &SplitConfig::default()).unwrap();
    let parquet = tmp.path().join("pairs.parquet");
    write_comparisons(&parquet, rows.iter(), Default::default()).unwrap();
    assert_eq!(read_comparisons(&parquet).unwrap(), rows);

    // Reward model: a few steps on byte ids, with metrics and a checkpoint.
    let pairs: Vec<PreferencePair> = read_pairs(&parquet, None).unwrap();
    let (train_pairs, eval_pairs) = pairs.split_at(40);
    let collator = PairCollator::new(TextCodec::Bytes, 96);
    let cfg = RewardTrainConfig {
        learning_rate: 1e-3,
        max_steps: Some(4),
        batch_pairs: 4,
        max_length: 96,
        logging_steps: 2,
        eval_steps: Some(4),
        save_steps: Some(2),
        ..RewardTrainConfig::default()
    };
    let dev = FlexDevice;
    let model_cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    let model = rlhf_core::ScalarModel::<CpuTrain>::init(&model_cfg, 0.02, 0, &dev);
    let mut opts = TrainOptions::new(tmp.path().join("run"));
    opts.progress = false;
    let out = train(model, &collator, train_pairs, eval_pairs, &cfg, &opts, &dev).unwrap();
    assert_eq!(out.step, 4);
    let metrics = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 2, "metrics logged");
    let mut losses = 0;
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(loss) = v.get("loss") {
            // serde_json writes NaN and infinities as `null`: not a number is a failure too.
            let loss = loss
                .as_f64()
                .unwrap_or_else(|| panic!("loss is not a number: {line}"));
            assert!(loss.is_finite(), "finite loss: {line}");
            losses += 1;
        }
    }
    assert!(losses >= 2, "training losses logged: {metrics}");

    // Export in HF layout, reload through the core loader, same scores.
    let trained: rlhf_core::ScalarModel<Cpu> = out.model.valid();
    let export = tmp.path().join("hf");
    export_hf(&trained, &model_cfg, &export, SaveDtype::F32, None).unwrap();
    let (reloaded, _) = load_scalar_model::<Cpu>(&export, LoadOptions::default(), &dev).unwrap();
    let encoded: Vec<_> = eval_pairs
        .iter()
        .enumerate()
        .map(|(i, p)| collator.encode_pair(i, p).unwrap())
        .collect();
    let a = score_pairs(&trained, &encoded, 0, 4, &dev);
    let b = score_pairs(&reloaded, &encoded, 0, 4, &dev);
    assert_eq!(a.len(), 8);
    assert!(
        a.iter()
            .all(|s| s.chosen.is_finite() && s.rejected.is_finite())
    );
    assert_eq!(a, b);
}
