//! Whole-split scoring on a provider batch.
//!
//! The batch is a layer, like the cache: [`Batched`] sits on top of the student's and each
//! judge's chain. Scoring a split with batching on is three steps:
//!
//! 1. **Collect.** The split is scored once with a collector in scope ([`COLLECTING`]): every
//!    call the cache cannot answer is written as a batch input line (its `custom_id` is its
//!    cache key) and answered [`ModelError::Deferred`]; nothing is paid. Judge calls can only
//!    be collected once the student's answers exist, so a second collect follows a student
//!    batch.
//! 2. **Batch.** The lines go to the model's [`BatchExecutor`]; the batch is recorded with the
//!    checkpointer before polling starts (a killed run re-attaches to it by the fingerprint of
//!    its calls), polled with back-off, and its answers streamed from the results file into
//!    the cache, a chunk of lines per write.
//! 3. **Score.** The split is scored as always: batch answers are read back without counting
//!    as cache hits (they were counted as batch calls, at the batch price); lines that failed
//!    are live calls like any other.

use std::sync::Arc;

use metaprompt_core::{BatchExecutor, ChatModel};

mod layer;
mod prefetch;

pub(crate) use layer::{Batched, COLLECTING, Collector, Group, Imported, lock};

/// What a run's batching needs besides the layers.
pub(crate) struct Batching {
    pub(crate) executors: Vec<Arc<dyn BatchExecutor>>,
    pub(crate) imported: Arc<Imported>,
}

impl Batching {
    /// The executor of `model`, if any.
    pub(crate) fn executor_for(&self, model: &dyn ChatModel) -> Option<Arc<dyn BatchExecutor>> {
        self.executors
            .iter()
            .find(|e| e.model_id() == model.id())
            .cloned()
    }
}
