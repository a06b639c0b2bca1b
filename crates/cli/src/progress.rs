//! Progress bars for long commands: drawn on stderr when it is a terminal, hidden otherwise
//! (logs and JSON results stay clean when piped).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` steps labelled `what`, with elapsed time and ETA.
pub(crate) fn bar(total: usize, what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:30.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}]"
    )) {
        pb.set_style(style);
    }
    pb
}

/// `RLHF_STOP_AFTER=N`: training commands stop (with a checkpoint, status `Stopped`) once N
/// optimizer steps are done, exactly as after Ctrl-C; rerunning resumes. A hook for tests and
/// time-boxed runs.
pub(crate) fn stop_after_env() -> Option<usize> {
    std::env::var("RLHF_STOP_AFTER").ok()?.parse().ok()
}
