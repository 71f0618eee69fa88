//! OpenAI-compatible chat provider for metaprompt, built on async-openai.
//!
//! **Who should depend on this crate:** applications that point the teacher, the student or
//! a judge at any endpoint speaking the chat-completions API: OpenAI, Azure OpenAI, Ollama,
//! vLLM, llama.cpp server, LM Studio, OpenRouter, LiteLLM proxy, and the OpenAI-compatible
//! endpoints of other vendors. Others use the `metaprompt` facade (feature `openai`).
//!
//! ```no_run
//! use metaprompt_openai::OpenAiChat;
//! let teacher = OpenAiChat::builder("gpt-4o")
//!     .base_url("http://127.0.0.1:11434/v1")
//!     .api_key_env("OPENAI_API_KEY")?
//!     .max_concurrency(8)
//!     .build()?;
//! # Ok::<(), metaprompt_openai::ConfigError>(())
//! ```
//!
//! What it takes care of: structured output (`json_schema`, falling back to `json_object` and
//! then plain text for servers that refuse it, remembered per client); one retry policy
//! (exponential backoff with jitter, `Retry-After`, no retries of 400/401/403/404 or of an
//! exhausted quota) installed in place of async-openai's own, so retries never stack; shared
//! concurrency and rate limits across clones; token and cost accounting; typed errors that
//! never contain the key.
#![deny(missing_docs)]

mod batch;
mod batch_wire;
mod builder;
mod chat;
mod retry;
mod settings;
mod wire;

pub use batch::OpenAiBatch;
pub use batch_wire::decode_line;
pub use builder::OpenAiBuilder;
pub use chat::OpenAiChat;
pub use metaprompt_core::{PRICES_AS_OF, list_price};
pub use retry::RetryPolicy;
pub use settings::{Accounting, AzureSettings, ConfigError, StructuredMode};
