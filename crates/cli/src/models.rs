//! Building the models a config names: one function per provider, each behind its feature.

#[cfg(feature = "embedded")]
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[cfg(any(feature = "openai", feature = "anthropic", feature = "embedded"))]
use std::time::Duration;

#[cfg(feature = "embedded")]
use anyhow::Context;
use anyhow::{Result, anyhow, bail};
#[cfg(feature = "openai")]
use metaprompt::core::endpoints::EndpointPool;
use metaprompt::core::{BatchExecutor, ChatModel, Price};
#[cfg(feature = "embedded")]
use metaprompt::llama::{LlamaChat, LlamaConfig, ModelLocator};
#[cfg(feature = "openai")]
use metaprompt::openai::{AzureSettings, OpenAiBuilder, OpenAiChat, RetryPolicy};

use crate::config::{Loaded, ModelSection, Provider};

/// Models shared between sections: the same llama file loads once; every secret read (keys,
/// header values) is kept so that the store and the logs can scrub it.
#[derive(Default)]
pub(crate) struct ModelPool {
    #[cfg(feature = "embedded")]
    llama: Mutex<HashMap<std::path::PathBuf, LlamaChat>>,
    secrets: Mutex<Vec<String>>,
}

/// The section's own price, when it gives one.
fn section_price(section: &ModelSection, what: &str) -> Result<Option<Price>> {
    Ok(match (section.price_input, section.price_output) {
        (Some(i), Some(o)) => Some(Price {
            input_per_mtok: i,
            output_per_mtok: o,
            per_call: 0.0,
        }),
        (None, None) => None,
        _ => bail!("[{what}]: give both `price_input` and `price_output`, or neither"),
    })
}

/// The error for a provider this build leaves out.
#[cfg(not(all(feature = "openai", feature = "embedded", feature = "anthropic")))]
fn missing_feature(what: &str, provider: &str, feature: &str) -> anyhow::Error {
    anyhow!(
        "[{what}]: provider = \"{provider}\" is not in this build of metaprompt (built without the `{feature}` feature); reinstall with it, e.g. `cargo install metaprompt-cli --features {feature}`, or use another provider"
    )
}

impl ModelPool {
    /// Every secret read so far.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    #[cfg_attr(
        not(any(feature = "openai", feature = "anthropic", feature = "futureagi")),
        allow(dead_code)
    )]
    pub(crate) fn remember(&self, secret: &str) {
        if secret.len() >= 4 {
            self.secrets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(secret.to_string());
        }
    }

    /// The key from the environment variable a section names (or the provider's default).
    #[cfg_attr(not(any(feature = "openai", feature = "anthropic")), allow(dead_code))]
    fn api_key(&self, section: &ModelSection, default_var: &str, what: &str) -> Result<String> {
        let var = section
            .api_key_env
            .clone()
            .unwrap_or_else(|| default_var.to_string());
        match std::env::var(&var) {
            Ok(v) if !v.is_empty() => {
                self.remember(&v);
                Ok(v)
            }
            _ => bail!(
                "[{what}]: the environment variable `{var}` holding the API key is not set; export it (export {var}=...) or name another variable in `api_key_env`"
            ),
        }
    }

    /// The section's headers with their values (read from the environment where asked).
    #[cfg_attr(not(any(feature = "openai", feature = "anthropic")), allow(dead_code))]
    fn headers(&self, section: &ModelSection, what: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (name, value) in &section.headers {
            let v = value.resolve(name, what)?;
            self.remember(&v);
            out.push((name.clone(), v));
        }
        Ok(out)
    }

    /// Builds the model of a `[student]`, `[teacher]` or judge section.
    pub(crate) fn build(
        &self,
        loaded: &Loaded,
        section: &ModelSection,
        what: &str,
    ) -> Result<Arc<dyn ChatModel>> {
        let price = section_price(section, what)?;
        if let Some(t) = section.timeout_secs
            && !(t.is_finite() && t > 0.0)
        {
            bail!("[{what}]: `timeout_secs` must be a positive number of seconds");
        }
        if section.max_concurrency == Some(0) {
            bail!("[{what}]: `max_concurrency` must be at least 1 (leave it out for no cap)");
        }
        match section.provider {
            Provider::Openai => self.openai(section, what, price),
            Provider::Anthropic => self.anthropic(section, what, price),
            Provider::Llama => self.llama(loaded, section, what),
        }
    }

    #[cfg(not(feature = "openai"))]
    fn openai(&self, _: &ModelSection, what: &str, _: Option<Price>) -> Result<Arc<dyn ChatModel>> {
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
    fn openai(
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

    /// The batch executor of a section with `batch = true`.
    pub(crate) fn batch_executor(
        &self,
        section: &ModelSection,
        what: &str,
    ) -> Result<Option<Arc<dyn BatchExecutor>>> {
        if !section.batch {
            if section.batch_deployment.is_some() {
                bail!("[{what}]: `batch_deployment` is set but `batch` is not; add `batch = true`");
            }
            return Ok(None);
        }
        match section.provider {
            Provider::Openai => self.openai_batch(section, what),
            _ => bail!(
                "[{what}]: `batch = true` is for provider \"openai\" (the OpenAI and Azure Batch APIs); for a vLLM server use `metaprompt batch export` and vLLM's `run-batch`"
            ),
        }
    }

    /// The line writer and reader for a batch file of `section`'s calls (OpenAI's format, which
    /// vLLM's `run-batch` reads), whether or not the section uses the Batch API itself.
    pub(crate) fn batch_file_format(
        &self,
        section: &ModelSection,
        what: &str,
    ) -> Result<Arc<dyn BatchExecutor>> {
        if section.provider != Provider::Openai {
            bail!(
                "[{what}]: batch files are in the OpenAI format (what vLLM's `run-batch` reads); they are for provider \"openai\""
            );
        }
        let mut s = section.clone();
        s.batch = true;
        s.base_urls.truncate(1);
        if s.base_url.is_none() {
            s.base_url = s.base_urls.pop();
        }
        s.base_urls.clear();
        self.openai_batch(&s, what)?
            .ok_or_else(|| anyhow!("[{what}]: no batch format for this section"))
    }

    #[cfg(not(feature = "openai"))]
    fn openai_batch(&self, _: &ModelSection, what: &str) -> Result<Option<Arc<dyn BatchExecutor>>> {
        Err(missing_feature(what, "openai", "openai"))
    }

    #[cfg(feature = "openai")]
    fn openai_batch(
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

    #[cfg(not(feature = "anthropic"))]
    fn anthropic(
        &self,
        _: &ModelSection,
        what: &str,
        _: Option<Price>,
    ) -> Result<Arc<dyn ChatModel>> {
        Err(missing_feature(what, "anthropic", "anthropic"))
    }

    #[cfg(feature = "anthropic")]
    fn anthropic(
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

    #[cfg(not(feature = "embedded"))]
    fn llama(&self, _: &Loaded, _: &ModelSection, what: &str) -> Result<Arc<dyn ChatModel>> {
        Err(missing_feature(what, "llama", "embedded"))
    }

    #[cfg(feature = "embedded")]
    fn llama(
        &self,
        loaded: &Loaded,
        section: &ModelSection,
        what: &str,
    ) -> Result<Arc<dyn ChatModel>> {
        for (key, value) in [
            ("parallel", section.parallel),
            ("workers", section.workers),
            ("threads", section.threads.map(|t| t.max(0) as usize)),
        ] {
            if value == Some(0) {
                bail!("[{what}]: `{key}` must be at least 1 (leave it out for the default)");
            }
        }
        let explicit = section.model_path.as_ref().map(|p| loaded.resolve(p));
        let path = ModelLocator::from_env(explicit)
            .resolve()
            .map_err(|e| anyhow!("[{what}]: {e}"))?;
        let mut pool = self
            .llama
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let chat = match pool.get(&path) {
            Some(c) => c.clone(),
            None => {
                let cfg = LlamaConfig {
                    n_parallel: section.parallel.unwrap_or(4),
                    workers: section.workers,
                    n_threads: section.threads,
                    ctx_per_seq: section.context.unwrap_or(4096),
                    timeout: section.timeout_secs.map(Duration::from_secs_f64),
                    ..LlamaConfig::default()
                };
                let c = LlamaChat::load(&path, cfg)
                    .with_context(|| format!("[{what}]: loading {}", path.display()))?;
                pool.insert(path.clone(), c.clone());
                c
            }
        };
        Ok(Arc::new(chat))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(provider: &str) -> ModelSection {
        serde_json::from_value(serde_json::json!({"provider": provider, "model": "m"})).unwrap()
    }

    fn loaded() -> Loaded {
        let text = "initial_prompts = [\"{text}\"]\n[dataset]\npath = \"d.jsonl\"\n[student]\nprovider = \"openai\"\n[teacher]\nprovider = \"openai\"\n[evaluator]\nkind = \"exact_match\"\n[mapping]\nresponse = \"generated_output\"\n";
        Loaded {
            config: crate::config::parse(text, std::path::Path::new("c.toml")).unwrap(),
            path: "c.toml".into(),
            base_dir: ".".into(),
            text: text.into(),
        }
    }

    /// A build without the embedded provider names the feature to enable.
    #[cfg(not(feature = "embedded"))]
    #[test]
    fn llama_without_the_embedded_feature_names_the_feature() {
        let err = ModelPool::default()
            .build(&loaded(), &section("llama"), "student")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("`embedded` feature"), "{text}");
        assert!(text.starts_with("[student]"), "{text}");
    }

    #[test]
    fn half_a_price_is_refused() {
        let mut s = section("openai");
        s.price_input = Some(1.0);
        let err = ModelPool::default()
            .build(&loaded(), &s, "student")
            .err()
            .unwrap();
        assert!(err.to_string().contains("price_output"), "{err}");
    }

    #[test]
    fn a_header_from_an_unset_variable_is_refused_by_name() {
        let mut s: ModelSection = serde_json::from_value(serde_json::json!({
            "provider": "openai", "model": "m",
            "headers": {"X-Token": {"env": "METAPROMPT_TEST_UNSET_TOKEN"}}
        }))
        .unwrap();
        s.api_key_env = Some("PATH".into());
        let err = ModelPool::default().headers(&s, "teacher").err().unwrap();
        assert!(
            err.to_string().contains("METAPROMPT_TEST_UNSET_TOKEN"),
            "{err}"
        );
    }
}
