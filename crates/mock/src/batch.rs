//! The Files and Batches API, as OpenAI serves it (and Azure at `/openai/v1/…`): uploads are
//! kept in memory; a batch moves `validating → in_progress → finalizing → completed`, one step
//! every `batch_step`; its lines are answered like live requests, written in shuffled order,
//! a few failed on purpose (`batch_fail_every`) into the error file; cancel is honoured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::chat::{Reply, completion};
use crate::{Shared, draw, lock};

/// Uploaded files and created batches.
#[derive(Default)]
pub(crate) struct Store {
    files: HashMap<String, Vec<u8>>,
    batches: HashMap<String, Value>,
    next: u64,
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"message": format!("no such {what}"), "type": "invalid_request_error", "param": null, "code": null}})),
    )
        .into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) async fn upload(State(s): State<Arc<Shared>>, mut form: Multipart) -> Response {
    let mut data = None;
    let mut purpose = String::new();
    let mut filename = String::from("upload.jsonl");
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("file") => {
                filename = field.file_name().unwrap_or("upload.jsonl").to_string();
                data = field.bytes().await.ok().map(|b| b.to_vec());
            }
            Some("purpose") => purpose = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    let Some(data) = data else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "no file in the upload", "type": "invalid_request_error", "param": "file", "code": null}}))).into_response();
    };
    let bytes = data.len();
    let id = {
        let mut st = lock(&s.batch);
        st.next += 1;
        let id = format!("file-{}", st.next);
        st.files.insert(id.clone(), data);
        id
    };
    lock(&s.stats).files_uploaded += 1;
    Json(json!({"id": id, "object": "file", "bytes": bytes, "created_at": now(), "filename": filename, "purpose": purpose, "status": "processed"})).into_response()
}

pub(crate) async fn content(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&s.batch).files.get(&id) {
        Some(b) => (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            b.clone(),
        )
            .into_response(),
        None => not_found("file"),
    }
}

pub(crate) async fn create(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> Response {
    let Some(input) = req["input_file_id"].as_str().map(str::to_string) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "input_file_id is required", "type": "invalid_request_error", "param": "input_file_id", "code": null}}))).into_response();
    };
    if !lock(&s.batch).files.contains_key(&input) {
        return not_found("file");
    }
    let id = {
        let mut st = lock(&s.batch);
        st.next += 1;
        format!("batch_{}", st.next)
    };
    let batch = json!({
        "id": id, "object": "batch", "endpoint": req["endpoint"], "input_file_id": input,
        "completion_window": req["completion_window"], "status": "validating",
        "created_at": now(), "output_file_id": null, "error_file_id": null,
        "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": req["metadata"],
    });
    lock(&s.batch).batches.insert(id.clone(), batch.clone());
    lock(&s.stats).batches_created += 1;
    tokio::spawn(run(s.clone(), id));
    Json(batch).into_response()
}

pub(crate) async fn retrieve(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&s.batch).batches.get(&id) {
        Some(b) => Json(b.clone()).into_response(),
        None => not_found("batch"),
    }
}

pub(crate) async fn cancel(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut st = lock(&s.batch);
    let Some(b) = st.batches.get_mut(&id) else {
        return not_found("batch");
    };
    if !matches!(
        b["status"].as_str(),
        Some("completed" | "failed" | "expired" | "cancelled")
    ) {
        b["status"] = "cancelling".into();
    }
    let out = b.clone();
    drop(st);
    lock(&s.stats).batches_cancelled += 1;
    Json(out).into_response()
}

fn set(s: &Shared, id: &str, f: impl FnOnce(&mut Value)) -> Option<String> {
    let mut st = lock(&s.batch);
    let b = st.batches.get_mut(id)?;
    f(b);
    b["status"].as_str().map(str::to_string)
}

fn cancelled(s: &Shared, id: &str) -> bool {
    lock(&s.batch)
        .batches
        .get(id)
        .and_then(|b| b["status"].as_str().map(str::to_string))
        == Some("cancelling".into())
}

/// Moves a batch through its states and answers its lines.
async fn run(s: Arc<Shared>, id: String) {
    let step = if s.config.batch_step.is_zero() {
        Duration::from_millis(300)
    } else {
        s.config.batch_step
    };
    tokio::time::sleep(step).await;
    let input = {
        let st = lock(&s.batch);
        let Some(file) = st
            .batches
            .get(&id)
            .and_then(|b| b["input_file_id"].as_str())
        else {
            return;
        };
        st.files.get(file).cloned().unwrap_or_default()
    };
    let text = String::from_utf8_lossy(&input).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let total = lines.len() as u64;
    if cancelled(&s, &id) {
        finish(&s, &id, Vec::new(), Vec::new(), total, "cancelled");
        return;
    }
    set(&s, &id, |b| {
        b["status"] = "in_progress".into();
        b["in_progress_at"] = now().into();
        b["request_counts"] = json!({"total": total, "completed": 0, "failed": 0});
    });
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let every = s.config.batch_fail_every;
    // Lines are answered in a few slices, one step apart, so a poll sees progress.
    let slices = 3usize;
    let per = lines.len().div_ceil(slices).max(1);
    for (k, chunk) in lines.chunks(per).enumerate() {
        for (j, line) in chunk.iter().enumerate() {
            let i = (k * per + j) as u64;
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let custom_id = v["custom_id"].as_str().unwrap_or("").to_string();
            if every > 0 && i % every == every - 1 {
                errors.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": {"status_code": 500, "request_id": format!("req_{i}"), "body": {"error": {"message": "the model failed on this line", "type": "server_error"}}}, "error": null}));
                continue;
            }
            let body = v["body"].to_string();
            let n = s.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match completion(&s, n, &body, Ok) {
                Ok(c) => {
                    let parsed: Value = serde_json::from_str(&c).unwrap_or(Value::Null);
                    out.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": {"status_code": 200, "request_id": format!("req_{i}"), "body": parsed}, "error": null}));
                }
                Err(Reply::Error(status, e)) => errors.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": {"status_code": status.as_u16(), "request_id": format!("req_{i}"), "body": e}, "error": null})),
                Err(_) => errors.push(json!({"id": format!("batch_req_{i}"), "custom_id": custom_id, "response": null, "error": {"code": "server_error", "message": "the model failed on this line"}})),
            }
        }
        lock(&s.stats).batch_lines += chunk.len() as u64;
        let (done, failed) = (out.len() as u64, errors.len() as u64);
        set(&s, &id, |b| {
            b["request_counts"] = json!({"total": total, "completed": done, "failed": failed});
        });
        tokio::time::sleep(step / slices as u32).await;
        if cancelled(&s, &id) {
            finish(&s, &id, out, errors, total, "cancelled");
            return;
        }
    }
    set(&s, &id, |b| {
        b["status"] = "finalizing".into();
        b["finalizing_at"] = now().into();
    });
    tokio::time::sleep(step).await;
    finish(&s, &id, out, errors, total, "completed");
}

/// Writes the output and error files (lines shuffled) and ends the batch.
fn finish(
    s: &Shared,
    id: &str,
    mut out: Vec<Value>,
    mut errors: Vec<Value>,
    total: u64,
    status: &str,
) {
    let seed = s.config.seed ^ 0x5EED;
    for list in [&mut out, &mut errors] {
        // Fisher–Yates with the mock's draws: order is not guaranteed, so it is not kept.
        for i in (1..list.len()).rev() {
            let j = (draw(seed, i as u64) * (i + 1) as f64) as usize;
            list.swap(i, j.min(i));
        }
    }
    let file = |lines: &[Value]| -> Vec<u8> {
        let mut b = Vec::new();
        for l in lines {
            b.extend_from_slice(l.to_string().as_bytes());
            b.push(b'\n');
        }
        b
    };
    let (done, failed) = (out.len() as u64, errors.len() as u64);
    let mut st = lock(&s.batch);
    st.next += 1;
    let out_id = (!out.is_empty()).then(|| format!("file-{}", st.next));
    st.next += 1;
    let err_id = (!errors.is_empty()).then(|| format!("file-{}", st.next));
    if let Some(o) = &out_id {
        st.files.insert(o.clone(), file(&out));
    }
    if let Some(e) = &err_id {
        st.files.insert(e.clone(), file(&errors));
    }
    if let Some(b) = st.batches.get_mut(id) {
        b["status"] = status.into();
        b[format!("{status}_at")] = now().into();
        b["output_file_id"] = out_id.map_or(Value::Null, Value::String);
        b["error_file_id"] = err_id.map_or(Value::Null, Value::String);
        b["request_counts"] = json!({"total": total, "completed": done, "failed": failed});
    }
}

/// What a fake `vllm run-batch` writes for an input file: one output line per input line, in
/// input order (as vLLM's streaming writer keeps it), every `fail_every`-th line an error with
/// a plain-string `error` (vLLM's form), the others answered by the mock's student.
pub fn run_batch(input: &str, fail_every: u64) -> String {
    let shared = Shared::new(crate::MockConfig::default());
    let mut out = String::new();
    for (i, line) in input.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let custom_id = v["custom_id"].clone();
        let i = i as u64;
        let reply = if fail_every > 0 && i % fail_every == fail_every - 1 {
            json!({"id": format!("vllm-{i}"), "custom_id": custom_id, "response": {"status_code": 400, "request_id": format!("vllm-batch-{i}"), "body": null}, "error": "the engine refused this request"})
        } else {
            match completion(&shared, i, &v["body"].to_string(), Ok) {
                Ok(c) => {
                    json!({"id": format!("vllm-{i}"), "custom_id": custom_id, "response": {"status_code": 200, "request_id": format!("vllm-batch-{i}"), "body": serde_json::from_str::<Value>(&c).unwrap_or(Value::Null)}, "error": null})
                }
                Err(_) => {
                    json!({"id": format!("vllm-{i}"), "custom_id": custom_id, "response": {"status_code": 500, "request_id": format!("vllm-batch-{i}"), "body": null}, "error": {"error": {"message": "engine error", "type": "server_error", "code": 500}}})
                }
            }
        };
        out.push_str(&reply.to_string());
        out.push('\n');
    }
    out
}
