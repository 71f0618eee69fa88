//! Layers: `ChatModel`s that wrap a `ChatModel` (tower's idea, kept small).
//!
//! Every paid call of a run goes through the same two layers, whatever role the model plays:
//!
//! ```text
//! Cached ──► (concurrency limit) ──► Metered ──► provider
//! ```
//!
//! - [`Cached`] answers a request it has seen from a [`ResponseCache`](crate::ResponseCache) and stores every new
//!   answer before returning it, so nothing paid for is paid again (a hit is counted on the
//!   meter, never charged).
//! - [`Metered`] admits a call only while the run's [`Budget`](crate::Budget) allows it and the
//!   run is not cancelled, then records calls, tokens and cost per [`CallRole`] on one shared
//!   [`Meter`].
//!
//! Answers that arrive another way, a provider batch's, take the same path down the layers
//! ([`ChatModel::absorb`](crate::ChatModel::absorb)): [`Cached`] keeps them, [`Metered`] records them at the batch's
//! price. Caching, metering and budgets are written once, here; nothing caches or meters
//! inline.
//!
//! ```
//! use std::sync::Arc;
//! use metaprompt_core::layer::{CallRole, Cached, Meter, Metered};
//! use metaprompt_core::{Budget, ChatModel, ChatRequest};
//! # #[cfg(feature = "test-utils")] {
//! use metaprompt_core::testing::{MemoryCache, ScriptedModel};
//!
//! let meter = Arc::new(Meter::new(Budget { max_llm_calls: Some(1), ..Budget::default() }));
//! let model = Arc::new(ScriptedModel::new("m").with_handler(|_| Ok("hi".into())));
//! let teacher = Cached::new(
//!     Arc::new(Metered::new(model, CallRole::Teacher, meter.clone())),
//!     Arc::new(MemoryCache::new()),
//! )
//! .counting_hits(meter.clone(), CallRole::Teacher);
//! futures::executor::block_on(async {
//!     teacher.complete(ChatRequest::user("a")).await.unwrap();
//!     // The same request again is a cache hit: free, and allowed past the budget.
//!     teacher.complete(ChatRequest::user("a")).await.unwrap();
//!     // A new one would pass `max_llm_calls`: refused before any call.
//!     assert!(teacher.complete(ChatRequest::user("b")).await.is_err());
//! });
//! let spend = meter.snapshot();
//! assert_eq!((spend.teacher.calls, spend.teacher.cache_hits), (1, 1));
//! # }
//! ```

mod cached;
mod metered;

pub use crate::meter::{CallRole, CancelFlag, Meter, MeterSnapshot, RoleSpend};
pub use cached::{Cached, import_answers};
pub use metered::Metered;

#[cfg(test)]
mod tests;
