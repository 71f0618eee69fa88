//! The Anthropic Messages route and FutureAGI's eval routes, for runs that use those backends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answers::{content, judge_answer, student_answer, teacher_answer};
use crate::{Shared, lock};

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"})),
    )
        .into_response()
}

/// `POST /v1/messages`: the teacher, a judge or a student, answered as the chat route does.
pub(crate) async fn anthropic(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    s.counter.fetch_add(1, Ordering::SeqCst);
    lock(&s.stats).requests += 1;
    if headers.get("x-api-key").is_none_or(|v| v.is_empty()) {
        return anthropic_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if headers.get("anthropic-version").is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid JSON body",
        );
    };
    if req["max_tokens"].as_u64().is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    let system = req["system"].as_str().unwrap_or("");
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let user = content(&messages, "user", true);
    let first_user = content(&messages, "user", false);
    let text = if system.starts_with("You improve prompts") {
        lock(&s.stats).teacher += 1;
        teacher_answer(first_user, system)
    } else if system.starts_with("You are a strict, fair evaluator") {
        lock(&s.stats).judge += 1;
        judge_answer(user)
    } else {
        lock(&s.stats).student += 1;
        student_answer(&format!("{system}\n\n{user}")).to_string()
    };
    lock(&s.stats).anthropic += 1;
    let reply = json!({
        "id": "msg_mock", "type": "message", "role": "assistant",
        "model": req["model"].as_str().unwrap_or("claude-mock"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": body.len() as u64 / 4, "output_tokens": text.len() as u64 / 4 + 1}
    });
    (StatusCode::OK, Json(reply)).into_response()
}

fn futureagi_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": false, "message": message, "detail": message})),
    )
        .into_response()
}

fn keyed(headers: &HeaderMap) -> bool {
    ["x-api-key", "x-secret-key"]
        .iter()
        .all(|h| headers.get(*h).is_some_and(|v| !v.is_empty()))
}

/// `POST /sdk/api/v1/new-eval/`: `ground_truth_match` passes when the generated value names the
/// expected one; `summary_quality` scores 1 when the output is shorter than the input.
pub(crate) async fn futureagi_eval(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    s.counter.fetch_add(1, Ordering::SeqCst);
    lock(&s.stats).requests += 1;
    if !keyed(&headers) {
        return futureagi_error(StatusCode::UNAUTHORIZED, "Invalid API key or secret key");
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return futureagi_error(StatusCode::BAD_REQUEST, "invalid JSON body");
    };
    let inputs = &req["inputs"];
    let text = |k: &str| inputs[k].as_str().unwrap_or("").trim().to_lowercase();
    let (output, reason) = match req["eval_name"].as_str().unwrap_or("") {
        "ground_truth_match" => {
            if inputs.as_object().is_some_and(|o| {
                o.keys()
                    .any(|k| k != "generated_value" && k != "expected_value")
            }) {
                return futureagi_error(
                    StatusCode::BAD_REQUEST,
                    "Unexpected keys provided. Accepted keys are: generated_value, expected_value",
                );
            }
            let pass = !text("expected_value").is_empty()
                && text("generated_value").contains(&text("expected_value"));
            (
                json!(if pass { "Passed" } else { "Failed" }),
                if pass {
                    "the values match"
                } else {
                    "the values differ"
                },
            )
        }
        "summary_quality" => {
            let good = text("output").len() < text("input").len();
            (
                json!(if good { 1.0 } else { 0.0 }),
                "length of the summary against its source",
            )
        }
        other => {
            return futureagi_error(
                StatusCode::BAD_REQUEST,
                &format!("Unknown eval template: {other}"),
            );
        }
    };
    lock(&s.stats).futureagi += 1;
    (
        StatusCode::OK,
        Json(json!({"status": true, "result": [{"evaluations": [{
        "name": req["eval_name"], "reason": reason, "output": output,
        "output_type": "Pass/Fail", "runtime": 1, "eval_id": "mock-eval"}]}]})),
    )
        .into_response()
}

/// `GET /sdk/api/v1/get-evals/`: the templates the mock knows.
pub(crate) async fn futureagi_catalogue(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    lock(&s.stats).requests += 1;
    if !keyed(&headers) {
        return futureagi_error(StatusCode::UNAUTHORIZED, "Invalid API key or secret key");
    }
    lock(&s.stats).futureagi_catalogue += 1;
    (StatusCode::OK, Json(json!({"status": true, "result": [
        {"name": "ground_truth_match", "config": {"required_keys": ["generated_value", "expected_value"], "output": "Pass/Fail"}},
        {"name": "summary_quality", "config": {"required_keys": ["input", "output"], "output": "score"}}
    ]}))).into_response()
}
