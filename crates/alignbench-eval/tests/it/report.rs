//! Report rendering: Markdown snapshot, JSON round trip, SVG chart, atomic writes.

use expect_test::expect;
use rlhf_alignbench_eval::{Category, ReportRow, ResultsTable, Summary};

fn table() -> ResultsTable {
    let row = |offset: f64| -> Vec<(Category, f64)> {
        Category::ALL
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, 4.0 + offset + i as f64 * 0.25))
            .collect()
    };
    let mut t = ResultsTable::default();
    t.push("SFT", Summary::from_category_means(&row(0.0)));
    t.push("PPO", Summary::from_category_means(&row(0.5)));
    let mut partial = row(0.3);
    partial.retain(|(c, _)| *c != Category::Logic);
    t.push("DPO", Summary::from_category_means(&partial));
    t
}

#[test]
fn markdown_snapshot() {
    expect![[r#"
        | model | overall | reasoning | Math. | Logi. | language | Fund. | Chi. | Open. | Writ. | Role. | Pro. |
        |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
        | SFT | 5.13 | 5.63 | 5.50 | 5.75 | 4.63 | 4.00 | 4.25 | 4.50 | 4.75 | 5.00 | 5.25 |
        | PPO | 5.63 | 6.13 | 6.00 | 6.25 | 5.13 | 4.50 | 4.75 | 5.00 | 5.25 | 5.50 | 5.75 |
        | DPO | n/a | n/a | 5.80 | n/a | 4.93 | 4.30 | 4.55 | 4.80 | 5.05 | 5.30 | 5.55 |
    "#]]
    .assert_eq(&table().to_markdown());
}

#[test]
fn json_keeps_column_order_and_round_trips() {
    let json = table().to_json().unwrap();
    let rows: Vec<ReportRow> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows, table().report_rows());
    let keys_in_order = [
        "\"model\"",
        "\"overall\"",
        "\"reasoning\"",
        "\"mathematics\"",
        "\"logic\"",
        "\"language\"",
        "\"fundamental\"",
        "\"chinese\"",
        "\"open_ended\"",
        "\"writing\"",
        "\"role_play\"",
        "\"professional\"",
    ];
    let first_row = &json[..json.find('}').unwrap()];
    let positions: Vec<usize> = keys_in_order
        .iter()
        .map(|k| first_row.find(k).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{json}");
    assert!(json.contains("\"logic\": null"));
}

#[test]
fn svg_chart_draws_bars_labels_and_legend() {
    let svg = table().to_svg().unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.contains("AlignBench scores"));
    for label in ["Fund.", "Logi.", "overall", "SFT", "PPO", "DPO"] {
        assert!(
            svg.contains(&format!("\n{label}\n</text>")),
            "missing {label}"
        );
    }
    // 11 groups x 3 models, minus the DPO gaps (Logi., reasoning, overall), plus 3 legend keys.
    assert!(svg.matches("<rect").count() >= 11 * 3 - 3 + 3);
    let empty = ResultsTable::default().to_svg().unwrap();
    assert!(empty.starts_with("<svg"));
}

#[test]
fn writes_are_atomic_files() {
    let dir = tempfile::tempdir().unwrap();
    let t = table();
    t.write_markdown(&dir.path().join("out/report.md")).unwrap();
    t.write_json(&dir.path().join("out/report.json")).unwrap();
    t.write_svg(&dir.path().join("out/report.svg")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["report.json", "report.md", "report.svg"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/report.md")).unwrap(),
        t.to_markdown()
    );
}
