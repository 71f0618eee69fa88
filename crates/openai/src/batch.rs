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

use crate::batch_wire::{BatchObject, decode_line, stage, text};
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
