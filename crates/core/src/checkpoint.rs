//! The checkpoint contract: no crash may lose a run.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::batch::BatchTicket;

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint: {0}")]
pub struct CheckpointError(pub String);

/// A saved run state: the round it was taken after and the opaque state.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The run.
    pub run_id: String,
    /// The last completed round (0 = after the baseline).
    pub round: u32,
    /// The engine's serialised state; opaque to the store.
    pub state: serde_json::Value,
}

/// Saves and loads run states. The engine decides what a state holds; implementations only
/// keep it safe (atomically: a reader sees the old or the new state, never half of one).
#[async_trait]
pub trait Checkpointer: Send + Sync {
    /// Saves the state after `round` of `run_id`.
    async fn save(
        &self,
        run_id: &str,
        round: u32,
        state: &serde_json::Value,
    ) -> Result<(), CheckpointError>;

    /// The newest state of `run_id`, if any.
    async fn load_latest(&self, run_id: &str) -> Result<Option<Checkpoint>, CheckpointError>;

    /// Records a provider batch of `run_id`, or its new state: called before the engine
    /// starts waiting on it, so that a killed run can re-attach. The default keeps nothing
    /// (a resumed run then submits the calls again).
    async fn save_batch(&self, run_id: &str, batch: &PendingBatch) -> Result<(), CheckpointError> {
        let _ = (run_id, batch);
        Ok(())
    }

    /// Every batch recorded for `run_id`, oldest first.
    async fn batches(&self, run_id: &str) -> Result<Vec<PendingBatch>, CheckpointError> {
        let _ = run_id;
        Ok(Vec::new())
    }
}

/// A provider batch of a run, as its checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBatch {
    /// Which calls it holds: a hash of their cache keys, sorted. The same calls made again
    /// (a resumed run) have the same fingerprint, and re-attach to this batch.
    pub fingerprint: String,
    /// The provider's ids.
    pub ticket: BatchTicket,
    /// What the calls score (`val`, `test`, `baseline`).
    pub phase: String,
    /// When it was submitted (Unix seconds).
    pub submitted_at: u64,
    /// `waiting` until its answers are in the cache (`imported`), or `cancelled`.
    pub status: String,
}
