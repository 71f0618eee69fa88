//! Reflective prompt optimization.
//!
//! A strong *teacher* model runs your prompt on part of your dataset, studies the examples
//! that scored low, states a hypothesis about why, and rewrites the whole prompt; rewrites are
//! kept only when they win on held-out data.
//!
//! This facade re-exports the workspace's crates behind cargo features:
//! - always: [`core`] (contracts), [`data`] (datasets), [`evals`] (evaluators),
//!   [`engine`] (the optimizer);
//! - `openai` (default): [`openai`], OpenAI-compatible endpoints;
//! - `store` (default): [`store`], the SQLite cache, run records and checkpoints;
//! - `llama`: [`llama`], GGUF models in-process through llama.cpp;
//! - `anthropic`: [`anthropic`], Anthropic's Messages API;
//! - `futureagi`: [`futureagi`], FutureAGI's eval templates as an evaluator.
//!
//! Guides live in the repository's `docs/` folder: `getting-started.md`, `concepts.md`,
//! `choosing-an-evaluator.md`, `writing-a-provider.md`, `writing-an-evaluator.md`,
//! `endpoints.md` (OpenAI, Azure, Ollama, vLLM …), `cost-and-resume.md`, `reliability.md` and
//! `coming-from-python.md`. `examples/basic_usage.rs` mirrors the Python original's basic usage.
#![deny(missing_docs)]

#[cfg(feature = "anthropic")]
pub use metaprompt_anthropic as anthropic;
pub use metaprompt_core as core;
pub use metaprompt_data as data;
pub use metaprompt_engine as engine;
pub use metaprompt_evals as evals;
#[cfg(feature = "futureagi")]
pub use metaprompt_futureagi as futureagi;
#[cfg(feature = "llama")]
pub use metaprompt_llama as llama;
#[cfg(feature = "openai")]
pub use metaprompt_openai as openai;
#[cfg(feature = "store")]
pub use metaprompt_store as store;

pub use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, DataMapper, EvalInput, EvalResult, Evaluator,
    GenerateParams, Generator, PromptTemplate, Row,
};
pub use metaprompt_data::{BasicDataMapper, Dataset};
