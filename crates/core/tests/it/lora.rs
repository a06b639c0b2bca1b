//! LoRA adapters (identity at start, merge = unmerged forward, only adapters train, PEFT
//! export layout) and bf16 mixed precision (gradients reach f32 master weights).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::DType;
use rlhf_core::checkpoint::{
    LoadOptions, SaveDtype, TensorFiles, load_causal_lm, open_file, save_causal_lm,
    save_lora_adapter,
};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::{
    CausalLm, Family, LoraConfig, LoraTarget, ModelConfig, PadSide, TokenBatch, cast_params,
};

use rlhf_testkit::{assert_close, assert_differ, assert_finite};

use crate::common::{B, device};

type Ad = rlhf_core::backend::CpuTrain;

fn batch() -> TokenBatch {
    TokenBatch::from_rows(&[vec![1, 5, 9, 12, 40], vec![1, 7, 3]], 0, PadSide::Right)
}

fn logits<Bk: Backend>(model: &CausalLm<Bk>, dev: &Bk::Device) -> Vec<f32> {
    model.forward(&batch(), dev).into_data().to_vec().unwrap()
}

fn loss_of(m: &CausalLm<Ad>) -> Tensor<Ad, 1> {
    let (b, dev) = (batch(), device());
    nll_loss(
        m.forward(&b, &dev),
        b.ids_tensor::<Ad>(&dev),
        b.mask_tensor::<Ad>(&dev),
    )
}

/// Gives every adapter's `B` random values, so the adapters change the function.
fn perturb(model: CausalLm<B>, seed: u64) -> CausalLm<B> {
    let mut adapters = model.trunk.lora_adapters();
    let mut k = seed;
    for l in &mut adapters.layers {
        for lora in [&mut l.qkv, &mut l.o, &mut l.gate_up, &mut l.down]
            .into_iter()
            .flatten()
        {
            let [r, o] = lora.b.dims();
            k += 1;
            let v: Vec<f32> = (0..r * o)
                .map(|i| (((i as u64 * 7919 + k * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 0.2)
                .collect();
            lora.b = lora
                .b
                .clone()
                .map(|_| Tensor::from_data(TensorData::new(v, [r, o]), &device()));
        }
    }
    CausalLm {
        trunk: model.trunk.set_lora_adapters(adapters),
        lm_head: model.lm_head,
    }
}

fn configs() -> Vec<ModelConfig> {
    let llama = ModelConfig::tiny_llama(64);
    let qwen = ModelConfig {
        family: Family::Qwen2,
        qkv_bias: true,
        tie_word_embeddings: true,
        ..llama.clone()
    };
    vec![llama, qwen]
}

#[test]
fn fresh_adapters_change_nothing_and_merging_equals_the_adapted_forward() {
    for cfg in configs() {
        let dev = device();
        let base = CausalLm::<B>::init(&cfg, 0.1, 3, &dev);
        let lcfg = LoraConfig::default();
        let adapted = base.clone().with_lora(&lcfg, 7, &dev);
        assert!(adapted.trunk.has_lora());
        assert_eq!(
            logits(&base, &dev),
            logits(&adapted, &dev),
            "{:?}: B = 0 must give the base model exactly",
            cfg.family
        );
        // Per layer: qkv [h, q+2kv], o [q, h], gate_up [h, 2i], down [i, h], each r·(in+out).
        let (h, q, kv, i) = (
            cfg.hidden_size,
            cfg.num_heads * cfg.head_dim,
            cfg.num_kv_heads * cfg.head_dim,
            cfg.intermediate_size,
        );
        let per_layer = 8 * ((h + q + 2 * kv) + (q + h) + (h + 2 * i) + (i + h));
        assert_eq!(adapted.trunk.lora_num_params(), cfg.num_layers * per_layer);

        let adapted = perturb(adapted, 1);
        let with = logits(&adapted, &dev);
        assert_differ("adapters act", &with, &logits(&base, &dev), 1e-3);
        let merged = adapted.clone().merge_lora();
        assert!(!merged.trunk.has_lora());
        let what = format!("{:?}: merged vs adapted", cfg.family);
        assert_close(&what, &logits(&merged, &dev), &with, 1e-5);

        // HF export merges too, and loads back as a plain model.
        let dir = tempfile::tempdir().unwrap();
        save_causal_lm(&adapted, &cfg, dir.path(), SaveDtype::F32).unwrap();
        let (back, _) = load_causal_lm::<B>(dir.path(), LoadOptions::default(), &dev).unwrap();
        let what = format!("{:?}: exported vs adapted", cfg.family);
        assert_close(&what, &logits(&back, &dev), &with, 1e-5);
    }
}

#[test]
fn targets_select_the_projections() {
    let cfg = ModelConfig::tiny_llama(64);
    let lcfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        target_modules: vec![LoraTarget::Qkv, LoraTarget::Down],
    };
    let m = CausalLm::<B>::init(&cfg, 0.1, 3, &device()).with_lora(&lcfg, 1, &device());
    for l in &m.trunk.layers {
        assert!(l.attn.qkv_lora.is_some() && l.mlp.down_lora.is_some());
        assert!(l.attn.o_lora.is_none() && l.mlp.gate_up_lora.is_none());
        assert_eq!(l.attn.qkv_lora.as_ref().unwrap().scale, 2.0);
    }
    assert!(
        LoraConfig {
            r: 0,
            ..lcfg.clone()
        }
        .validate()
        .is_err()
    );
    assert!(
        LoraConfig {
            target_modules: vec![],
            ..lcfg
        }
        .validate()
        .is_err()
    );
    let parsed: LoraConfig =
        serde_json::from_str(r#"{"r": 16, "target_modules": ["qkv", "gate_up"]}"#).unwrap();
    assert_eq!(parsed.alpha, 16.0);
    assert!(serde_json::from_str::<LoraConfig>(r#"{"target_modules": ["q_proj"]}"#).is_err());
}

fn float_params<Bk: Backend, M: Module<Bk>>(m: &M) -> Vec<(DType, Vec<f32>)> {
    struct V<'a>(&'a mut Vec<(DType, Vec<f32>)>);
    impl<Bk: Backend> ModuleVisitor<Bk> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Bk, D>>) {
            let t = p.val();
            let dt = t.dtype();
            self.0
                .push((dt, t.cast(DType::F32).into_data().to_vec().unwrap()));
        }
    }
    let mut out = Vec::new();
    m.visit(&mut V(&mut out));
    out
}

#[test]
fn only_the_adapters_train_when_the_base_is_frozen() {
    let cfg = ModelConfig::tiny_llama(64);
    let dev = device();
    let lcfg = LoraConfig::default();
    let mut model = CausalLm::<Ad>::init(&cfg, 0.1, 3, &dev)
        .with_lora(&lcfg, 5, &dev)
        .freeze_base();
    let base_before = float_params::<B, _>(&model.valid().merge_lora());
    let adapters_before = float_params::<B, _>(&model.valid().trunk.lora_adapters());
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .init::<Ad, CausalLm<Ad>>();
    let first: f32 = loss_of(&model).into_scalar().elem();
    for _ in 0..5 {
        let loss = loss_of(&model);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // Two tensors (A, B) per adapter, four adapters per layer, nothing else.
        assert_eq!(grads.len(), cfg.num_layers * 4 * 2);
        model = optim.step(1e-2, model, grads);
    }
    let last: f32 = loss_of(&model).into_scalar().elem();
    assert!(
        last < first,
        "LoRA training lowers the loss: {first} -> {last}"
    );
    let inf = model.valid();
    let adapters_after = float_params::<B, _>(&inf.trunk.lora_adapters());
    for (i, (a, b)) in adapters_before.iter().zip(&adapters_after).enumerate() {
        assert_differ(&format!("adapter tensor {i} moved"), &a.1, &b.1, 0.0);
    }
    // The base weights are untouched: strip the adapters (no merge) and compare.
    let stripped = CausalLm {
        trunk: inf
            .trunk
            .clone()
            .set_lora_adapters(rlhf_core::LoraAdapters {
                layers: inf
                    .trunk
                    .lora_adapters()
                    .layers
                    .into_iter()
                    .map(|_| rlhf_core::LayerLora {
                        qkv: None,
                        o: None,
                        gate_up: None,
                        down: None,
                    })
                    .collect(),
            }),
        lm_head: inf.lm_head.clone(),
    };
    let base_after = float_params::<B, _>(&stripped);
    assert_eq!(base_before, base_after, "frozen base weights changed");
}

#[test]
fn peft_export_reconstructs_the_merged_weights() {
    let cfg = ModelConfig::tiny_llama(64);
    let dev = device();
    let lcfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        target_modules: LoraTarget::ALL.to_vec(),
    };
    let base = CausalLm::<B>::init(&cfg, 0.1, 3, &dev);
    let adapted = perturb(base.clone().with_lora(&lcfg, 2, &dev), 9);
    let tmp = tempfile::tempdir().unwrap();
    let (base_dir, merged_dir, peft_dir) = (
        tmp.path().join("base"),
        tmp.path().join("merged"),
        tmp.path().join("adapter"),
    );
    save_causal_lm(&base, &cfg, &base_dir, SaveDtype::F32).unwrap();
    save_causal_lm(&adapted, &cfg, &merged_dir, SaveDtype::F32).unwrap();
    save_lora_adapter(&adapted.trunk, &cfg, &lcfg, &peft_dir).unwrap();
    assert!(save_lora_adapter(&base.trunk, &cfg, &lcfg, &peft_dir.join("x")).is_err());

    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(peft_dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(conf["peft_type"], "LORA");
    assert_eq!(conf["r"], 4);
    let mut targets: Vec<&str> = conf["target_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "down_proj",
            "gate_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "up_proj",
            "v_proj"
        ]
    );

    // PEFT's merge: W_hf + (alpha/r) · lora_B @ lora_A equals our merged export, for every
    // projection of every layer.
    let base_f = TensorFiles::open(&base_dir).unwrap();
    let merged_f = TensorFiles::open(&merged_dir).unwrap();
    let peft_f = open_file(&peft_dir.join("adapter_model.safetensors")).unwrap();
    let read = |f: &TensorFiles, key: &str| {
        let shape = f.shape(key).unwrap_or_else(|| panic!("{key} missing"));
        let v = f.read_f32(key, &shape).unwrap();
        (shape, v)
    };
    let scale = 2.0f32;
    let mut checked = 0;
    for i in 0..cfg.num_layers {
        for name in [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ] {
            let key = format!("model.layers.{i}.{name}.weight");
            let (ws, w) = read(&base_f, &key);
            let (_, m) = read(&merged_f, &key);
            let peft_key = |ab: &str| {
                format!(
                    "base_model.model.{}",
                    key.replace(".weight", &format!(".lora_{ab}.weight"))
                )
            };
            let (a_s, a) = read(&peft_f, &peft_key("A"));
            let (b_s, b) = read(&peft_f, &peft_key("B"));
            let (out, inn, r) = (ws[0], ws[1], a_s[0]);
            assert_eq!(a_s, vec![r, inn], "{key}: lora_A shape");
            assert_eq!(b_s, vec![out, r], "{key}: lora_B shape");
            let mut want = w.clone();
            for o in 0..out {
                for c in 0..inn {
                    let d: f32 = (0..r).map(|k| b[o * r + k] * a[k * inn + c]).sum();
                    want[o * inn + c] += scale * d;
                }
            }
            assert_close(&format!("{key}: PEFT merge"), &m, &want, 1e-5);
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * cfg.num_layers);
}

#[test]
fn bf16_mixed_precision_sends_f32_gradients_to_f32_masters() {
    let cfg = ModelConfig::tiny_llama(64);
    let dev = device();
    let master = CausalLm::<Ad>::init(&cfg, 0.1, 11, &dev);
    // Reference: f32 forward and backward.
    let g32 = GradientsParams::from_grads(loss_of(&master).backward(), &master);
    // Mixed: the loss of a bf16 copy, gradients taken on the f32 master.
    let compute = cast_params(master.clone(), DType::BF16);
    assert!(
        float_params::<Ad, _>(&compute)
            .iter()
            .all(|(dt, _)| *dt == DType::BF16)
    );
    let loss16 = loss_of(&compute);
    let l16: f32 = loss16.clone().into_scalar().elem();
    let l32: f32 = loss_of(&master).into_scalar().elem();
    assert!(
        (l16 - l32).abs() < 0.02 * l32.abs(),
        "loss bf16 {l16} vs f32 {l32}"
    );
    let g16 = GradientsParams::from_grads(loss16.backward(), &master);
    assert_eq!(
        g16.len(),
        g32.len(),
        "every master parameter gets a gradient"
    );

    struct Cmp<'a> {
        a: &'a GradientsParams,
        b: &'a GradientsParams,
        worst_cos: f64,
        n: usize,
    }
    impl ModuleVisitor<Ad> for Cmp<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Ad, D>>) {
            let a = self.a.get::<B, D>(p.id).expect("f32 grad");
            let b = self.b.get::<B, D>(p.id).expect("mixed grad");
            assert_eq!(b.dtype(), DType::F32, "master gradients are f32");
            let a: Vec<f32> = a.into_data().to_vec().unwrap();
            let b: Vec<f32> = b.into_data().to_vec().unwrap();
            // `f64::min` below would skip a NaN cosine.
            assert_finite(&format!("f32 gradient of parameter {}", self.n), &a);
            assert_finite(&format!("mixed gradient of parameter {}", self.n), &b);
            let dot: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if na > 1e-6 {
                self.worst_cos = self.worst_cos.min(dot / (na * nb));
            }
            self.n += 1;
        }
    }
    let mut cmp = Cmp {
        a: &g32,
        b: &g16,
        worst_cos: 1.0,
        n: 0,
    };
    master.visit(&mut cmp);
    assert!(cmp.n > 10);
    assert!(
        cmp.worst_cos > 0.98,
        "bf16 gradients point where f32 ones do (worst cosine {})",
        cmp.worst_cos
    );

    // A few mixed-precision steps lower the loss and keep the masters in f32.
    let mut model = master;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .init::<Ad, CausalLm<Ad>>();
    let first: f32 = loss_of(&model).into_scalar().elem();
    for _ in 0..5 {
        let loss = loss_of(&cast_params(model.clone(), DType::BF16));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let last: f32 = loss_of(&model).into_scalar().elem();
    assert!(last < first, "mixed precision trains: {first} -> {last}");
    assert!(
        float_params::<Ad, _>(&model)
            .iter()
            .all(|(dt, _)| *dt == DType::F32)
    );
    // Inference in bf16 matches f32 to bf16 rounding.
    let inf = model.valid();
    assert_close(
        "bf16 logits within bf16 rounding",
        &logits(&cast_params(inf.clone(), DType::BF16), &dev),
        &logits(&inf, &dev),
        0.1,
    );
}
