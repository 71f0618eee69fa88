//! FutureAGI's eval templates as a metaprompt evaluator: the cloud evals the Python original
//! (agent-opt's `Evaluator(eval_template=…, eval_model_name=…)`) scores with.
//!
//! **Who should depend on this crate:** applications moving an agent-opt set-up that scores
//! with FutureAGI. Others use the `metaprompt` command (`[evaluator] kind = "futureagi"`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use metaprompt_futureagi::{ClientConfig, FutureAgiClient, FutureAgiEvaluator};
//! let client = FutureAgiClient::new(ClientConfig::from_env(None, None)?)?;
//! let evaluator = FutureAgiEvaluator::new(client, "summary_quality", "turing_flash", vec!["input".into(), "output".into()]);
//! evaluator.check().await?; // the key map against the live catalogue, before any evaluation
//! # Ok(()) }
//! ```
//!
//! Every evaluation goes through a `ChatModel` ([`FutureAgiClient`]), so that the optimizer's
//! layers cache, meter (as judge calls, at the configured price per call) and budget it like
//! any other paid call. Scores: a number is clamped to [0, 1], `"Passed"`/`"Failed"` are 1 and 0,
//! `{score, choice}` gives its score; anything else is that item's error, never the batch's.
#![deny(missing_docs)]

mod api;
mod client;
mod evaluator;
mod spec;

pub use api::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_MODEL, SECRET_KEY_ENV};
pub use client::{ClientConfig, ConfigError, FutureAgiClient};
pub use evaluator::{
    FutureAgiEvaluator, KNOWN_TEMPLATES, KeyMismatch, TemplateKeysView, check_keys, known_keys,
};
pub use spec::{FromSpec, from_spec};

/// Why the key map could not be confirmed against the live catalogue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The key map does not match the template.
    #[error(transparent)]
    Keys(#[from] KeyMismatch),
    /// The catalogue has no such template.
    #[error("FutureAGI has no eval template `{0}`; some it has: {1}")]
    UnknownTemplate(String, String),
    /// The catalogue could not be read.
    #[error("cannot read FutureAGI's template catalogue: {0}")]
    Catalogue(metaprompt_core::ModelError),
}
