//! `provider = "anthropic"`: Claude through the Messages API.

use std::sync::Arc;
#[cfg(feature = "anthropic")]
use std::time::Duration;

use anyhow::Result;
#[cfg(feature = "anthropic")]
use anyhow::anyhow;
use metaprompt::core::{ChatModel, Price};

use super::ModelPool;
#[cfg(not(feature = "anthropic"))]
use super::missing_feature;
use crate::config::ModelSection;

impl ModelPool {
    #[cfg(not(feature = "anthropic"))]
    pub(super) fn anthropic(
        &self,
        _: &ModelSection,
        what: &str,
        _: Option<Price>,
    ) -> Result<Arc<dyn ChatModel>> {
        Err(missing_feature(what, "anthropic", "anthropic"))
    }

    #[cfg(feature = "anthropic")]
    pub(super) fn anthropic(
        &self,
        section: &ModelSection,
        what: &str,
        price: Option<Price>,
    ) -> Result<Arc<dyn ChatModel>> {
        use metaprompt::anthropic::{AnthropicChat, RetryPolicy as AnthropicRetry};
        let name = section
            .model
            .clone()
            .ok_or_else(|| anyhow!("[{what}]: `model` is required for provider \"anthropic\""))?;
        let mut b = AnthropicChat::builder(name).api_key(self.api_key(
            section,
            "ANTHROPIC_API_KEY",
            what,
        )?);
        if let Some(url) = &section.base_url {
            b = b.base_url(url.clone());
        }
        for (k, v) in self.headers(section, what)? {
            b = b.header(k, v);
        }
        if let Some(v) = &section.anthropic_version {
            b = b.version(v.clone());
        }
        if let Some(t) = section.timeout_secs {
            b = b.timeout(Duration::from_secs_f64(t));
        }
        if let Some(a) = section.max_attempts {
            b = b.retry(AnthropicRetry {
                max_attempts: a.max(1),
                ..AnthropicRetry::default()
            });
        }
        if let Some(c) = section.max_concurrency {
            b = b.max_concurrency(c);
        }
        if let Some(p) = price {
            b = b.price(p);
        }
        let chat = b.build().map_err(|e| anyhow!("[{what}]: {e}"))?;
        Ok(Arc::new(chat))
    }
}
