//! An evaluator written outside the workspace's crates: implement `Evaluator` (its name, the
//! models it calls — none here — and one async method, one result per item) and hand it to
//! the optimizer like any other. An evaluator that calls a model hands it to the engine in
//! `with_model_layer`, or is built with `metaprompt::evals::ModelEvaluator`.
//!
//! `cargo run -p metaprompt --example custom-evaluator`

use metaprompt::core::{EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, async_trait};

/// Scores a one-word label answer: 1 for the right label, 0.5 for the right label buried in a
/// sentence, 0 otherwise; an answer without any label is an error the teacher should see.
struct LabelInSentence;

#[async_trait]
impl Evaluator for LabelInSentence {
    fn name(&self) -> &str {
        "label_in_sentence"
    }

    fn with_model_layer(&self, _layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::None
    }

    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        inputs
            .iter()
            .map(|i| {
                let (Some(got), Some(want)) = (i.response(), i.expected()) else {
                    return EvalResult::error("map `response` and `expected_response`");
                };
                let got = got.trim().to_lowercase();
                let want = want.to_lowercase();
                if got == want {
                    EvalResult::pass_fail(true, format!("exactly `{want}`"))
                } else if got.split(|c: char| !c.is_alphanumeric()).any(|w| w == want) {
                    EvalResult::new(0.5, format!("`{want}` inside a sentence: `{got}`"))
                        .unwrap_or_else(|_| EvalResult::error("NaN"))
                } else {
                    EvalResult::pass_fail(false, format!("expected `{want}`, got `{got}`"))
                }
            })
            .collect()
    }
}

#[tokio::main]
async fn main() {
    let items = [("spam", "spam"), ("This is spam.", "spam"), ("ham", "spam")].map(|(g, w)| {
        EvalInput::default()
            .with("response", g)
            .with("expected_response", w)
    });
    for r in LabelInSentence.evaluate(&items).await {
        println!("{:.1}  {}", r.score(), r.reason());
    }
}
