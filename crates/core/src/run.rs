//! Typed run events and round records.
//!
//! The engine emits these; the store records them and the command line shows them. They live
//! here so that neither of those needs to depend on the engine.

use serde::{Deserialize, Serialize};

use crate::budget::BudgetKind;

/// Which evaluation is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Initial prompts on val.
    Baseline,
    /// The current prompt on the round's minibatch.
    Minibatch,
    /// A candidate on the same minibatch.
    Candidate,
    /// A gated candidate on val.
    Validation,
    /// The best and initial prompts on test.
    Test,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// Every round ran.
    Completed,
    /// The val score reached the target.
    TargetReached,
    /// `patience` rounds passed without improvement.
    NoImprovement,
    /// A budget ran out.
    Budget(BudgetKind),
    /// Cancelled (Ctrl-C); the best prompt so far is returned.
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Completed => f.write_str("completed"),
            StopReason::TargetReached => f.write_str("target_reached"),
            StopReason::NoImprovement => f.write_str("no_improvement"),
            StopReason::Budget(k) => write!(f, "budget_{}", format!("{k:?}").to_lowercase()),
            StopReason::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// How a ledger entry's candidate was made (and, in a configuration's `mutations`, the kinds
/// of children a run makes).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mutation {
    /// The teacher rewrote the parent's instructions.
    #[default]
    Rewrite,
    /// The engine chose worked train examples.
    Demos,
    /// Two front candidates were combined.
    Merge,
}

/// One ledger entry: what one child of a round tried and what came of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// 1-based round number.
    pub round: u32,
    /// The child's number within its round (0-based).
    #[serde(default)]
    pub child: u32,
    /// The candidate's id in the pool, when it passed its gate and was scored on val.
    #[serde(default)]
    pub candidate_id: Option<u32>,
    /// The candidates it was made from.
    #[serde(default)]
    pub parents: Vec<u32>,
    /// How it was made.
    #[serde(default)]
    pub mutation: Mutation,
    /// The teacher's diagnosis.
    pub analysis: String,
    /// The teacher's testable hypothesis (for a demos child: which demonstrations).
    pub hypothesis: String,
    /// The rewritten prompt's text (empty when the child failed before guards accepted one).
    pub candidate_prompt: String,
    /// The train rows shown as demonstrations.
    #[serde(default)]
    pub demo_ids: Vec<String>,
    /// The train rows of the child's minibatch.
    #[serde(default)]
    pub minibatch_ids: Vec<String>,
    /// The candidate's mean score on the minibatch.
    pub minibatch_score: Option<f64>,
    /// The parent's mean score on the same minibatch.
    pub parent_minibatch_score: Option<f64>,
    /// The candidate's val score, when it passed the minibatch gate.
    pub val_score: Option<f64>,
    /// Whether the candidate became the best prompt.
    pub accepted: bool,
    /// Whether it joined the pool (passed the gate and was scored on val).
    #[serde(default)]
    pub pooled: bool,
    /// Why it was accepted or rejected, or why the child failed.
    pub reason: String,
    /// Whether the rewrite was repaired by appending missing inputs.
    #[serde(default)]
    pub repaired: bool,
    /// Whether the child failed (no usable candidate).
    #[serde(default)]
    pub failed: bool,
}

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunEvent {
    /// A run began.
    RunStarted {
        /// The run's id.
        run_id: String,
        /// Rounds planned.
        num_rounds: u32,
    },
    /// An initial prompt was scored on val.
    Baseline {
        /// Which initial prompt.
        index: usize,
        /// Its val score.
        val_score: f64,
    },
    /// A round began.
    RoundStarted {
        /// 1-based round.
        round: u32,
    },
    /// Evaluation progress.
    Evaluated {
        /// What is being evaluated.
        phase: Phase,
        /// Items done.
        done: usize,
        /// Items in this evaluation.
        total: usize,
    },
    /// The teacher proposed a rewrite.
    TeacherProposed {
        /// Round.
        round: u32,
        /// The hypothesis.
        hypothesis: String,
    },
    /// A guard refused a rewrite.
    GuardRejected {
        /// Round.
        round: u32,
        /// What was wrong.
        violation: String,
    },
    /// A candidate became the current prompt.
    CandidateAccepted {
        /// Round.
        round: u32,
        /// Its val score.
        val_score: f64,
    },
    /// A new best prompt.
    BestImproved {
        /// Round.
        round: u32,
        /// The new best val score.
        val_score: f64,
    },
    /// A round ended.
    RoundFinished {
        /// The ledger entry.
        record: Box<RoundRecord>,
    },
    /// A provider batch was submitted, re-attached to, or moved on.
    Batch {
        /// What its calls score.
        phase: Phase,
        /// Its progress.
        progress: crate::batch::BatchProgress,
        /// The provider's ids.
        batch_ids: Vec<String>,
        /// Whether this run found it from an earlier, interrupted session.
        resumed: bool,
    },
    /// A batch's answers are in the cache.
    BatchImported {
        /// What its calls score.
        phase: Phase,
        /// Lines answered and stored.
        answered: u64,
        /// Lines that failed (made again on the live path).
        failed: u64,
    },
    /// The run ended.
    Finished {
        /// Why.
        stop_reason: StopReason,
        /// The best prompt's val score.
        final_score: f64,
    },
}

/// Receives run events. Called from the engine's task: implementations must return quickly
/// (send on a channel, bump a progress bar) and never block.
pub trait EventSink: Send + Sync {
    /// Handles one event.
    fn emit(&self, event: &RunEvent);
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &RunEvent) {}
}

impl<F: Fn(&RunEvent) + Send + Sync> EventSink for F {
    fn emit(&self, event: &RunEvent) {
        self(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_tag() {
        let e = RunEvent::Evaluated {
            phase: Phase::Validation,
            done: 3,
            total: 10,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "evaluated");
        assert_eq!(v["phase"], "validation");
        let back: RunEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn stop_reasons_display_in_snake_case() {
        assert_eq!(
            StopReason::Budget(BudgetKind::Cost).to_string(),
            "budget_cost"
        );
        assert_eq!(StopReason::Interrupted.to_string(), "interrupted");
    }

    #[test]
    fn closures_are_event_sinks() {
        let seen = std::sync::Mutex::new(Vec::new());
        let sink = |e: &RunEvent| seen.lock().unwrap().push(e.clone());
        sink.emit(&RunEvent::RoundStarted { round: 1 });
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
