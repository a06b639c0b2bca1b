//! Reports as files: a Markdown body with the paper's findings checked against the measured
//! numbers, SVG plots beside it, and one self-contained HTML page with the plots inline.

use std::fmt::Write as _;
use std::path::Path;

use rlhf_util::write_atomic;

use crate::error::Result;
use crate::findings::Finding;

/// Three decimals, or `–` for no value.
pub fn fmt3(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.3}"))
}

/// A report: `# title`, the intro, the findings table, the body sections, then the plots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The level-1 heading (Markdown inline code and bold allowed).
    pub title: String,
    /// Paragraphs under the title.
    pub intro: String,
    /// The paper's findings, checked.
    pub findings: Vec<Finding>,
    /// The sections (`## ` headings, tables, paragraphs, code fences).
    pub body: String,
    /// `(name, svg)`: written as `plots/<name>.svg`, inline in the HTML. An entry that is
    /// not an SVG document (a "no data" note) is left out of both.
    pub plots: Vec<(String, String)>,
}

impl Report {
    /// The report as Markdown, the plots as image links into `plots/`.
    pub fn markdown(&self) -> String {
        let mut md = format!("# {}\n\n{}\n", self.title, self.intro.trim_end());
        md.push_str(&findings_table(&self.findings));
        let _ = write!(md, "\n{}\n", self.body.trim_end());
        let _ = writeln!(md, "\n## Plots\n");
        for (name, _) in self.svgs() {
            let _ = writeln!(md, "![{name}](plots/{name}.svg)\n");
        }
        md
    }

    fn svgs(&self) -> impl Iterator<Item = &(String, String)> {
        self.plots.iter().filter(|(_, svg)| svg.starts_with("<svg"))
    }

    /// The report as one self-contained HTML page (plots inline).
    pub fn html(&self) -> String {
        markdown_to_html(&self.markdown(), &self.plots, &self.title)
    }

    /// Writes `dir/report.md`, `dir/report.html` and `dir/plots/<name>.svg`, atomically.
    ///
    /// # Errors
    /// [`crate::Error::Util`] when a write fails.
    pub fn write(&self, dir: &Path) -> Result<()> {
        for (name, svg) in self.svgs() {
            write_atomic(
                &dir.join("plots").join(format!("{name}.svg")),
                svg.as_bytes(),
            )?;
        }
        write_atomic(&dir.join("report.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("report.html"), self.html().as_bytes())?;
        Ok(())
    }
}

/// A table cell: `|` escaped, so free text cannot split the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The findings section: one row per finding with the test, n, its statistic, p (of the claim's
/// one-sided alternative, pre-declared α = 0.05), the effect size and the verdict.
pub fn findings_table(findings: &[Finding]) -> String {
    let mut md = format!(
        "\n## The paper's findings, checked\n\nEach finding is one pre-declared test at α = {} \
         (`findings.json`; docs/findings.md).\n\n\
         | finding | measured | test | n | statistic | p | effect | reproduced |\n\
         |---|---|---|---:|---:|---:|---|---|\n",
        crate::findings::ALPHA
    );
    for fi in findings {
        let (test, n, stat) =
            fi.test
                .as_ref()
                .map_or(("–".into(), "–".into(), "–".into()), |t| {
                    (
                        t.name.clone(),
                        t.n.to_string(),
                        format!("{} = {:.3}", t.statistic_name, t.statistic),
                    )
                });
        let p = fi.p_value.map_or("–".into(), |p| format!("{p:.3}"));
        let effect = fi
            .effect
            .as_ref()
            .map_or("–".into(), |e| format!("{:+.3} ({})", e.value, e.name));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {n} | {} | {p} | {} | {} |",
            cell(&fi.finding),
            cell(&fi.measured),
            cell(&test),
            cell(&stat),
            cell(&effect),
            fi.verdict_text()
        );
    }
    md
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `**bold**` and `` `code` `` of one escaped line.
fn inline(s: &str) -> String {
    let mut bold = String::new();
    for (i, part) in esc(s).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(bold, "<b>{part}</b>");
        } else {
            bold.push_str(part);
        }
    }
    let mut out = String::new();
    for (i, part) in bold.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A small Markdown subset (headings, tables with `\|` for a literal bar, paragraphs, code
/// fences, `![name](..)` images of `plots`) to a self-contained HTML page titled `title`.
pub fn markdown_to_html(md: &str, plots: &[(String, String)], title: &str) -> String {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
         td{{text-align:right}}td:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>\
         </head><body>\n",
        esc(&title.replace('`', ""))
    );
    let mut in_table = false;
    let mut in_code = false;
    for line in md.lines() {
        if line.starts_with("```") {
            h.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            h.push_str(&esc(line));
            h.push('\n');
            continue;
        }
        let is_row = line.starts_with('|');
        if in_table && !is_row {
            h.push_str("</table>\n");
            in_table = false;
        }
        if is_row {
            if line.contains("---") {
                continue;
            }
            if !in_table {
                h.push_str("<table>");
                in_table = true;
            }
            h.push_str("<tr>");
            let line = line.replace("\\|", "\u{1}");
            for cell in line.trim_matches('|').split('|') {
                let _ = write!(h, "<td>{}</td>", inline(&cell.trim().replace('\u{1}', "|")));
            }
            h.push_str("</tr>\n");
        } else if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", esc(t));
        } else if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(h, "<h1>{}</h1>", inline(t));
        } else if let Some(rest) = line.strip_prefix("![") {
            let name = rest.split(']').next().unwrap_or("");
            if let Some((_, svg)) = plots.iter().find(|(n, _)| n == name) {
                let _ = writeln!(h, "<div>{svg}</div>");
            }
        } else if !line.trim().is_empty() {
            let _ = writeln!(h, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset_to_html() {
        let md = "# Run `a<b`\n\nSome **bold** text.\n\n| a | b\\|c |\n|---|---:|\n| 1 | 2 |\n\n```\nx < y\n```\n![p](plots/p.svg)\n![gone](plots/gone.svg)\n";
        let plots = vec![("p".to_owned(), "<svg>P</svg>".to_owned())];
        let h = markdown_to_html(md, &plots, "Run `a<b`");
        assert!(h.contains("<title>Run a&lt;b</title>"), "{h}");
        assert!(h.contains("<h1>Run <code>a&lt;b</code></h1>"), "{h}");
        assert!(h.contains("<p>Some <b>bold</b> text.</p>"), "{h}");
        assert!(
            h.contains(
                "<table><tr><td>a</td><td>b|c</td></tr>\n<tr><td>1</td><td>2</td></tr>\n</table>"
            ),
            "{h}"
        );
        assert!(h.contains("<pre>x &lt; y\n</pre>"), "{h}");
        assert!(h.contains("<div><svg>P</svg></div>"), "{h}");
        assert_eq!(h.matches("<div>").count(), 1, "{h}");
    }

    #[test]
    fn a_report_puts_findings_first_and_writes_only_real_plots() {
        let report = Report {
            title: "R".into(),
            intro: "Config.\n".into(),
            findings: vec![
                crate::findings::rm_agrees_with_gold(9, 10),
                Finding::not_measured("ppo_beats_sft", "B holds", "no | data"),
            ],
            body: "## Stages\n\n| stage | seconds |\n|---|---:|\n| x | 1.0 |\n".into(),
            plots: vec![
                ("ok".into(), "<svg>ok</svg>".into()),
                ("none".into(), "<p><em>none: no data</em></p>".into()),
            ],
        };
        let md = report.markdown();
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("missing {s} in {md}"));
        assert!(
            at("# R") < at("## The paper's findings")
                && at("## The paper's findings") < at("## Stages")
        );
        assert!(
            md.contains("| exact binomial vs 0.5, one-sided (greater) | 10 | k = 9.000 | 0.011 | +0.400 (agreement − 0.5) | yes |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| B holds | not measured: no \\| data | – | – | – | – | – | not measured |"
            ),
            "{md}"
        );
        assert!(
            md.contains("![ok](plots/ok.svg)") && !md.contains("![none]"),
            "{md}"
        );
        let dir = tempfile::tempdir().unwrap();
        report.write(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("report.md")).unwrap(),
            md
        );
        assert!(dir.path().join("plots/ok.svg").is_file());
        assert!(!dir.path().join("plots/none.svg").exists());
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("<div><svg>ok</svg></div>") && html.contains("findings"));
    }
}
