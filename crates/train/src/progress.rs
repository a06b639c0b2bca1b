//! The progress bar every trainer shows.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar labelled `what` for `total` steps starting at `start`, with elapsed time and
/// ETA; drawn on stderr only when `show` and stderr is a terminal (hidden otherwise, so piped
/// output stays clean).
pub fn progress_bar(show: bool, total: usize, start: usize, what: &str) -> ProgressBar {
    let target = if show && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:30.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
    )) {
        pb.set_style(style);
    }
    pb.set_position(start as u64);
    pb
}
