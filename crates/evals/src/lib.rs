//! Evaluators for metaprompt: every score in [0, 1] with a reason the teacher can learn from.
//!
//! **Who should depend on this crate:** code that scores outputs without the optimizer.
//! Applications use the `metaprompt` facade (`metaprompt::evals`).
//!
//! - Local metrics: [`ExactMatch`], [`Contains`], [`Regex`], [`OneOf`], [`JsonValid`],
//!   [`JsonSchema`], [`Numeric`], [`Levenshtein`], [`TokenF1`], [`Bleu`], [`RougeL`],
//!   [`Length`]. They read the `response` and `expected_response` fields of an `EvalInput`.
//! - [`Judge`]: an LLM judge on any `ChatModel`, with named rubric templates or your own.
//! - Composites: [`Weighted`], [`AllOf`], [`AnyOf`]; closures: [`FnEvaluator`],
//!   [`AsyncFnEvaluator`].
//! - [`EvaluatorSpec`]: the same, built from configuration.
//!
//! Every evaluator keeps the core contract: one result per item, and an item that cannot be
//! scored gets an error result (`error: …`) without touching the others.
#![deny(missing_docs)]

mod composite;
mod judge;
mod matching;
mod normalize;
mod similarity;
mod spec;
mod structured;
mod util;

pub use composite::{AllOf, AnyOf, AsyncFnEvaluator, FnEvaluator, ModelEvaluator, Weighted};
pub use judge::{Judge, Scale, TEMPLATES, UnknownTemplate, Verdict, template_rubric};
pub use matching::{Contains, ContainsMode, ExactMatch, OneOf, Regex};
pub use normalize::{Normalize, NormalizeSpec};
pub use similarity::{Bleu, Length, LengthUnit, Levenshtein, RougeL, TokenF1};
pub use spec::{BuildContext, EvaluatorSpec, ExternalBuilder, SpecError, WeightedPart};
pub use structured::{JsonSchema, JsonValid, Numeric, last_number};
