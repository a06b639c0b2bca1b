//! Real-data checks against the counts in SPEC §B.3–§B.4 (skipped when shared/data is absent).

use std::collections::{BTreeMap, HashSet};

use rlhf_alignbench_eval::{AlignBench, BenchConfig, Category, DataVersion, Group, load_questions};

use crate::common::alignbench_dir;

const CATEGORY_COUNTS: [(Category, usize); 8] = [
    (Category::Professional, 124),
    (Category::RolePlay, 116),
    (Category::Mathematics, 112),
    (Category::Logic, 92),
    (Category::Writing, 75),
    (Category::Fundamental, 68),
    (Category::Chinese, 58),
    (Category::OpenEnded, 38),
];

fn check_counts(bench: &AlignBench) {
    assert_eq!(bench.questions.len(), 683);
    let ids: HashSet<u32> = bench.questions.iter().map(|q| q.question_id).collect();
    assert_eq!(ids, (1..=683).collect());
    for (category, n) in CATEGORY_COUNTS {
        let got = bench
            .questions
            .iter()
            .filter(|q| q.category == category)
            .count();
        assert_eq!(got, n, "{category}");
    }
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &bench.questions {
        *by_type
            .entry(bench.config.answer_type(&q.subcategory).unwrap())
            .or_default() += 1;
    }
    assert_eq!(by_type["事实与解释型回答"], 241);
    assert_eq!(by_type["逻辑推理型回答"], 204);
    assert_eq!(by_type["生成型回答"], 200);
    assert_eq!(by_type["建议型回答"], 38);
    let subcategories: HashSet<&str> = bench
        .questions
        .iter()
        .map(|q| q.subcategory.as_str())
        .collect();
    assert_eq!(subcategories.len(), 36);
    let mapped: HashSet<&str> = bench
        .config
        .subcategory_answer_types
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        subcategories, mapped,
        "mapping covers the data and the data uses every key"
    );
    bench.validate().unwrap();
    let reasoning = bench
        .questions
        .iter()
        .filter(|q| q.category.group() == Group::Reasoning)
        .count();
    assert_eq!(reasoning, 112 + 92);
}

#[test]
fn v1_1_matches_the_spec() {
    let Some(dir) = alignbench_dir() else { return };
    let bench = AlignBench::load(&dir, DataVersion::V1_1).unwrap();
    check_counts(&bench);
    let ids: Vec<u32> = bench.questions.iter().map(|q| q.question_id).collect();
    assert!(!ids.is_sorted(), "v1.1 is not sorted by id");
    let nulls = bench
        .questions
        .iter()
        .filter(|q| q.evidences.is_none())
        .count();
    let empty = bench
        .questions
        .iter()
        .filter(|q| q.evidences.as_ref().is_some_and(Vec::is_empty))
        .count();
    let full: Vec<_> = bench
        .questions
        .iter()
        .filter(|q| q.evidences.as_ref().is_some_and(|e| !e.is_empty()))
        .collect();
    assert_eq!((nulls, empty, full.len()), (229, 304, 150));
    assert_eq!(
        full.iter()
            .filter(|q| q.category == Category::Professional)
            .count(),
        119
    );
    assert_eq!(
        full.iter()
            .filter(|q| q.category == Category::Chinese)
            .count(),
        31
    );
}

#[test]
fn v1_0_matches_the_spec_and_v1_1_ids() {
    let Some(dir) = alignbench_dir() else { return };
    // 17 rows carry a stray nested key; they must load like the others.
    let v10 = AlignBench::load(&dir, DataVersion::V1_0).unwrap();
    check_counts(&v10);
    assert!(v10.questions.iter().all(|q| q.evidences.is_none()));
    assert!(v10.questions.iter().map(|q| q.question_id).is_sorted());
    let v11 = load_questions(&dir.join(DataVersion::V1_1.file_name())).unwrap();
    for q in &v11 {
        let old = v10.question(q.question_id).unwrap();
        assert_eq!(
            (old.category, &old.subcategory),
            (q.category, &q.subcategory)
        );
    }
}

#[test]
fn config_keeps_json_order() {
    let Some(dir) = alignbench_dir() else { return };
    let config = BenchConfig::load_dir(&dir.join("config")).unwrap();
    let types: Vec<&str> = config.dimension_sets.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "事实与解释型回答",
            "逻辑推理型回答",
            "生成型回答",
            "建议型回答"
        ]
    );
    assert_eq!(
        config.dimension_names("生成型回答").unwrap(),
        [
            "事实正确性",
            "满足用户需求",
            "逻辑连贯性",
            "创造性",
            "丰富度"
        ]
    );
    assert_eq!(
        config.dimension_names("建议型回答").unwrap(),
        ["事实正确性", "满足用户需求", "公平与可负责程度", "创造性"]
    );
    assert_eq!(config.dimension_definitions.len(), 11);
    assert_eq!(
        config.dimension_definitions.keys().next().unwrap(),
        "事实正确性"
    );
    for c in Category::ALL {
        let expected = match c {
            Category::OpenEnded | Category::Writing | Category::RolePlay => 0.7,
            _ => 0.1,
        };
        assert_eq!(config.temperature(c), expected, "{c}");
    }
}
