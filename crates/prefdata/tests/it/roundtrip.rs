//! Parquet write → read equality, on synthetic rows with every column set and on real data.

use rlhf_prefdata::{
    CharCounter, Comparison, ComparisonReader, ComparisonWriter, CriterionLabel, ImportOptions,
    Message, PromptQuality, RankedPairs, Role, Split, WriterOptions, comparison_schema,
    fill_token_lengths, import_hh_rlhf, import_oasst, read_comparisons, write_comparisons,
};

use crate::data_dir;

fn rich(i: usize) -> Comparison {
    let mut c = Comparison::new(
        format!("rich:{i}"),
        "synthetic",
        format!("第{i}个问题：为什么？"),
        "因为……\n\"quoted\" \u{1F600}",
        "",
    );
    c.language = i.is_multiple_of(2).then(|| "zh".into());
    c.category = i.is_multiple_of(3).then(|| "逻辑推理".into());
    c.history = (0..i % 4)
        .map(|k| {
            Message::new(
                if k % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                format!("turn {k}"),
            )
        })
        .collect();
    if i.is_multiple_of(5) {
        c.history.insert(0, Message::new(Role::System, "sys"));
    }
    c.helpfulness = [
        None,
        Some(CriterionLabel::Chosen),
        Some(CriterionLabel::Tie),
    ][i % 3];
    c.harmlessness = [Some(CriterionLabel::Rejected), None][i % 2];
    c.fluency = i.is_multiple_of(7).then_some(CriterionLabel::Chosen);
    c.annotators = (0..i % 3).map(|k| format!("ann-{k}")).collect();
    c.prompt_quality = [
        None,
        Some(PromptQuality::ClearAndAnswerable),
        Some(PromptQuality::UnclearIntent),
        Some(PromptQuality::UnclearSemantics),
        Some(PromptQuality::Unanswerable),
    ][i % 5];
    c.margin = (i % 2 == 1).then_some(i as f32 * 0.25);
    c.split = [
        None,
        Some(Split::Train),
        Some(Split::Valid),
        Some(Split::Test),
    ][i % 4];
    if i.is_multiple_of(2) {
        fill_token_lengths(&mut c, &CharCounter);
    }
    c
}

#[test]
fn every_column_survives_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rich.parquet");
    let rows: Vec<Comparison> = (0..5_000).map(rich).collect();
    let opts = WriterOptions {
        row_group_size: 2_048,
        batch_size: 500,
        ..WriterOptions::default()
    };
    let summary = write_comparisons(&path, &rows, opts).unwrap();
    assert_eq!(summary.rows, 5_000);
    assert_eq!(summary.row_groups, 3);
    assert!(summary.bytes > 0);

    let reader = ComparisonReader::open_with_batch_size(&path, 999).unwrap();
    assert_eq!(reader.num_rows(), 5_000);
    let mut batches = 0;
    let mut n = 0;
    for b in reader {
        let b = b.unwrap();
        assert_eq!(b.schema(), comparison_schema());
        assert!(b.num_rows() <= 999);
        n += b.num_rows();
        batches += 1;
    }
    assert_eq!(n, 5_000);
    assert!(batches >= 6);
    assert_eq!(read_comparisons(&path).unwrap(), rows);
}

#[test]
fn real_data_round_trips() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();

    let mut hh = Vec::new();
    import_hh_rlhf(
        data.join("hh-rlhf-harmless/pairs.jsonl.gz"),
        &ImportOptions::default(),
        &mut hh,
    )
    .unwrap();
    let mut oasst = Vec::new();
    import_oasst(
        data.join("oasst1-zh/oaast_rm_zh.json"),
        &ImportOptions::default(),
        RankedPairs::AllPairs,
        &mut oasst,
    )
    .unwrap();
    for (name, rows) in [("hh", &mut hh), ("oasst", &mut oasst)] {
        for c in rows.iter_mut() {
            fill_token_lengths(c, &CharCounter);
        }
        let path = dir.path().join(format!("{name}.parquet"));
        let mut w = ComparisonWriter::create(&path).unwrap();
        for c in rows.iter() {
            w.write(c).unwrap();
        }
        assert_eq!(w.rows(), rows.len() as u64);
        w.finish().unwrap();
        let back: Vec<Comparison> = ComparisonReader::open(&path)
            .unwrap()
            .comparisons()
            .collect::<rlhf_prefdata::Result<_>>()
            .unwrap();
        assert_eq!(&back, rows, "{name}");
    }
}
