//! The chat model contract every provider implements, and how a call fails.

use std::time::Duration;

use async_trait::async_trait;

use crate::cache::CacheKey;
use crate::message::{ChatRequest, ChatResponse};

/// Why a model call failed. Providers map their own errors into these kinds so that callers
/// can decide what to do (retry, stop, tell the user) without knowing the vendor.
///
/// Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Credentials were missing or refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The account has no quota or credit left; retrying will not help.
    #[error("quota exhausted: {0}")]
    Quota(String),
    /// Still rate limited after every allowed retry.
    #[error("rate limited after {attempts} attempts: {message}")]
    RateLimited {
        /// How many attempts were made.
        attempts: u32,
        /// The server's last message.
        message: String,
    },
    /// The server refused the request as malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with something that could not be understood.
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    /// The prompt does not fit in the model's context window.
    #[error(
        "prompt of {prompt_tokens} tokens does not fit the context of {context_tokens} tokens; shorten the prompt or use a larger context"
    )]
    ContextOverflow {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The context size.
        context_tokens: usize,
    },
    /// The server or connection failed (5xx, reset) after every allowed retry.
    #[error("server error: {0}")]
    Server(String),
    /// The call was not made: a budget of the run would be passed.
    #[error("not called: the {0} budget is used up")]
    Budget(crate::budget::BudgetKind),
    /// The call was not made: the run was cancelled.
    #[error("not called: the run was cancelled")]
    Cancelled,
    /// The call was not made: it is to be answered by a provider batch.
    #[error("not called: deferred to a batch")]
    Deferred,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A chat model: OpenAI-compatible endpoints, llama.cpp in-process, test doubles.
///
/// Implementations are used as `Arc<dyn ChatModel>` so that a provider can be chosen from
/// configuration at run time.
///
/// ```
/// use metaprompt_core::{async_trait, ChatModel, ChatRequest, ChatResponse, FinishReason, ModelError, Usage};
///
/// struct Echo;
///
/// #[async_trait]
/// impl ChatModel for Echo {
///     fn id(&self) -> &str { "echo" }
///     async fn complete(&self, req: ChatRequest) -> Result<ChatResponse, ModelError> {
///         let text = req.messages.last().map(|m| m.content.clone()).unwrap_or_default();
///         Ok(ChatResponse { text, usage: Usage::default(), model: "echo".into(), finish_reason: FinishReason::Stop })
///     }
/// }
/// # let m: std::sync::Arc<dyn ChatModel> = std::sync::Arc::new(Echo);
/// # let r = futures::executor::block_on(m.complete(ChatRequest::user("hi"))).unwrap();
/// # assert_eq!(r.text, "hi");
/// ```
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// A stable name for cache keys and reports (model name, or file name plus hash).
    fn id(&self) -> &str;

    /// Sends one request and waits for the whole reply.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError>;

    /// What a call costs, when the provider knows (list prices, configured prices; zero for a
    /// local model). Metering uses it for cost budgets and reports.
    fn price(&self) -> Option<crate::usage::Price> {
        None
    }

    /// Answers obtained other than by [`complete`](Self::complete) (a provider batch), handed
    /// down the model's layers as a live answer comes up through them: a cache layer keeps
    /// them, a meter records them at `price` (the batch's). Returns whether a cache kept them.
    ///
    /// A layer forwards to the model it wraps (see [`layer`](crate::layer)); a provider keeps
    /// nothing, which is the default.
    async fn absorb(
        &self,
        _answers: &[(CacheKey, ChatResponse)],
        _price: Option<crate::usage::Price>,
    ) -> bool {
        false
    }
}

#[async_trait]
impl<T: ChatModel + ?Sized> ChatModel for std::sync::Arc<T> {
    fn id(&self) -> &str {
        (**self).id()
    }
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        (**self).complete(request).await
    }
    fn price(&self) -> Option<crate::usage::Price> {
        (**self).price()
    }
    async fn absorb(
        &self,
        answers: &[(CacheKey, ChatResponse)],
        price: Option<crate::usage::Price>,
    ) -> bool {
        (**self).absorb(answers, price).await
    }
}
