//! Checkpoints: HF round trips (f32 and bf16), sharded files, tied heads, clear errors for
//! missing/mis-shaped tensors and unknown families, and gradients through the whole model.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::prelude::*;
use rlhf_core::checkpoint::{
    LoadOptions, SaveDtype, TensorFiles, load_causal_lm, load_scalar_model, save_causal_lm,
    save_scalar_model, write_safetensors,
};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::{CausalLm, Family, ModelConfig, PadSide, RopeStyle, ScalarModel, TokenBatch};

use rlhf_testkit::{assert_close, assert_differ, assert_finite};

use crate::common::{B, device, fixture};

type Ad = rlhf_core::backend::CpuTrain;

fn batch() -> TokenBatch {
    TokenBatch::from_rows(&[vec![1, 5, 9, 12, 40], vec![1, 7, 3]], 0, PadSide::Right)
}

fn logits(model: &CausalLm<B>) -> Vec<f32> {
    model
        .forward(&batch(), &device())
        .into_data()
        .to_vec()
        .unwrap()
}

fn configs() -> Vec<ModelConfig> {
    let llama = ModelConfig::tiny_llama(64);
    let qwen = ModelConfig {
        family: Family::Qwen2,
        qkv_bias: true,
        tie_word_embeddings: true,
        ..llama.clone()
    };
    let mut glm4 = ModelConfig {
        family: Family::Glm4,
        qkv_bias: true,
        post_sublayer_norms: true,
        ..llama.clone()
    };
    glm4.rope.rotary_dim = 8;
    glm4.rope.style = RopeStyle::Interleaved;
    vec![llama, qwen, glm4]
}

#[test]
fn save_then_load_gives_the_same_logits_for_every_family() {
    for cfg in configs() {
        let model = CausalLm::<B>::init(&cfg, 0.1, 9, &device());
        let dir = tempfile::tempdir().unwrap();
        save_causal_lm(&model, &cfg, dir.path(), SaveDtype::F32).unwrap();
        let (back, cfg2) =
            load_causal_lm::<B>(dir.path(), LoadOptions::default(), &device()).unwrap();
        assert_eq!(cfg2, cfg, "{:?}: config round trip", cfg.family);
        let before = logits(&model);
        assert_finite(&format!("{:?}: logits", cfg.family), &before);
        assert_eq!(before, logits(&back), "{:?}: logits differ", cfg.family);
    }
}

#[test]
fn fixture_round_trips_through_our_writer() {
    let Some(dir) = fixture("glm") else { return };
    let (model, cfg) = load_causal_lm::<B>(&dir, LoadOptions::default(), &device()).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, out.path(), SaveDtype::F32).unwrap();
    let orig = TensorFiles::open(&dir).unwrap();
    let ours = TensorFiles::open(out.path()).unwrap();
    assert_eq!(orig.names(), ours.names(), "same HF tensor names");
    for name in orig.names() {
        let shape = orig.shape(&name).unwrap();
        assert_eq!(
            orig.read_f32(&name, &shape).unwrap(),
            ours.read_f32(&name, &shape).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn bf16_checkpoints_load_within_bf16_rounding() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 3, &device());
    let dir = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, dir.path(), SaveDtype::Bf16).unwrap();
    let (back, _) = load_causal_lm::<B>(dir.path(), LoadOptions::default(), &device()).unwrap();
    let d = assert_close(
        "bf16 weights change logits a little",
        &logits(&back),
        &logits(&model),
        0.05,
    );
    assert!(d > 0.0, "bf16 weights change logits a little: {d}");
}

#[test]
fn sharded_checkpoints_load() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
    let whole = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, whole.path(), SaveDtype::F32).unwrap();
    let files = TensorFiles::open(whole.path()).unwrap();
    let names = files.names();
    let sharded = tempfile::tempdir().unwrap();
    let mut map = serde_json::Map::new();
    for (k, chunk) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", k + 1);
        let tensors: Vec<_> = chunk
            .iter()
            .map(|n| {
                let s = files.shape(n).unwrap();
                (n.clone(), s.clone(), files.read_f32(n, &s).unwrap())
            })
            .collect();
        write_safetensors(&sharded.path().join(&file), &tensors, SaveDtype::F32, None).unwrap();
        for n in chunk {
            map.insert(n.clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        sharded.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    std::fs::copy(
        whole.path().join("config.json"),
        sharded.path().join("config.json"),
    )
    .unwrap();
    let (back, _) = load_causal_lm::<B>(sharded.path(), LoadOptions::default(), &device()).unwrap();
    let want = logits(&model);
    assert_finite("logits", &want);
    assert_eq!(logits(&back), want);
}

fn copy_without(src: &Path, dst: &Path, drop: &str, reshape: Option<(&str, Vec<usize>)>) {
    let files = TensorFiles::open(src).unwrap();
    let tensors: Vec<_> = files
        .names()
        .into_iter()
        .filter(|n| n != drop)
        .map(|n| {
            let s = files.shape(&n).unwrap();
            let v = files.read_f32(&n, &s).unwrap();
            match &reshape {
                Some((r, shape)) if *r == n => {
                    let len: usize = shape.iter().product();
                    (n, shape.clone(), v.into_iter().cycle().take(len).collect())
                }
                _ => (n, s, v),
            }
        })
        .collect();
    write_safetensors(
        &dst.join("model.safetensors"),
        &tensors,
        SaveDtype::F32,
        None,
    )
    .unwrap();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
}

#[test]
fn missing_and_misshaped_tensors_are_named() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
    let good = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, good.path(), SaveDtype::F32).unwrap();

    let bad = tempfile::tempdir().unwrap();
    copy_without(
        good.path(),
        bad.path(),
        "model.layers.1.mlp.up_proj.weight",
        None,
    );
    let err = load_causal_lm::<B>(bad.path(), LoadOptions::default(), &device()).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing tensor `model.layers.1.mlp.up_proj.weight`"),
        "{err}"
    );
    assert!(err.to_string().contains("[128, 64]"), "{err}");

    let bad = tempfile::tempdir().unwrap();
    copy_without(
        good.path(),
        bad.path(),
        "",
        Some(("model.layers.0.self_attn.k_proj.weight", vec![16, 64])),
    );
    let err = load_causal_lm::<B>(bad.path(), LoadOptions::default(), &device()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("model.layers.0.self_attn.k_proj.weight")
            && msg.contains("[16, 64]")
            && msg.contains("[32, 64]"),
        "{msg}"
    );

    let bad = tempfile::tempdir().unwrap();
    std::fs::copy(
        good.path().join("model.safetensors"),
        bad.path().join("model.safetensors"),
    )
    .unwrap();
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good.path().join("config.json")).unwrap())
            .unwrap();
    j["model_type"] = "mamba".into();
    std::fs::write(bad.path().join("config.json"), j.to_string()).unwrap();
    let err = load_causal_lm::<B>(bad.path(), LoadOptions::default(), &device()).unwrap_err();
    assert!(
        err.to_string().contains("unknown model_type `mamba`"),
        "{err}"
    );

    let err = load_causal_lm::<B>(
        Path::new("/nonexistent/model"),
        LoadOptions::default(),
        &device(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/model/config.json"),
        "{err}"
    );
}

#[test]
fn scalar_model_round_trips_in_sequence_classification_layout() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = ScalarModel::<B>::init(&cfg, 0.1, 8, &device());
    let dir = tempfile::tempdir().unwrap();
    save_scalar_model(&model, &cfg, dir.path(), SaveDtype::F32).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(j["architectures"][0], "LlamaForSequenceClassification");
    assert_eq!(j["num_labels"], 1);
    let (back, _) = load_scalar_model::<B>(dir.path(), LoadOptions::default(), &device()).unwrap();
    let a: Vec<f32> = model
        .rewards(&batch(), Some(0), &device())
        .into_data()
        .to_vec()
        .unwrap();
    let b: Vec<f32> = back
        .rewards(&batch(), Some(0), &device())
        .into_data()
        .to_vec()
        .unwrap();
    assert_finite("rewards", &a);
    assert_eq!(a, b);
}

#[test]
fn every_parameter_gets_a_gradient_and_a_few_steps_lower_the_loss() {
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    for cfg in configs() {
        let dev = device();
        let mut model = CausalLm::<Ad>::init(&cfg, 0.1, 1, &dev);
        let b = batch();
        let loss_of = |m: &CausalLm<Ad>| {
            nll_loss(
                m.forward(&b, &dev),
                b.ids_tensor::<Ad>(&dev),
                b.mask_tensor::<Ad>(&dev),
            )
        };
        let first: f32 = loss_of(&model).into_scalar().elem();
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<Ad, CausalLm<Ad>>();
        let before = model.valid();
        for _ in 0..5 {
            let loss = loss_of(&model);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2, model, grads);
        }
        let last: f32 = loss_of(&model).into_scalar().elem();
        assert!(last < first, "{:?}: loss {first} -> {last}", cfg.family);
        // Every parameter tensor moved (TRL's test_train check).
        let after = model.valid();
        let mut p_before = Vec::new();
        let mut p_after = Vec::new();
        collect_params(&before, &mut p_before);
        collect_params(&after, &mut p_after);
        assert_eq!(p_before.len(), p_after.len());
        for (i, (x, y)) in p_before.iter().zip(&p_after).enumerate() {
            let what = format!("{:?}: parameter {i} changed", cfg.family);
            assert_differ(&what, x, y, 0.0);
        }
    }
}

fn collect_params(model: &CausalLm<B>, out: &mut Vec<Vec<f32>>) {
    use burn::module::{ModuleVisitor, Param};
    struct V<'a>(&'a mut Vec<Vec<f32>>);
    impl ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().into_data().to_vec().unwrap());
        }
    }
    model.visit(&mut V(out));
}

/// Rewrites `dir/config.json` with `edit` applied.
fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut j);
    std::fs::write(&path, j.to_string()).unwrap();
}

/// Copies the checkpoint in `src` to `dst` with `extra` tensors added.
fn copy_with(src: &Path, dst: &Path, extra: &[(&str, Vec<usize>)]) {
    let files = TensorFiles::open(src).unwrap();
    let mut tensors: Vec<_> = files
        .names()
        .into_iter()
        .map(|n| {
            let s = files.shape(&n).unwrap();
            let v = files.read_f32(&n, &s).unwrap();
            (n, s, v)
        })
        .collect();
    for (name, shape) in extra {
        let len = shape.iter().product();
        tensors.push((name.to_string(), shape.clone(), vec![0.5; len]));
    }
    write_safetensors(
        &dst.join("model.safetensors"),
        &tensors,
        SaveDtype::F32,
        None,
    )
    .unwrap();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
}

#[test]
fn tensors_the_config_does_not_use_are_refused_by_name() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
    let good = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, good.path(), SaveDtype::F32).unwrap();

    // Two layers in the files, one in config.json: layer 1's nine tensors are unused.
    let fewer = tempfile::tempdir().unwrap();
    copy_with(good.path(), fewer.path(), &[]);
    edit_config(fewer.path(), |j| j["num_hidden_layers"] = 1.into());
    let err = load_causal_lm::<B>(fewer.path(), LoadOptions::default(), &device()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&fewer.path().display().to_string())
            && msg.contains("9 tensor(s)")
            && msg.contains("`model.layers.1.input_layernorm.weight`")
            && msg.contains("num_hidden_layers")
            && msg.contains(", …"),
        "{msg}"
    );
    assert!(!msg.contains("model.layers.0."), "{msg}");

    // A tensor of no known layout, in a causal LM and in a reward model.
    let odd = tempfile::tempdir().unwrap();
    copy_with(
        good.path(),
        odd.path(),
        &[("model.vision_tower.proj", vec![4, 4])],
    );
    let err = load_causal_lm::<B>(odd.path(), LoadOptions::default(), &device()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("1 tensor(s) that the model described by config.json does not use")
            && msg.contains("(`model.vision_tower.proj`);"),
        "{msg}"
    );
    let rm = ScalarModel::<B>::init(&cfg, 0.1, 5, &device());
    let rm_dir = tempfile::tempdir().unwrap();
    save_scalar_model(&rm, &cfg, rm_dir.path(), SaveDtype::F32).unwrap();
    let odd_rm = tempfile::tempdir().unwrap();
    copy_with(
        rm_dir.path(),
        odd_rm.path(),
        &[("value_head.weight", vec![1, 64])],
    );
    let err = load_scalar_model::<B>(odd_rm.path(), LoadOptions::default(), &device()).unwrap_err();
    assert!(err.to_string().contains("`value_head.weight`"), "{err}");

    // What the loaders legitimately leave out still loads: a reward model's score head when
    // its trunk is loaded as a causal LM, a tied model's saved lm_head, HF's rotary buffers.
    let (lm, _) = load_causal_lm::<B>(rm_dir.path(), LoadOptions::default(), &device()).unwrap();
    assert!(lm.lm_head.is_none(), "no lm_head: tied to the embedding");
    let buffers = tempfile::tempdir().unwrap();
    copy_with(
        good.path(),
        buffers.path(),
        &[("model.layers.0.self_attn.rotary_emb.inv_freq", vec![8])],
    );
    load_causal_lm::<B>(buffers.path(), LoadOptions::default(), &device()).unwrap();
    let tied_cfg = ModelConfig {
        tie_word_embeddings: true,
        ..cfg.clone()
    };
    let tied = CausalLm::<B>::init(&tied_cfg, 0.1, 5, &device());
    let tied_dir = tempfile::tempdir().unwrap();
    save_causal_lm(&tied, &tied_cfg, tied_dir.path(), SaveDtype::F32).unwrap();
    let tied_plus = tempfile::tempdir().unwrap();
    copy_with(
        tied_dir.path(),
        tied_plus.path(),
        &[("lm_head.weight", vec![64, 64])],
    );
    let (back, _) =
        load_causal_lm::<B>(tied_plus.path(), LoadOptions::default(), &device()).unwrap();
    assert!(back.lm_head.is_none());
    assert_eq!(logits(&back), logits(&tied));

    // Every shared fixture loads the way the workspace loads it, the reward one both ways.
    for name in ["llama", "qwen2", "glm", "glm4"] {
        if let Some(dir) = fixture(name) {
            load_causal_lm::<B>(&dir, LoadOptions::default(), &device()).unwrap();
        }
    }
    if let Some(dir) = fixture("llama_reward") {
        load_scalar_model::<B>(&dir, LoadOptions::default(), &device()).unwrap();
        load_causal_lm::<B>(&dir, LoadOptions::default(), &device()).unwrap();
    }
}

// `max_position_embeddings: 2000000000` used to allocate its rotary tables up front (64 GB
// here, an abort): now only the positions a batch reaches are computed, with the same values.
#[test]
fn a_huge_max_position_embeddings_costs_nothing_until_used() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
    let dir = tempfile::tempdir().unwrap();
    save_causal_lm(&model, &cfg, dir.path(), SaveDtype::F32).unwrap();
    edit_config(dir.path(), |j| {
        j["max_position_embeddings"] = 2_000_000_000u64.into()
    });
    let (back, back_cfg) =
        load_causal_lm::<B>(dir.path(), LoadOptions::default(), &device()).unwrap();
    assert_eq!(back_cfg.max_position_embeddings, 2_000_000_000);
    let want = logits(&model);
    assert_finite("logits", &want);
    assert_eq!(logits(&back), want, "bit-identical logits");
    assert_eq!(back.trunk.rope.max_len(), 2_000_000_000);
    assert!(
        back.trunk.rope.computed_len() <= 64,
        "{} rows computed for 5 positions",
        back.trunk.rope.computed_len()
    );
    // The same through `init`, in bf16 as on CUDA.
    let huge = ModelConfig {
        max_position_embeddings: 2_000_000_000,
        ..cfg.clone()
    };
    let init = CausalLm::<B>::init(&huge, 0.1, 5, &device());
    assert_eq!(logits(&init), want);
    let bf16 = |m: CausalLm<B>| logits(&rlhf_core::cast_params(m, burn::tensor::DType::BF16));
    assert_eq!(bf16(init), bf16(model));
}
