//! Progress on the terminal: bars when stderr is a terminal, one line per round otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use metaprompt::core::EventSink;
use metaprompt::core::run::{Phase, RunEvent};

/// Shows run events.
pub(crate) struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    quiet: bool,
    last_phase: Mutex<Option<Phase>>,
    /// The last batch state shown, so each change is told once.
    last_batch: Mutex<Option<(Vec<String>, &'static str)>>,
}

impl Progress {
    pub(crate) fn new(rounds: u32, quiet: bool) -> Progress {
        let bars = (std::io::stderr().is_terminal() && !quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let round = multi.add(ProgressBar::new(u64::from(rounds)));
            round.set_style(
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] round {pos}/{len}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            round.set_prefix("optimize");
            let evals = multi.add(ProgressBar::new(0));
            evals.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            (multi, round, evals)
        });
        Progress {
            bars,
            quiet,
            last_phase: Mutex::new(None),
            last_batch: Mutex::new(None),
        }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((m, _, _)) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some((_, r, e)) = &self.bars {
            e.finish_and_clear();
            r.finish_and_clear();
        }
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Baseline => "baseline",
        Phase::Minibatch => "minibatch",
        Phase::Candidate => "candidate",
        Phase::Validation => "val",
        Phase::Test => "test",
        _ => "eval",
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &RunEvent) {
        match event {
            RunEvent::Evaluated { phase, done, total } => {
                if let Some((_, _, e)) = &self.bars {
                    let mut last = self
                        .last_phase
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *last != Some(*phase) || *done <= 1 {
                        e.reset();
                        e.set_length(*total as u64);
                        e.set_prefix(phase_name(*phase));
                        *last = Some(*phase);
                    }
                    e.set_position(*done as u64);
                }
            }
            RunEvent::Baseline { index, val_score } => self.line(format!(
                "baseline: initial prompt {index} scores {val_score:.3} on val"
            )),
            RunEvent::RoundStarted { round } => {
                if let Some((_, r, _)) = &self.bars {
                    r.set_position(u64::from(round.saturating_sub(1)));
                    r.set_message(format!("round {round}: evaluating"));
                }
            }
            RunEvent::TeacherProposed { hypothesis, .. } => {
                if let Some((_, r, _)) = &self.bars {
                    let h: String = hypothesis.chars().take(60).collect();
                    r.set_message(format!("testing: {h}"));
                }
            }
            RunEvent::GuardRejected { round, violation } => {
                self.line(format!("round {round}: rewrite refused: {violation}"))
            }
            RunEvent::RoundFinished { record } => {
                if let Some((_, r, _)) = &self.bars {
                    r.set_position(u64::from(record.round));
                }
                let verdict = if record.accepted {
                    "new best"
                } else if record.failed {
                    "failed"
                } else if record.pooled {
                    "pooled"
                } else {
                    "rejected"
                };
                let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
                let label = if record.child > 0 {
                    format!("{}.{}", record.round, record.child + 1)
                } else {
                    record.round.to_string()
                };
                let kind = serde_json::to_value(record.mutation)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.line(format!(
                    "round {label} ({kind}): {verdict} — minibatch {} vs {}, val {} — {}",
                    f(record.minibatch_score),
                    f(record.parent_minibatch_score),
                    f(record.val_score),
                    record.reason
                ));
            }
            RunEvent::BestImproved { round, val_score } => self.line(format!(
                "round {round}: new best prompt, val {val_score:.3}"
            )),
            RunEvent::Batch {
                phase,
                progress,
                batch_ids,
                resumed,
            } => {
                let state = progress.state.as_str();
                let key = (batch_ids.clone(), state);
                let mut last = self
                    .last_batch
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.as_ref() != Some(&key) {
                    let again = if *resumed && last.is_none() {
                        " (re-attached)"
                    } else {
                        ""
                    };
                    self.line(format!(
                        "{} batch {}{again}: {state}, {}/{} answered, {} failed",
                        phase_name(*phase),
                        batch_ids.join(", "),
                        progress.completed,
                        progress.total,
                        progress.failed
                    ));
                    *last = Some(key);
                }
                if let Some((_, _, e)) = &self.bars {
                    e.set_prefix(format!("{} batch", phase_name(*phase)));
                    e.set_length(progress.total);
                    e.set_position(progress.completed + progress.failed);
                }
            }
            RunEvent::BatchImported {
                phase,
                answered,
                failed,
            } => self.line(format!(
                "{} batch: {answered} answers stored; {failed} lines to make live",
                phase_name(*phase)
            )),
            _ => {}
        }
    }
}

/// Sends events to several sinks.
pub(crate) struct Fanout(pub(crate) Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &RunEvent) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}
