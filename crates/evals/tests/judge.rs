#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The LLM judge against a scripted model.

use std::sync::Arc;

use metaprompt_core::testing::ScriptedModel;
use metaprompt_core::{EvalInput, Evaluator, ModelError};
use metaprompt_evals::{Judge, Scale};

fn item(response: &str) -> EvalInput {
    EvalInput::default()
        .with("input", "Summarise: the cat sat on the mat all day.")
        .with("response", response)
}

#[tokio::test]
async fn request_carries_the_schema_rubric_and_fields() {
    let model = Arc::new(ScriptedModel::new("judge").reply(r#"{"reasoning": "fine", "score": 4}"#));
    let judge = Judge::template(model.clone(), "summary_quality").unwrap();
    let out = judge.evaluate(&[item("A cat sat.")]).await;
    assert_eq!(out[0].score(), 0.75);
    assert_eq!(out[0].reason(), "fine");
    let req = &model.requests()[0];
    let schema = req
        .response_schema
        .as_ref()
        .expect("structured output requested");
    let props = &schema.schema.as_value()["properties"];
    assert!(props.get("reasoning").is_some() && props.get("score").is_some());
    assert_eq!(schema.schema.as_value()["additionalProperties"], false);
    assert!(req.messages[0].content.contains("captures the main points"));
    assert!(
        req.messages[1]
            .content
            .contains("## Response to evaluate\n<<<\nA cat sat.\n>>>")
    );
    assert!(req.messages[1].content.contains("## Input"));
}

#[tokio::test]
async fn scales_map_to_unit_interval() {
    for (scale, raw, want) in [
        (Scale::OneToFive, 1.0, 0.0),
        (Scale::OneToFive, 5.0, 1.0),
        (Scale::OneToFive, 3.0, 0.5),
        (Scale::ZeroToOne, 0.3, 0.3),
        (Scale::ZeroToOne, 1.0, 1.0),
    ] {
        let model = Arc::new(
            ScriptedModel::new("j").reply(format!(r#"{{"reasoning": "r", "score": {raw}}}"#)),
        );
        let judge = Judge::custom(model, "be fair").with_scale(scale);
        let out = judge.evaluate(&[item("x")]).await;
        assert!((out[0].score() - want).abs() < 1e-12, "{scale:?} {raw}");
    }
}

#[tokio::test]
async fn malformed_output_is_retried_once_then_the_item_errors() {
    let model = Arc::new(
        ScriptedModel::new("j")
            .reply("I think it is good")
            .reply(r#"{"reasoning": "ok now", "score": 5}"#),
    );
    let judge = Judge::custom(model.clone(), "rubric").with_max_concurrency(Some(1));
    let out = judge.evaluate(&[item("x")]).await;
    assert_eq!(out[0].score(), 1.0);
    assert_eq!(model.call_count(), 2);

    let model = Arc::new(ScriptedModel::new("j").replies(["nope", "still nope"]));
    let judge = Judge::custom(model.clone(), "rubric");
    let out = judge.evaluate(&[item("x")]).await;
    assert!(out[0].is_error());
    assert!(
        out[0].reason().starts_with("error: malformed judge reply"),
        "{}",
        out[0].reason()
    );
    assert_eq!(model.call_count(), 2);
}

#[tokio::test]
async fn off_scale_scores_and_call_failures_are_item_errors_only() {
    // Items are judged one at a time here so the script's order is the items' order.
    let model = Arc::new(
        ScriptedModel::new("j")
            .reply(r#"{"reasoning": "a", "score": 9}"#)
            .reply(r#"{"reasoning": "a", "score": 7}"#)
            .reply(r#"{"reasoning": "good", "score": 5}"#)
            .fail(ModelError::Timeout(std::time::Duration::from_secs(30)))
            .fail(ModelError::Timeout(std::time::Duration::from_secs(30)))
            .reply(r#"{"reasoning": "meh", "score": 2}"#),
    );
    let judge = Judge::custom(model, "rubric").with_max_concurrency(Some(1));
    let out = judge
        .evaluate(&[item("a"), item("b"), item("c"), item("d")])
        .await;
    assert_eq!(out.len(), 4);
    assert!(out[0].is_error() && out[0].reason().contains("off the scale"));
    assert_eq!(out[1].score(), 1.0);
    assert!(out[2].is_error() && out[2].reason().contains("timed out"));
    assert_eq!(out[3].score(), 0.25);
}

#[test]
fn unknown_template_lists_the_known_ones() {
    let model = Arc::new(ScriptedModel::new("j"));
    let err = Judge::template(model, "vibes").unwrap_err();
    assert!(
        err.to_string()
            .contains("summary_quality, factual_accuracy")
    );
}
