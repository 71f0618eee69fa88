#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The provider against a real HTTP server on 127.0.0.1 (wiremock).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metaprompt_core::{
    ChatModel, ChatRequest, FinishReason, ModelError, ResponseSchema, schema_for,
};
use metaprompt_openai::{OpenAiChat, RetryPolicy, StructuredMode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sk-test-planted-key-0123456789";

fn ok_body(text: &str) -> Value {
    json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    })
}

fn client(server: &MockServer) -> OpenAiChat {
    OpenAiChat::builder("gpt-4o-mini")
        .base_url(format!("{}/v1", server.uri()))
        .api_key(KEY)
        .retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
        })
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Replies from a list, one per request, then repeats the last.
struct Sequence(Vec<ResponseTemplate>, AtomicUsize);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.1.fetch_add(1, Ordering::SeqCst);
        self.0[i.min(self.0.len() - 1)].clone()
    }
}

async fn serve(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Sequence(responses, AtomicUsize::new(0)))
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Rewrite {
    hypothesis: String,
    improved_prompt: String,
}

fn structured() -> ChatRequest {
    let mut r = ChatRequest::user("improve this");
    r.response_schema = Some(ResponseSchema {
        name: "rewrite".into(),
        schema: schema_for::<Rewrite>(),
    });
    r
}

#[tokio::test]
async fn plain_completion_sends_parameters_and_counts_cost() {
    let server = serve(vec![
        ResponseTemplate::new(200).set_body_json(ok_body("spam")),
    ])
    .await;
    let c = client(&server);
    let mut req = ChatRequest::user("classify: win money");
    req.temperature = Some(0.0);
    req.max_tokens = Some(5);
    req.seed = Some(7);
    req.stop = vec!["\n".into()];
    let r = c.complete(req).await.unwrap();
    assert_eq!(r.text, "spam");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (1000, 500));
    let b = &bodies(&server).await[0];
    assert_eq!(b["model"], "gpt-4o-mini");
    assert_eq!(
        b["messages"][0],
        json!({"role": "user", "content": "classify: win money"})
    );
    assert_eq!(
        (
            b["temperature"].clone(),
            b["max_tokens"].clone(),
            b["seed"].clone()
        ),
        (json!(0.0), json!(5), json!(7))
    );
    assert_eq!(b["stop"], json!(["\n"]));
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        req.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {KEY}")
    );
    // gpt-4o-mini list price: 0.15 in / 0.60 out per 1M tokens.
    let acc = c.accounting();
    assert_eq!(acc.calls, 1);
    assert!((acc.cost_usd - (1000.0 * 0.15 + 500.0 * 0.60) / 1e6).abs() < 1e-12);
}

#[tokio::test]
async fn structured_output_sends_strict_json_schema() {
    let server =
        serve(vec![ResponseTemplate::new(200).set_body_json(ok_body(
            r#"{"hypothesis":"h","improved_prompt":"p"}"#,
        ))])
        .await;
    client(&server).complete(structured()).await.unwrap();
    let b = &bodies(&server).await[0];
    assert_eq!(
        b["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {
                "name": "rewrite",
                "strict": true,
                "schema": {
                    "type": "object",
                    "title": "Rewrite",
                    "properties": {"hypothesis": {"type": "string"}, "improved_prompt": {"type": "string"}},
                    "required": ["hypothesis", "improved_prompt"],
                    "additionalProperties": false
                }
            }
        })
    );
}

#[tokio::test]
async fn refused_json_schema_falls_back_to_json_object_and_is_remembered() {
    let refusal = ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "response_format json_schema is not supported", "type": "invalid_request_error", "param": "response_format", "code": null}}));
    let fenced =
        ok_body("Sure:\n```json\n{\"hypothesis\": \"h\", \"improved_prompt\": \"p\"}\n```");
    let server = serve(vec![
        refusal,
        ResponseTemplate::new(200).set_body_json(fenced.clone()),
        ResponseTemplate::new(200).set_body_json(fenced),
    ])
    .await;
    let c = client(&server);
    let r = c.complete(structured()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&r.text).unwrap()["improved_prompt"],
        "p"
    );
    assert_eq!(c.structured_mode(), StructuredMode::JsonObject);
    c.complete(structured()).await.unwrap();
    let b = bodies(&server).await;
    assert_eq!(b.len(), 3);
    assert_eq!(b[1]["response_format"], json!({"type": "json_object"}));
    assert!(
        b[1]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON schema")
    );
    assert_eq!(
        b[2]["response_format"],
        json!({"type": "json_object"}),
        "the fallback is remembered"
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_then_succeeds() {
    let server = serve(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": null}})),
        ResponseTemplate::new(200).set_body_json(ok_body("ok")),
    ])
    .await;
    let start = Instant::now();
    let r = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(r.text, "ok");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured: {:?}",
        start.elapsed()
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = serve(vec![
        ResponseTemplate::new(500).set_body_string("oops"),
        ResponseTemplate::new(503).set_body_string("busy"),
        ResponseTemplate::new(200).set_body_json(ok_body("ok")),
    ])
    .await;
    assert_eq!(
        client(&server)
            .complete(ChatRequest::user("x"))
            .await
            .unwrap()
            .text,
        "ok"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn unauthorized_fails_at_once_without_the_key_in_the_error() {
    let server = serve(vec![ResponseTemplate::new(401).set_body_json(json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}))]).await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Auth(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(!err.to_string().contains(KEY), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
    assert!(!format!("{:?}", client(&server)).contains(KEY));
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let server = serve(vec![ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}))]).await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Quota(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn persistent_rate_limit_becomes_a_typed_error_after_all_attempts() {
    let server = serve(vec![ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": null}}))]).await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelError::RateLimited { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn timeouts_are_retried_then_typed() {
    let server = serve(vec![
        ResponseTemplate::new(200)
            .set_body_json(ok_body("late"))
            .set_delay(Duration::from_secs(3)),
    ])
    .await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Timeout(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn tolerant_parsing_of_extra_and_missing_fields() {
    let odd = json!({
        "choices": [{"message": {"content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "two"}], "reasoning": "x"}, "finish_reason": "", "logprobs": {"weird": true}}],
        "system_fingerprint": "abc", "x_extra": [1, 2]
    });
    let server = serve(vec![ResponseTemplate::new(200).set_body_json(odd)]).await;
    let r = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(r.text, "part one two");
    assert_eq!(r.usage.total(), 0);
    assert_eq!(r.model, "gpt-4o-mini");
    assert_eq!(r.finish_reason, FinishReason::Other(String::new()));
}

#[tokio::test]
async fn malformed_bodies_are_retried_then_typed_errors() {
    let server = serve(vec![
        ResponseTemplate::new(200).set_body_string("{\"choices\": [{\"mess"),
        ResponseTemplate::new(200).set_body_json(ok_body("ok")),
    ])
    .await;
    assert_eq!(
        client(&server)
            .complete(ChatRequest::user("x"))
            .await
            .unwrap()
            .text,
        "ok"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let server = serve(vec![
        ResponseTemplate::new(200).set_body_string("{\"choices\": [{\"mess"),
    ])
    .await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelError::MalformedResponse(ref m) if m.contains("{\"choices\": [{\"mess")),
        "{err:?}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        3,
        "all attempts used"
    );
    let server = serve(vec![
        ResponseTemplate::new(200).set_body_json(json!({"choices": []})),
    ])
    .await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::MalformedResponse(_)), "{err:?}");
}

/// Counts requests in flight at the server.
struct InFlight {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Respond for InFlight {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        // wiremock calls `respond` when a request arrives and holds the reply for the delay;
        // arrivals are counted here and released by a timer after the same delay.
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let now = self.now.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(95));
            now.fetch_sub(1, Ordering::SeqCst);
        });
        ResponseTemplate::new(200)
            .set_body_json(ok_body("ok"))
            .set_delay(Duration::from_millis(100))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_is_shared_by_clones() {
    let server = MockServer::start().await;
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    Mock::given(method("POST"))
        .respond_with(InFlight {
            now: now.clone(),
            max: max.clone(),
        })
        .mount(&server)
        .await;
    let c = OpenAiChat::builder("m")
        .base_url(format!("{}/v1", server.uri()))
        .api_key("k")
        .max_concurrency(5)
        .build()
        .unwrap();
    let calls = (0..50).map(|i| {
        let c = c.clone();
        tokio::spawn(async move { c.complete(ChatRequest::user(format!("q{i}"))).await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(max.load(Ordering::SeqCst), 5);
    assert_eq!(c.accounting().calls, 50);
}
