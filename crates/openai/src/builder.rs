//! [`OpenAiBuilder`]: every setting of an OpenAI-compatible client.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{AzureConfig, OpenAIConfig};
use governor::{Quota, RateLimiter};
use metaprompt_core::{Price, list_price};
use tokio::sync::Semaphore;

use crate::chat::OpenAiChat;
use crate::retry::{RetryPolicy, RetryService};
use crate::settings::{Accounting, AzureSettings, Backend, ConfigError, Shared, StructuredMode};

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
}

/// Builds an [`OpenAiChat`].
#[derive(Debug, Clone)]
pub struct OpenAiBuilder {
    pub(crate) model: String,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) organization: Option<String>,
    pub(crate) project: Option<String>,
    pub(crate) azure: Option<AzureSettings>,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) rpm: Option<u32>,
    pub(crate) tpm: Option<u32>,
    pub(crate) price: Option<Price>,
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

    /// The HTTP client: the configured headers on every request, the per-attempt timeout.
    pub(crate) fn http(&self) -> Result<reqwest::Client, ConfigError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ConfigError::BadHeader(k.clone(), e.to_string()))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| ConfigError::BadHeader(k.clone(), e.to_string()))?;
            headers.insert(name, value);
        }
        // reqwest is built without a bundled crypto provider (no C toolchain needed):
        // ring is installed once per process; a provider the host set first wins.
        // Newer rustls releases deprecate ring's provider (it lacks post-quantum key exchange);
        // it stays the one that needs no C toolchain.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))
    }

    /// The base URL: the configured one, else `OPENAI_BASE_URL`, else OpenAI's.
    pub(crate) fn base(&self) -> String {
        self.base_url
            .clone()
            .or_else(|| {
                std::env::var("OPENAI_BASE_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "https://api.openai.com/v1".to_string())
    }

    /// Builds the client.
    pub fn build(self) -> Result<OpenAiChat, ConfigError> {
        let service = RetryService {
            client: self.http()?,
            policy: self.retry,
            strip_authorization: false,
        };
        let base = self.base();
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
