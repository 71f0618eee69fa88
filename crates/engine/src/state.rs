//! What a checkpoint holds: the state of a run between rounds.
//!
//! A round never changes this state while it runs: it computes its children from the state as
//! the last round left it, and only [`commit`](crate::round) applies them. So an interrupted
//! round leaves no trace (no ledger entry, no minibatch taken, no duplicate recorded), and a
//! resumed run redoes it exactly as an uninterrupted run would, its paid calls answered by
//! the cache.

use metaprompt_core::MeterSnapshot;
use metaprompt_core::run::RoundRecord;
use metaprompt_data::MinibatchState;
use serde::{Deserialize, Serialize};

use crate::pool::Candidate;

/// The checkpoint format's version; a checkpoint of another version is refused with a clear
/// message rather than misread.
pub(crate) const STATE_VERSION: u32 = 3;

/// Everything needed to continue a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    pub(crate) version: u32,
    pub(crate) run_id: String,
    /// The last round committed (0 = after the baseline).
    pub(crate) round_done: u32,
    /// Every candidate scored on val, initial prompts first.
    pub(crate) pool: Vec<Candidate>,
    /// How many of the pool's first candidates are initial prompts.
    pub(crate) initial: usize,
    /// The best candidate (index into `pool`).
    pub(crate) best: usize,
    /// The last accepted candidate, for `parent_selection = "current"`.
    pub(crate) current: usize,
    /// The ledger: one record per child.
    pub(crate) history: Vec<RoundRecord>,
    /// Keys of every prompt tried (whitespace-normalised), for duplicate detection.
    pub(crate) seen: Vec<String>,
    /// Where the minibatch walker stands.
    pub(crate) minibatch: MinibatchState,
    /// The paired tests on val made so far (the acceptance spends its error rate over them).
    #[serde(default)]
    pub(crate) tests_made: u32,
    /// Rounds since the best last changed.
    pub(crate) rounds_since_improvement: u32,
    /// Spending of the whole run so far (updated also when a round is interrupted, so a
    /// resumed run reports what was really paid).
    pub(crate) meter: MeterSnapshot,
}

impl RunState {
    /// The best initial prompt (index into `pool`).
    pub(crate) fn initial_best(&self) -> usize {
        crate::pool::best_index(&self.pool[..self.initial.max(1)])
    }
}
