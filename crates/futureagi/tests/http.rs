#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The FutureAGI evaluator against a local server speaking its eval API on 127.0.0.1.

use std::time::Duration;

use metaprompt_core::{EvalInput, Evaluator, RetryPolicy, RowId};
use metaprompt_futureagi::{CheckError, ClientConfig, FutureAgiClient, FutureAgiEvaluator};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "fi-planted-api-key-9911";
const SECRET: &str = "fi-planted-secret-7733";

fn client(server: &MockServer, asynchronous: bool) -> FutureAgiClient {
    FutureAgiClient::new(ClientConfig {
        base_url: Some(server.uri()),
        api_key: KEY.into(),
        secret_key: SECRET.into(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
        price_per_call: 0.002,
        asynchronous,
        poll_interval: Duration::from_millis(20),
        poll_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn evaluation(output: Value, reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": true, "result": [{"evaluations": [
        {"name": "t", "reason": reason, "output": output, "output_type": "score", "runtime": 10, "eval_id": "e-1"}
    ]}]}))
}

fn item(output: &str, expected: &str) -> EvalInput {
    EvalInput::for_row(RowId::new("r"))
        .with("generated_value", output)
        .with("expected_value", expected)
}

fn gtm(server: &MockServer) -> FutureAgiEvaluator {
    FutureAgiEvaluator::new(
        client(server, false),
        "ground_truth_match",
        "turing_flash",
        vec!["generated_value".into(), "expected_value".into()],
    )
}

#[tokio::test]
async fn a_score_template_is_clamped_to_the_unit_interval_with_its_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sdk/api/v1/new-eval/"))
        .and(header("X-Api-Key", KEY))
        .and(header("X-Secret-Key", SECRET))
        .respond_with(evaluation(json!(0.5), "partly right"))
        .expect(1)
        .mount(&server)
        .await;
    let e = FutureAgiEvaluator::new(
        client(&server, false),
        "summary_quality",
        "turing_flash",
        vec!["input".into(), "output".into()],
    );
    let input = EvalInput::for_row(RowId::new("1"))
        .with("input", "a long article")
        .with("output", "a summary");
    let r = e.evaluate(&[input]).await;
    assert_eq!(r[0].score(), 0.5);
    assert_eq!(r[0].reason(), "partly right");
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"eval_name": "summary_quality", "inputs": {"input": "a long article", "output": "a summary"}, "model": "turing_flash", "is_async": false})
    );
}

#[tokio::test]
async fn pass_fail_templates_score_one_and_zero() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(|r: &Request| {
            String::from_utf8_lossy(&r.body).contains("\"spam\",\"generated_value\":\"spam\"")
                || String::from_utf8_lossy(&r.body).contains("\"generated_value\":\"spam\"")
        })
        .respond_with(evaluation(json!("Passed"), "match"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(evaluation(json!("Failed"), "no match"))
        .mount(&server)
        .await;
    let r = gtm(&server)
        .evaluate(&[item("spam", "spam"), item("ham", "spam")])
        .await;
    assert_eq!((r[0].score(), r[1].score()), (1.0, 0.0));
    assert!(!r[0].is_error() && !r[1].is_error());
}

#[tokio::test]
async fn a_key_map_that_misses_the_template_is_refused_before_any_evaluation() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sdk/api/v1/get-evals/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": true, "result": [
            {"name": "summary_quality", "config": {"required_keys": ["input", "output"], "output": "score"}}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, false);
    let e = FutureAgiEvaluator::new(
        c.clone(),
        "summary_quality",
        "turing_flash",
        vec!["input".into(), "response".into()],
    );
    let err = e.check().await.unwrap_err();
    assert!(matches!(err, CheckError::Keys(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`input`, `output`") && text.contains("`response`"),
        "{text}"
    );
    // The catalogue is read once; no evaluation was sent.
    assert!(e.check().await.is_err());
    let sent = server.received_requests().await.unwrap();
    assert!(sent.iter().all(|r| r.method.as_str() == "GET"));
    assert_eq!(sent.len(), 1);
    let unknown = FutureAgiEvaluator::new(c, "no_such", "turing_flash", vec![]);
    assert!(matches!(
        unknown.check().await,
        Err(CheckError::UnknownTemplate(..))
    ));
}

#[tokio::test]
async fn client_errors_are_clear_item_errors_and_not_retried() {
    for (status, body, needle) in [
        (
            400,
            json!({"status": false, "message": "Unexpected keys provided: foo"}),
            "Unexpected keys",
        ),
        (
            401,
            json!({"status": false, "message": format!("Invalid API key or secret key {KEY}")}),
            "FI_API_KEY",
        ),
        (
            500,
            json!({"status": false, "message": "Usage limit exceeded"}),
            "out of credits",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let r = gtm(&server).evaluate(&[item("a", "b")]).await;
        assert!(r[0].is_error());
        assert!(
            r[0].reason().contains(needle),
            "{status}: {}",
            r[0].reason()
        );
        assert!(!r[0].reason().contains(KEY), "{}", r[0].reason());
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{status} retried"
        );
    }
}

#[tokio::test]
async fn a_server_error_is_retried_and_one_item_never_spoils_the_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(evaluation(Value::Null, "could not score"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(evaluation(json!(0.75), "fine"))
        .mount(&server)
        .await;
    let e = gtm(&server).with_max_concurrency(Some(1));
    let r = e.evaluate(&[item("a", "a"), item("b", "b")]).await;
    // The first item survives two 503s and then gets no score (its own error); the second scores.
    assert!(
        r[0].is_error() && r[0].reason().contains("no score"),
        "{}",
        r[0].reason()
    );
    assert_eq!(r[1].score(), 0.75);
}

#[tokio::test]
async fn an_async_evaluation_is_polled_until_done() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(|r: &Request| String::from_utf8_lossy(&r.body).contains("\"is_async\":true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": true, "result": [{"evaluations": [
            {"name": "ground_truth_match", "output_type": "Pass/Fail", "eval_id": "abc-123"}]}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sdk/api/v1/new-eval/"))
        .and(query_param("eval_id", "abc-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": true, "result": {"eval_status": "processing", "result": "Evaluation is being processed."}})))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sdk/api/v1/new-eval/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": true, "result": {"eval_status": "completed", "result": {
            "eval_id": "abc-123", "name": "ground_truth_match", "reason": "same label", "output_type": "Pass/Fail", "value": "Passed"}}})))
        .mount(&server)
        .await;
    let e = FutureAgiEvaluator::new(
        client(&server, true),
        "ground_truth_match",
        "turing_flash",
        vec!["generated_value".into(), "expected_value".into()],
    );
    let r = e.evaluate(&[item("spam", "spam")]).await;
    assert_eq!(r[0].score(), 1.0, "{}", r[0].reason());
    assert_eq!(r[0].reason(), "same label");
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(polls, 3);
}
