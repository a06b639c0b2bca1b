//! What prefdata still takes from `rlhf-core`: the core tokenizer as a TokenCounter, and a
//! comparison's conversation as core chat messages.

use rlhf_core::tokenizer::{BpeTrainingConfig, Role as CoreRole, Tokenizer, train_bpe};
use rlhf_prefdata::{Comparison, Message, Role, TokenCounter, prompt_messages};

fn tokenizer() -> Tokenizer {
    let corpus = [
        "What is the capital of France? Paris is the capital.",
        "Tell me a joke. No. 你好 世界",
    ];
    let cfg = BpeTrainingConfig {
        vocab_size: 400,
        min_frequency: 1,
        special_tokens: vec!["<|endoftext|>".into()],
    };
    train_bpe(corpus.iter().cycle().take(20), &cfg).unwrap()
}

#[test]
fn the_core_tokenizer_counts_tokens() {
    let tok = tokenizer();
    let n = tok.count("What is the capital of France?");
    assert!(n > 0 && n < "What is the capital of France?".len());
}

#[test]
fn prompt_messages_are_the_history_then_the_prompt_as_a_user_turn() {
    let mut c = Comparison::new("id", "test", "And Italy?", "Rome.", "No.");
    c.history = vec![
        Message {
            role: Role::System,
            content: "Be brief.".into(),
        },
        Message {
            role: Role::User,
            content: "Capital of France?".into(),
        },
        Message {
            role: Role::Assistant,
            content: "Paris.".into(),
        },
    ];
    let got: Vec<(CoreRole, String)> = prompt_messages(&c)
        .into_iter()
        .map(|m| (m.role, m.content))
        .collect();
    assert_eq!(
        got,
        vec![
            (CoreRole::System, "Be brief.".to_owned()),
            (CoreRole::User, "Capital of France?".to_owned()),
            (CoreRole::Assistant, "Paris.".to_owned()),
            (CoreRole::User, "And Italy?".to_owned()),
        ]
    );
}
