//! Shared helpers: the real-data location and small synthetic fixtures.

use std::path::PathBuf;

use rlhf_alignbench_eval::{BenchConfig, Category, Question};

/// The AlignBench data folder `../shared/data/alignbench` (with its `config`), or `None` (with
/// a `SKIP:` line) in a user's clone that lacks it; a test failure under `CI=true` or
/// `RLHF_REQUIRE_SHARED=1`.
pub(crate) fn alignbench_dir() -> Option<PathBuf> {
    let config = rlhf_testkit::shared_path("data/alignbench/config")?;
    assert!(config.is_dir(), "{} is not a folder", config.display());
    Some(
        config
            .parent()
            .expect("config is inside alignbench")
            .to_path_buf(),
    )
}

/// A synthetic judge config with the real answer types and dimension names but our own short
/// definitions, so prompt snapshots are hermetic.
pub(crate) fn synthetic_config() -> BenchConfig {
    let mut c = BenchConfig::default();
    let sets: [(&str, &[&str]); 4] = [
        (
            "事实与解释型回答",
            &["事实正确性", "满足用户需求", "清晰度", "完备性"],
        ),
        (
            "逻辑推理型回答",
            &["事实正确性", "满足用户需求", "逻辑连贯性", "完备性"],
        ),
        (
            "生成型回答",
            &[
                "事实正确性",
                "满足用户需求",
                "逻辑连贯性",
                "创造性",
                "丰富度",
            ],
        ),
        (
            "建议型回答",
            &["事实正确性", "满足用户需求", "公平与可负责程度", "创造性"],
        ),
    ];
    for (t, dims) in sets {
        c.dimension_sets
            .insert(t.into(), dims.iter().map(|d| d.to_string()).collect());
    }
    for (sub, t) in [
        ("字词理解", "事实与解释型回答"),
        ("初等数学", "逻辑推理型回答"),
        ("翻译", "生成型回答"),
        ("寻求建议", "建议型回答"),
    ] {
        c.subcategory_answer_types.insert(sub.into(), t.into());
    }
    for (d, def) in [
        ("事实正确性", "内容是否准确。"),
        ("满足用户需求", "是否回应了用户的目的。"),
        ("清晰度", "是否清楚易懂。"),
        ("完备性", "是否足够完整。"),
        ("逻辑连贯性", "前后是否一致。"),
        ("创造性", "是否有新意。"),
        ("丰富度", "信息是否充实。"),
        ("公平与可负责程度", "是否公正且负责。"),
    ] {
        c.dimension_definitions.insert(d.into(), def.into());
    }
    c.temperatures.insert("数学计算".into(), 0.1);
    c
}

/// A question with the given fields.
pub(crate) fn question(
    id: u32,
    category: Category,
    subcategory: &str,
    text: &str,
    reference: &str,
) -> Question {
    Question {
        question_id: id,
        category,
        subcategory: subcategory.into(),
        question: text.into(),
        reference: reference.into(),
        evidences: None,
    }
}

/// One synthetic question per answer type (our own texts), matching [`synthetic_config`].
pub(crate) fn synthetic_questions() -> Vec<Question> {
    vec![
        question(
            1,
            Category::Chinese,
            "字词理解",
            "“一丝不苟”是什么意思？",
            "形容做事认真细致，一点也不马虎。",
        ),
        question(
            2,
            Category::Mathematics,
            "初等数学",
            "12 乘以 15 等于多少？",
            "180",
        ),
        question(
            3,
            Category::Fundamental,
            "翻译",
            "把“好久不见”翻译成英文。",
            "Long time no see.",
        ),
        question(
            4,
            Category::OpenEnded,
            "寻求建议",
            "怎样养成早睡的习惯？",
            "固定作息时间，睡前一小时远离手机。",
        ),
    ]
}
