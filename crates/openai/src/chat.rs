//! `OpenAiChat`: any OpenAI-compatible chat-completions endpoint as a `ChatModel`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_openai::error::OpenAIError;
use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, Message, ModelError, Price, async_trait, extract_json,
};
use serde_json::Value;

use crate::settings::{Accounting, Backend, Shared, StructuredMode};
use crate::wire::{body, choice_of, mentions_format, parse_response, snippet, with_choices};

/// An OpenAI-compatible chat model. Clones share one connection pool, one concurrency limit,
/// one rate limiter and one set of counters, so every evaluator and the teacher on the same
/// endpoint stay under one budget.
#[derive(Clone)]
pub struct OpenAiChat {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("OpenAiChat")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl OpenAiChat {
    /// Calls, tokens and cost so far (all clones).
    pub fn accounting(&self) -> Accounting {
        *self
            .shared
            .accounting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The structured-output mode this endpoint currently gets.
    pub fn structured_mode(&self) -> StructuredMode {
        match self.shared.mode.load(Ordering::Relaxed) {
            0 => StructuredMode::JsonSchema,
            1 => StructuredMode::JsonObject,
            _ => StructuredMode::Text,
        }
    }

    async fn send(&self, body: &Value) -> Result<Value, OpenAIError> {
        match &self.shared.backend {
            Backend::OpenAi(c) => c.chat().create_byot(body).await,
            Backend::Azure(c) => c.chat().create_byot(body).await,
        }
    }

    fn scrub(&self, text: String) -> String {
        self.shared.secrets.iter().fold(text, |t, s| {
            if t.contains(s.as_str()) {
                t.replace(s.as_str(), "[REDACTED]")
            } else {
                t
            }
        })
    }

    /// What an HTTP error status means, from the server's message, code and type.
    fn classify(&self, status: u16, msg: String, code: &str, kind: &str) -> ModelError {
        match status {
            401 | 403 => ModelError::Auth(format!(
                "{status}: {msg}; check the API key and its permissions"
            )),
            429 if code == "insufficient_quota"
                || kind == "insufficient_quota"
                || msg.contains("insufficient_quota") =>
            {
                ModelError::Quota(format!(
                    "{msg}; add credit or raise the quota of this account"
                ))
            }
            429 => ModelError::RateLimited {
                attempts: self.shared.max_attempts,
                message: msg,
            },
            404 => ModelError::BadRequest(format!("404 (wrong model name or base URL?): {msg}")),
            s if s >= 500 => ModelError::Server(format!(
                "{status} after {} attempts: {}",
                self.shared.max_attempts,
                snippet(&msg)
            )),
            _ => ModelError::BadRequest(format!("{status}: {msg}")),
        }
    }

    /// An error response read by hand (a file download) as a model error.
    pub(crate) fn status_error(&self, status: u16, body: &str) -> ModelError {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let e = &v["error"];
        let msg = e["message"]
            .as_str()
            .map_or_else(|| snippet(body), str::to_string);
        let err = self.classify(
            status,
            msg,
            e["code"].as_str().unwrap_or(""),
            e["type"].as_str().unwrap_or(""),
        );
        self.scrubbed(err)
    }

    pub(crate) fn map_error(&self, e: OpenAIError) -> ModelError {
        let err = match e {
            OpenAIError::ApiError(api) => {
                let status = api.status_code.as_u16();
                let code = api.api_error.code.clone().unwrap_or_default();
                let kind = api.api_error.r#type.clone().unwrap_or_default();
                self.classify(status, api.api_error.message.clone(), &code, &kind)
            }
            OpenAIError::Reqwest(e) if e.is_timeout() => ModelError::Timeout(self.shared.timeout),
            OpenAIError::Reqwest(e) => ModelError::Server(format!("request failed: {e}")),
            OpenAIError::JSONDeserialize(e, body) => {
                ModelError::MalformedResponse(format!("{e}; body begins: {}", snippet(&body)))
            }
            other => ModelError::Other(other.to_string()),
        };
        self.scrubbed(err)
    }

    /// Messages come from servers; never let one echo the key back to a log.
    fn scrubbed(&self, err: ModelError) -> ModelError {
        match err {
            ModelError::Auth(m) => ModelError::Auth(self.scrub(m)),
            ModelError::BadRequest(m) => ModelError::BadRequest(self.scrub(m)),
            ModelError::Server(m) => ModelError::Server(self.scrub(m)),
            ModelError::MalformedResponse(m) => ModelError::MalformedResponse(self.scrub(m)),
            ModelError::Other(m) => ModelError::Other(self.scrub(m)),
            ModelError::RateLimited { attempts, message } => ModelError::RateLimited {
                attempts,
                message: self.scrub(message),
            },
            other => other,
        }
    }

    fn estimate_tokens(req: &ChatRequest) -> u32 {
        let chars: usize = req.messages.iter().map(|m: &Message| m.content.len()).sum();
        (chars / 4) as u32 + req.max_tokens.unwrap_or(256)
    }
}

/// A label-set request becomes a structured one (`{"answer": …}`); others go as they are.
fn prepared(request: ChatRequest) -> ChatRequest {
    if !request.choices.is_empty() && request.response_schema.is_none() {
        with_choices(request)
    } else {
        request
    }
}

impl OpenAiChat {
    /// The chat-completions body the live path sends for `request`: a batch line's `body`
    /// (OpenAI or Azure Batch, vLLM's `run-batch`).
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let req = prepared(request.clone());
        body(&self.shared.model, &req, self.structured_mode())
    }

    /// A chat completion (a batch output line's `response.body`) as this client's answer to
    /// `request`, exactly as the live path would have returned it.
    pub fn response_for(
        &self,
        request: &ChatRequest,
        reply: &Value,
    ) -> Result<ChatResponse, ModelError> {
        let req = prepared(request.clone());
        self.finish(&req, reply, self.structured_mode())
    }

    fn finish(
        &self,
        request: &ChatRequest,
        v: &Value,
        mode: StructuredMode,
    ) -> Result<ChatResponse, ModelError> {
        let mut resp = parse_response(v, &self.shared.model)?;
        if request.response_schema.is_some()
            && mode != StructuredMode::JsonSchema
            && let Ok(clean) = extract_json::<Value>(&resp.text)
        {
            resp.text = clean.to_string();
        }
        // `prepared` made a label set structured; the answer is the bare label.
        if !request.choices.is_empty()
            && request
                .response_schema
                .as_ref()
                .is_some_and(|s| s.name == "answer")
        {
            resp.text = choice_of(&resp.text, &request.choices);
        }
        Ok(resp)
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn id(&self) -> &str {
        &self.shared.id
    }

    fn price(&self) -> Option<Price> {
        self.shared.price
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let _permit = match &self.shared.semaphore {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|_| ModelError::Other("the client was shut down".into()))?,
            ),
            None => None,
        };
        let request = prepared(request);
        if let Some(l) = &self.shared.rpm {
            l.until_ready().await;
        }
        if let Some(l) = &self.shared.tpm
            && let Some(n) = NonZeroU32::new(Self::estimate_tokens(&request))
        {
            // A request larger than the whole per-minute budget can never fit: let it through
            // rather than wait forever.
            let _ = l.until_n_ready(n).await;
        }
        let mut malformed = 0u32;
        loop {
            let mode = self.structured_mode();
            let body = body(&self.shared.model, &request, mode);
            match self.send(&body).await {
                // A truncated or garbled body is a transport fault like a reset connection: ask
                // again, within the same attempt budget as the HTTP retries.
                Err(OpenAIError::JSONDeserialize(..))
                    if malformed + 1 < self.shared.max_attempts =>
                {
                    malformed += 1;
                    tracing::debug!(attempt = malformed, "malformed response body; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(malformed))).await;
                }
                Ok(v) => {
                    let resp = self.finish(&request, &v, mode)?;
                    let mut acc = self
                        .shared
                        .accounting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    acc.calls += 1;
                    acc.usage += resp.usage;
                    acc.cost_usd += self.shared.price.map_or(0.0, |p| p.cost(resp.usage));
                    return Ok(resp);
                }
                Err(OpenAIError::ApiError(api))
                    if api.status_code.as_u16() == 400
                        && request.response_schema.is_some()
                        && mode != StructuredMode::Text
                        && mentions_format(&api.api_error.message) =>
                {
                    let next = if mode == StructuredMode::JsonSchema {
                        StructuredMode::JsonObject
                    } else {
                        StructuredMode::Text
                    };
                    tracing::warn!(model = %self.shared.model, ?next, "the server refused the structured-output format; falling back");
                    // Only move forward: another task may already have fallen back further.
                    let _ = self.shared.mode.compare_exchange(
                        mode as u8,
                        next as u8,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Err(e) => return Err(self.map_error(e)),
            }
        }
    }
}
