//! Building the models a config names: one file per provider, each behind its feature.

use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow, bail};
use metaprompt::core::{BatchExecutor, ChatModel, Price};
#[cfg(feature = "embedded")]
use metaprompt::llama::{LlamaChat, LlamaConfig};

use crate::config::{Loaded, ModelSection, Provider};

mod anthropic;
mod llama;
mod openai;

/// Models shared between sections: the same llama file loads once (its workers by shape);
/// every secret read (keys, header values) is kept so that the store and the logs can scrub it.
#[derive(Default)]
pub(crate) struct ModelPool {
    #[cfg(feature = "embedded")]
    llama: Mutex<Vec<(std::path::PathBuf, LlamaConfig, LlamaChat)>>,
    secrets: Mutex<Vec<String>>,
}

/// The section's own price, when it gives one.
pub(super) fn section_price(section: &ModelSection, what: &str) -> Result<Option<Price>> {
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
pub(super) fn missing_feature(what: &str, provider: &str, feature: &str) -> anyhow::Error {
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
