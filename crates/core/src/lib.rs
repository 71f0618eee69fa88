//! Core data types and traits of metaprompt.
//!
//! **Who should depend on this crate:** authors of provider crates (a new `ChatModel`),
//! evaluator crates, stores and other extensions. They need the contracts, not the optimizer,
//! HTTP clients or SQLite. Applications should depend on the `metaprompt` facade instead,
//! which re-exports everything here.
//!
//! This crate does no I/O: it depends on serde, serde_json, schemars, thiserror, futures,
//! tracing and a few small pure crates only.
//!
//! # What is here
//! - [`PromptTemplate`]: `{name}` placeholders, `{{`/`}}` escapes, parsed once.
//! - [`Row`], [`EvalInput`], [`EvalResult`]: the data that flows through a run.
//! - The traits a user may implement, all usable as `Arc<dyn …>`: [`ChatModel`],
//!   [`Evaluator`], [`DataMapper`], [`ResponseCache`], [`Checkpointer`], [`EventSink`].
//! - [`Prompt`]: a chat prompt (ordered role + template messages; a string is one user message).
//! - [`Generator`]: a model bound to a prompt.
//! - [`layer`]: the cache and metering layers every paid call goes through, and the [`Meter`]
//!   that counts calls, tokens and cost per role against one [`Budget`].
//! - [`Usage`], [`Price`], [`Budget`]: accounting.
//! - [`run`]: the typed events and round records the engine emits.
//! - [`schema_for`] and [`extract_json`]: structured output.
//! - `testing` (feature `test-utils`): `ScriptedModel`, a scripted fake model for tests.
//!
//! # Why `async_trait`
//! Every trait here must work as a trait object, because a provider is chosen from a
//! configuration file at run time (`Arc<dyn ChatModel>`). Native `async fn` in traits is not
//! object-safe, so the choice is between `async_trait` and a hand-written boxed-future twin of
//! each trait. We use `async_trait` (re-exported as [`macro@async_trait`]): implementers write a
//! plain `async fn`, mockall understands it, and the one allocation per call is nothing next to
//! a model call that takes milliseconds to seconds.
#![deny(missing_docs)]

pub mod batch;
pub mod budget;
pub mod cache;
pub mod checkpoint;
pub mod endpoints;
pub mod eval;
pub mod generator;
pub mod json;
pub mod layer;
pub mod mapper;
pub mod message;
pub mod meter;
pub mod model;
pub mod prices;
pub mod prompt;
pub mod retry;
pub mod row;
pub mod run;
pub mod template;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod usage;

pub use async_trait::async_trait;
pub use batch::{
    BatchExecutor, BatchFile, BatchFileWriter, BatchLimits, BatchLine, BatchProgress, BatchState,
    BatchTicket,
};
pub use budget::{Budget, BudgetKind, Spend};
pub use cache::{CacheError, CacheKey, ResponseCache};
pub use checkpoint::{Checkpoint, CheckpointError, Checkpointer, PendingBatch};
pub use eval::{EvalResult, Evaluator, InvalidScore, ModelLayer, ModelUse, mean_score};
pub use generator::{GenerateError, GenerateParams, Generator};
pub use json::{ExtractError, extract_json, schema_for};
pub use mapper::{DataMapper, MapError};
pub use message::{ChatRequest, ChatResponse, FinishReason, Message, ResponseSchema, Role};
pub use meter::{CallRole, CancelFlag, Meter, MeterSnapshot, RoleSpend};
pub use model::{ChatModel, ModelError};
pub use prices::{PRICES_AS_OF, list_price};
pub use prompt::{Prompt, PromptError, PromptMessage};
pub use retry::{RetryPolicy, parse_retry_after};
pub use row::{EvalInput, Row, RowId};
pub use run::{EventSink, NoEvents, RunEvent, StopReason};
pub use template::{PromptTemplate, TemplateError};
pub use usage::{Price, Usage};
