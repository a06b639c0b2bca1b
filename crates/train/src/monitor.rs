//! What a trainer shows while it runs: burn-train's terminal dashboard, an indicatif bar, plain
//! text lines, or nothing — one [`Monitor`] that every loop (the engine's `fit`, PPO's loop)
//! feeds with its step and its TRL-named log lines.
//!
//! The view is chosen once per process ([`set_view`]; the CLI's `--progress`):
//! - [`View::Dashboard`]: burn-train's TUI (`TuiMetricsRendererWrapper`, the dashboard burn
//!   users know: one plot per metric, train and held-out together, progress and ETA). It draws
//!   on stdout, so it needs stdout and stderr to be terminals. While it is up, log records go to
//!   a buffer ([`LogWriter`]) and reach stderr when it closes. Its "stop" key stops the run the
//!   way Ctrl-C does (checkpoint, `Stopped`, resumable); its "kill" key, which panics inside
//!   burn-train, is caught and treated as the same stop.
//! - [`View::Bar`]: an indicatif bar on stderr with the last log line as its message.
//! - [`View::Plain`]: one line of text on stderr per logged step — the fallback when there is
//!   no terminal (CI logs, `nohup`, a pipeline's captured stderr).
//! - [`View::Auto`] (default): the dashboard when stdout and stderr are terminals and the
//!   `dashboard` feature is built, else the bar when stderr is a terminal, else plain text.
//!
//! A `Monitor` shows nothing unless its `show` argument is set (only the main rank, only when
//! the caller asked for progress), so tests and library users stay quiet.

use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;

use crate::progress::progress_bar;

/// How training progress is shown (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The dashboard on a terminal, else the bar on a terminal stderr, else plain text.
    #[default]
    Auto,
    /// burn-train's terminal dashboard.
    Dashboard,
    /// An indicatif bar on stderr.
    Bar,
    /// One text line per logged step on stderr.
    Plain,
    /// Nothing.
    Off,
}

impl View {
    const ALL: [View; 5] = [
        View::Auto,
        View::Dashboard,
        View::Bar,
        View::Plain,
        View::Off,
    ];

    /// The name `--progress` takes.
    pub fn name(self) -> &'static str {
        match self {
            View::Auto => "auto",
            View::Dashboard => "dashboard",
            View::Bar => "bar",
            View::Plain => "plain",
            View::Off => "off",
        }
    }

    /// `Auto` resolved against the terminals this process has (`stdout`, `stderr`) and
    /// whether the dashboard is built; `Dashboard` without a terminal stdout (or without the
    /// feature) falls back the same way.
    pub fn resolve(self, stdout_tty: bool, stderr_tty: bool) -> View {
        let fallback = if stderr_tty { View::Bar } else { View::Plain };
        match self {
            View::Auto | View::Dashboard => {
                if cfg!(feature = "dashboard") && stdout_tty && stderr_tty {
                    View::Dashboard
                } else {
                    fallback
                }
            }
            View::Bar if !stderr_tty => View::Plain,
            v => v,
        }
    }
}

impl FromStr for View {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        View::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                format!("unknown progress view `{s}`: expected auto, dashboard, bar, plain or off")
            })
    }
}

static VIEW: AtomicU8 = AtomicU8::new(0);

/// Sets how this process shows training progress (default [`View::Auto`]).
pub fn set_view(view: View) {
    let i = View::ALL.iter().position(|v| *v == view).unwrap_or(0);
    VIEW.store(i as u8, Ordering::SeqCst);
}

/// The view set with [`set_view`].
pub fn view() -> View {
    View::ALL[usize::from(VIEW.load(Ordering::SeqCst)).min(View::ALL.len() - 1)]
}

/// Whether a dashboard holds the terminal (log records are buffered meanwhile).
static HOLDING_TERMINAL: AtomicBool = AtomicBool::new(false);
static HELD_LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// A log sink for `tracing_subscriber::fmt().with_writer(|| LogWriter)`: stderr, except while
/// a dashboard holds the terminal, when records are kept and written to stderr after it closes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if HOLDING_TERMINAL.load(Ordering::SeqCst) {
            let mut held = HELD_LOGS.lock().unwrap_or_else(|e| e.into_inner());
            held.extend_from_slice(buf);
            return Ok(buf.len());
        }
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Writes the records held while a dashboard was up to stderr.
fn release_terminal() {
    HOLDING_TERMINAL.store(false, Ordering::SeqCst);
    let held = std::mem::take(&mut *HELD_LOGS.lock().unwrap_or_else(|e| e.into_inner()));
    if !held.is_empty() {
        let _ = std::io::stderr().write_all(&held);
    }
}

/// The finite numeric fields of a log line, by name (`step` left out: it is the x axis).
pub fn numeric_fields<L: Serialize>(log: &L) -> Vec<(String, f64)> {
    match serde_json::to_value(log) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(k, _)| k != "step")
            .filter_map(|(k, v)| Some((k, v.as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect(),
        _ => Vec::new(),
    }
}

enum Inner {
    Off,
    Bar(ProgressBar),
    Plain,
    #[cfg(feature = "dashboard")]
    Dashboard(Box<crate::dashboard::Dashboard>),
}

/// A trainer's progress display (see the module docs).
pub struct Monitor {
    inner: Inner,
    name: String,
    total: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
}

impl Monitor {
    /// A display of `name`'s `total` steps from `start`, in this process's [`view`]; nothing
    /// when `!show`. A stop asked for in the dashboard sets `stop` (the trainer's Ctrl-C flag).
    pub fn new(show: bool, name: &str, total: usize, start: usize, stop: Arc<AtomicBool>) -> Self {
        let v = if show {
            view().resolve(
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal(),
            )
        } else {
            View::Off
        };
        Self::with_view(v, name, total, start, stop)
    }

    /// As [`Monitor::new`] with the view already resolved (tests use `Plain` and `Off`).
    pub fn with_view(
        view: View,
        name: &str,
        total: usize,
        start: usize,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let inner = match view {
            View::Off => Inner::Off,
            View::Plain => Inner::Plain,
            View::Bar | View::Auto => Inner::Bar(progress_bar(true, total, start, name)),
            #[cfg(feature = "dashboard")]
            View::Dashboard => {
                HOLDING_TERMINAL.store(true, Ordering::SeqCst);
                Inner::Dashboard(Box::new(crate::dashboard::Dashboard::new(total, start)))
            }
            #[cfg(not(feature = "dashboard"))]
            View::Dashboard => Inner::Bar(progress_bar(true, total, start, name)),
        };
        Monitor {
            inner,
            name: name.to_string(),
            total,
            started: Instant::now(),
            stop,
        }
    }

    /// `step` optimizer steps are done.
    pub fn step(&mut self, step: usize) {
        match &mut self.inner {
            Inner::Bar(pb) => pb.set_position(step as u64),
            #[cfg(feature = "dashboard")]
            Inner::Dashboard(d) => {
                if !d.step(step) {
                    self.stop.store(true, Ordering::SeqCst);
                }
            }
            Inner::Off | Inner::Plain => {}
        }
    }

    /// A training log line at `step`; `line` is its one-line summary.
    pub fn train<L: Serialize>(&mut self, step: usize, line: &str, log: &L) {
        self.show(step, line, log, false);
    }

    /// A held-out evaluation's log line at `step`.
    pub fn valid<L: Serialize>(&mut self, step: usize, line: &str, log: &L) {
        self.show(step, line, log, true);
    }

    fn show<L: Serialize>(&mut self, step: usize, line: &str, log: &L, held_out: bool) {
        match &mut self.inner {
            Inner::Off => {}
            Inner::Bar(pb) => {
                if !held_out {
                    pb.set_message(line.to_string());
                }
            }
            Inner::Plain => {
                let _ = writeln!(
                    std::io::stderr(),
                    "{}",
                    plain_line(
                        &self.name,
                        step,
                        self.total,
                        self.started.elapsed().as_secs_f64(),
                        held_out,
                        line
                    )
                );
            }
            #[cfg(feature = "dashboard")]
            Inner::Dashboard(d) => {
                if !d.metrics(step, &numeric_fields(log), held_out) {
                    self.stop.store(true, Ordering::SeqCst);
                }
            }
        }
        let _ = log;
    }

    /// Closes the display (the dashboard gives the terminal back; held logs are written).
    pub fn finish(self) {}
}

impl Drop for Monitor {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.inner, Inner::Off) {
            Inner::Bar(pb) => pb.finish_and_clear(),
            #[cfg(feature = "dashboard")]
            Inner::Dashboard(d) => {
                drop(d);
                release_terminal();
            }
            Inner::Off | Inner::Plain => {}
        }
    }
}

/// The plain-text view's line: `reward step 40/200 (12.3 s): loss 0.61 …`, or `eval` in
/// place of `step` for a held-out line.
pub fn plain_line(
    name: &str,
    step: usize,
    total: usize,
    secs: f64,
    held_out: bool,
    line: &str,
) -> String {
    let what = if held_out { "eval" } else { "step" };
    format!("{name} {what} {step}/{total} ({secs:.1} s): {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_dashboard_only_on_two_terminals() {
        let dash = if cfg!(feature = "dashboard") {
            View::Dashboard
        } else {
            View::Bar
        };
        assert_eq!(View::Auto.resolve(true, true), dash);
        assert_eq!(View::Auto.resolve(false, true), View::Bar);
        assert_eq!(View::Auto.resolve(true, false), View::Plain);
        assert_eq!(View::Auto.resolve(false, false), View::Plain);
        assert_eq!(View::Dashboard.resolve(false, false), View::Plain);
        assert_eq!(View::Bar.resolve(true, false), View::Plain);
        assert_eq!(View::Off.resolve(true, true), View::Off);
        assert_eq!(View::Plain.resolve(true, true), View::Plain);
    }

    #[test]
    fn views_parse_by_name_and_refuse_others() {
        for v in View::ALL {
            assert_eq!(v.name().parse::<View>(), Ok(v));
        }
        let e = "tui".parse::<View>().unwrap_err();
        assert!(e.contains("`tui`") && e.contains("dashboard"), "{e}");
    }

    #[test]
    fn numeric_fields_drop_step_text_and_non_finite() {
        #[derive(Serialize)]
        struct L {
            step: usize,
            loss: f64,
            #[serde(rename = "rewards/margins")]
            margins: f32,
            note: &'static str,
            bad: f64,
            missing: Option<f64>,
        }
        let f = numeric_fields(&L {
            step: 3,
            loss: 0.5,
            margins: 0.25,
            note: "x",
            bad: f64::NAN,
            missing: None,
        });
        assert_eq!(
            f,
            vec![
                ("loss".to_string(), 0.5),
                ("rewards/margins".to_string(), 0.25)
            ]
        );
    }

    #[test]
    fn plain_lines_name_the_trainer_step_and_split() {
        assert_eq!(
            plain_line("reward", 40, 200, 12.34, false, "loss 0.61"),
            "reward step 40/200 (12.3 s): loss 0.61"
        );
        assert_eq!(
            plain_line("dpo", 5, 10, 1.0, true, "eval_loss 0.7"),
            "dpo eval 5/10 (1.0 s): eval_loss 0.7"
        );
    }

    #[test]
    fn an_off_monitor_never_sets_the_stop_flag() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut m = Monitor::with_view(View::Off, "t", 3, 0, stop.clone());
        m.step(1);
        m.train(1, "loss 1", &serde_json::json!({"step": 1, "loss": 1.0}));
        m.finish();
        assert!(!stop.load(Ordering::SeqCst));
    }
}
