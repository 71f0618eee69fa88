//! `provider = "openai"`: OpenAI-compatible endpoints (one or several replicas), Azure,
//! and their Batch API.

use std::sync::Arc;
#[cfg(feature = "openai")]
use std::time::Duration;

use anyhow::Result;
#[cfg(feature = "openai")]
use anyhow::{anyhow, bail};
#[cfg(feature = "openai")]
use metaprompt::core::endpoints::EndpointPool;
use metaprompt::core::{BatchExecutor, ChatModel, Price};
#[cfg(feature = "openai")]
use metaprompt::openai::{AzureSettings, OpenAiBuilder, OpenAiChat, RetryPolicy};

use super::ModelPool;
#[cfg(not(feature = "openai"))]
use super::missing_feature;
#[cfg(feature = "openai")]
use super::section_price;
use crate::config::ModelSection;

impl ModelPool {
    #[cfg(not(feature = "openai"))]
    pub(super) fn openai(
        &self,
        _: &ModelSection,
        what: &str,
        _: Option<Price>,
    ) -> Result<Arc<dyn ChatModel>> {
        Err(missing_feature(what, "openai", "openai"))
    }

    #[cfg(feature = "openai")]
    fn openai_builder(
        &self,
        section: &ModelSection,
        what: &str,
        price: Option<Price>,
    ) -> Result<OpenAiBuilder> {
        let name = section
            .model
            .clone()
            .ok_or_else(|| anyhow!("[{what}]: `model` is required for provider \"openai\""))?;
        let mut b =
            OpenAiChat::builder(name).api_key(self.api_key(section, "OPENAI_API_KEY", what)?);
        if let Some(url) = &section.base_url {
            b = b.base_url(url.clone());
        }
        for (k, v) in self.headers(section, what)? {
            b = b.header(k, v);
        }
        match (&section.azure_deployment, &section.azure_api_version) {
            (Some(d), Some(v)) => {
                b = b.azure(AzureSettings {
                    deployment: d.clone(),
                    api_version: v.clone(),
                });
            }
            (None, None) => {}
            _ => bail!("[{what}]: Azure needs both `azure_deployment` and `azure_api_version`"),
        }
        if let Some(o) = &section.organization {
            b = b.organization(o.clone());
        }
        if let Some(p) = &section.project {
            b = b.project(p.clone());
        }
        if let Some(t) = section.timeout_secs {
            b = b.timeout(Duration::from_secs_f64(t));
        }
        if let Some(a) = section.max_attempts {
            b = b.retry(RetryPolicy {
                max_attempts: a.max(1),
                ..RetryPolicy::default()
            });
        }
        if let Some(c) = section.max_concurrency {
            b = b.max_concurrency(c);
        }
        if let Some(r) = section.rpm {
            b = b.requests_per_minute(r);
        }
        if let Some(t) = section.tpm {
            b = b.tokens_per_minute(t);
        }
        if let Some(p) = price {
            b = b.price(p);
        }
        Ok(b)
    }

    #[cfg(feature = "openai")]
    pub(super) fn openai(
        &self,
        section: &ModelSection,
        what: &str,
        price: Option<Price>,
    ) -> Result<Arc<dyn ChatModel>> {
        let b = self.openai_builder(section, what, price)?;
        if section.base_urls.is_empty() {
            return Ok(Arc::new(b.build().map_err(|e| anyhow!("[{what}]: {e}"))?));
        }
        if section.base_url.is_some() {
            bail!("[{what}]: give `base_url` or `base_urls`, not both");
        }
        // Each replica tries once; the pool moves a failed call to another replica at once.
        let mut replicas: Vec<Arc<dyn ChatModel>> = Vec::new();
        for url in &section.base_urls {
            let chat = b
                .clone()
                .base_url(url.clone())
                .retry(RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                })
                .build()
                .map_err(|e| anyhow!("[{what}] {url}: {e}"))?;
            replicas.push(Arc::new(chat));
        }
        Ok(Arc::new(
            EndpointPool::new(replicas).map_err(|e| anyhow!("[{what}]: {e}"))?,
        ))
    }

    #[cfg(not(feature = "openai"))]
    pub(super) fn openai_batch(
        &self,
        _: &ModelSection,
        what: &str,
    ) -> Result<Option<Arc<dyn BatchExecutor>>> {
        Err(missing_feature(what, "openai", "openai"))
    }

    #[cfg(feature = "openai")]
    pub(super) fn openai_batch(
        &self,
        section: &ModelSection,
        what: &str,
    ) -> Result<Option<Arc<dyn BatchExecutor>>> {
        if !section.base_urls.is_empty() {
            bail!("[{what}]: `batch = true` needs one `base_url`, not `base_urls`");
        }
        let price = section_price(section, what)?;
        let b = self.openai_builder(section, what, price)?;
        let ex = b
            .build_batch(section.batch_deployment.clone())
            .map_err(|e| anyhow!("[{what}]: {e}"))?;
        Ok(Some(Arc::new(ex)))
    }
}
