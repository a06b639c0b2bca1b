//! A byte-level BPE tokenizer trained on the synthetic corpus, with a ChatML chat template:
//! rows come from `encode_prompt_response` (multi-turn history included), long prompts are cut
//! from the left, a few steps train, and the export carries the tokenizer.

use burn::module::AutodiffModule;
use rlhf_core::backend::{Cpu, CpuTrain, FlexDevice};
use rlhf_core::checkpoint::{LoadOptions, SaveDtype, load_scalar_model};
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::{BpeTrainingConfig, Message, Tokenizer, train_bpe};
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_reward::{PairCollator, RewardTrainConfig, export_hf, score_pairs, train};
use rlhf_train::TrainOptions;

use crate::common::marker_pairs;

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

fn tokenizer() -> Tokenizer {
    let corpus: Vec<String> = marker_pairs(200, 3)
        .into_iter()
        .flat_map(|p| [p.prompt[0].content.clone(), p.chosen, p.rejected])
        .collect();
    let cfg = BpeTrainingConfig {
        vocab_size: 400,
        min_frequency: 2,
        special_tokens: vec!["<pad>".into(), "<|im_start|>".into(), "<|im_end|>".into()],
    };
    let mut tok = train_bpe(corpus.iter(), &cfg).unwrap();
    tok.set_chat_template(CHATML).unwrap();
    tok
}

#[test]
fn chat_template_rows_train_and_export_with_the_tokenizer() {
    let tok = tokenizer();
    let collator = PairCollator::new(TextCodec::Tokenizer(&tok), 48);
    let mut pairs = marker_pairs(64, 9);
    // Give one pair a long history: it must be cut from the left, keeping the reply.
    pairs[0].prompt = vec![
        Message::user("apple river stone ".repeat(20)),
        Message::assistant("cloud green"),
        Message::user("say something about music"),
    ];
    let enc = collator.encode_all(&pairs).unwrap();
    assert!(enc[0].truncated && enc[0].chosen.len() == 48);
    let text = tok.decode(&enc[0].chosen, false).unwrap();
    assert!(text.starts_with("<|im_start|>"), "BOS kept: {text}");
    assert!(
        text.ends_with(&format!("{}<|im_end|>\n", pairs[0].chosen)),
        "reply kept: {text}"
    );
    assert!(text.contains("say something about music"), "{text}");
    // An untruncated row is exactly the chat template's rendering.
    let full = tok
        .apply_chat_template(
            &[
                pairs[1].prompt.clone(),
                vec![Message::assistant(pairs[1].chosen.clone())],
            ]
            .concat(),
            false,
        )
        .unwrap();
    assert_eq!(tok.decode(&enc[1].chosen, false).unwrap(), full);

    let model_cfg = ModelConfig::tiny_llama(tok.vocab_size());
    let model = ScalarModel::<CpuTrain>::init(&model_cfg, 0.02, 0, &FlexDevice);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RewardTrainConfig {
        learning_rate: 2e-3,
        max_steps: Some(4),
        max_length: 48,
        logging_steps: 2,
        ..Default::default()
    };
    let out = train(
        model,
        &collator,
        &pairs,
        &[],
        &cfg,
        &TrainOptions::new(tmp.path().join("run")),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(out.step, 4);

    let export = tmp.path().join("hf");
    let model = out.model.valid();
    export_hf(
        &model,
        &model_cfg,
        &export,
        SaveDtype::F32,
        Some((&tok, Some(CHATML))),
    )
    .unwrap();
    let tok2 = Tokenizer::from_dir(&export).unwrap();
    assert!(tok2.has_chat_template());
    let (back, _) = load_scalar_model::<Cpu>(&export, LoadOptions::default(), &FlexDevice).unwrap();
    let enc2 = PairCollator::new(TextCodec::Tokenizer(&tok2), 48)
        .encode_all(&pairs)
        .unwrap();
    assert_eq!(enc, enc2);
    let pad = TextCodec::Tokenizer(&tok).pad_id();
    let a = score_pairs(&model, &enc, pad, 16, &FlexDevice);
    let b = score_pairs(&back, &enc2, pad, 16, &FlexDevice);
    let chosen =
        |s: &[rlhf_reward::PairScore]| -> Vec<f32> { s.iter().map(|p| p.chosen).collect() };
    rlhf_testkit::assert_close(
        "exported model: chosen scores",
        &chosen(&b),
        &chosen(&a),
        1e-5,
    );
}

#[test]
fn tokenizer_without_template_uses_the_plain_transcript() {
    let plain = {
        let cfg = BpeTrainingConfig {
            vocab_size: 300,
            min_frequency: 1,
            special_tokens: vec!["<pad>".into(), "<s>".into(), "</s>".into()],
        };
        train_bpe(["User: hi\nAssistant: hello there"].iter(), &cfg).unwrap()
    };
    assert!(!plain.has_chat_template());
    let row = TextCodec::Tokenizer(&plain)
        .encode(&[Message::user("hi")], "hello there")
        .unwrap();
    assert_eq!(row.ids[0], plain.bos_id().unwrap());
    assert_eq!(*row.ids.last().unwrap(), plain.eos_id().unwrap());
    let reply = plain
        .decode(&row.ids[row.response_start..row.ids.len() - 1], false)
        .unwrap();
    assert_eq!(reply, "hello there");
    let prompt = plain
        .decode(&row.ids[1..row.response_start], false)
        .unwrap();
    assert_eq!(prompt, "User: hi\nAssistant: ");
}
