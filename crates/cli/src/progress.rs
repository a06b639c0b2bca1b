//! Progress bars for long commands: drawn on stderr when it is a terminal, hidden otherwise
//! (logs and JSON results stay clean when piped).

use indicatif::ProgressBar;

/// A bar of `total` steps labelled `what`, with elapsed time and ETA (the trainers' bar).
pub(crate) fn bar(total: usize, what: &str) -> ProgressBar {
    rlhf_train::progress_bar(true, total, 0, what)
}

/// `RLHF_STOP_AFTER=N`: training commands stop (with a checkpoint, status `Stopped`) once N
/// optimizer steps are done, exactly as after Ctrl-C; rerunning resumes. A hook for tests and
/// time-boxed runs.
pub(crate) fn stop_after_env() -> Option<usize> {
    std::env::var("RLHF_STOP_AFTER").ok()?.parse().ok()
}

/// `RLHF_PROGRESS`: the trainers' progress view when `--progress` is not given (the pipeline
/// sets it for its stages); `None` when unset.
pub(crate) fn view_from_env() -> Option<Result<rlhf_train::View, String>> {
    let v = std::env::var("RLHF_PROGRESS").ok()?;
    Some(v.parse())
}
