//! Pairwise evaluation: both orders, position-bias cancellation, and human rating sheets.

use expect_test::expect;
use rlhf_alignbench_eval::{
    CombineRule, Error, Outcome, PairItem, Preference, SHEET_HEADER, a_is_left, evaluate_pairwise,
    evaluate_pairwise_async, evaluate_pairwise_scored, rating_sheet_csv, read_rating_sheet,
    write_rating_sheet,
};

fn items() -> Vec<PairItem> {
    let item = |id: &str, category: &str, a: &str, b: &str| PairItem {
        id: id.into(),
        category: category.into(),
        prompt: format!("问题 {id}，含逗号, 引号\"和\n换行"),
        answer_a: a.into(),
        answer_b: b.into(),
        reference: None,
    };
    vec![
        item("w1", "写作", "long good answer", "short"),
        item("w2", "写作", "long good answer", "long good answer too"),
        item("r1", "角色扮演", "long good answer", "tiny"),
        item("m1", "数学", "x", "a much longer answer"),
    ]
}

/// A verdict that prefers the longer answer, with ties when lengths are equal.
fn longer(first: &str, second: &str) -> Preference {
    match first.len().cmp(&second.len()) {
        std::cmp::Ordering::Greater => Preference::First,
        std::cmp::Ordering::Less => Preference::Second,
        std::cmp::Ordering::Equal => Preference::Tie,
    }
}

#[test]
fn both_orders_are_judged_and_tallied() {
    let mut calls = 0;
    let report = evaluate_pairwise("PPO", "SFT", &items(), CombineRule::Consistent, |q| {
        calls += 1;
        Ok(longer(&q.first, &q.second))
    })
    .unwrap();
    assert_eq!(calls, 8);
    let outcomes: Vec<Outcome> = report.items.iter().map(|i| i.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Win, Outcome::Loss, Outcome::Win, Outcome::Loss]
    );
    let t = &report.tally;
    assert_eq!(
        (t.overall.wins, t.overall.ties, t.overall.losses),
        (2, 0, 2)
    );
    assert_eq!(t.overall.net_win_rate(), Some(0.0));
    expect![[r#"
        PPO vs SFT

        | category | win | tie | lose | net win rate |
        |---|---:|---:|---:|---:|
        | 写作 | 1 | 0 | 1 | +0.0% |
        | 角色扮演 | 1 | 0 | 0 | +100.0% |
        | 数学 | 0 | 0 | 1 | -100.0% |
        | overall | 2 | 0 | 2 | +0.0% |
    "#]]
    .assert_eq(&t.to_markdown());
}

#[test]
fn a_judge_that_always_picks_the_first_position_gives_all_ties() {
    for rule in [CombineRule::Consistent, CombineRule::Sum] {
        let report =
            evaluate_pairwise("A", "B", &items(), rule, |_| Ok(Preference::First)).unwrap();
        assert_eq!(report.tally.overall.ties, 4, "{rule:?}");
    }
}

#[test]
fn async_verdicts_and_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt
        .block_on(evaluate_pairwise_async(
            "A",
            "B",
            &items(),
            CombineRule::Sum,
            |q| async move { Ok(longer(&q.first, &q.second)) },
        ))
        .unwrap();
    assert_eq!(report.tally.overall.wins, 2);
    let err = evaluate_pairwise("A", "B", &items(), CombineRule::Sum, |_| {
        Err(Error::Judge("down".into()))
    })
    .unwrap_err();
    assert!(err.to_string().contains("down"));
}

#[test]
fn pointwise_scores_decide_both_orders_with_a_tie_margin() {
    // Scores of answer A and B per item: A wins, within the margin, B wins, A wins.
    let scores = [(2.0, 1.0), (1.0, 1.05), (0.0, 3.0), (0.5, -0.5)];
    let report =
        evaluate_pairwise_scored("A", "B", &items(), CombineRule::Consistent, &scores, 0.1)
            .unwrap();
    let outcomes: Vec<Outcome> = report.items.iter().map(|i| i.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Win, Outcome::Tie, Outcome::Loss, Outcome::Win]
    );
    // Without the margin the 0.05 gap decides.
    let strict =
        evaluate_pairwise_scored("A", "B", &items(), CombineRule::Consistent, &scores, 0.0)
            .unwrap();
    assert_eq!(strict.items[1].outcome, Outcome::Loss);
    let err = evaluate_pairwise_scored("A", "B", &items(), CombineRule::Sum, &scores[..3], 0.0)
        .unwrap_err();
    assert!(err.to_string().contains("3 score pairs for 4"), "{err}");
}

#[test]
fn rating_sheet_round_trip() {
    let seed = 20240401;
    let items = items();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheet.csv");
    write_rating_sheet(&path, &items, seed).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with('\u{feff}'));
    // Both placements occur for these ids with this seed (so the mapping is exercised).
    let lefts: Vec<bool> = items.iter().map(|i| a_is_left(seed, &i.id)).collect();
    assert!(lefts.contains(&true) && lefts.contains(&false), "{lefts:?}");

    // A rater who prefers the longer answer fills in the sheet (and rows get shuffled).
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    assert_eq!(reader.headers().unwrap(), SHEET_HEADER.as_slice());
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    rows.reverse();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(SHEET_HEADER).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let verdict = match (i, longer(&row[3], &row[4])) {
            (0, _) => "", // one row left unrated
            (_, Preference::First) => "左",
            (_, Preference::Second) => "Right",
            (_, Preference::Tie) => "tie",
        };
        writer
            .write_record([&row[0], &row[1], &row[2], &row[3], &row[4], verdict])
            .unwrap();
    }
    std::fs::write(&path, writer.into_inner().unwrap()).unwrap();

    let sheet = read_rating_sheet(&path, "PPO", "SFT", seed).unwrap();
    assert_eq!(sheet.unrated, 1);
    // The reversed first row is m1 (unrated); w1 and r1 are PPO wins, w2 a PPO loss.
    let t = &sheet.tally;
    assert_eq!(
        (t.overall.wins, t.overall.ties, t.overall.losses),
        (2, 0, 1)
    );
    assert_eq!(t.categories["写作"].wins, 1);
    assert_eq!(t.categories["写作"].losses, 1);
    assert!(!t.categories.contains_key("数学"));

    // A different seed maps left/right differently, so the tally changes.
    let other = read_rating_sheet(&path, "PPO", "SFT", seed + 1).unwrap();
    assert_ne!(other.tally, sheet.tally);
}

#[test]
fn bad_sheets_name_the_row() {
    let sheet = "item_id,category,prompt,left,right,verdict\nx,c,p,l,r,left\ny,c,p,l,r,maybe\n";
    let err = rlhf_alignbench_eval::tabulate_rating_sheet(sheet, "A", "B", 1).unwrap_err();
    assert!(matches!(err, Error::Sheet { row: 2, .. }), "{err}");
    let sheet = "item_id,category,prompt,left,right\nx,c,p,l,r\n";
    let err = rlhf_alignbench_eval::tabulate_rating_sheet(sheet, "A", "B", 1).unwrap_err();
    assert!(err.to_string().contains("verdict"));
    let sheet = "item_id,category,verdict\nx,c,left\nx,c,left\n";
    let err = rlhf_alignbench_eval::tabulate_rating_sheet(sheet, "A", "B", 1).unwrap_err();
    assert!(matches!(err, Error::Sheet { row: 2, .. }));
    let dup = vec![items()[0].clone(), items()[0].clone()];
    assert!(rating_sheet_csv(&dup, 1).is_err());
}
