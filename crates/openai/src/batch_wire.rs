//! The Batch API's objects as OpenAI, Azure and vLLM write them, read leniently: a batch's
//! status and counts, and one line of its output or error file.

use metaprompt_core::{BatchLine, BatchState};
use serde_json::Value;

/// A batch as `GET /batches/{id}` returns it, read leniently.
#[derive(Debug, Default)]
pub(crate) struct BatchObject {
    pub(crate) state: Option<BatchState>,
    pub(crate) raw_status: String,
    pub(crate) output_file_id: Option<String>,
    pub(crate) error_file_id: Option<String>,
    pub(crate) total: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) message: Option<String>,
}

fn count(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

pub(crate) fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl BatchObject {
    pub(crate) fn from(v: &Value) -> BatchObject {
        let raw_status = v["status"].as_str().unwrap_or("").to_string();
        let counts = &v["request_counts"];
        let message = v["errors"]["data"]
            .as_array()
            .and_then(|d| d.first())
            .map(|e| {
                let line = e["line"]
                    .as_u64()
                    .map_or(String::new(), |l| format!(" (line {l})"));
                format!(
                    "{}{line}: {}",
                    e["code"].as_str().unwrap_or("error"),
                    e["message"].as_str().unwrap_or("")
                )
            });
        BatchObject {
            state: BatchState::parse(&raw_status),
            raw_status,
            output_file_id: text(&v["output_file_id"]),
            error_file_id: text(&v["error_file_id"]),
            total: count(&counts["total"]),
            completed: count(&counts["completed"]),
            failed: count(&counts["failed"]),
            message,
        }
    }
}

/// How far along a state is, for reporting the slowest part of a split batch.
pub(crate) fn stage(s: BatchState) -> u8 {
    match s {
        BatchState::Validating => 0,
        BatchState::InProgress => 1,
        BatchState::Cancelling => 2,
        BatchState::Finalizing => 3,
        _ => 4,
    }
}

/// Reads one output or error line of OpenAI, Azure or vLLM: `response.body` when the status
/// is 2xx, else the reason (`error` as a string or an object, or the body's error message).
pub fn decode_line(line: &str) -> Option<BatchLine> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let custom_id = v["custom_id"].as_str()?.to_string();
    let status = v["response"]["status_code"].as_u64().unwrap_or(0);
    let body = &v["response"]["body"];
    let outcome = if (200..300).contains(&status) && body.is_object() {
        Ok(body.clone())
    } else {
        let why = match &v["error"] {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                let inner = o.get("error").unwrap_or(&v["error"]);
                let code = inner["code"].as_str().unwrap_or("");
                let msg = inner["message"].as_str().unwrap_or("");
                format!("{code} {msg}").trim().to_string()
            }
            _ => body["error"]["message"]
                .as_str()
                .map_or_else(|| format!("status {status}"), |m| format!("{status}: {m}")),
        };
        Err(if why.is_empty() {
            format!("status {status}")
        } else {
            why
        })
    };
    Some(BatchLine { custom_id, outcome })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_lines_of_every_engine_are_read() {
        let ok = r#"{"id":"batch_req_1","custom_id":"k1","response":{"status_code":200,"request_id":"r","body":{"choices":[{"message":{"content":"spam"}}]}},"error":null}"#;
        let l = decode_line(ok).unwrap();
        assert_eq!(l.custom_id, "k1");
        assert!(l.outcome.unwrap()["choices"].is_array());
        // OpenAI: a per-request HTTP error.
        let e400 = r#"{"custom_id":"k2","response":{"status_code":400,"body":{"error":{"message":"bad max_tokens"}}},"error":null}"#;
        assert_eq!(
            decode_line(e400).unwrap().outcome.unwrap_err(),
            "400: bad max_tokens"
        );
        // OpenAI: no response at all.
        let expired = r#"{"custom_id":"k3","response":null,"error":{"code":"batch_expired","message":"not run in time"}}"#;
        assert_eq!(
            decode_line(expired).unwrap().outcome.unwrap_err(),
            "batch_expired not run in time"
        );
        // vLLM: `error` is a plain string, or an ErrorResponse object.
        let vllm = r#"{"id":"vllm-1","custom_id":"k4","response":{"status_code":400,"request_id":"x","body":null},"error":"Request must not be sent in stream mode"}"#;
        assert_eq!(
            decode_line(vllm).unwrap().outcome.unwrap_err(),
            "Request must not be sent in stream mode"
        );
        let vllm2 = r#"{"custom_id":"k5","response":{"status_code":500,"body":null},"error":{"error":{"message":"engine dead","type":"x","code":500}}}"#;
        assert_eq!(
            decode_line(vllm2).unwrap().outcome.unwrap_err(),
            "engine dead"
        );
        assert!(decode_line("").is_none());
        assert!(decode_line("not json").is_none());
        assert!(decode_line(r#"{"no":"id"}"#).is_none());
    }

    #[test]
    fn azure_batch_objects_are_read() {
        let v = json!({"id": "b", "status": "Validating", "created_at": "2025-01-01T00:00:00Z", "request_counts": null, "output_file_id": null});
        let b = BatchObject::from(&v);
        assert_eq!(b.state, Some(BatchState::Validating));
        assert_eq!((b.total, b.completed, b.failed), (0, 0, 0));
        let v = json!({"status": "failed", "errors": {"object": "list", "data": [{"code": "invalid_json_line", "line": 3, "message": "not JSON"}]}});
        let b = BatchObject::from(&v);
        assert_eq!(
            b.message.as_deref(),
            Some("invalid_json_line (line 3): not JSON")
        );
    }
}
