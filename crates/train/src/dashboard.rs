//! burn-train's terminal dashboard (`TuiMetricsRendererWrapper`) fed by [`crate::Monitor`]:
//! each numeric field of a log line is a burn-train numeric metric (registered on first
//! sight), a held-out line's `eval_` prefix is dropped so its values share the training
//! metric's plot, and the whole run is burn-train's one "epoch" of `total` steps.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use burn::data::dataloader::Progress;
use burn_train::Interrupter;
use burn_train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use burn_train::renderer::tui::TuiMetricsRendererWrapper;
use burn_train::renderer::{
    MetricState, MetricsRenderer, MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// The dashboard of one training run.
pub(crate) struct Dashboard {
    renderer: Option<TuiMetricsRendererWrapper>,
    interrupter: Interrupter,
    ids: BTreeMap<String, MetricId>,
    total: usize,
}

/// Whether a field reads better when it goes down (losses, KL, perplexity).
fn lower_is_better(name: &str) -> bool {
    ["loss", "kl", "ppl", "perplexity", "nll", "grad_norm"]
        .iter()
        .any(|k| name.contains(k))
}

/// The metric a field is drawn as: a held-out field shares its training twin's plot.
pub(crate) fn metric_name(field: &str, held_out: bool) -> &str {
    if held_out {
        field.strip_prefix("eval_").unwrap_or(field)
    } else {
        field
    }
}

impl Dashboard {
    pub(crate) fn new(total: usize, start: usize) -> Self {
        let interrupter = Interrupter::new();
        let renderer = TuiMetricsRendererWrapper::new(interrupter.clone(), None);
        let mut d = Dashboard {
            renderer: Some(renderer),
            interrupter,
            ids: BTreeMap::new(),
            total: total.max(1),
        };
        d.step(start);
        d
    }

    /// Runs `f` on the renderer; `false` when the user asked to stop (the "stop" key sets the
    /// interrupter, the "kill" key panics inside burn-train: both become a stop).
    fn with(&mut self, f: impl FnOnce(&mut TuiMetricsRendererWrapper)) -> bool {
        let Some(r) = self.renderer.as_mut() else {
            return false;
        };
        if catch_unwind(AssertUnwindSafe(|| f(r))).is_err() {
            // burn-train's "kill" panics once, on the event after the key; the renderer still
            // closes normally (its next event finds no kill signal).
            if let Some(r) = self.renderer.take() {
                let _ = catch_unwind(AssertUnwindSafe(move || drop(r)));
            }
            return false;
        }
        !self.interrupter.should_stop()
    }

    fn progress(&self, step: usize) -> TrainingProgress {
        TrainingProgress {
            progress: Some(Progress {
                items_processed: step.min(self.total),
                items_total: self.total,
            }),
            global_progress: Progress {
                items_processed: 1,
                items_total: 1,
            },
            iteration: Some(step),
        }
    }

    /// `step` steps are done; `false` when the user asked to stop.
    pub(crate) fn step(&mut self, step: usize) -> bool {
        keep_ctrl_c();
        let item = self.progress(step);
        let total = self.total;
        self.with(|r| {
            r.render_train(
                item,
                vec![ProgressType::Detailed {
                    tag: "Step".into(),
                    progress: Progress {
                        items_processed: step.min(total),
                        items_total: total,
                    },
                }],
            )
        })
    }

    /// A log line's numeric fields at `step`; `false` when the user asked to stop.
    pub(crate) fn metrics(
        &mut self,
        step: usize,
        fields: &[(String, f64)],
        held_out: bool,
    ) -> bool {
        let mut states = Vec::new();
        let mut new_defs = Vec::new();
        for (field, value) in fields {
            let name = metric_name(field, held_out).to_string();
            let id = match self.ids.get(&name) {
                Some(id) => id.clone(),
                None => {
                    let id = MetricId::new(Arc::new(name.clone()));
                    self.ids.insert(name.clone(), id.clone());
                    new_defs.push(MetricDefinition {
                        metric_id: id.clone(),
                        name: name.clone(),
                        description: None,
                        attributes: MetricAttributes::Numeric(NumericAttributes {
                            unit: None,
                            higher_is_better: !lower_is_better(&name),
                        }),
                    });
                    id
                }
            };
            let text = format!("{value:.4}");
            states.push(MetricState::Numeric(
                MetricEntry::new(id, SerializedEntry::new(text, value.to_string())),
                NumericEntry::Value(*value),
            ));
        }
        let item = self.progress(step);
        self.with(|r| {
            for d in new_defs {
                r.register_metric(d);
            }
            for s in states {
                if held_out {
                    r.update_valid(s);
                } else {
                    r.update_train(s);
                }
            }
            if held_out {
                r.render_valid(item, Vec::new());
            }
        })
    }
}

/// burn-train's TUI puts the terminal in raw mode, where Ctrl-C is a key press and no longer
/// SIGINT, so a trainer's Ctrl-C stop (checkpoint, resumable) would be lost while the dashboard
/// is up. Raw mode is entered on the renderer's thread; every step turns the terminal's signal
/// keys back on (`ISIG`) once it finds them off. The terminal is the one crossterm uses: stdin
/// when it is a terminal, else `/dev/tty`.
#[cfg(unix)]
fn keep_ctrl_c() {
    use std::io::IsTerminal;
    use std::os::fd::AsRawFd;
    let tty;
    let fd = if std::io::stdin().is_terminal() {
        libc::STDIN_FILENO
    } else {
        match std::fs::File::open("/dev/tty") {
            Ok(f) => {
                tty = f;
                tty.as_raw_fd()
            }
            Err(_) => return,
        }
    };
    // SAFETY: `fd` is open for the whole block; `termios` is plain data filled by tcgetattr.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) == 0 && t.c_lflag & libc::ISIG == 0 {
            t.c_lflag |= libc::ISIG;
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
    }
}

#[cfg(not(unix))]
fn keep_ctrl_c() {}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Some(mut r) = self.renderer.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || {
                let _ = r.on_train_end(None);
                drop(r);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_fields_share_the_training_plot() {
        assert_eq!(metric_name("eval_loss", true), "loss");
        assert_eq!(metric_name("eval_rewards/margins", true), "rewards/margins");
        assert_eq!(metric_name("eval_loss", false), "eval_loss");
        assert_eq!(metric_name("loss", true), "loss");
    }

    #[test]
    fn losses_and_kl_read_lower_is_better() {
        assert!(lower_is_better("loss") && lower_is_better("objective/kl"));
        assert!(!lower_is_better("accuracy") && !lower_is_better("rewards/margins"));
    }
}
