//! The store as a checkpointer: a run's state after each round, and its pending batches.

use metaprompt_core::{Checkpoint, CheckpointError, Checkpointer, PendingBatch, async_trait};
use rusqlite::OptionalExtension;

use crate::SqliteStore;
use crate::writer::Write;

#[async_trait]
impl Checkpointer for SqliteStore {
    async fn save(
        &self,
        run_id: &str,
        round: u32,
        state: &serde_json::Value,
    ) -> Result<(), CheckpointError> {
        let state = serde_json::to_string(state).map_err(|e| CheckpointError(e.to_string()))?;
        self.write(Write::Checkpoint {
            run_id: run_id.to_string(),
            round,
            state,
        })
        .await
        .map_err(|e| CheckpointError(e.to_string()))
    }

    async fn save_batch(&self, run_id: &str, batch: &PendingBatch) -> Result<(), CheckpointError> {
        let record = serde_json::to_string(batch).map_err(|e| CheckpointError(e.to_string()))?;
        self.write(Write::Batch {
            run_id: run_id.to_string(),
            fingerprint: batch.fingerprint.clone(),
            record,
            status: batch.status.clone(),
        })
        .await
        .map_err(|e| CheckpointError(e.to_string()))
    }

    async fn batches(&self, run_id: &str) -> Result<Vec<PendingBatch>, CheckpointError> {
        let id = run_id.to_string();
        let rows = self
            .read(move |c| {
                let mut stmt =
                    c.prepare("SELECT record FROM batches WHERE run_id = ?1 ORDER BY rowid")?;
                let rows = stmt
                    .query_map([id], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| CheckpointError(e.to_string()))?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r)
                    .map_err(|e| CheckpointError(format!("corrupt batch record: {e}")))
            })
            .collect()
    }

    async fn load_latest(&self, run_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let id = run_id.to_string();
        let row = self
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT round, state FROM checkpoints WHERE run_id = ?1 ORDER BY round DESC LIMIT 1",
                    [id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?)
            })
            .await
            .map_err(|e| CheckpointError(e.to_string()))?;
        match row {
            None => Ok(None),
            Some((round, state)) => Ok(Some(Checkpoint {
                run_id: run_id.to_string(),
                round: round as u32,
                state: serde_json::from_str(&state)
                    .map_err(|e| CheckpointError(format!("corrupt checkpoint: {e}")))?,
            })),
        }
    }
}
