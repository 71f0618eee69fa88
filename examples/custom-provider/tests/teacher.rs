#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The provider against a local mock, then as the teacher of a short optimization.

use std::sync::Arc;

use messages_provider::MessagesChat;
use metaprompt::core::testing::ScriptedModel;
use metaprompt::core::{ChatModel, ChatRequest, Message, ModelError, Row};
use metaprompt::data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn reply(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 5}
    }))
}

#[tokio::test]
async fn speaks_the_messages_wire_format() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "k-123"))
        .respond_with(reply("hello"))
        .mount(&server)
        .await;
    let m = MessagesChat::new(server.uri(), "k-123", "claude-test");
    let req = ChatRequest {
        messages: vec![Message::system("be brief"), Message::user("hi")],
        max_tokens: Some(10),
        ..ChatRequest::default()
    };
    let r = m.complete(req).await.unwrap();
    assert_eq!(r.text, "hello");
    assert_eq!(r.usage.input_tokens, 12);
    let body: serde_json::Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(body["system"], "be brief");
    assert_eq!(body["messages"][0]["content"][0]["text"], "hi");
    assert_eq!(body["max_tokens"], 10);
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(401).set_body_json(json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}))).mount(&server).await;
    let err = MessagesChat::new(server.uri(), "bad", "m")
        .complete(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Auth(_)));
}

#[tokio::test]
async fn teaches_a_short_optimization() {
    let server = MockServer::start().await;
    let rewrite = json!({"analysis": "spam words are not named", "hypothesis": "say what spam looks like", "improved_prompt": "Messages about prizes are spam.\n{text}"}).to_string();
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(reply(&rewrite))
        .mount(&server)
        .await;
    let teacher: Arc<dyn ChatModel> = Arc::new(MessagesChat::new(server.uri(), "k", "claude-test"));
    // A student that only spots spam when the prompt describes it.
    let student = Arc::new(
        ScriptedModel::new("student").with_handler(|r: &ChatRequest| {
            let p = &r.messages[0].content;
            Ok(
                if p.contains("prizes are spam") && p.contains("win a prize") {
                    "spam"
                } else {
                    "ham"
                }
                .to_string(),
            )
        }),
    );
    // Enough rows that the paired test on val can tell the rewrite is better.
    let rows: Vec<Row> = (0..60)
        .map(|i| {
            let (text, label) = if i % 3 == 0 {
                (format!("win a prize {i}"), "spam")
            } else {
                (format!("see you {i}"), "ham")
            };
            Row::from_json(i.to_string(), json!({"text": text, "label": label})).unwrap()
        })
        .collect();
    let ds = Dataset::new(rows).with_label_fields(["label"]).unwrap();
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &ds,
    )
    .unwrap();
    let mut req = OptimizeRequest::new(
        student,
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Dataset(
            ds,
            SplitConfig {
                seed: 1,
                ..SplitConfig::default()
            },
        ),
        vec![metaprompt::core::Prompt::parse("Spam or ham?\n{text}").expect("prompt")],
    );
    req.config.num_rounds = 1;
    req.config.eval_subset_size = 12;
    let res = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .build()
        .unwrap()
        .optimize(req)
        .await
        .unwrap();
    assert!(res.history[0].accepted, "{:?}", res.history[0]);
    assert_eq!(res.final_score, 1.0);
    assert!(
        res.best_prompt
            .text()
            .starts_with("Messages about prizes are spam.")
    );
}
