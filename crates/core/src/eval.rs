//! Scores and the evaluator contract.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::ChatModel;
use crate::row::EvalInput;

/// A layer put around each model an evaluator calls (see [`Evaluator::with_model_layer`]).
pub type ModelLayer<'a> =
    dyn Fn(std::sync::Arc<dyn ChatModel>) -> std::sync::Arc<dyn ChatModel> + Send + Sync + 'a;

/// What an evaluator answers to [`Evaluator::with_model_layer`].
pub enum ModelUse {
    /// It calls no model (a local metric): nothing to wrap.
    None,
    /// It calls models: here it is again with the layer around each of them.
    Layered(std::sync::Arc<dyn Evaluator>),
}

impl ModelUse {
    /// The evaluator to score with: the layered one, else `unlayered` itself.
    pub fn or(self, unlayered: &std::sync::Arc<dyn Evaluator>) -> std::sync::Arc<dyn Evaluator> {
        match self {
            ModelUse::None => unlayered.clone(),
            ModelUse::Layered(e) => e,
        }
    }
}

/// The prefix every error reason starts with, so a reader (or the teacher) tells a failed
/// evaluation from a low score.
pub const ERROR_PREFIX: &str = "error:";

/// Returned by [`EvalResult::new`] for a score that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("a score must be a number in [0, 1], got NaN")]
pub struct InvalidScore;

/// One evaluation: a score in `[0, 1]` and the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    score: f64,
    reason: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    error: bool,
}

impl EvalResult {
    /// A score with its reason. Scores outside `[0, 1]` are clamped; NaN is refused.
    ///
    /// ```
    /// use metaprompt_core::EvalResult;
    /// assert_eq!(EvalResult::new(1.7, "over").unwrap().score(), 1.0);
    /// assert!(EvalResult::new(f64::NAN, "nan").is_err());
    /// ```
    pub fn new(score: f64, reason: impl Into<String>) -> Result<Self, InvalidScore> {
        if score.is_nan() {
            return Err(InvalidScore);
        }
        Ok(EvalResult {
            score: score.clamp(0.0, 1.0),
            reason: reason.into(),
            error: false,
        })
    }

    /// A pass (1.0) or a fail (0.0).
    pub fn pass_fail(pass: bool, reason: impl Into<String>) -> Self {
        EvalResult {
            score: if pass { 1.0 } else { 0.0 },
            reason: reason.into(),
            error: false,
        }
    }

    /// An item that could not be evaluated: score 0, flagged, reason starting with `error:`.
    pub fn error(message: impl AsRef<str>) -> Self {
        EvalResult {
            score: 0.0,
            reason: format!("{ERROR_PREFIX} {}", message.as_ref()),
            error: true,
        }
    }

    /// The score, in `[0, 1]`.
    pub fn score(&self) -> f64 {
        self.score
    }

    /// Why this score.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the item failed to evaluate rather than scored low.
    pub fn is_error(&self) -> bool {
        self.error
    }
}

/// Scores a batch of model outputs.
///
/// The contract: exactly one result per input, in order. An input that cannot be scored gets
/// [`EvalResult::error`]; it never fails the batch or changes the other items' scores.
#[async_trait]
pub trait Evaluator: Send + Sync {
    /// A short name for reports (`exact_match`, `judge:summary_quality`).
    fn name(&self) -> &str;

    /// Scores every input.
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult>;

    /// Which models it calls, and so what the engine must wrap: [`ModelUse::None`] for a
    /// metric that calls none, else the same evaluator with `layer` around every model it
    /// calls ([`ModelUse::Layered`]). The engine calls this once per run and scores with what
    /// it gets, so a judge's calls are cached, metered and budgeted like every other call.
    ///
    /// There is no default: an evaluator states it. One that calls a model and answers
    /// `None` escapes the run's cache, meter and budget; `metaprompt_evals::ModelEvaluator`
    /// is an evaluator from a closure that receives its model already wrapped.
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse;

    /// Model calls made per item scored when nothing fails (0 for a local metric, 1 for an
    /// LLM judge), for projecting a run's calls before it starts.
    fn model_calls_per_item(&self) -> u32 {
        0
    }
}

#[async_trait]
impl<T: Evaluator + ?Sized> Evaluator for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        (**self).evaluate(inputs).await
    }
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        (**self).with_model_layer(layer)
    }
    fn model_calls_per_item(&self) -> u32 {
        (**self).model_calls_per_item()
    }
}

/// The mean score of a batch, or `None` when it is empty.
pub fn mean_score(results: &[EvalResult]) -> Option<f64> {
    if results.is_empty() {
        return None;
    }
    Some(results.iter().map(EvalResult::score).sum::<f64>() / results.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_clamped_and_nan_refused() {
        assert_eq!(EvalResult::new(-0.5, "").unwrap().score(), 0.0);
        assert_eq!(EvalResult::new(0.25, "").unwrap().score(), 0.25);
        assert_eq!(EvalResult::new(f64::INFINITY, "").unwrap().score(), 1.0);
        assert_eq!(EvalResult::new(f64::NAN, ""), Err(InvalidScore));
    }

    #[test]
    fn error_results_are_flagged_and_prefixed() {
        let e = EvalResult::error("judge timed out");
        assert!(e.is_error());
        assert_eq!(e.score(), 0.0);
        assert_eq!(e.reason(), "error: judge timed out");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["error"], true);
        let ok = serde_json::to_value(EvalResult::pass_fail(true, "match")).unwrap();
        assert!(ok.get("error").is_none());
    }

    #[test]
    fn mean_of_empty_is_none() {
        assert_eq!(mean_score(&[]), None);
        let rs = [
            EvalResult::pass_fail(true, ""),
            EvalResult::pass_fail(false, ""),
        ];
        assert_eq!(mean_score(&rs), Some(0.5));
    }
}
