//! A model bound to a prompt: what the Python original calls a generator.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::message::{ChatRequest, ChatResponse, Message};
use crate::model::{ChatModel, ModelError};
use crate::prompt::Prompt;
use crate::row::Row;
use crate::template::TemplateError;

/// Call parameters for the student model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    /// Sampling temperature (`None` = provider default).
    pub temperature: Option<f32>,
    /// Maximum tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Stop sequences.
    #[serde(default)]
    pub stop: Vec<String>,
    /// The answer must be one of these (a classifier's labels); empty: free text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The answer must be JSON following this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::message::ResponseSchema>,
}

impl GenerateParams {
    /// The request for a rendered prompt.
    pub fn request(&self, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            messages,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            seed: self.seed,
            stop: self.stop.clone(),
            choices: self.choices.clone(),
            response_schema: self.schema.clone(),
            ..ChatRequest::default()
        }
    }
}

/// Why generation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The prompt could not be rendered for the row.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The model call failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A chat model, a prompt and call parameters.
///
/// ```
/// # use std::sync::Arc;
/// use metaprompt_core::{Generator, GenerateParams, Prompt};
/// # #[cfg(feature = "test-utils")] {
/// use metaprompt_core::testing::ScriptedModel;
/// let model = Arc::new(ScriptedModel::new("m").reply("positive"));
/// let g = Generator::new(model, Prompt::parse("Sentiment of: {text}").unwrap(), GenerateParams::default());
/// assert_eq!(g.prompt_template().variables(), vec!["text"]);
/// # }
/// ```
#[derive(Clone)]
pub struct Generator {
    model: Arc<dyn ChatModel>,
    template: Prompt,
    params: GenerateParams,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("model", &self.model.id())
            .field("prompt", &self.template.text())
            .field("params", &self.params)
            .finish()
    }
}

impl Generator {
    /// Binds a model to a template.
    pub fn new(model: Arc<dyn ChatModel>, template: Prompt, params: GenerateParams) -> Self {
        Generator {
            model,
            template,
            params,
        }
    }

    /// The prompt (the Python original's `get_prompt_template`; `to_string()` gives its text).
    pub fn prompt_template(&self) -> &Prompt {
        &self.template
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// The call parameters.
    pub fn params(&self) -> &GenerateParams {
        &self.params
    }

    /// The same model and parameters with another prompt.
    pub fn with_template(&self, template: Prompt) -> Self {
        Generator {
            model: self.model.clone(),
            template,
            params: self.params.clone(),
        }
    }

    /// The request that [`generate`](Self::generate) would send for `row`.
    pub fn request_for(&self, row: &Row) -> Result<ChatRequest, TemplateError> {
        Ok(self.params.request(self.template.render(row)?))
    }

    /// Renders the prompt for `row` and calls the model.
    pub async fn generate(&self, row: &Row) -> Result<ChatResponse, GenerateError> {
        let request = self.request_for(row)?;
        Ok(self.model.complete(request).await?)
    }
}
