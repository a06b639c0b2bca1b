//! Judge prompt snapshots (hermetic, synthetic config) and real-data structure checks.

use expect_test::{expect, expect_file};
use rlhf_alignbench_eval::{
    AlignBench, DataVersion, JudgeTemplate, PromptPayload, TemplateSyntax, format_dimensions,
};

use crate::common::{alignbench_dir, synthetic_config, synthetic_questions};

fn render(index: usize, answer: &str) -> String {
    let questions = synthetic_questions();
    JudgeTemplate::builtin()
        .render(&questions[index], answer, &synthetic_config())
        .unwrap()
}

#[test]
fn snapshot_factual_explanatory() {
    expect_file!["snapshots/prompt_factual.txt"].assert_eq(&render(0, "意思是做事非常认真。"));
}

#[test]
fn snapshot_logical_reasoning() {
    expect_file!["snapshots/prompt_reasoning.txt"].assert_eq(&render(1, "12 × 15 = 180。"));
}

#[test]
fn snapshot_generative() {
    expect_file!["snapshots/prompt_generative.txt"].assert_eq(&render(2, "Long time no see!"));
}

#[test]
fn snapshot_advisory() {
    expect_file!["snapshots/prompt_advisory.txt"].assert_eq(&render(3, "每天同一时间上床。"));
}

#[test]
fn user_template_file_in_both_syntaxes() {
    let dir = tempfile::tempdir().unwrap();
    let literal = dir.path().join("literal.txt");
    std::fs::write(
        &literal,
        "类别={category}\n{dimensions}例：{'综合得分': 7}\n问：{question}\n参：{reference}\n答：{answer}\n",
    )
    .unwrap();
    let python = dir.path().join("python.txt");
    std::fs::write(
        &python,
        "类别={category}\n{dimensions}例：{{'综合得分': 7}}\n问：{question}\n参：{reference}\n答：{answer}\n",
    )
    .unwrap();
    let questions = synthetic_questions();
    let config = synthetic_config();
    let a = JudgeTemplate::from_file(&literal)
        .unwrap()
        .render(&questions[1], "180 {question}", &config)
        .unwrap();
    let b = JudgeTemplate::from_file_with(&python, TemplateSyntax::PythonFormat)
        .unwrap()
        .render(&questions[1], "180 {question}", &config)
        .unwrap();
    assert_eq!(a, b);
    expect![[r#"
        类别=数学计算
        1. 事实正确性: 内容是否准确。
        2. 满足用户需求: 是否回应了用户的目的。
        3. 逻辑连贯性: 前后是否一致。
        4. 完备性: 是否足够完整。
        例：{'综合得分': 7}
        问：12 乘以 15 等于多少？
        参：180
        答：180 {question}
    "#]]
    .assert_eq(&a);
    assert!(JudgeTemplate::from_file(&dir.path().join("missing.txt")).is_err());
}

#[test]
fn real_prompts_follow_the_structure() {
    let Some(dir) = alignbench_dir() else { return };
    let bench = AlignBench::load(&dir, DataVersion::V1_1).unwrap();
    let template = JudgeTemplate::builtin();
    let mut seen_types = std::collections::HashSet::new();
    for q in &bench.questions {
        let answer_type = bench.config.answer_type(&q.subcategory).unwrap();
        if !seen_types.insert(answer_type) {
            continue;
        }
        let prompt = template.render(q, "某个回答", &bench.config).unwrap();
        let dims = bench.config.dimensions_for(q).unwrap();
        let block = format_dimensions(&dims);
        assert!(prompt.contains(&format!("类别是{}，", q.category.label())));
        assert!(prompt.contains(&block));
        // The first line of the block carries the definition verbatim from the config.
        let first = format!(
            "1. 事实正确性: {}\n",
            bench.config.definition("事实正确性").unwrap()
        );
        assert!(block.starts_with(&first));
        assert_eq!(block.lines().count(), dims.len());
        let payload = PromptPayload::extract(&prompt).unwrap();
        assert_eq!(payload.question, q.question);
        assert_eq!(payload.reference, q.reference);
        assert_eq!(payload.answer, "某个回答");
    }
    assert_eq!(seen_types.len(), 4);
}
