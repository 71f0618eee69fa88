//! A progress bar on stderr: one step per round, the evaluation under way as its message.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use metaprompt::core::{EventSink, RunEvent};

/// The bar (hidden when stderr is not a terminal, or when the user asked for none).
pub(crate) struct Bar(ProgressBar);

impl Bar {
    pub(crate) fn new(num_rounds: u32, show: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(u64::from(num_rounds)),
            if show {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] round {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("metaprompt");
        Bar(bar)
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl EventSink for Bar {
    fn emit(&self, event: &RunEvent) {
        match event {
            RunEvent::RoundStarted { round } => {
                self.0.set_position(u64::from(round.saturating_sub(1)));
            }
            RunEvent::Evaluated { phase, done, total } => {
                self.0.set_message(format!(
                    "{}: {done}/{total}",
                    format!("{phase:?}").to_lowercase()
                ));
            }
            RunEvent::Baseline { val_score, .. } => {
                self.0
                    .println(format!("initial prompt: val {val_score:.3}"));
            }
            _ => {}
        }
    }
}
