//! The HTTP client: one evaluation per call, as a `ChatModel` so that the optimizer's layers
//! (cache, meter, budget, concurrency) apply to it like to every other paid call.
//!
//! A request carries one evaluation as JSON in its only message
//! (`{"eval_name", "inputs", "model"}`); the reply's text is `{"output", "reason"}`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, ModelError, Price, RetryPolicy, Usage,
    async_trait, parse_retry_after,
};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{self, Poll, TemplateKeys};

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key's variable is unset.
    #[error(
        "the environment variable `{0}` holding the FutureAGI {1} is not set; export it (export {0}=...) or name another variable"
    )]
    MissingKey(String, &'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Settings of a [`FutureAgiClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root without `/sdk/…` (default: `FI_BASE_URL`, else the FutureAGI API).
    pub base_url: Option<String>,
    /// The API key.
    pub api_key: String,
    /// The secret key.
    pub secret_key: String,
    /// Timeout of each HTTP attempt.
    pub timeout: Duration,
    /// The retry policy (no retry on 400, 401, 403 or an exhausted usage limit).
    pub retry: RetryPolicy,
    /// What one evaluation costs, in USD.
    pub price_per_call: f64,
    /// Submit asynchronously and poll (for long templates).
    pub asynchronous: bool,
    /// How often an async evaluation is polled.
    pub poll_interval: Duration,
    /// How long an async evaluation may take.
    pub poll_timeout: Duration,
}

impl ClientConfig {
    /// Keys from the named environment variables (defaults `FI_API_KEY`, `FI_SECRET_KEY`).
    pub fn from_env(
        api_key_env: Option<&str>,
        secret_key_env: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let read = |var: &str, what: &'static str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::MissingKey(var.to_string(), what))
        };
        Ok(ClientConfig {
            base_url: None,
            api_key: read(api_key_env.unwrap_or(api::API_KEY_ENV), "API key")?,
            secret_key: read(secret_key_env.unwrap_or(api::SECRET_KEY_ENV), "secret key")?,
            timeout: Duration::from_secs(200),
            retry: RetryPolicy::default(),
            price_per_call: 0.0,
            asynchronous: false,
            poll_interval: Duration::from_secs(2),
            poll_timeout: Duration::from_secs(300),
        })
    }
}

struct Shared {
    id: String,
    base: String,
    http: reqwest::Client,
    config: ClientConfig,
    catalogue: Mutex<Option<Vec<(String, TemplateKeys)>>>,
}

/// FutureAGI's eval API. Clones share one connection pool and one catalogue.
#[derive(Clone)]
pub struct FutureAgiClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FutureAgiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys.
        f.debug_struct("FutureAgiClient")
            .field("base", &self.shared.base)
            .finish()
    }
}

/// One attempt's failure, before it is classified.
enum Failure {
    Status(StatusCode, String),
    Transport(reqwest::Error),
}

impl FutureAgiClient {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let base = config
            .base_url
            .clone()
            .or_else(|| {
                std::env::var(api::BASE_URL_ENV)
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| api::DEFAULT_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in [
            (api::API_KEY_HEADER, &config.api_key),
            (api::SECRET_KEY_HEADER, &config.secret_key),
        ] {
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| ConfigError::Http(format!("invalid {k}: {e}")))?;
            value.set_sensitive(true);
            headers.insert(k, value);
        }
        // reqwest is built without a bundled crypto provider (no C toolchain needed):
        // ring is installed once per process; a provider the host set first wins.
        // Newer rustls releases deprecate ring's provider (it lacks post-quantum key exchange);
        // it stays the one that needs no C toolchain.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(FutureAgiClient {
            shared: Arc::new(Shared {
                id: format!("futureagi@{base}"),
                base,
                http,
                config,
                catalogue: Mutex::new(None),
            }),
        })
    }

    fn scrub(&self, text: String) -> String {
        let c = &self.shared.config;
        [&c.api_key, &c.secret_key]
            .into_iter()
            .filter(|s| s.len() >= 4)
            .fold(text, |t, s| t.replace(s.as_str(), "[REDACTED]"))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let policy = self.shared.config.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts;
            let Some(r) = req.try_clone() else {
                return Err(Failure::Status(
                    StatusCode::BAD_REQUEST,
                    "the request cannot be sent again".into(),
                ));
            };
            match r.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, false));
                    let text = resp.text().await.map_err(Failure::Transport)?;
                    if status.is_success() {
                        return serde_json::from_str(&text).map_err(|e| {
                            Failure::Status(
                                StatusCode::BAD_GATEWAY,
                                format!("the reply is not JSON ({e}): {}", api::snippet(&text)),
                            )
                        });
                    }
                    // An exhausted usage limit comes as a 500; retrying cannot help.
                    let usage_limit = text.to_ascii_lowercase().contains("usage limit")
                        || text.to_ascii_lowercase().contains("credit");
                    let retryable = (status.is_server_error() && !usage_limit)
                        || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable || last {
                        return Err(Failure::Status(status, text));
                    }
                    let delay = policy.delay(attempt, rand::rng().random(), retry_after);
                    tracing::debug!(%status, attempt, ?delay, "retrying a FutureAGI call");
                    tokio::time::sleep(delay).await;
                }
                Err(e) if !last && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                    let delay = policy.delay(attempt, rand::rng().random(), None);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(Failure::Transport(e)),
            }
        }
    }

    fn map_error(&self, f: Failure) -> ModelError {
        let attempts = self.shared.config.retry.max_attempts;
        let err = match f {
            Failure::Transport(e) if e.is_timeout() => {
                ModelError::Timeout(self.shared.config.timeout)
            }
            Failure::Transport(e) => ModelError::Server(format!("request failed: {e}")),
            Failure::Status(status, body) => {
                let msg = serde_json::from_str::<Value>(&body)
                    .map(|v| api::message(&v))
                    .unwrap_or_else(|_| api::snippet(&body));
                let lower = msg.to_ascii_lowercase();
                match status.as_u16() {
                    401 | 403 => ModelError::Auth(format!(
                        "{status}: {msg}; check FI_API_KEY and FI_SECRET_KEY"
                    )),
                    400 => ModelError::BadRequest(format!("400: {msg}")),
                    s if s >= 500
                        && (lower.contains("usage limit") || lower.contains("credit")) =>
                    {
                        ModelError::Quota(format!("{msg}; the FutureAGI account is out of credits"))
                    }
                    429 => ModelError::RateLimited {
                        attempts,
                        message: msg,
                    },
                    s if s >= 500 => {
                        ModelError::Server(format!("{status} after {attempts} attempts: {msg}"))
                    }
                    _ => ModelError::BadRequest(format!("{status}: {msg}")),
                }
            }
        };
        match err {
            ModelError::Auth(m) => ModelError::Auth(self.scrub(m)),
            ModelError::BadRequest(m) => ModelError::BadRequest(self.scrub(m)),
            ModelError::Server(m) => ModelError::Server(self.scrub(m)),
            ModelError::Quota(m) => ModelError::Quota(self.scrub(m)),
            other => other,
        }
    }

    /// The template catalogue, fetched once per client.
    pub(crate) async fn catalogue(&self) -> Result<Vec<(String, TemplateKeys)>, ModelError> {
        if let Some(c) = self
            .shared
            .catalogue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(c);
        }
        let url = format!("{}{}", self.shared.base, api::CATALOGUE_PATH);
        let v = self
            .send(self.shared.http.get(url))
            .await
            .map_err(|f| self.map_error(f))?;
        let c = api::parse_catalogue(&v);
        *self
            .shared
            .catalogue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
        Ok(c)
    }

    /// Polls an async evaluation until it ends.
    async fn poll(&self, eval_id: &str) -> Result<api::Outcome, ModelError> {
        let c = &self.shared.config;
        let started = Instant::now();
        let id: String = eval_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let url = format!("{}{}?eval_id={id}", self.shared.base, api::EVAL_PATH);
        loop {
            let v = self
                .send(self.shared.http.get(&url))
                .await
                .map_err(|f| self.map_error(f))?;
            match api::parse_poll(&v) {
                Poll::Done(r) => return r.map_err(|m| ModelError::Server(self.scrub(m))),
                Poll::Pending if started.elapsed() >= c.poll_timeout => {
                    return Err(ModelError::Timeout(c.poll_timeout));
                }
                Poll::Pending => tokio::time::sleep(c.poll_interval).await,
            }
        }
    }
}

#[async_trait]
impl ChatModel for FutureAgiClient {
    fn id(&self) -> &str {
        &self.shared.id
    }

    fn price(&self) -> Option<Price> {
        Some(Price {
            per_call: self.shared.config.price_per_call,
            ..Price::default()
        })
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let call: Value = request
            .messages
            .first()
            .and_then(|m| serde_json::from_str(&m.content).ok())
            .ok_or_else(|| {
                ModelError::BadRequest("a FutureAGI call carries one JSON evaluation".into())
            })?;
        let is_async = self.shared.config.asynchronous;
        let body = api::eval_body(
            call["eval_name"].as_str().unwrap_or(""),
            &call["inputs"],
            call["model"].as_str().unwrap_or(api::DEFAULT_MODEL),
            is_async,
        );
        let url = format!("{}{}", self.shared.base, api::EVAL_PATH);
        let v = self
            .send(self.shared.http.post(url).json(&body))
            .await
            .map_err(|f| self.map_error(f))?;
        let mut outcome =
            api::parse_eval(&v).map_err(|m| ModelError::MalformedResponse(self.scrub(m)))?;
        if is_async {
            let id = outcome.eval_id.clone().ok_or_else(|| {
                ModelError::MalformedResponse(
                    "an async evaluation came back without an eval_id".into(),
                )
            })?;
            outcome = self.poll(&id).await?;
        }
        Ok(ChatResponse {
            text: json!({"output": outcome.output, "reason": outcome.reason}).to_string(),
            usage: Usage::default(),
            model: self.shared.id.clone(),
            finish_reason: FinishReason::Stop,
        })
    }
}
