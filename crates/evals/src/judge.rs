//! LLM-as-judge: any `ChatModel` scores outputs against a rubric.

use std::sync::Arc;

use futures::StreamExt;
use metaprompt_core::{
    ChatModel, ChatRequest, EvalInput, EvalResult, Evaluator, Message, ModelError, ModelLayer,
    ModelUse, ResponseSchema, async_trait, extract_json, schema_for,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The judge's reply.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Verdict {
    /// Step-by-step reasoning, used as the evaluation's reason.
    pub reasoning: String,
    /// The score on the judge's scale.
    pub score: f64,
}

/// The scale the judge scores on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Integers 1 to 5, mapped to `(s − 1) / 4`.
    #[default]
    OneToFive,
    /// 0 to 1, used as is.
    ZeroToOne,
}

impl Scale {
    fn describe(self) -> &'static str {
        match self {
            Scale::OneToFive => "an integer from 1 (very poor) to 5 (excellent)",
            Scale::ZeroToOne => "a number from 0.0 (fails completely) to 1.0 (perfect)",
        }
    }

    /// Maps a score on this scale to [0, 1]; `None` when it is off the scale.
    pub fn to_unit(self, s: f64) -> Option<f64> {
        match self {
            Scale::OneToFive if (1.0..=5.0).contains(&s) => Some((s - 1.0) / 4.0),
            Scale::ZeroToOne if (0.0..=1.0).contains(&s) => Some(s),
            _ => None,
        }
    }
}

/// The named rubric templates.
pub const TEMPLATES: [&str; 8] = [
    "summary_quality",
    "factual_accuracy",
    "groundedness",
    "completeness",
    "relevance",
    "conciseness",
    "instruction_following",
    "tone",
];

/// The rubric text of a named template.
pub fn template_rubric(name: &str) -> Option<&'static str> {
    Some(match name {
        "summary_quality" => {
            "Judge the response as a summary of the input. A high score means it captures the main points, adds nothing that is not in the input, is coherent, and is much shorter than the input. Penalise omitted key points, invented details and padding."
        }
        "factual_accuracy" => {
            "Judge whether every factual claim in the response is correct, using the reference answer and the context where given. A single clear factual error caps the score at the low end; unverifiable claims count against the response."
        }
        "groundedness" => {
            "Judge whether every statement in the response is supported by the context or input. Statements that go beyond the given material, however plausible, are ungrounded and lower the score."
        }
        "completeness" => {
            "Judge whether the response covers everything the input asks for and everything in the reference answer. Each missing required element lowers the score."
        }
        "relevance" => {
            "Judge whether the response addresses the input directly. Off-topic material, evasions and generic filler lower the score."
        }
        "conciseness" => {
            "Judge whether the response says what is needed in as few words as possible without losing required content. Repetition, hedging and preamble lower the score."
        }
        "instruction_following" => {
            "Judge whether the response follows every instruction in the input: format, length, language, constraints and requested content. Each violated instruction lowers the score."
        }
        "tone" => {
            "Judge whether the response's tone suits the request: professional, polite and appropriate for the audience, neither curt nor effusive."
        }
        _ => return None,
    })
}

/// An LLM judge.
///
/// Each item is one call asking for `{reasoning, score}` through structured output; a
/// malformed or failed reply is retried once, then that item (only) becomes an error result.
/// Items run concurrently; `max_concurrency` optionally caps how many at once (inside the
/// optimizer the run's own `concurrency` limit applies to judge calls already).
#[derive(Clone)]
pub struct Judge {
    model: Arc<dyn ChatModel>,
    name: String,
    rubric: String,
    scale: Scale,
    max_concurrency: Option<usize>,
    max_tokens: u32,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("name", &self.name)
            .field("model", &self.model.id())
            .finish()
    }
}

/// An unknown template name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown judge template `{0}`; use one of: {list} or give a custom rubric", list = TEMPLATES.join(", "))]
pub struct UnknownTemplate(pub String);

impl Judge {
    /// A judge using a named template.
    pub fn template(model: Arc<dyn ChatModel>, name: &str) -> Result<Self, UnknownTemplate> {
        let rubric = template_rubric(name).ok_or_else(|| UnknownTemplate(name.to_string()))?;
        Ok(Judge::build(
            model,
            format!("judge:{name}"),
            rubric.to_string(),
        ))
    }

    /// A judge with a custom rubric.
    pub fn custom(model: Arc<dyn ChatModel>, rubric: impl Into<String>) -> Self {
        Judge::build(model, "judge:custom".into(), rubric.into())
    }

    fn build(model: Arc<dyn ChatModel>, name: String, rubric: String) -> Self {
        Judge {
            model,
            name,
            rubric,
            scale: Scale::OneToFive,
            max_concurrency: None,
            max_tokens: 512,
        }
    }

    /// Sets the scale.
    pub fn with_scale(mut self, scale: Scale) -> Self {
        self.scale = scale;
        self
    }

    /// Caps how many items are judged at once (default: no cap of its own).
    pub fn with_max_concurrency(mut self, n: Option<usize>) -> Self {
        self.max_concurrency = n.map(|n| n.max(1));
        self
    }

    /// The model it judges with.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// The request for one item.
    pub fn request(&self, input: &EvalInput) -> ChatRequest {
        let system = format!(
            "You are a strict, fair evaluator.\n\nRubric: {}\n\nScore on {}. Think step by step in `reasoning` (name concrete problems), then give `score`. Reply with JSON only: {{\"reasoning\": \"...\", \"score\": ...}}.",
            self.rubric,
            self.scale.describe()
        );
        let mut user = String::new();
        for (field, title) in [
            ("input", "Input"),
            ("context", "Context"),
            ("expected_response", "Reference answer"),
            ("response", "Response to evaluate"),
        ] {
            if let Some(t) = input.text(field) {
                user.push_str(&format!("## {title}\n<<<\n{t}\n>>>\n\n"));
            }
        }
        ChatRequest {
            messages: vec![Message::system(system), Message::user(user.trim_end())],
            temperature: Some(0.0),
            max_tokens: Some(self.max_tokens),
            response_schema: Some(ResponseSchema {
                name: "verdict".into(),
                schema: schema_for::<Verdict>(),
            }),
            ..ChatRequest::default()
        }
    }

    async fn judge_one(&self, input: &EvalInput) -> EvalResult {
        let request = self.request(input);
        let mut last_problem = String::new();
        for _attempt in 0..2 {
            match self.model.complete(request.clone()).await {
                // Not made (budget, cancellation): asking again cannot help.
                Err(e @ (ModelError::Budget(_) | ModelError::Cancelled)) => {
                    return EvalResult::error(format!("judge call failed: {e}"));
                }
                Err(e) => last_problem = format!("judge call failed: {e}"),
                Ok(resp) => match extract_json::<Verdict>(&resp.text) {
                    Err(e) => last_problem = format!("malformed judge reply: {e}"),
                    Ok(v) => match self.scale.to_unit(v.score) {
                        Some(s) => {
                            return EvalResult::new(s, v.reasoning)
                                .unwrap_or_else(|_| EvalResult::error("judge score is NaN"));
                        }
                        None => {
                            last_problem = format!(
                                "judge score {} is off the scale ({})",
                                v.score,
                                self.scale.describe()
                            )
                        }
                    },
                },
            }
        }
        EvalResult::error(last_problem)
    }
}

#[async_trait]
impl Evaluator for Judge {
    fn name(&self) -> &str {
        &self.name
    }

    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        let mut judge = self.clone();
        judge.model = layer(self.model.clone());
        ModelUse::Layered(Arc::new(judge))
    }

    fn model_calls_per_item(&self) -> u32 {
        1
    }

    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let mut out: Vec<Option<EvalResult>> = vec![None; inputs.len()];
        // Futures are built first (they do nothing until polled) so that the stream's item
        // type has no higher-ranked lifetime for the compiler to prove.
        let calls: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| async move { (i, self.judge_one(input).await) })
            .collect();
        let limit = self.max_concurrency.unwrap_or(inputs.len()).max(1);
        let mut stream = futures::stream::iter(calls).buffer_unordered(limit);
        while let Some((i, r)) = stream.next().await {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| EvalResult::error("not evaluated")))
            .collect()
    }
}
