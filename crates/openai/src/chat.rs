//! `OpenAiChat`: any OpenAI-compatible chat-completions endpoint as a `ChatModel`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{AzureConfig, OpenAIConfig};
use async_openai::error::OpenAIError;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, Message, ModelError, Price, Role, Usage,
    async_trait, extract_json,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::retry::{RetryPolicy, RetryService};
use metaprompt_core::list_price;

/// Azure OpenAI settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// The deployment name.
    pub deployment: String,
    /// The `api-version` query parameter.
    pub api_version: String,
}

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The environment variable that should hold the key is unset or empty.
    #[error(
        "the environment variable `{0}` holding the API key is not set; export it (export {0}=...) or name another variable in `api_key_env`"
    )]
    MissingApiKey(String),
    /// A header could not be used.
    #[error("invalid header `{0}`: {1}")]
    BadHeader(String, String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// How structured output is requested from this endpoint. Servers that refuse
/// `json_schema` are asked again with `json_object`, then with plain text; the fallback is
/// remembered per client (shared by its clones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StructuredMode {
    /// `response_format: {type: json_schema, strict: true}`.
    JsonSchema = 0,
    /// `response_format: {type: json_object}` plus the schema in the system message.
    JsonObject = 1,
    /// The schema in the system message only.
    Text = 2,
}

/// Counters of one client and its clones.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accounting {
    /// Successful calls.
    pub calls: u64,
    /// Tokens used.
    pub usage: Usage,
    /// Cost in USD at the configured price (0 when unknown).
    pub cost_usd: f64,
}

/// Builds an [`OpenAiChat`].
#[derive(Debug, Clone)]
pub struct OpenAiBuilder {
    model: String,
    base_url: Option<String>,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
    organization: Option<String>,
    project: Option<String>,
    azure: Option<AzureSettings>,
    timeout: Duration,
    retry: RetryPolicy,
    max_concurrency: Option<usize>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    price: Option<Price>,
}

enum Backend {
    OpenAi(Client<OpenAIConfig>),
    Azure(Client<AzureConfig>),
}

struct Shared {
    backend: Backend,
    model: String,
    id: String,
    timeout: Duration,
    max_attempts: u32,
    semaphore: Option<Semaphore>,
    rpm: Option<DefaultDirectRateLimiter>,
    tpm: Option<DefaultDirectRateLimiter>,
    mode: AtomicU8,
    price: Option<Price>,
    accounting: Mutex<Accounting>,
    /// The key and every header value: scrubbed from any message a server sends back.
    secrets: Vec<String>,
}

/// An OpenAI-compatible chat model. Clones share one connection pool, one concurrency limit,
/// one rate limiter and one set of counters, so every evaluator and the teacher on the same
/// endpoint stay under one budget.
#[derive(Clone)]
pub struct OpenAiChat {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("OpenAiChat")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl OpenAiBuilder {
    /// The endpoint's base URL (`http://127.0.0.1:11434/v1` for Ollama). Default:
    /// `OPENAI_BASE_URL`, else OpenAI's.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The API key itself (read it from the environment; never put it in a file).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Reads the API key from an environment variable; an unset variable is an error.
    pub fn api_key_env(mut self, var: &str) -> Result<Self, ConfigError> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                self.api_key = Some(v);
                Ok(self)
            }
            _ => Err(ConfigError::MissingApiKey(var.to_string())),
        }
    }

    /// Adds a header sent with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// OpenAI organisation.
    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// OpenAI project.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Talks to Azure OpenAI (the base URL is the resource endpoint).
    pub fn azure(mut self, settings: AzureSettings) -> Self {
        self.azure = Some(settings);
        self
    }

    /// Timeout of each attempt (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// An extra cap on requests in flight at once, across clones, for an endpoint shared with
    /// others (default: none; the optimizer's own `concurrency` limits a run's calls).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n.max(1));
        self
    }

    /// Requests per minute, across clones.
    pub fn requests_per_minute(mut self, rpm: u32) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Tokens per minute (estimated before each call), across clones.
    pub fn tokens_per_minute(mut self, tpm: u32) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// The price used for cost (default: the list price of known models, else unknown).
    pub fn price(mut self, price: Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<OpenAiChat, ConfigError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ConfigError::BadHeader(k.clone(), e.to_string()))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| ConfigError::BadHeader(k.clone(), e.to_string()))?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        let service = RetryService {
            client: http,
            policy: self.retry,
        };
        let base = self
            .base_url
            .clone()
            .or_else(|| {
                std::env::var("OPENAI_BASE_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "https://api.openai.com/v1".to_string());
        let key = self.api_key.clone().unwrap_or_default();
        let backend = match &self.azure {
            Some(az) => Backend::Azure(
                Client::with_config(
                    AzureConfig::new()
                        .with_api_base(base.clone())
                        .with_api_key(key.clone())
                        .with_deployment_id(az.deployment.clone())
                        .with_api_version(az.api_version.clone()),
                )
                .with_http_service(service),
            ),
            None => {
                let mut cfg = OpenAIConfig::new()
                    .with_api_base(base.clone())
                    .with_api_key(key.clone());
                if let Some(o) = &self.organization {
                    cfg = cfg.with_org_id(o.clone());
                }
                if let Some(p) = &self.project {
                    cfg = cfg.with_project_id(p.clone());
                }
                Backend::OpenAi(Client::with_config(cfg).with_http_service(service))
            }
        };
        let limiter = |per_min: Option<u32>| {
            per_min
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_minute(n)))
        };
        let price = self.price.or_else(|| list_price(&self.model));
        Ok(OpenAiChat {
            shared: Arc::new(Shared {
                id: self.model.clone(),
                model: self.model,
                backend,
                timeout: self.timeout,
                max_attempts: self.retry.max_attempts,
                semaphore: self.max_concurrency.map(Semaphore::new),
                rpm: limiter(self.rpm),
                tpm: limiter(self.tpm),
                mode: AtomicU8::new(StructuredMode::JsonSchema as u8),
                price,
                accounting: Mutex::new(Accounting::default()),
                secrets: self
                    .api_key
                    .into_iter()
                    .chain(self.headers.into_iter().map(|(_, v)| v))
                    .filter(|k| k.len() >= 4)
                    .collect(),
            }),
        })
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn schema_instructions(schema: &Value) -> String {
    format!(
        "Reply with one JSON object and nothing else. It must follow this JSON schema:\n{}",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    )
}

/// The request body for a mode.
pub(crate) fn body(model: &str, req: &ChatRequest, mode: StructuredMode) -> Value {
    let mut messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": role(m.role), "content": m.content}))
        .collect();
    let mut b = json!({"model": model, "stream": false});
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        b["top_p"] = json!(p);
    }
    if let Some(n) = req.max_tokens {
        b["max_tokens"] = json!(n);
    }
    if let Some(s) = req.seed {
        b["seed"] = json!(s);
    }
    if !req.stop.is_empty() {
        b["stop"] = json!(req.stop);
    }
    if let Some(p) = req.frequency_penalty {
        b["frequency_penalty"] = json!(p);
    }
    if let Some(p) = req.presence_penalty {
        b["presence_penalty"] = json!(p);
    }
    if let Some(rs) = &req.response_schema {
        let mut schema = rs.schema.as_value().clone();
        if mode == StructuredMode::JsonSchema {
            strip_unsupported(&mut schema);
        }
        match mode {
            StructuredMode::JsonSchema => {
                b["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": rs.name, "schema": schema, "strict": true}
                });
            }
            StructuredMode::JsonObject | StructuredMode::Text => {
                if mode == StructuredMode::JsonObject {
                    b["response_format"] = json!({"type": "json_object"});
                }
                let extra = schema_instructions(&schema);
                match messages.first_mut() {
                    Some(first) if first["role"] == "system" => {
                        let text = format!(
                            "{}\n\n{extra}",
                            first["content"].as_str().unwrap_or_default()
                        );
                        first["content"] = json!(text);
                    }
                    _ => messages.insert(0, json!({"role": "system", "content": extra})),
                }
            }
        }
    }
    b["messages"] = Value::Array(messages);
    b
}

/// Keywords strict structured output refuses (length and count bounds). They stay in the
/// schema a local model's grammar is built from; here the model is asked without them.
const UNSUPPORTED_IN_STRICT: [&str; 8] = [
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
];

fn strip_unsupported(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in UNSUPPORTED_IN_STRICT {
                map.remove(k);
            }
            for (_, child) in map.iter_mut() {
                strip_unsupported(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_unsupported),
        _ => {}
    }
}

/// A label-set request as structured output: `{"answer": one of the choices}`.
fn with_choices(mut request: ChatRequest) -> ChatRequest {
    let schema = json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": request.choices}},
        "required": ["answer"],
        "additionalProperties": false
    });
    if let Ok(schema) = serde_json::from_value(schema) {
        request.response_schema = Some(metaprompt_core::ResponseSchema {
            name: "answer".into(),
            schema,
        });
    }
    request
}

/// The bare choice from a structured answer (the text as it came when it holds none).
fn choice_of(text: &str, choices: &[String]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        answer: String,
    }
    match extract_json::<Answer>(text) {
        Ok(a) => a.answer,
        Err(_) => choices
            .iter()
            .find(|c| text.trim() == c.as_str())
            .cloned()
            .unwrap_or_else(|| text.to_string()),
    }
}

fn snippet(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Reads a chat-completions response tolerantly: content may be a string, null or an array of
/// parts; `finish_reason` and `usage` may be missing.
pub(crate) fn parse_response(v: &Value, requested_model: &str) -> Result<ChatResponse, ModelError> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| {
            ModelError::MalformedResponse(format!(
                "no choices in the response: {}",
                snippet(&v.to_string())
            ))
        })?;
    let content = &choice["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => choice["message"]["refusal"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    };
    let finish_reason = match choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    };
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens: n("prompt_tokens"),
            output_tokens: n("completion_tokens"),
        },
        model: v["model"].as_str().unwrap_or(requested_model).to_string(),
        finish_reason,
    })
}

fn mentions_format(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("response_format")
        || m.contains("json_schema")
        || m.contains("json_object")
        || m.contains("structured")
}

impl OpenAiChat {
    /// Starts building a client for `model`.
    pub fn builder(model: impl Into<String>) -> OpenAiBuilder {
        OpenAiBuilder {
            model: model.into(),
            base_url: None,
            api_key: None,
            headers: Vec::new(),
            organization: None,
            project: None,
            azure: None,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_concurrency: None,
            rpm: None,
            tpm: None,
            price: None,
        }
    }

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

    fn map_error(&self, e: OpenAIError) -> ModelError {
        let err = match e {
            OpenAIError::ApiError(api) => {
                let status = api.status_code.as_u16();
                let msg = api.api_error.message.clone();
                let code = api.api_error.code.clone().unwrap_or_default();
                let kind = api.api_error.r#type.clone().unwrap_or_default();
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
                    404 => ModelError::BadRequest(format!(
                        "404 (wrong model name or base URL?): {msg}"
                    )),
                    s if s >= 500 => ModelError::Server(format!(
                        "{status} after {} attempts: {}",
                        self.shared.max_attempts,
                        snippet(&msg)
                    )),
                    _ => ModelError::BadRequest(format!("{status}: {msg}")),
                }
            }
            OpenAIError::Reqwest(e) if e.is_timeout() => ModelError::Timeout(self.shared.timeout),
            OpenAIError::Reqwest(e) => ModelError::Server(format!("request failed: {e}")),
            OpenAIError::JSONDeserialize(e, body) => {
                ModelError::MalformedResponse(format!("{e}; body begins: {}", snippet(&body)))
            }
            other => ModelError::Other(other.to_string()),
        };
        // Messages come from servers; never let one echo the key back to a log.
        match err {
            ModelError::Auth(m) => ModelError::Auth(self.scrub(m)),
            ModelError::BadRequest(m) => ModelError::BadRequest(self.scrub(m)),
            ModelError::Server(m) => ModelError::Server(self.scrub(m)),
            ModelError::MalformedResponse(m) => ModelError::MalformedResponse(self.scrub(m)),
            ModelError::Other(m) => ModelError::Other(self.scrub(m)),
            other => other,
        }
    }

    fn estimate_tokens(req: &ChatRequest) -> u32 {
        let chars: usize = req.messages.iter().map(|m: &Message| m.content.len()).sum();
        (chars / 4) as u32 + req.max_tokens.unwrap_or(256)
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
        let choices = !request.choices.is_empty() && request.response_schema.is_none();
        let request = if choices {
            with_choices(request)
        } else {
            request
        };
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
                    let mut resp = parse_response(&v, &self.shared.model)?;
                    if request.response_schema.is_some()
                        && mode != StructuredMode::JsonSchema
                        && let Ok(clean) = extract_json::<Value>(&resp.text)
                    {
                        resp.text = clean.to_string();
                    }
                    if choices {
                        resp.text = choice_of(&resp.text, &request.choices);
                    }
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
