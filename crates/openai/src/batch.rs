//! [`OpenAiBatch`]: the OpenAI and Azure OpenAI Batch APIs as a [`BatchExecutor`].
//!
//! Files go up with async-openai's multipart upload (streamed from disk); batches are created,
//! read and cancelled through its `*_byot` calls into lenient local types (Azure writes
//! `"status": "Validating"`, ISO timestamps and `null` counts; vLLM's error lines are strings
//! or objects); results are downloaded in chunks straight to a file, never held whole.
//!
//! Azure's Files and Batches live at the resource level (`{endpoint}/openai/v1/…`) and
//! authenticate with `api-key`; each line names the Global Batch deployment as its `model`.

use std::path::Path;

use async_openai::Client;
use async_openai::config::{Config, OpenAIConfig};
use async_openai::types::files::{CreateFileRequest, FileInput, FilePurpose};
use metaprompt_core::{
    BatchExecutor, BatchFile, BatchLine, BatchProgress, BatchState, BatchTicket, ChatModel,
    ChatRequest, ChatResponse, ModelError, Price, async_trait,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::builder::OpenAiBuilder;
use crate::chat::OpenAiChat;
use crate::retry::RetryService;
use crate::settings::ConfigError;

/// The OpenAI (or Azure OpenAI) Batch API for one model's chat completions.
pub struct OpenAiBatch {
    chat: OpenAiChat,
    client: Client<OpenAIConfig>,
    http: reqwest::Client,
    azure: bool,
    /// `endpoint` of a created batch.
    endpoint: &'static str,
    /// `model` of every line (Azure: the batch deployment).
    line_model: String,
    price: Option<Price>,
}

impl std::fmt::Debug for OpenAiBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBatch")
            .field("model", &self.chat.id())
            .field("azure", &self.azure)
            .finish_non_exhaustive()
    }
}

impl OpenAiBuilder {
    /// Builds the batch executor of this client's model (the live client is built too: a
    /// batch line's body is exactly what the live path would send). With Azure, lines name
    /// `batch_deployment` as their model (default: the live deployment).
    pub fn build_batch(self, batch_deployment: Option<String>) -> Result<OpenAiBatch, ConfigError> {
        let chat = self.clone().build()?;
        let base = self.base();
        let key = self.api_key.clone().unwrap_or_default();
        let azure = self.azure.clone();
        let (api_base, line_model, endpoint) = match &azure {
            Some(az) => (
                format!("{}/openai/v1", base.trim_end_matches('/')),
                batch_deployment.unwrap_or_else(|| az.deployment.clone()),
                "/chat/completions",
            ),
            None => (
                base.trim_end_matches('/').to_string(),
                self.model.clone(),
                "/v1/chat/completions",
            ),
        };
        let mut cfg = OpenAIConfig::new()
            .with_api_base(api_base)
            .with_api_key(key.clone());
        if azure.is_some() {
            cfg = cfg
                .with_header("api-key", key.as_str())
                .map_err(|e| ConfigError::BadHeader("api-key".into(), e.to_string()))?;
        } else {
            if let Some(o) = &self.organization {
                cfg = cfg.with_org_id(o.clone());
            }
            if let Some(p) = &self.project {
                cfg = cfg.with_project_id(p.clone());
            }
        }
        let http = self.http()?;
        let client = Client::with_config(cfg).with_http_service(RetryService {
            client: http.clone(),
            policy: self.retry,
            strip_authorization: azure.is_some(),
        });
        Ok(OpenAiBatch {
            price: chat.price().map(|p| p.halved()),
            chat,
            client,
            http,
            azure: azure.is_some(),
            endpoint,
            line_model,
        })
    }
}

/// A batch as `GET /batches/{id}` returns it, read leniently.
#[derive(Debug, Default)]
struct BatchObject {
    state: Option<BatchState>,
    raw_status: String,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    total: u64,
    completed: u64,
    failed: u64,
    message: Option<String>,
}

fn count(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl BatchObject {
    fn from(v: &Value) -> BatchObject {
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
fn stage(s: BatchState) -> u8 {
    match s {
        BatchState::Validating => 0,
        BatchState::InProgress => 1,
        BatchState::Cancelling => 2,
        BatchState::Finalizing => 3,
        _ => 4,
    }
}

impl OpenAiBatch {
    /// The live client whose requests the lines carry.
    pub fn chat(&self) -> &OpenAiChat {
        &self.chat
    }

    async fn retrieve(&self, id: &str) -> Result<BatchObject, ModelError> {
        let v: Value = self
            .client
            .batches()
            .retrieve_byot(id)
            .await
            .map_err(|e| self.chat.map_error(e))?;
        Ok(BatchObject::from(&v))
    }

    /// Streams `GET /files/{id}/content` onto the end of `out`.
    async fn fetch(&self, file_id: &str, out: &mut tokio::fs::File) -> Result<(), ModelError> {
        let cfg = self.client.config();
        let mut headers = cfg.headers();
        if self.azure {
            headers.remove(reqwest::header::AUTHORIZATION);
        }
        let url = cfg.url(&format!("/files/{file_id}/content"));
        let mut resp = self
            .http
            .get(url)
            .headers(headers)
            .query(&cfg.query())
            .send()
            .await
            .map_err(|e| ModelError::Server(format!("cannot download file {file_id}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(self.chat.status_error(status.as_u16(), &body));
        }
        let mut last = b'\n';
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ModelError::Server(format!("download of file {file_id} broke off: {e}")))?
        {
            if let Some(b) = chunk.last() {
                last = *b;
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| ModelError::Other(format!("cannot write the results: {e}")))?;
        }
        if last != b'\n' {
            out.write_all(b"\n")
                .await
                .map_err(|e| ModelError::Other(format!("cannot write the results: {e}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl BatchExecutor for OpenAiBatch {
    fn model_id(&self) -> &str {
        self.chat.id()
    }

    fn price(&self) -> Option<Price> {
        self.price
    }

    fn encode(&self, custom_id: &str, request: &ChatRequest) -> Result<String, ModelError> {
        let mut body = self.chat.request_body(request);
        body["model"] = Value::String(self.line_model.clone());
        Ok(json!({
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": body,
        })
        .to_string())
    }

    fn decode(&self, line: &str) -> Option<BatchLine> {
        decode_line(line)
    }

    fn answer(&self, request: &ChatRequest, body: &Value) -> Result<ChatResponse, ModelError> {
        self.chat.response_for(request, body)
    }

    async fn submit(&self, files: &[BatchFile]) -> Result<BatchTicket, ModelError> {
        let mut ticket = BatchTicket {
            model: self.chat.id().to_string(),
            batch_ids: Vec::new(),
            input_file_ids: Vec::new(),
            lines: files.iter().map(|f| f.lines).sum(),
        };
        for f in files {
            let upload = CreateFileRequest {
                file: FileInput::from(f.path.as_path()),
                purpose: FilePurpose::Batch,
                expires_after: None,
            };
            let file: Value = self
                .client
                .files()
                .create_byot(upload)
                .await
                .map_err(|e| self.chat.map_error(e))?;
            let file_id = text(&file["id"]).ok_or_else(|| {
                ModelError::MalformedResponse(format!("the upload returned no file id: {file}"))
            })?;
            ticket.input_file_ids.push(file_id.clone());
            let batch: Value = self
                .client
                .batches()
                .create_byot(json!({
                    "input_file_id": file_id,
                    "endpoint": self.endpoint,
                    "completion_window": "24h",
                    "metadata": {"created_by": "metaprompt"},
                }))
                .await
                .map_err(|e| self.chat.map_error(e))?;
            let id = text(&batch["id"]).ok_or_else(|| {
                ModelError::MalformedResponse(format!(
                    "the batch was created without an id: {batch}"
                ))
            })?;
            ticket.batch_ids.push(id);
        }
        Ok(ticket)
    }

    async fn progress(&self, ticket: &BatchTicket) -> Result<BatchProgress, ModelError> {
        let mut parts = Vec::with_capacity(ticket.batch_ids.len());
        for id in &ticket.batch_ids {
            parts.push(self.retrieve(id).await?);
        }
        let mut p = BatchProgress {
            state: BatchState::Completed,
            total: 0,
            completed: 0,
            failed: 0,
            message: None,
        };
        let mut all_failed = !parts.is_empty();
        let mut slowest: Option<BatchState> = None;
        for part in &parts {
            let state = part.state.ok_or_else(|| {
                ModelError::MalformedResponse(format!("unknown batch status `{}`", part.raw_status))
            })?;
            p.total += part.total;
            p.completed += part.completed;
            p.failed += part.failed;
            if p.message.is_none() {
                p.message = part.message.clone();
            }
            all_failed &= state == BatchState::Failed;
            if !state.is_terminal() {
                slowest = Some(match slowest {
                    Some(s) if stage(s) <= stage(state) => s,
                    _ => state,
                });
            } else if state != BatchState::Completed && state != BatchState::Failed {
                // An expired or cancelled part: the whole has partial results.
                p.state = state;
            }
        }
        if p.total == 0 {
            p.total = ticket.lines;
        }
        if let Some(s) = slowest {
            p.state = s;
        } else if all_failed {
            p.state = BatchState::Failed;
        }
        Ok(p)
    }

    async fn download(&self, ticket: &BatchTicket, out: &Path) -> Result<(), ModelError> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .await
            .map_err(|e| ModelError::Other(format!("cannot write {}: {e}", out.display())))?;
        for id in &ticket.batch_ids {
            let b = self.retrieve(id).await?;
            for f in [b.output_file_id, b.error_file_id].into_iter().flatten() {
                self.fetch(&f, &mut file).await?;
            }
        }
        file.flush()
            .await
            .map_err(|e| ModelError::Other(format!("cannot write {}: {e}", out.display())))
    }

    async fn cancel(&self, ticket: &BatchTicket) -> Result<(), ModelError> {
        for id in &ticket.batch_ids {
            let _: Value = self
                .client
                .batches()
                .cancel_byot(id.as_str())
                .await
                .map_err(|e| self.chat.map_error(e))?;
        }
        Ok(())
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
