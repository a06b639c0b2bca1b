//! Every written file parses, in the formats the rest of the workspace reads.

use std::collections::HashSet;

use serde::Deserialize;

use rlhf_world::{
    Category, EVAL_ALIGNBENCH_FILE, EVAL_PROMPTS_FILE, Language, PAIRS_FILE, PAIRS_META_FILE,
    PROMPTS_FILE, RL_PROMPTS_FILE, Role, SFT_FILE, STATS_FILE, Split, WORLD_FILE, read_pair_meta,
    read_prompts, read_sft, read_world_file,
};

use crate::common::default_set;

#[derive(Deserialize)]
struct Msg {
    role: String,
    content: String,
}

/// TRL's conversational preference format, as `rlhf_prefdata::import_trl` reads it.
#[derive(Deserialize)]
struct TrlLine {
    id: String,
    prompt: Vec<Msg>,
    chosen: Vec<Msg>,
    rejected: Vec<Msg>,
    category: String,
    language: String,
}

/// `rlhf_prefdata::PromptRecord`'s fields.
#[derive(Deserialize)]
#[allow(dead_code)]
struct PromptRecord {
    id: String,
    category: String,
    subcategory: Option<String>,
    prompt: String,
    reference: Option<String>,
}

/// The AlignBench question fields `rlhf_alignbench_eval::Question` requires.
#[derive(Deserialize)]
struct Question {
    question_id: u32,
    category: String,
    subcategory: String,
    question: String,
    reference: String,
}

fn lines<T: for<'de> Deserialize<'de>>(path: &std::path::Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

#[test]
fn files_round_trip_and_match_their_schemas() {
    let data = default_set();
    let dir = tempfile::tempdir().unwrap();
    data.write(dir.path()).unwrap();
    let d = dir.path();

    let train = read_prompts(&d.join(PROMPTS_FILE)).unwrap();
    let eval = read_prompts(&d.join(EVAL_PROMPTS_FILE)).unwrap();
    assert_eq!(train, data.train);
    assert_eq!(eval, data.eval);
    assert!(train.iter().all(|p| p.split == Split::Train));
    assert!(eval.iter().all(|p| p.split == Split::Eval));
    let records: Vec<PromptRecord> = lines(&d.join(PROMPTS_FILE));
    assert_eq!(records.len(), 3000);
    // The RL prompts: a third of the training prompts, exactly those without a demonstration.
    let rl = read_prompts(&d.join(RL_PROMPTS_FILE)).unwrap();
    assert_eq!(rl.len(), 1000);
    let with_demo: std::collections::HashSet<&str> =
        data.sft.iter().map(|s| s.prompt_id.as_str()).collect();
    assert_eq!(data.sft.len(), 2000);
    assert!(rl.iter().all(|p| !with_demo.contains(p.id.as_str())));
    assert_eq!(rl.len() + with_demo.len(), train.len());
    assert!(
        records
            .iter()
            .all(|r| Category::from_label(&r.category).is_some())
    );

    // Held out by prompt: no training prompt text (with history) is an eval prompt.
    let key = |p: &rlhf_world::Prompt| format!("{:?}{}", p.history, p.prompt);
    let train_keys: HashSet<String> = train.iter().map(key).collect();
    assert_eq!(
        train_keys.len(),
        train.len(),
        "training prompts are distinct"
    );
    assert!(eval.iter().all(|p| !train_keys.contains(&key(p))));

    let sft = read_sft(&d.join(SFT_FILE)).unwrap();
    assert_eq!(sft, data.sft);
    let rl_ids: std::collections::HashSet<&str> = rl.iter().map(|p| p.id.as_str()).collect();
    let sft_prompts = train.iter().filter(|p| !rl_ids.contains(p.id.as_str()));
    for (s, p) in sft.iter().zip(sft_prompts) {
        assert_eq!(s.prompt_id, p.id);
        assert_eq!(s.messages.last().map(|m| m.role), Some(Role::User));
        assert_eq!(s.messages, p.messages());
    }

    let pairs: Vec<TrlLine> = lines(&d.join(PAIRS_FILE));
    let meta = read_pair_meta(&d.join(PAIRS_META_FILE)).unwrap();
    assert_eq!(pairs.len(), meta.len());
    assert_eq!(pairs.len(), data.pairs.len());
    let prompt_ids: HashSet<&str> = train.iter().map(|p| p.id.as_str()).collect();
    for ((t, m), r) in pairs.iter().zip(&meta).zip(&data.pairs) {
        assert_eq!(t.id, m.id);
        assert!(prompt_ids.contains(m.prompt_id.as_str()));
        assert_eq!(t.prompt.last().map(|x| x.role.as_str()), Some("user"));
        assert!(
            t.prompt
                .iter()
                .all(|x| x.role == "user" || x.role == "assistant")
        );
        assert_eq!(t.chosen.len(), 1);
        assert_eq!(t.rejected.len(), 1);
        assert_eq!(t.chosen[0].role, "assistant");
        assert_eq!(t.chosen[0].content, r.chosen.text);
        assert_eq!(t.rejected[0].content, r.rejected.text);
        assert!(Category::from_label(&t.category).is_some());
        assert!(t.language == "zh" || t.language == "en");
        assert_eq!(m.chosen.chars, r.chosen.text.chars().count());
    }

    let questions: Vec<Question> = lines(&d.join(EVAL_ALIGNBENCH_FILE));
    let single_turn = eval.iter().filter(|p| !p.is_multi_turn()).count();
    assert_eq!(questions.len(), single_turn);
    for (i, q) in questions.iter().enumerate() {
        assert_eq!(q.question_id as usize, i + 1);
        assert!(Category::from_label(&q.category).is_some());
        assert!(!q.subcategory.is_empty() && !q.question.is_empty() && !q.reference.is_empty());
    }

    let world = read_world_file(&d.join(WORLD_FILE)).unwrap();
    assert_eq!(world.world, data.world);
    assert_eq!(world.config, data.config);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(STATS_FILE)).unwrap()).unwrap();
    assert_eq!(stats["pairs"]["n"], data.pairs.len());
}

#[test]
fn the_world_is_small_and_bilingual() {
    let data = default_set();
    let stats = data.stats();
    // A few hundred distinct words per language.
    assert!(
        (200..=700).contains(&stats.vocabulary_en_words),
        "{}",
        stats.vocabulary_en_words
    );
    assert!(
        (200..=700).contains(&stats.vocabulary_zh_chars),
        "{}",
        stats.vocabulary_zh_chars
    );
    // Short responses: under 40 words / 60 characters of Chinese.
    assert!(stats.sft.max_words_en < 40, "{}", stats.sft.max_words_en);
    assert!(stats.sft.max_chars_zh < 60, "{}", stats.sft.max_chars_zh);
    // Every category, both languages, some follow-up turns, in both splits.
    for c in Category::ALL {
        let [train, eval] = stats.prompts.by_category[&c];
        assert!(train >= 50 && eval >= 5, "{c:?}: {train} / {eval}");
    }
    for lang in Language::ALL {
        assert!(data.train.iter().filter(|p| p.language == lang).count() > 800);
    }
    assert!(stats.prompts.multi_turn_train > 20);
    assert!(stats.prompts.multi_turn_eval > 0);
    let total: u64 = data.files().iter().map(|(_, b)| b.len() as u64).sum();
    assert!(total < 5_000_000, "{total} bytes");
}
