#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Composites and evaluator specs.

use std::sync::Arc;

use metaprompt_core::{EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, async_trait};
use metaprompt_evals::{AllOf, AnyOf, BuildContext, EvaluatorSpec, FnEvaluator, Weighted};
use mockall::mock;

mock! {
    pub Eval {}
    #[async_trait]
    impl Evaluator for Eval {
        fn name(&self) -> &str;
        fn with_model_layer<'a>(&self, layer: &ModelLayer<'a>) -> ModelUse;
        async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult>;
    }
}

fn inputs(n: usize) -> Vec<EvalInput> {
    (0..n)
        .map(|i| EvalInput::default().with("response", i.to_string()))
        .collect()
}

fn mock_scoring(name: &'static str, score: f64) -> MockEval {
    let mut m = MockEval::new();
    m.expect_name().return_const(name.to_string());
    m.expect_with_model_layer().returning(|_| ModelUse::None);
    m.expect_evaluate().times(1).returning(move |items| {
        items
            .iter()
            .map(|_| EvalResult::new(score, "r").unwrap())
            .collect()
    });
    m
}

#[tokio::test]
async fn weighted_calls_each_inner_evaluator_exactly_once_per_batch() {
    let a: Arc<dyn Evaluator> = Arc::new(mock_scoring("a", 1.0));
    let b: Arc<dyn Evaluator> = Arc::new(mock_scoring("b", 0.0));
    let w = Weighted::new(vec![(a, 3.0), (b, 1.0)]).unwrap();
    let out = w.evaluate(&inputs(5)).await;
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|r| (r.score() - 0.75).abs() < 1e-12));
    assert_eq!(out[0].reason(), "a: r | b: r");
    // The mocks' `times(1)` expectations are checked when they drop here.
}

#[tokio::test]
async fn an_error_in_one_part_errors_only_that_item() {
    let flaky: Arc<dyn Evaluator> = Arc::new(FnEvaluator::new("flaky", |i: &EvalInput| {
        if i.response().as_deref() == Some("1") {
            EvalResult::error("boom")
        } else {
            EvalResult::pass_fail(true, "ok")
        }
    }));
    let always: Arc<dyn Evaluator> = Arc::new(FnEvaluator::new("always", |_: &EvalInput| {
        EvalResult::pass_fail(true, "ok")
    }));
    let w = Weighted::new(vec![(flaky.clone(), 1.0), (always.clone(), 1.0)]).unwrap();
    let out = w.evaluate(&inputs(3)).await;
    assert!(!out[0].is_error() && out[0].score() == 1.0);
    assert!(out[1].is_error() && out[1].reason().contains("boom"));
    assert!(!out[2].is_error());
}

#[tokio::test]
async fn gates_take_min_and_max() {
    let pass: Arc<dyn Evaluator> = Arc::new(FnEvaluator::new("p", |_: &EvalInput| {
        EvalResult::pass_fail(true, "")
    }));
    let fail: Arc<dyn Evaluator> = Arc::new(FnEvaluator::new("f", |_: &EvalInput| {
        EvalResult::pass_fail(false, "")
    }));
    let all = AllOf::new(vec![pass.clone(), fail.clone()]);
    let any = AnyOf::new(vec![pass, fail]);
    assert_eq!(all.evaluate(&inputs(1)).await[0].score(), 0.0);
    assert_eq!(any.evaluate(&inputs(1)).await[0].score(), 1.0);
}

#[test]
fn weights_are_validated() {
    let e: Arc<dyn Evaluator> = Arc::new(FnEvaluator::new("e", |_: &EvalInput| {
        EvalResult::pass_fail(true, "")
    }));
    assert!(Weighted::new(vec![]).is_err());
    assert!(Weighted::new(vec![(e.clone(), -1.0)]).is_err());
    assert!(Weighted::new(vec![(e, 0.0)]).is_err());
}

#[tokio::test]
async fn specs_build_from_toml() {
    let spec: EvaluatorSpec = toml::from_str(
        r#"
kind = "weighted"
[[parts]]
weight = 2.0
evaluator = { kind = "exact_match", normalize = true }
[[parts]]
weight = 1.0
evaluator = { kind = "length", unit = "words", max = 3 }
"#,
    )
    .unwrap();
    let ev = spec.build(&BuildContext::default()).unwrap();
    let out = ev
        .evaluate(&[EvalInput::default()
            .with("response", "Spam!")
            .with("expected_response", "spam")])
        .await;
    assert_eq!(out[0].score(), 1.0);
}

#[test]
fn spec_rejects_unknown_keys_and_explains_build_errors() {
    let err =
        toml::from_str::<EvaluatorSpec>("kind = \"exact_match\"\nnormalise = true\n").unwrap_err();
    assert!(err.to_string().contains("normalise"), "{err}");
    let err = toml::from_str::<EvaluatorSpec>("kind = \"exact_matchh\"\n").unwrap_err();
    assert!(err.to_string().contains("exact_matchh"), "{err}");
    let judge: EvaluatorSpec =
        toml::from_str("kind = \"judge\"\ntemplate = \"relevance\"\n").unwrap();
    assert!(judge.uses_judge());
    let err = judge.build(&BuildContext::default()).err().unwrap();
    assert!(err.to_string().contains("no model to judge with"), "{err}");
    let bad_re: EvaluatorSpec = toml::from_str("kind = \"regex\"\npattern = \"(\"\n").unwrap();
    assert!(
        bad_re
            .build(&BuildContext::default())
            .err()
            .unwrap()
            .to_string()
            .contains("invalid pattern")
    );
}
