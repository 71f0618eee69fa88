//! The models a run uses: the built-in generators (described by a spec the Python side
//! writes) and Python objects with a `generate(messages) -> str` method.

use std::sync::Arc;
use std::time::Duration;

use metaprompt::core::{
    BatchExecutor, ChatModel, ChatRequest, ChatResponse, FinishReason, ModelError, Usage,
    async_trait,
};
use pyo3::prelude::*;
use serde::Deserialize;

/// A built-in generator, as `metaprompt.OpenAIGenerator` & co. describe themselves.
#[derive(Debug, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ModelSpec {
    /// An OpenAI-compatible endpoint.
    Openai {
        model: String,
        base_url: Option<String>,
        api_key_env: String,
        timeout: Option<f64>,
        max_concurrency: Option<usize>,
        /// Whole-split scoring may go to the endpoint's Batch API.
        #[serde(default)]
        batch: bool,
    },
    /// Anthropic's Messages API.
    Anthropic {
        model: String,
        base_url: Option<String>,
        api_key_env: String,
        timeout: Option<f64>,
        max_concurrency: Option<usize>,
    },
    /// The embedded default: a GGUF model in-process.
    Llama { model_path: Option<String> },
}

/// A model and the secret values a store must scrub.
pub(crate) struct Built {
    pub(crate) model: Arc<dyn ChatModel>,
    /// The model's Batch API executor, when it has `batch = True`.
    pub(crate) batch: Option<Arc<dyn BatchExecutor>>,
    pub(crate) secrets: Vec<String>,
}

impl Built {
    /// An HTTP client just built (or its configuration error), with the key it holds.
    fn http<M: ChatModel + 'static, E: std::fmt::Display>(
        model: Result<M, E>,
        batch: Option<Arc<dyn BatchExecutor>>,
        secret: String,
    ) -> Result<Built, String> {
        Ok(Built {
            model: Arc::new(model.map_err(|e| e.to_string())?),
            batch,
            secrets: vec![secret],
        })
    }
}

fn key(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(format!(
            "the environment variable `{var}` holding the API key is not set; set it (os.environ[\"{var}\"] = ...) or pass another name as `api_key_env`"
        )),
    }
}

fn seconds(t: Option<f64>) -> Result<Option<Duration>, String> {
    match t {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(format!(
            "`timeout` must be a positive number of seconds, got {s}"
        )),
    }
}

/// A provider's builder with the same four settings for every provider; returns it and the
/// key it holds.
macro_rules! http_builder {
    ($builder:expr, $base_url:expr, $api_key_env:expr, $timeout:expr, $max_concurrency:expr) => {{
        let secret = key(&$api_key_env)?;
        let mut b = $builder.api_key(secret.clone());
        if let Some(u) = $base_url {
            b = b.base_url(u);
        }
        if let Some(t) = seconds($timeout)? {
            b = b.timeout(t);
        }
        if let Some(n) = $max_concurrency {
            b = b.max_concurrency(n);
        }
        (b, secret)
    }};
}

impl ModelSpec {
    /// Builds the client; errors are the user's input being wrong.
    pub(crate) fn build(self) -> Result<Built, String> {
        match self {
            ModelSpec::Openai {
                model,
                base_url,
                api_key_env,
                timeout,
                max_concurrency,
                batch,
            } => {
                let (b, secret) = http_builder!(
                    metaprompt::openai::OpenAiChat::builder(model),
                    base_url,
                    api_key_env,
                    timeout,
                    max_concurrency
                );
                let executor: Option<Arc<dyn BatchExecutor>> = if batch {
                    let ex = b.clone().build_batch(None).map_err(|e| e.to_string())?;
                    Some(Arc::new(ex))
                } else {
                    None
                };
                Built::http(b.build(), executor, secret)
            }
            ModelSpec::Anthropic {
                model,
                base_url,
                api_key_env,
                timeout,
                max_concurrency,
            } => {
                let (b, secret) = http_builder!(
                    metaprompt::anthropic::AnthropicChat::builder(model),
                    base_url,
                    api_key_env,
                    timeout,
                    max_concurrency
                );
                Built::http(b.build(), None, secret)
            }
            ModelSpec::Llama { model_path } => llama(model_path),
        }
    }
}

#[cfg(feature = "embedded")]
fn llama(model_path: Option<String>) -> Result<Built, String> {
    let path = metaprompt::llama::ModelLocator::from_env(model_path.map(Into::into))
        .resolve()
        .map_err(|e| e.to_string())?;
    let m =
        metaprompt::llama::LlamaChat::load(path, Default::default()).map_err(|e| e.to_string())?;
    Ok(Built {
        model: Arc::new(m),
        batch: None,
        secrets: Vec::new(),
    })
}

#[cfg(not(feature = "embedded"))]
fn llama(_model_path: Option<String>) -> Result<Built, String> {
    Err("this wheel has no embedded model: install the `embedded` build of metaprompt (built with `maturin build --features embedded`), or use OpenAIGenerator with a local server".into())
}

/// A Python object with `generate(messages) -> str`, called with the interpreter attached
/// on a blocking thread (the run's other calls go on meanwhile).
pub(crate) struct PyGenerator {
    id: String,
    object: Arc<Py<PyAny>>,
}

impl PyGenerator {
    pub(crate) fn new(id: String, object: Py<PyAny>) -> Self {
        PyGenerator {
            id,
            object: Arc::new(object),
        }
    }
}

#[async_trait]
impl ChatModel for PyGenerator {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let object = self.object.clone();
        let id = self.id.clone();
        let messages: Vec<(String, String)> = request
            .messages
            .iter()
            .map(|m| (m.role.as_str().to_string(), m.content.clone()))
            .collect();
        let text = tokio::task::spawn_blocking(move || {
            Python::attach(|py| -> Result<String, String> {
                let list = pyo3::types::PyList::empty(py);
                for (role, content) in &messages {
                    let d = pyo3::types::PyDict::new(py);
                    d.set_item("role", role).map_err(|e| e.to_string())?;
                    d.set_item("content", content).map_err(|e| e.to_string())?;
                    list.append(d).map_err(|e| e.to_string())?;
                }
                let out = object
                    .bind(py)
                    .call_method1("generate", (list,))
                    .map_err(|e| format!("{id}.generate raised {e}"))?;
                out.extract::<String>()
                    .map_err(|_| format!("{id}.generate must return a str"))
            })
        })
        .await
        .map_err(|e| ModelError::Server(format!("the Python generator's thread failed: {e}")))?
        .map_err(ModelError::BadRequest)?;
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: self.id.clone(),
            finish_reason: FinishReason::Stop,
        })
    }
}
