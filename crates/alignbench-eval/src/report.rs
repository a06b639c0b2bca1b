//! Results of several models side by side: a Markdown table, JSON, and an SVG bar chart.
//!
//! Columns follow the published order (SPEC §B.8): overall | reasoning, Math, Logi |
//! language, Fund, Chi, Open, Writ, Role, Pro. Files are written atomically; the chart is drawn
//! by [`rlhf_util::plot`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dataset::Category;
use crate::error::{Error, Result};
use crate::score::{ScoreMode, Summary};
use rlhf_util::plot::{Bars, Chart, Legend};
use rlhf_util::write_atomic;

/// One model's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelResult {
    /// The model's display name (e.g. `SFT`, `PPO`, `DPO`).
    pub model: String,
    /// Its scores.
    pub summary: Summary,
}

/// One row of the JSON report, fields in table order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Model name.
    pub model: String,
    /// Overall (总分).
    pub overall: Option<f64>,
    /// Reasoning (中文推理).
    pub reasoning: Option<f64>,
    /// Math.
    pub mathematics: Option<f64>,
    /// Logi.
    pub logic: Option<f64>,
    /// Language (中文语言).
    pub language: Option<f64>,
    /// Fund.
    pub fundamental: Option<f64>,
    /// Chi.
    pub chinese: Option<f64>,
    /// Open.
    pub open_ended: Option<f64>,
    /// Writ.
    pub writing: Option<f64>,
    /// Role.
    pub role_play: Option<f64>,
    /// Pro.
    pub professional: Option<f64>,
    /// Judged questions.
    pub judged: usize,
    /// Parse failures.
    pub failures: usize,
    /// Questions without a judgment.
    pub missing: usize,
    /// Failed judgments (among `missing`).
    #[serde(default)]
    pub judge_errors: usize,
    /// Aggregation mode.
    pub mode: ScoreMode,
}

impl ReportRow {
    /// Flattens a model's summary.
    pub fn new(result: &ModelResult) -> Self {
        let s = &result.summary;
        ReportRow {
            model: result.model.clone(),
            overall: s.overall,
            reasoning: s.reasoning,
            mathematics: s.category(Category::Mathematics),
            logic: s.category(Category::Logic),
            language: s.language,
            fundamental: s.category(Category::Fundamental),
            chinese: s.category(Category::Chinese),
            open_ended: s.category(Category::OpenEnded),
            writing: s.category(Category::Writing),
            role_play: s.category(Category::RolePlay),
            professional: s.category(Category::Professional),
            judged: s.judged,
            failures: s.failures,
            missing: s.missing,
            judge_errors: s.judge_errors,
            mode: s.mode,
        }
    }

    /// The eleven table cells after the model name, in column order.
    pub fn cells(&self) -> [Option<f64>; 11] {
        [
            self.overall,
            self.reasoning,
            self.mathematics,
            self.logic,
            self.language,
            self.fundamental,
            self.chinese,
            self.open_ended,
            self.writing,
            self.role_play,
            self.professional,
        ]
    }
}

/// The column headers after `model`, in table order.
pub const COLUMNS: [&str; 11] = [
    "overall",
    "reasoning",
    "Math.",
    "Logi.",
    "language",
    "Fund.",
    "Chi.",
    "Open.",
    "Writ.",
    "Role.",
    "Pro.",
];

/// Several models' results, in the order given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultsTable {
    /// The rows.
    pub rows: Vec<ModelResult>,
}

/// Two decimals, halves rounded away from zero (5.625 → 5.63); `n/a` for no value.
fn cell(value: Option<f64>) -> String {
    value.map_or_else(
        || "n/a".to_owned(),
        |v| format!("{:.2}", (v * 100.0).round() / 100.0),
    )
}

impl ResultsTable {
    /// A table of these rows.
    pub fn new(rows: Vec<ModelResult>) -> Self {
        ResultsTable { rows }
    }

    /// Adds a row.
    pub fn push(&mut self, model: impl Into<String>, summary: Summary) {
        self.rows.push(ModelResult {
            model: model.into(),
            summary,
        });
    }

    /// The flattened rows.
    pub fn report_rows(&self) -> Vec<ReportRow> {
        self.rows.iter().map(ReportRow::new).collect()
    }

    /// A Markdown table with two decimals (halves rounded away from zero); `n/a` where a
    /// score is undefined. Models with failed judgments get a line after the table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| model |");
        for c in COLUMNS {
            out.push_str(&format!(" {c} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(COLUMNS.len()));
        out.push('\n');
        for row in self.report_rows() {
            out.push_str(&format!("| {} |", row.model.replace('|', "\\|")));
            for value in row.cells() {
                out.push_str(&format!(" {} |", cell(value)));
            }
            out.push('\n');
        }
        for row in self.report_rows().iter().filter(|r| r.judge_errors > 0) {
            out.push_str(&format!(
                "\n**{}: {} of {} judgments failed** (judge errors; those questions are left out \
                 of the means, rerun to retry them).\n",
                row.model,
                row.judge_errors,
                row.judged + row.judge_errors
            ));
        }
        out
    }

    /// Pretty JSON: an array of [`ReportRow`], unrounded (`null` where undefined).
    ///
    /// # Errors
    /// [`Error::Serialize`] (not expected for these types).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.report_rows()).map_err(Error::Serialize)
    }

    /// A grouped bar chart as SVG: per group (the eight categories, then reasoning, language
    /// and overall) one bar per model, on a 0–10 axis.
    ///
    /// # Errors
    /// [`Error::Plot`] if drawing fails.
    pub fn to_svg(&self) -> Result<String> {
        let mut groups: Vec<String> = Category::ALL.iter().map(|c| c.abbr().to_owned()).collect();
        groups.extend(["reasoning", "language", "overall"].map(String::from));
        let bars = self
            .rows
            .iter()
            .map(|r| {
                let s = &r.summary;
                let mut v: Vec<Option<f64>> =
                    Category::ALL.iter().map(|&c| s.category(c)).collect();
                v.extend([s.reasoning, s.language, s.overall]);
                Bars::partial(r.model.clone(), v)
            })
            .collect();
        Chart::bars("AlignBench scores", "score (1-10)", groups, bars)
            .y_max(10.0)
            .legend(Legend::UpperRight)
            .svg((1000, 480))
            .map_err(|e| Error::Plot(e.to_string()))
    }

    /// Writes [`ResultsTable::to_markdown`] atomically.
    ///
    /// # Errors
    /// [`Error::Util`] when the write fails.
    pub fn write_markdown(&self, path: &Path) -> Result<()> {
        Ok(write_atomic(path, self.to_markdown().as_bytes())?)
    }

    /// Writes [`ResultsTable::to_json`] atomically.
    ///
    /// # Errors
    /// [`Error::Serialize`], or [`Error::Util`] when the write fails.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        Ok(write_atomic(path, self.to_json()?.as_bytes())?)
    }

    /// Writes [`ResultsTable::to_svg`] atomically.
    ///
    /// # Errors
    /// [`Error::Plot`], or [`Error::Util`] when the write fails.
    pub fn write_svg(&self, path: &Path) -> Result<()> {
        Ok(write_atomic(path, self.to_svg()?.as_bytes())?)
    }
}
