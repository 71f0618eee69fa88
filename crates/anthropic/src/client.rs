//! `AnthropicChat`: the Messages API as a `ChatModel`.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, ModelError, Price, RetryPolicy, Usage, async_trait,
    parse_retry_after,
};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::wire::{
    StructuredMode, body, error_message, parse, refuses_mode, refuses_temperature, schema_of,
    snippet,
};

pub(crate) struct Shared {
    pub(crate) model: String,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) semaphore: Option<Semaphore>,
    pub(crate) mode: AtomicU8,
    pub(crate) temperature_refused: AtomicBool,
    pub(crate) price: Option<Price>,
    pub(crate) accounting: Mutex<(u64, Usage)>,
    pub(crate) secrets: Vec<String>,
}

/// A Claude model behind Anthropic's Messages API. Clones share the connection pool, the
/// concurrency cap, the remembered structured-output mode and the counters.
#[derive(Clone)]
pub struct AnthropicChat {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for AnthropicChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("AnthropicChat")
            .field("model", &self.shared.model)
            .finish()
    }
}

/// One attempt's failure, before it is classified.
enum Failure {
    Status(StatusCode, String),
    Transport(reqwest::Error),
}

impl AnthropicChat {
    /// The structured-output mode this client currently uses.
    pub fn structured_mode(&self) -> StructuredMode {
        StructuredMode::from_u8(self.shared.mode.load(Ordering::Relaxed))
    }

    /// Whether the model refused `temperature` (so it is no longer sent).
    pub fn temperature_refused(&self) -> bool {
        self.shared.temperature_refused.load(Ordering::Relaxed)
    }

    /// Successful calls and their tokens so far (all clones).
    pub fn accounting(&self) -> (u64, Usage) {
        *self
            .shared
            .accounting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// One request with the retry policy: 408, 409, 429, 5xx and 529 are retried (the server's
    /// `retry-after` and `x-should-retry` win); other statuses are returned at once.
    async fn send(&self, body: &Value) -> Result<Value, Failure> {
        let policy = self.shared.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts;
            match self
                .shared
                .http
                .post(&self.shared.url)
                .json(body)
                .send()
                .await
            {
                Ok(resp) => {
                    let status = resp.status();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let retry_after = header("retry-after-ms")
                        .and_then(|v| parse_retry_after(&v, true))
                        .or_else(|| {
                            header("retry-after").and_then(|v| parse_retry_after(&v, false))
                        });
                    let should = header("x-should-retry").map(|v| v == "true");
                    let text = resp.text().await.map_err(Failure::Transport)?;
                    if status.is_success() {
                        match serde_json::from_str::<Value>(&text) {
                            Ok(v) => return Ok(v),
                            // A garbled body is retried like a broken connection.
                            Err(_) if !last => {}
                            Err(e) => {
                                return Err(Failure::Status(
                                    StatusCode::BAD_GATEWAY,
                                    format!("the reply is not JSON ({e}): {}", snippet(&text)),
                                ));
                            }
                        }
                    } else {
                        let code = status.as_u16();
                        let retryable =
                            should.unwrap_or(matches!(code, 408 | 409 | 429 | 500..=599));
                        if !retryable || last {
                            return Err(Failure::Status(status, text));
                        }
                        let delay = policy.delay(attempt, rand::rng().random(), retry_after);
                        tracing::debug!(%status, attempt, ?delay, "retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let delay = policy.delay(attempt, rand::rng().random(), None);
                    tokio::time::sleep(delay).await;
                }
                Err(e) if !last && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                    let delay = policy.delay(attempt, rand::rng().random(), None);
                    tracing::debug!(error = %e, attempt, ?delay, "retrying after a transport error");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(Failure::Transport(e)),
            }
        }
    }

    fn map_error(&self, f: Failure) -> ModelError {
        let attempts = self.shared.retry.max_attempts;
        let err = match f {
            Failure::Transport(e) if e.is_timeout() => ModelError::Timeout(self.shared.timeout),
            Failure::Transport(e) => ModelError::Server(format!("request failed: {e}")),
            Failure::Status(status, body) => {
                let (kind, msg) = error_message(&body);
                match status.as_u16() {
                    401 | 403 => ModelError::Auth(format!(
                        "{status}: {msg}; check the API key (ANTHROPIC_API_KEY) and its permissions"
                    )),
                    402 => ModelError::Quota(format!("{msg}; add credit to the account")),
                    400 if msg.to_lowercase().contains("credit balance")
                        || msg.to_lowercase().contains("spend limit") =>
                    {
                        ModelError::Quota(format!("{msg}; add credit or raise the spend limit"))
                    }
                    404 => ModelError::BadRequest(format!(
                        "404 (wrong model name or base URL?): {msg}"
                    )),
                    429 => ModelError::RateLimited {
                        attempts,
                        message: msg,
                    },
                    529 => ModelError::Server(format!(
                        "529 overloaded after {attempts} attempts: {msg}"
                    )),
                    s if s >= 500 => ModelError::Server(format!(
                        "{status} after {attempts} attempts ({kind}): {msg}"
                    )),
                    _ => ModelError::BadRequest(format!("{status} ({kind}): {msg}")),
                }
            }
        };
        match err {
            ModelError::Auth(m) => ModelError::Auth(self.scrub(m)),
            ModelError::Quota(m) => ModelError::Quota(self.scrub(m)),
            ModelError::BadRequest(m) => ModelError::BadRequest(self.scrub(m)),
            ModelError::Server(m) => ModelError::Server(self.scrub(m)),
            ModelError::RateLimited { attempts, message } => ModelError::RateLimited {
                attempts,
                message: self.scrub(message),
            },
            other => other,
        }
    }
}

#[async_trait]
impl ChatModel for AnthropicChat {
    fn id(&self) -> &str {
        &self.shared.model
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
        let structured = schema_of(&request).is_some();
        loop {
            let mode = self.structured_mode();
            let send_temperature = !self.temperature_refused();
            let b = body(&self.shared.model, &request, mode, send_temperature);
            match self.send(&b).await {
                Ok(v) => {
                    let resp = parse(&v, &self.shared.model, &request)?;
                    let mut acc = self
                        .shared
                        .accounting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    acc.0 += 1;
                    acc.1 += resp.usage;
                    return Ok(resp);
                }
                Err(Failure::Status(status, text)) if status == StatusCode::BAD_REQUEST => {
                    let (_, msg) = error_message(&text);
                    if send_temperature
                        && request.temperature.is_some()
                        && refuses_temperature(&msg)
                    {
                        tracing::info!(model = %self.shared.model, "the model refuses `temperature`; sending none from now on");
                        self.shared
                            .temperature_refused
                            .store(true, Ordering::Relaxed);
                        continue;
                    }
                    if structured
                        && refuses_mode(&msg, mode)
                        && let Some(next) = mode.next()
                    {
                        tracing::warn!(model = %self.shared.model, ?next, "the API refused the structured-output mode; falling back");
                        // Only move forward: another task may already have fallen back further.
                        let _ = self.shared.mode.compare_exchange(
                            mode as u8,
                            next as u8,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        continue;
                    }
                    return Err(self.map_error(Failure::Status(status, text)));
                }
                Err(f) => return Err(self.map_error(f)),
            }
        }
    }
}
