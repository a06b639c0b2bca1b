//! Tokenizer and chat templates: the real template strings of Qwen2 (ChatML), Llama-3 and GLM-4
//! render multi-turn conversations exactly, special tokens encode as single ids, BOS appears
//! once, and exactly the assistant tokens are trainable.

use rlhf_core::tokenizer::{BpeTrainingConfig, Message, Tokenizer, train_bpe};

fn template(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/templates/{name}.jinja"));
    std::fs::read_to_string(p).unwrap()
}

const CORPUS: &[&str] = &[
    "The capital of France is Paris. What is two plus three? Two plus three is five.",
    "Write a short poem about the sea. The sea is wide and blue, and waves come through.",
    "请把这句话翻译成英文：我喜欢喝茶。I like drinking tea. 你好，世界！",
    "You are a helpful assistant. Hello! How can I help you today?",
];

fn tokenizer(specials: &[&str], bos: &str, eos: &str, pad: &str, tmpl: &str) -> Tokenizer {
    let cfg = BpeTrainingConfig {
        vocab_size: 600,
        min_frequency: 1,
        special_tokens: specials.iter().map(|s| s.to_string()).collect(),
    };
    let mut tok = train_bpe(CORPUS.iter().cycle().take(40), &cfg).unwrap();
    tok.set_special_tokens(Some(bos), Some(eos), Some(pad))
        .unwrap();
    tok.set_chat_template(&template(tmpl)).unwrap();
    tok
}

fn conversation() -> Vec<Message> {
    vec![
        Message::user("What is two plus three?"),
        Message::assistant("Two plus three is five."),
        Message::user("请把这句话翻译成英文：我喜欢喝茶。"),
        Message::assistant("I like drinking tea."),
    ]
}

fn trainable_text(tok: &Tokenizer, ids: &[u32], mask: &[bool]) -> String {
    let picked: Vec<u32> = ids
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(i, _)| *i)
        .collect();
    tok.decode(&picked, false).unwrap()
}

#[test]
fn qwen2_chatml_renders_and_masks_assistant_turns() {
    let tok = tokenizer(
        &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "qwen2",
    );
    let text = tok.apply_chat_template(&conversation(), false).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is two plus three?<|im_end|>\n<|im_start|>assistant\nTwo plus three is five.<|im_end|>\n<|im_start|>user\n请把这句话翻译成英文：我喜欢喝茶。<|im_end|>\n<|im_start|>assistant\nI like drinking tea.<|im_end|>\n"
    );
    let prompt = tok.apply_chat_template(&conversation()[..1], true).unwrap();
    assert!(
        prompt.ends_with(
            "<|im_start|>user\nWhat is two plus three?<|im_end|>\n<|im_start|>assistant\n"
        )
    );
    let enc = tok.encode_chat(&conversation(), true).unwrap();
    let im_start = tok.token_to_id("<|im_start|>").unwrap();
    assert_eq!(
        enc.ids.iter().filter(|&&i| i == im_start).count(),
        5,
        "one id per <|im_start|>"
    );
    assert_eq!(
        trainable_text(&tok, &enc.ids, &enc.trainable),
        "Two plus three is five.<|im_end|>\nI like drinking tea.<|im_end|>\n"
    );
    assert_eq!(
        tok.decode(&enc.ids, false).unwrap(),
        text,
        "ids decode back to the text"
    );
}

#[test]
fn llama3_renders_one_bos_and_masks_assistant_turns() {
    let tok = tokenizer(
        &[
            "<|end_of_text|>",
            "<|begin_of_text|>",
            "<|eot_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
        ],
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|end_of_text|>",
        "llama3",
    );
    let conv = conversation();
    let text = tok.apply_chat_template(&conv[..2], false).unwrap();
    assert_eq!(
        text,
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is two plus three?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nTwo plus three is five.<|eot_id|>"
    );
    let bos = tok.bos_id().unwrap();
    let enc = tok
        .encode_prompt_response(&conv[..1], "Two plus three is five.")
        .unwrap();
    assert_eq!(
        enc.ids.iter().filter(|&&i| i == bos).count(),
        1,
        "no double BOS"
    );
    assert_eq!(enc.ids[0], bos);
    assert_eq!(
        trainable_text(&tok, &enc.ids, &enc.trainable),
        "Two plus three is five.<|eot_id|>"
    );
    let prompt_ids = tok.encode_prompt(&conv[..1]).unwrap();
    assert_eq!(
        &enc.ids[..prompt_ids.len()],
        &prompt_ids[..],
        "prompt tokens are a prefix"
    );
    assert_eq!(enc.first_trainable(), Some(prompt_ids.len()));
}

#[test]
fn glm4_renders_and_appends_eos_to_the_reply() {
    let tok = tokenizer(
        &[
            "<|endoftext|>",
            "[gMASK]",
            "<sop>",
            "<|system|>",
            "<|user|>",
            "<|assistant|>",
        ],
        "[gMASK]",
        "<|endoftext|>",
        "<|endoftext|>",
        "glm4",
    );
    let conv = vec![
        Message::system("你是一个乐于助人的助手。"),
        Message::user("你好"),
        Message::assistant("你好！有什么可以帮你？"),
    ];
    let text = tok.apply_chat_template(&conv, false).unwrap();
    assert_eq!(
        text,
        "[gMASK]<sop><|system|>\n你是一个乐于助人的助手。<|user|>\n你好<|assistant|>\n你好！有什么可以帮你？"
    );
    let prompt = tok.apply_chat_template(&conv[..2], true).unwrap();
    assert!(prompt.ends_with("<|user|>\n你好<|assistant|>"));
    let enc = tok
        .encode_prompt_response(&conv[..2], "你好！有什么可以帮你？")
        .unwrap();
    let eos = tok.eos_id().unwrap();
    assert_eq!(
        *enc.ids.last().unwrap(),
        eos,
        "EOS appended: GLM-4 turns end with the next role tag"
    );
    assert_eq!(
        trainable_text(&tok, &enc.ids, &enc.trainable),
        "\n你好！有什么可以帮你？<|endoftext|>"
    );
    let gmask = tok.token_to_id("[gMASK]").unwrap();
    assert_eq!(enc.ids.iter().filter(|&&i| i == gmask).count(), 1);
}

#[test]
fn template_errors_are_reported() {
    let mut tok = tokenizer(&["<pad>", "<s>", "</s>"], "<s>", "</s>", "<pad>", "qwen2");
    let err = tok
        .set_chat_template("{% for m in messages %}")
        .unwrap_err();
    assert!(err.to_string().contains("chat template"), "{err}");
    tok.set_chat_template("{{ raise_exception('roles must alternate') }}")
        .unwrap();
    let err = tok
        .apply_chat_template(&[Message::user("x")], false)
        .unwrap_err();
    assert!(err.to_string().contains("roles must alternate"), "{err}");
}

#[test]
fn tokenizer_round_trips_through_files() {
    let tok = tokenizer(
        &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "qwen2",
    );
    let dir = tempfile::tempdir().unwrap();
    tok.save_dir(dir.path(), Some(&template("qwen2"))).unwrap();
    let back = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(back.eos_id(), tok.eos_id());
    assert_eq!(back.pad_id(), tok.pad_id());
    let a = tok.encode_chat(&conversation(), true).unwrap();
    let b = back.encode_chat(&conversation(), true).unwrap();
    assert_eq!(a, b);
    let text = "混合 mixed 文本 text 123";
    assert_eq!(
        back.decode(&back.encode(text, false).unwrap(), false)
            .unwrap(),
        text
    );
}
