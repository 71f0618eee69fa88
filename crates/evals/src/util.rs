//! Helpers shared by the metrics.

use metaprompt_core::{EvalInput, EvalResult};

/// Shortens text for a reason, keeping the start and marking the cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}

/// The `response` field, or an error result saying how to provide it.
pub(crate) fn response(input: &EvalInput) -> Result<String, EvalResult> {
    input.response().ok_or_else(|| {
        EvalResult::error(
            "no `response` field: map the model output to it (response = \"generated_output\")",
        )
    })
}

/// The `expected_response` field, or an error result saying how to provide it.
pub(crate) fn expected(input: &EvalInput) -> Result<String, EvalResult> {
    input.expected().ok_or_else(|| {
        EvalResult::error(
            "no `expected_response` field: map the reference column to it (expected_response = \"label\")",
        )
    })
}

/// Implements `Evaluator` for a type with `fn score(&self, &EvalInput) -> EvalResult`.
macro_rules! local_evaluator {
    ($ty:ty, $name:literal) => {
        #[metaprompt_core::async_trait]
        impl metaprompt_core::Evaluator for $ty {
            fn name(&self) -> &str {
                $name
            }
            fn with_model_layer(
                &self,
                _layer: &metaprompt_core::ModelLayer<'_>,
            ) -> metaprompt_core::ModelUse {
                metaprompt_core::ModelUse::None
            }
            async fn evaluate(
                &self,
                inputs: &[metaprompt_core::EvalInput],
            ) -> Vec<metaprompt_core::EvalResult> {
                inputs.iter().map(|i| self.score(i)).collect()
            }
        }
    };
}
pub(crate) use local_evaluator;

/// Builds a result from a score, turning the impossible NaN into an error result.
pub(crate) fn scored(score: f64, reason: String) -> EvalResult {
    EvalResult::new(score, reason).unwrap_or_else(|_| EvalResult::error("the metric produced NaN"))
}
