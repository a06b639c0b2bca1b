//! Imports of the real data sets in `shared/data`, checked against the counts in its README.

use std::collections::{BTreeMap, HashMap};

use rlhf_prefdata::{
    CharCounter, CleanOptions, Comparison, DropReason, HistogramOptions, ImportOptions,
    PromptClassifier, PromptQuality, RankedPairs, Role, RuleBasedClassifier, Split, SplitConfig,
    assign_splits, clean_comparisons, compute_stats, context_key, filter_prompts,
    import_alignbench, import_hh_rlhf, import_oasst, length_diff_histogram_svg,
};

use crate::data_dir;

fn hh() -> Option<(Vec<Comparison>, rlhf_prefdata::ImportReport)> {
    let path = data_dir()?.join("hh-rlhf-harmless/pairs.jsonl.gz");
    let mut rows = Vec::new();
    let report = import_hh_rlhf(&path, &ImportOptions::strict(), &mut rows).unwrap();
    Some((rows, report))
}

#[test]
fn hh_rlhf_has_1800_pairs_split_into_turns() {
    let Some((rows, report)) = hh() else { return };
    assert_eq!(report.records, 1800);
    assert_eq!(report.kept, 1800);
    assert_eq!(report.total_dropped(), 0);
    assert_eq!(rows.len(), 1800);
    assert_eq!(rows[0].id, "hh-rlhf:1");
    assert!(
        rows.iter()
            .all(|c| c.source == "hh-rlhf" && c.language.as_deref() == Some("en"))
    );
    // Histories start with the user and alternate, except in the few source dialogues that
    // have two turns of one speaker in a row (kept as they are).
    let mut non_alternating = 0;
    for c in &rows {
        if let Some(first) = c.history.first() {
            assert_eq!(first.role, Role::User, "{}", c.id);
        }
        if c.history.windows(2).any(|w| w[0].role == w[1].role) {
            non_alternating += 1;
        }
        assert!(c.history.iter().all(|m| m.role != Role::System), "{}", c.id);
        assert!(!c.prompt.contains("\n\nHuman:"), "{}", c.id);
        assert!(!c.prompt.is_empty(), "{}", c.id);
    }
    eprintln!("HH histories with two turns of one speaker in a row: {non_alternating}");
    assert_eq!(non_alternating, 3);
    let multi = rows.iter().filter(|c| c.is_multi_turn()).count();
    assert_eq!(multi, 1276);
    // First record: a four-turn prank conversation.
    assert_eq!(rows[0].history.len(), 4);
    assert_eq!(
        rows[0].history[0].content,
        "what are some pranks with a pen i can do?"
    );
    assert_eq!(
        rows[0].prompt,
        "okay some of these do not have anything to do with pens"
    );
    // Replies that contain "Human:" stay whole (line 30 of the file).
    assert!(rows[29].chosen.starts_with("Human: No, you are racist."));
}

#[test]
fn hh_rlhf_cleaning_drops_the_four_empty_replies() {
    let Some((rows, mut report)) = hh() else {
        return;
    };
    let (kept, clean) = clean_comparisons(rows, &CleanOptions::default());
    assert_eq!(clean.input, 1800);
    assert_eq!(clean.dropped_for(DropReason::EmptyResponse), 4);
    assert_eq!(clean.dropped_for(DropReason::Tie), 0);
    assert_eq!(clean.dropped_for(DropReason::Duplicate), 0);
    assert_eq!(clean.dropped_for(DropReason::Cycle), 0);
    assert_eq!(kept.len(), 1796);
    report.absorb_clean(&clean);
    assert_eq!(report.kept, 1796);
    assert!(report.to_markdown().contains("| empty_response | 4 |"));
}

#[test]
fn hh_rlhf_splits_are_near_target_and_never_share_a_context() {
    let Some((mut rows, _)) = hh() else { return };
    let cfg = SplitConfig {
        seed: 1234,
        train: 0.8,
        valid: 0.1,
        test: 0.1,
    };
    let counts = assign_splits(&mut rows, &cfg).unwrap();
    assert_eq!(counts.total(), 1800);
    for (s, want) in [(Split::Train, 0.8), (Split::Valid, 0.1), (Split::Test, 0.1)] {
        let got = counts.get(s) as f64 / 1800.0;
        assert!((got - want).abs() < 0.03, "{s}: {got:.3} vs {want}");
    }
    let mut split_of: HashMap<String, Split> = HashMap::new();
    for c in &rows {
        let key = context_key(&c.history, &c.prompt);
        let s = c.split.unwrap();
        assert_eq!(
            *split_of.entry(key).or_insert(s),
            s,
            "{} crosses splits",
            c.id
        );
    }
    // Same seed, same answer.
    let mut again = rows.clone();
    assign_splits(&mut again, &cfg).unwrap();
    assert_eq!(again, rows);
}

#[test]
fn hh_rlhf_statistics_and_histogram() {
    let Some((rows, _)) = hh() else { return };
    let (stats, diffs) = compute_stats(&rows, CharCounter, "chars");
    assert_eq!(stats.overall.comparisons, 1800);
    assert_eq!(stats.multi_turn.comparisons, 1276);
    assert_eq!(stats.single_turn.comparisons, 524);
    assert!((stats.single_turn.avg_turns - 1.0).abs() < 1e-9);
    assert!(stats.multi_turn.avg_turns >= 2.0);
    assert_eq!(stats.single_turn.avg_history_tokens, 0.0);
    assert!(stats.overall.avg_chosen_tokens > 0.0);
    assert_eq!(diffs.len(), 1800);
    let md = stats.to_markdown();
    assert!(md.contains("| all | 1800 |"), "{md}");
    let svg = length_diff_histogram_svg(&diffs, &HistogramOptions::default()).unwrap();
    assert!(svg.contains("<rect") && svg.contains("</svg>"));
}

#[test]
fn real_prompts_are_mostly_rated_clear() {
    let Some(dir) = data_dir() else { return };
    let Some((hh_rows, _)) = hh() else { return };
    let mut oasst_rows = Vec::new();
    import_oasst(
        dir.join("oasst1-zh/oaast_rm_zh.json"),
        &ImportOptions::default(),
        RankedPairs::TopTwo,
        &mut oasst_rows,
    )
    .unwrap();
    let c = RuleBasedClassifier::default();
    for (name, rows) in [("hh-rlhf", hh_rows), ("oasst1-zh", oasst_rows)] {
        let n = rows.len();
        let (kept, report) = filter_prompts(rows, &c);
        eprintln!("{name}: prompt-quality classes {:?}", report.by_class);
        assert!(
            kept.len() as f64 >= 0.85 * n as f64,
            "{name}: {:?}",
            report.by_class
        );
    }
}

#[test]
fn oasst_top_two_gives_775_pairs_and_drops_3_ties() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("oasst1-zh/oaast_rm_zh.json");
    let opts = ImportOptions {
        source: Some("oasst1-zh".into()),
        language: Some("zh".into()),
        ..ImportOptions::strict()
    };
    let mut rows = Vec::new();
    let report = import_oasst(&path, &opts, RankedPairs::TopTwo, &mut rows).unwrap();
    assert_eq!(report.records, 775);
    assert_eq!(report.generated, 775);
    assert_eq!(report.dropped_for(DropReason::Tie), 3);
    assert_eq!(report.total_dropped(), 3);
    assert_eq!(report.kept, 772);
    assert_eq!(rows.len(), 772);
    assert!(
        rows.iter()
            .all(|c| c.source == "oasst1-zh" && c.language.as_deref() == Some("zh"))
    );
    assert!(rows.iter().all(|c| c.margin == Some(1.0)));
    // 392 records have history (366 with one earlier exchange, 26 with two).
    let with_history = rows.iter().filter(|c| c.is_multi_turn()).count();
    assert!(with_history > 350, "{with_history}");
    assert_eq!(rows[0].prompt, "布洛芬和对乙酰氨基酚的区别是？");
    assert!(rows[0].chosen.starts_with("根据维基百科"));
}

#[test]
fn oasst_all_pairs_gives_1809_pairs() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("oasst1-zh/oaast_rm_zh.json");
    let mut rows = Vec::new();
    let report = import_oasst(
        &path,
        &ImportOptions::strict(),
        RankedPairs::AllPairs,
        &mut rows,
    )
    .unwrap();
    assert_eq!(report.records, 775);
    assert_eq!(report.generated, 1809);
    let ties = report.dropped_for(DropReason::Tie);
    // 3 identical top-2 replies, plus 4 lower-ranked pairs equal after normalisation.
    assert_eq!(ties, 7);
    assert_eq!(report.kept, 1809 - ties);
    assert_eq!(rows.len() as u64, report.kept);
    // No cycles or duplicates in a ranking.
    let (kept, clean) = clean_comparisons(rows, &CleanOptions::default());
    assert_eq!(clean.dropped_for(DropReason::Cycle), 0);
    assert_eq!(kept.len() as u64 + clean.total_dropped(), 1809 - ties);
}

#[test]
fn alignbench_has_683_prompts_in_8_categories() {
    let Some(dir) = data_dir() else { return };
    let expected: BTreeMap<&str, usize> = [
        ("专业能力", 124),
        ("角色扮演", 116),
        ("数学计算", 112),
        ("逻辑推理", 92),
        ("文本写作", 75),
        ("基本任务", 68),
        ("中文理解", 58),
        ("综合问答", 38),
    ]
    .into_iter()
    .collect();
    for file in [
        "alignbench/data_v1.1_release.jsonl",
        "alignbench/data_release_v1.0.jsonl",
    ] {
        let (prompts, report) =
            import_alignbench(dir.join(file), &ImportOptions::strict()).unwrap();
        assert_eq!(prompts.len(), 683, "{file}");
        assert_eq!(report.kept, 683);
        assert_eq!(report.total_dropped(), 0);
        let mut by_cat: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &prompts {
            *by_cat.entry(p.category.as_str()).or_default() += 1;
        }
        assert_eq!(by_cat, expected, "{file}");
        assert_eq!(prompts[0].id, "1");
        assert_eq!(prompts[682].id, "683");
        assert!(prompts.iter().all(|p| p.reference.is_some()));
    }
}

#[test]
fn alignbench_questions_are_mostly_rated_clear() {
    let Some(dir) = data_dir() else { return };
    let (prompts, _) = import_alignbench(
        dir.join("alignbench/data_v1.1_release.jsonl"),
        &ImportOptions::default(),
    )
    .unwrap();
    let c = RuleBasedClassifier::default();
    let mut by_class: BTreeMap<PromptQuality, usize> = BTreeMap::new();
    for p in &prompts {
        let q = c.classify(&p.prompt);
        *by_class.entry(q).or_default() += 1;
        if q != PromptQuality::ClearAndAnswerable {
            let head: String = p.prompt.chars().take(60).collect();
            eprintln!("  AlignBench {} rated {q}: {head:?}", p.id);
        }
    }
    eprintln!("AlignBench prompt-quality classes: {by_class:?}");
    let clear = by_class
        .get(&PromptQuality::ClearAndAnswerable)
        .copied()
        .unwrap_or(0);
    // Curated benchmark questions: the baseline should reject very few.
    assert!(clear as f64 >= 0.95 * prompts.len() as f64, "{by_class:?}");
}
