//! A client's settings and what its clones share: the backend, limits, price and counters.

use std::sync::Mutex;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{AzureConfig, OpenAIConfig};
use governor::DefaultDirectRateLimiter;
use metaprompt_core::{Price, Usage};
use tokio::sync::Semaphore;

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

pub(crate) enum Backend {
    OpenAi(Client<OpenAIConfig>),
    Azure(Client<AzureConfig>),
}

pub(crate) struct Shared {
    pub(crate) backend: Backend,
    pub(crate) model: String,
    pub(crate) id: String,
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) semaphore: Option<Semaphore>,
    pub(crate) rpm: Option<DefaultDirectRateLimiter>,
    pub(crate) tpm: Option<DefaultDirectRateLimiter>,
    pub(crate) mode: AtomicU8,
    pub(crate) price: Option<Price>,
    pub(crate) accounting: Mutex<Accounting>,
    /// The key and every header value: scrubbed from any message a server sends back.
    pub(crate) secrets: Vec<String>,
}
