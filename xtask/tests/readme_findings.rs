//! The README's findings table is the committed run's: `docs/results/default/findings.json`
//! (a fresh-clone run of the embedded default, see the README there) rendered here must equal
//! the lines between the README's `findings:begin` and `findings:end` markers. When they differ
//! the test prints the table to paste.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// `p` as the table shows it.
fn fmt_p(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 0.001 => "< 0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// The table of `findings.json`.
fn table(findings: &serde_json::Value) -> String {
    let mut s =
        String::from("| finding | verdict | test (n) | p | effect |\n|---|---|---|---:|---|\n");
    for f in findings["findings"].as_array().expect("a findings array") {
        let verdict = f["verdict"].as_str().unwrap_or("–").replace('_', " ");
        let test = format!(
            "{} (n = {})",
            f["test"]["name"].as_str().unwrap_or("–"),
            f["test"]["n"]
        )
        .replace('|', "\\|");
        let effect = match f["effect"]["value"].as_f64() {
            Some(v) => format!(
                "{} = {v:.3}",
                f["effect"]["name"].as_str().unwrap_or("effect")
            ),
            None => "–".into(),
        }
        .replace('|', "\\|");
        s.push_str(&format!(
            "| `{}` | {verdict} | {test} | {} | {effect} |\n",
            f["id"].as_str().unwrap_or("?"),
            fmt_p(f["p_value"].as_f64()),
        ));
    }
    s
}

#[test]
fn the_readme_findings_table_is_the_committed_runs() {
    let path = root().join("docs/results/default/findings.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let findings: serde_json::Value = serde_json::from_str(&text).expect("findings.json");
    let want = table(&findings);
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let begin = readme
        .find("<!-- findings:begin -->\n")
        .expect("README has a findings:begin marker");
    let end = readme
        .find("<!-- findings:end -->")
        .expect("README has a findings:end marker");
    let got = &readme[begin + "<!-- findings:begin -->\n".len()..end];
    assert_eq!(
        got, want,
        "the README's findings table differs from docs/results/default/findings.json; paste:\n{want}"
    );
}

#[test]
fn p_values_print_as_the_table_shows_them() {
    assert_eq!(fmt_p(Some(0.0004)), "< 0.001");
    assert_eq!(fmt_p(Some(0.0512)), "0.051");
    assert_eq!(fmt_p(None), "–");
}
