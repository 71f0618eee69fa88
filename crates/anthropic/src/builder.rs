//! Building an `AnthropicChat`: endpoint, key, version, headers, limits and price.

use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metaprompt_core::{Price, RetryPolicy, Usage, list_price};
use tokio::sync::Semaphore;

use crate::client::{AnthropicChat, Shared};
use crate::wire::StructuredMode;

/// The API root used when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` sent when none is configured.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No key.
    #[error(
        "no API key: set it with `api_key` (read it from the environment, e.g. ANTHROPIC_API_KEY)"
    )]
    MissingApiKey,
    /// A header could not be used.
    #[error("invalid header `{0}`: {1}")]
    BadHeader(String, String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Builds an [`AnthropicChat`].
#[derive(Debug, Clone)]
pub struct AnthropicBuilder {
    model: String,
    base_url: String,
    api_key: Option<String>,
    version: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    retry: RetryPolicy,
    max_concurrency: Option<usize>,
    price: Option<Price>,
}

impl AnthropicBuilder {
    /// The API root, without `/v1` (default: Anthropic's).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }
    /// The API key (read it from the environment; never put it in a file).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// The `anthropic-version` header (default `2023-06-01`).
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }
    /// A header sent with every request (`anthropic-beta`, a gateway's own key, …).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Timeout of each attempt (default 600 s, as Anthropic's own clients).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// The retry policy (default: 5 attempts, backoff from 0.5 s).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// An extra cap on requests in flight, across clones (default: none).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n.max(1));
        self
    }
    /// The price (default: the list price of known Claude models).
    pub fn price(mut self, p: Price) -> Self {
        self.price = Some(p);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<AnthropicChat, ConfigError> {
        let key = self.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut put = |k: &str, v: &str| -> Result<(), ConfigError> {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ConfigError::BadHeader(k.into(), e.to_string()))?;
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| ConfigError::BadHeader(k.into(), e.to_string()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
            Ok(())
        };
        put("x-api-key", &key)?;
        put("anthropic-version", &self.version)?;
        for (k, v) in &self.headers {
            put(k, v)?;
        }
        // reqwest is built without a bundled crypto provider (no C toolchain needed):
        // ring is installed once per process; a provider the host set first wins.
        // Newer rustls releases deprecate ring's provider (it lacks post-quantum key exchange);
        // it stays the one that needs no C toolchain.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        let secrets = std::iter::once(key)
            .chain(self.headers.into_iter().map(|(_, v)| v))
            .filter(|s| s.len() >= 4)
            .collect();
        Ok(AnthropicChat {
            shared: Arc::new(Shared {
                price: self.price.or_else(|| list_price(&self.model)),
                url: format!("{}/v1/messages", self.base_url),
                model: self.model,
                http,
                timeout: self.timeout,
                retry: self.retry,
                semaphore: self.max_concurrency.map(Semaphore::new),
                mode: AtomicU8::new(StructuredMode::JsonSchema as u8),
                temperature_refused: AtomicBool::new(false),
                accounting: Mutex::new((0, Usage::default())),
                secrets,
            }),
        })
    }
}

impl AnthropicChat {
    /// Starts building a client for `model`.
    pub fn builder(model: impl Into<String>) -> AnthropicBuilder {
        AnthropicBuilder {
            model: model.into(),
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            version: DEFAULT_VERSION.to_string(),
            headers: Vec::new(),
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            max_concurrency: None,
            price: None,
        }
    }
}
