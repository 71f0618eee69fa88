#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Anthropic provider against a local server speaking the Messages API on 127.0.0.1.

use std::time::{Duration, Instant};

use metaprompt_anthropic::{AnthropicChat, RetryPolicy, StructuredMode};
use metaprompt_core::{
    ChatModel, ChatRequest, Message, ModelError, Price, ResponseSchema, schema_for,
};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk-ant-planted-test-key-0042";

fn message(text: &str) -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 200}})
}

fn error(status: u16, kind: &str, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"type": "error", "error": {"type": kind, "message": msg}, "request_id": "req_1"}),
    )
}

fn client(server: &MockServer) -> AnthropicChat {
    AnthropicChat::builder("claude-test")
        .base_url(server.uri())
        .api_key(KEY)
        .retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
        })
        .price(Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            per_call: 0.0,
        })
        .build()
        .unwrap()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Reply {
    answer: String,
}

fn structured() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system("You rewrite prompts."),
            Message::user("Go."),
        ],
        max_tokens: Some(300),
        response_schema: Some(ResponseSchema {
            name: "reply".into(),
            schema: schema_for::<Reply>(),
        }),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn plain_text_with_the_headers_the_api_requires() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message("hello")))
        .expect(1)
        .mount(&server)
        .await;
    let m = client(&server);
    let mut req = ChatRequest {
        messages: vec![Message::system("Be brief."), Message::user("hi")],
        temperature: Some(0.0),
        stop: vec!["END".into()],
        ..ChatRequest::default()
    };
    req.max_tokens = None;
    let r = m.complete(req).await.unwrap();
    assert_eq!(r.text, "hello");
    let sent = body(&server.received_requests().await.unwrap()[0]);
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(sent["max_tokens"], 1024, "the API requires max_tokens");
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["temperature"], 0.0);
    // Usage and cost: 1,000 in at $3/M, 200 out at $15/M.
    assert_eq!(r.usage.input_tokens, 1000);
    let cost = m.price().unwrap().call_cost(r.usage);
    assert!((cost - 0.006).abs() < 1e-12, "{cost}");
}

#[tokio::test]
async fn json_schema_mode_is_asked_for_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message("{\"answer\": \"yes\"}")))
        .mount(&server)
        .await;
    let m = client(&server);
    let r = m.complete(structured()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&r.text).unwrap()["answer"],
        "yes"
    );
    let sent = body(&server.received_requests().await.unwrap()[0]);
    assert_eq!(sent["output_config"]["format"]["type"], "json_schema");
    assert_eq!(m.structured_mode(), StructuredMode::JsonSchema);
}

#[tokio::test]
async fn a_refused_schema_mode_falls_back_to_a_forced_tool_and_is_remembered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(|r: &Request| body(r).get("output_config").is_some())
        .respond_with(error(
            400,
            "invalid_request_error",
            "output_config: Extra inputs are not permitted",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(|r: &Request| body(r).get("tools").is_some())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "emit", "input": {"answer": "tool"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 6}})))
        .mount(&server)
        .await;
    let m = client(&server);
    let r = m.complete(structured()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&r.text).unwrap()["answer"],
        "tool"
    );
    assert_eq!(m.structured_mode(), StructuredMode::Tool);
    m.complete(structured()).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 3, "the refused mode is not asked for again");
    assert_eq!(
        body(&sent[2])["tool_choice"],
        json!({"type": "tool", "name": "emit"})
    );
}

#[tokio::test]
async fn a_refused_temperature_is_dropped_once_and_for_all() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(|r: &Request| body(r).get("temperature").is_some())
        .respond_with(error(
            400,
            "invalid_request_error",
            "`temperature` is deprecated for this model.",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message("ok")))
        .mount(&server)
        .await;
    let m = client(&server);
    let req = ChatRequest {
        temperature: Some(0.7),
        ..ChatRequest::user("x")
    };
    assert_eq!(m.complete(req.clone()).await.unwrap().text, "ok");
    assert!(m.temperature_refused());
    m.complete(req).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 3, "one refusal, then no temperature");
    assert!(body(&sent[2]).get("temperature").is_none());
}

#[tokio::test]
async fn rate_limits_honour_retry_after_and_overload_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error(429, "rate_limit_error", "slow down").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(error(529, "overloaded_error", "Overloaded"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message("through")))
        .mount(&server)
        .await;
    let start = Instant::now();
    let r = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(r.text, "through");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retry-after was not honoured"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_never_show_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error(
            401,
            "authentication_error",
            &format!("invalid x-api-key {KEY}"),
        ))
        .mount(&server)
        .await;
    let err = client(&server)
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Auth(_)), "{err}");
    assert!(!err.to_string().contains(KEY), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_label_set_comes_back_as_the_bare_label() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message("{\"answer\": \"spam\"}")))
        .mount(&server)
        .await;
    let req = ChatRequest {
        choices: vec!["spam".into(), "ham".into()],
        ..ChatRequest::user("WIN")
    };
    let r = client(&server).complete(req).await.unwrap();
    assert_eq!(r.text, "spam");
    let sent = body(&server.received_requests().await.unwrap()[0]);
    assert_eq!(
        sent["output_config"]["format"]["schema"]["properties"]["answer"]["enum"],
        json!(["spam", "ham"])
    );
}
