//! The checkpoint contract: no crash may lose a run.

use async_trait::async_trait;

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
}
