#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Batch executor against wiremock speaking OpenAI's and Azure's wire formats: the upload
//! is multipart with `purpose=batch`, the batch names the right endpoint, Azure gets its
//! resource-level paths and `api-key` (no bearer token), statuses are read in either spelling
//! and results are downloaded and read line by line.

use metaprompt_core::{BatchExecutor, BatchFileWriter, BatchLimits, BatchState, ChatRequest};
use metaprompt_openai::{AzureSettings, OpenAiChat};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "azure-key-planted-8841";

fn line_file(ex: &dyn BatchExecutor, dir: &std::path::Path) -> Vec<metaprompt_core::BatchFile> {
    let mut w = BatchFileWriter::new(dir, "in", BatchLimits::default());
    for (id, text) in [("k1", "first"), ("k2", "second")] {
        w.push(&ex.encode(id, &ChatRequest::user(text)).unwrap())
            .unwrap();
    }
    w.finish().unwrap()
}

#[tokio::test]
async fn azure_batches_use_resource_paths_the_api_key_and_the_batch_deployment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/files"))
        .and(header("api-key", KEY))
        .respond_with(|req: &Request| {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            assert!(req.headers.get("authorization").is_none(), "no bearer token for Azure");
            assert!(body.contains("name=\"purpose\""), "{body}");
            assert!(body.contains("batch"), "{body}");
            // Each line names the Global Batch deployment.
            assert!(body.contains("\"model\":\"gpt4o-batch\""), "{body}");
            assert!(body.contains("\"url\":\"/v1/chat/completions\""), "{body}");
            ResponseTemplate::new(200).set_body_json(json!({"id": "file-in", "object": "file", "bytes": 10, "created_at": "2025-01-01T00:00:00Z", "filename": "in-1.jsonl", "purpose": "batch", "status": "Processed"}))
        })
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/batches"))
        .and(header("api-key", KEY))
        .respond_with(|req: &Request| {
            let v: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(v["endpoint"], "/chat/completions");
            assert_eq!(v["completion_window"], "24h");
            assert_eq!(v["input_file_id"], "file-in");
            ResponseTemplate::new(200).set_body_json(json!({"id": "batch_az", "object": "batch", "status": "Validating", "created_at": "2025-01-01T00:00:00Z", "request_counts": null}))
        })
        .expect(1)
        .mount(&server)
        .await;
    // Azure's capitalised status and ISO timestamps.
    Mock::given(method("GET"))
        .and(path("/openai/v1/batches/batch_az"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "batch_az", "status": "Completed", "created_at": "2025-01-01T00:00:00Z", "output_file_id": "file-out", "error_file_id": "file-err", "request_counts": {"total": 2, "completed": 1, "failed": 1}})))
        .mount(&server)
        .await;
    let out = r#"{"id":"r1","custom_id":"k1","response":{"status_code":200,"request_id":"q","body":{"id":"c","object":"chat.completion","created":0,"model":"gpt4o-batch","choices":[{"index":0,"message":{"role":"assistant","content":"answer one"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}},"error":null}"#;
    Mock::given(method("GET"))
        .and(path("/openai/v1/files/file-out/content"))
        .and(header("api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_string(out))
        .mount(&server)
        .await;
    let err = r#"{"id":"r2","custom_id":"k2","response":{"status_code":500,"body":{"error":{"message":"model failed"}}},"error":null}"#;
    Mock::given(method("GET"))
        .and(path("/openai/v1/files/file-err/content"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!("{err}\n")))
        .mount(&server)
        .await;

    let ex = OpenAiChat::builder("gpt-4o")
        .base_url(server.uri())
        .api_key(KEY)
        .azure(AzureSettings {
            deployment: "gpt4o-live".into(),
            api_version: "2024-10-21".into(),
        })
        .build_batch(Some("gpt4o-batch".into()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = line_file(&ex, dir.path());
    let ticket = ex.submit(&files).await.unwrap();
    assert_eq!(ticket.batch_ids, ["batch_az"]);
    assert_eq!(ticket.input_file_ids, ["file-in"]);
    assert_eq!(ticket.lines, 2);
    let p = ex.progress(&ticket).await.unwrap();
    assert_eq!(p.state, BatchState::Completed);
    assert_eq!((p.total, p.completed, p.failed), (2, 1, 1));
    let results = dir.path().join("out.jsonl");
    ex.download(&ticket, &results).await.unwrap();
    let text = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<_> = text.lines().filter_map(|l| ex.decode(l)).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let ok = lines.iter().find(|l| l.custom_id == "k1").unwrap();
    let resp = ex
        .answer(&ChatRequest::user(""), ok.outcome.as_ref().unwrap())
        .unwrap();
    assert_eq!(resp.text, "answer one");
    assert_eq!(resp.usage.input_tokens, 5);
    let bad = lines.iter().find(|l| l.custom_id == "k2").unwrap();
    assert_eq!(bad.outcome.as_ref().unwrap_err(), "500: model failed");
    // Half the live price.
    let live = OpenAiChat::builder("gpt-4o").api_key("k").build().unwrap();
    let (b, l) = (
        ex.price().unwrap(),
        metaprompt_core::ChatModel::price(&live).unwrap(),
    );
    assert!((b.input_per_mtok * 2.0 - l.input_per_mtok).abs() < 1e-9);
}

#[tokio::test]
async fn openai_batches_send_the_bearer_key_and_cancel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .and(header("authorization", "Bearer sk-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "file-1", "object": "file", "bytes": 1, "created_at": 0, "filename": "x", "purpose": "batch"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batches"))
        .respond_with(|req: &Request| {
            let v: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(v["endpoint"], "/v1/chat/completions");
            ResponseTemplate::new(200).set_body_json(json!({"id": "batch_1", "object": "batch", "status": "validating", "created_at": 0}))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/batches/batch_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "batch_1", "status": "in_progress", "created_at": 0, "request_counts": {"total": 2, "completed": 1, "failed": 0}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batches/batch_1/cancel"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "batch_1", "status": "cancelling", "created_at": 0})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ex = OpenAiChat::builder("gpt-4o-mini")
        .base_url(format!("{}/v1", server.uri()))
        .api_key("sk-test")
        .build_batch(None)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = line_file(&ex, dir.path());
    let first = std::fs::read_to_string(&files[0].path).unwrap();
    let line: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(line["custom_id"], "k1");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["body"]["model"], "gpt-4o-mini");
    assert_eq!(line["body"]["messages"][0]["content"], "first");
    let ticket = ex.submit(&files).await.unwrap();
    let p = ex.progress(&ticket).await.unwrap();
    assert_eq!(p.state, BatchState::InProgress);
    assert_eq!(p.completed, 1);
    ex.cancel(&ticket).await.unwrap();
}
