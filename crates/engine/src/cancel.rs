//! Cooperative cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag the caller trips (on Ctrl-C, say); the optimizer finishes the calls in flight,
/// checkpoints and returns the best prompt so far with `stop_reason = interrupted`.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not tripped.
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// Trips the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is tripped.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
