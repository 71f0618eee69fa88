//! The chat model contract every provider implements.

use std::ops::{Add, AddAssign};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
}

impl Role {
    /// `system`, `user` or `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A JSON schema the reply must follow (structured output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseSchema {
    /// A short name for the schema (`teacher_rewrite`); OpenAI requires one.
    pub name: String,
    /// The schema, already sanitised for strict mode (see [`crate::schema_for`]).
    pub schema: schemars::Schema,
}

/// What to ask a chat model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// Sampling temperature; `None` leaves the provider's default.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Maximum tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling seed where the provider supports one.
    pub seed: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Structured output: the reply must be JSON following this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<ResponseSchema>,
    /// The reply must be exactly one of these strings (a classifier's label set). Providers
    /// constrain generation where they can (a grammar, a JSON-schema enum) and return the bare
    /// choice as the text. Empty: unconstrained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Penalises tokens by how often they already appear (OpenAI's semantics, -2 to 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Penalises tokens that already appear at all (OpenAI's semantics, -2 to 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
}

impl ChatRequest {
    /// A request with one user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatRequest {
            messages: vec![Message::user(content)],
            ..ChatRequest::default()
        }
    }
}

/// Token counts of one or more calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The token limit was reached.
    Length,
    /// The provider filtered the content.
    ContentFilter,
    /// Anything else the provider reported (or nothing).
    Other(String),
}

/// A chat model's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The generated text.
    pub text: String,
    /// Tokens used.
    pub usage: Usage,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
}

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
    fn price(&self) -> Option<crate::budget::Price> {
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
        _answers: &[(crate::cache::CacheKey, ChatResponse)],
        _price: Option<crate::budget::Price>,
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
    fn price(&self) -> Option<crate::budget::Price> {
        (**self).price()
    }
    async fn absorb(
        &self,
        answers: &[(crate::cache::CacheKey, ChatResponse)],
        price: Option<crate::budget::Price>,
    ) -> bool {
        (**self).absorb(answers, price).await
    }
}
