//! The collator: chat-template rows with typed masks, chosen rows before rejected rows,
//! truncation that keeps the response; the core tokenizer as a TokenCounter.

use rlhf_core::tokenizer::{BpeTrainingConfig, Tokenizer, train_bpe};
use rlhf_prefdata::{Comparison, Message, Role, TokenCounter, TokenKind, collate_pairs};

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn tokenizer() -> Tokenizer {
    let corpus = [
        "What is the capital of France? Paris is the capital.",
        "Tell me a joke. No. 你好 世界",
    ];
    let cfg = BpeTrainingConfig {
        vocab_size: 400,
        min_frequency: 1,
        special_tokens: vec![
            "<|endoftext|>".into(),
            "<|im_start|>".into(),
            "<|im_end|>".into(),
        ],
    };
    let mut tok = train_bpe(corpus.iter().cycle().take(20), &cfg).unwrap();
    tok.set_chat_template(CHATML).unwrap();
    tok
}

fn pair(prompt: &str, chosen: &str, rejected: &str) -> Comparison {
    let mut c = Comparison::new("id", "test", prompt, chosen, rejected);
    c.history = vec![
        Message {
            role: Role::User,
            content: "Hi".into(),
        },
        Message {
            role: Role::Assistant,
            content: "Hello!".into(),
        },
    ];
    c
}

fn response_text(tok: &Tokenizer, b: &rlhf_prefdata::PairBatch, row: usize) -> String {
    let seq = b.tokens.seq;
    let ids: Vec<u32> = (0..seq)
        .filter(|&p| b.kinds[row * seq + p] == TokenKind::Response)
        .map(|p| b.tokens.ids[row * seq + p])
        .collect();
    tok.decode(&ids, false).unwrap()
}

#[test]
fn rows_are_chosen_then_rejected_with_response_masks() {
    let tok = tokenizer();
    let rows = vec![
        pair("What is the capital of France?", "Paris.", "No."),
        pair("Tell me a joke.", "A joke!", "No joke"),
    ];
    let b = collate_pairs(&rows, &tok, 512).unwrap();
    assert_eq!(b.tokens.batch, 4);
    assert_eq!(b.truncated_rows, 0);
    assert_eq!(response_text(&tok, &b, 0), "Paris.<|im_end|>\n");
    assert_eq!(response_text(&tok, &b, 1), "A joke!<|im_end|>\n");
    assert_eq!(response_text(&tok, &b, 2), "No.<|im_end|>\n");
    assert_eq!(response_text(&tok, &b, 3), "No joke<|im_end|>\n");
    // The history's assistant turn is context, not response.
    let seq = b.tokens.seq;
    let prompt_ids: Vec<u32> = (0..seq)
        .filter(|&p| b.kinds[p] == TokenKind::Prompt)
        .map(|p| b.tokens.ids[p])
        .collect();
    assert!(tok.decode(&prompt_ids, false).unwrap().contains("Hello!"));
    // Padding kinds line up with the padding mask.
    for (k, m) in b.kinds.iter().zip(&b.tokens.mask) {
        assert_eq!(*k == TokenKind::Pad, *m == 0);
    }
}

#[test]
fn truncation_drops_old_prompt_tokens_and_keeps_the_response() {
    let tok = tokenizer();
    let long_prompt = "What is the capital of France? ".repeat(30);
    let rows = vec![pair(&long_prompt, "Paris.", "No.")];
    let full = collate_pairs(&rows, &tok, 10_000).unwrap();
    let b = collate_pairs(&rows, &tok, 24).unwrap();
    assert_eq!(b.tokens.seq, 24);
    assert_eq!(b.truncated_rows, 2);
    assert_eq!(response_text(&tok, &b, 0), response_text(&tok, &full, 0));
    assert!(collate_pairs(&rows, &tok, 0).is_err());
}

#[test]
fn the_core_tokenizer_counts_tokens() {
    let tok = tokenizer();
    let n = tok.count("What is the capital of France?");
    assert!(n > 0 && n < "What is the capital of France?".len());
}
