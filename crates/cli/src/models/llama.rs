//! `provider = "llama"`: a GGUF model in-process; the same file loads once per run, and each
//! shape of workers (parallel, workers, threads, context) starts once on it.

use std::sync::Arc;
#[cfg(feature = "embedded")]
use std::time::Duration;

use anyhow::Result;
#[cfg(feature = "embedded")]
use anyhow::{Context, anyhow, bail};
use metaprompt::core::ChatModel;
#[cfg(feature = "embedded")]
use metaprompt::llama::{LlamaChat, LlamaConfig, ModelLocator};

use super::ModelPool;
#[cfg(not(feature = "embedded"))]
use super::missing_feature;
use crate::config::{Loaded, ModelSection};

impl ModelPool {
    #[cfg(not(feature = "embedded"))]
    pub(super) fn llama(
        &self,
        _: &Loaded,
        _: &ModelSection,
        what: &str,
    ) -> Result<Arc<dyn ChatModel>> {
        Err(missing_feature(what, "llama", "embedded"))
    }

    #[cfg(feature = "embedded")]
    pub(super) fn llama(
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
        let cfg = LlamaConfig {
            n_parallel: section.parallel.unwrap_or(4),
            workers: section.workers,
            n_threads: section.threads,
            ctx_per_seq: section.context.unwrap_or(4096),
            timeout: section.timeout_secs.map(Duration::from_secs_f64),
            ..LlamaConfig::default()
        };
        let mut pool = self
            .llama
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Sections with the same file and shape share workers; another shape gets workers of
        // its own on the same weights (a teacher on every core beside single-thread students).
        if let Some((_, _, c)) = pool.iter().find(|(p, c, _)| *p == path && *c == cfg) {
            return Ok(Arc::new(c.clone()));
        }
        let chat = match pool.iter().find(|(p, _, _)| *p == path) {
            Some((_, _, loaded)) => loaded.with_config(cfg.clone()),
            None => LlamaChat::load(&path, cfg.clone()),
        }
        .with_context(|| format!("[{what}]: loading {}", path.display()))?;
        pool.push((path, cfg, chat.clone()));
        Ok(Arc::new(chat))
    }
}
