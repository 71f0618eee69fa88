//! Native Anthropic Messages API provider for metaprompt.
//!
//! **Who should depend on this crate:** applications that point the teacher, the student or a
//! judge at a Claude model without an OpenAI-compatible proxy. Others use the `metaprompt`
//! facade (feature `anthropic`) or the `metaprompt` command (`provider = "anthropic"`).
//!
//! ```no_run
//! use metaprompt_anthropic::AnthropicChat;
//! let teacher = AnthropicChat::builder("claude-sonnet-4-5")
//!     .api_key(std::env::var("ANTHROPIC_API_KEY").unwrap_or_default())
//!     .build()?;
//! # Ok::<(), metaprompt_anthropic::ConfigError>(())
//! ```
//!
//! What it takes care of: the system message in the top-level `system` field; `max_tokens`
//! always sent (the API requires it); structured output through the JSON-schema output mode,
//! else a forced tool, else plain text with tolerant JSON extraction, remembered per client;
//! `temperature` only when set, dropped (and remembered) for models that refuse it; retries
//! on 408, 409, 429 (honouring `retry-after`), 5xx and 529 with backoff and jitter, never on
//! 400/401/403/404; usage and cost; errors that never contain the key.
#![deny(missing_docs)]

mod builder;
mod client;
mod wire;

pub use builder::{AnthropicBuilder, ConfigError, DEFAULT_BASE_URL, DEFAULT_VERSION};
pub use client::AnthropicChat;
pub use metaprompt_core::RetryPolicy;
pub use wire::StructuredMode;
