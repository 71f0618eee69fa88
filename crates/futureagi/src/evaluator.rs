//! `FutureAgiEvaluator`: one FutureAGI evaluation per item.

use std::sync::Arc;

use futures::StreamExt;
use metaprompt_core::{
    ChatModel, ChatRequest, EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, async_trait,
};
use serde_json::{Value, json};

use crate::api::{self, TemplateKeys};
use crate::client::FutureAgiClient;

/// Input keys of common templates, from FutureAGI's open-source catalogue: used to check a key
/// map before anything is called (a dry run); a real run checks the live catalogue too.
pub const KNOWN_TEMPLATES: &[(&str, &[&str], &[&str])] = &[
    ("summary_quality", &["input", "output"], &[]),
    ("is_good_summary", &["input", "output"], &[]),
    ("completeness", &["input", "output"], &[]),
    ("translation_accuracy", &["input", "output"], &[]),
    ("task_completion", &["input", "output"], &[]),
    ("is_helpful", &["input", "output"], &[]),
    (
        "factual_accuracy",
        &["input", "output", "context"],
        &["input"],
    ),
    ("groundedness", &["input", "output", "context"], &["input"]),
    (
        "detect_hallucination",
        &["input", "output", "context"],
        &["input"],
    ),
    ("context_adherence", &["output", "context"], &[]),
    (
        "ground_truth_match",
        &["generated_value", "expected_value"],
        &[],
    ),
    ("answer_similarity", &["expected_response", "response"], &[]),
    ("levenshtein_similarity", &["output", "expected"], &[]),
    ("fuzzy_match", &["output", "expected"], &[]),
    ("bleu_score", &["reference", "hypothesis"], &[]),
    ("rouge_score", &["reference", "hypothesis"], &[]),
    ("toxicity", &["output"], &[]),
    ("tone", &["output"], &[]),
    ("is_concise", &["output"], &[]),
    ("is_polite", &["output"], &[]),
];

/// The key map does not match the template's inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "template `{template}` takes exactly the inputs {}{}; the key map gives {}. Map each of the template's inputs (e.g. `{} = \"generated_output\"`) and nothing else",
    list(.required),
    optional_note(.optional),
    list(.mapped),
    .required.first().map_or("output", String::as_str)
)]
pub struct KeyMismatch {
    /// The template.
    pub template: String,
    /// Its required inputs.
    pub required: Vec<String>,
    /// Inputs it takes but does not need.
    pub optional: Vec<String>,
    /// What the key map names.
    pub mapped: Vec<String>,
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        return "(none)".into();
    }
    v.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn optional_note(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!(" (of which {} may be left out)", list(v))
    }
}

/// Checks a key map's names against a template's inputs.
pub fn check_keys(
    template: &str,
    keys: &TemplateKeysView<'_>,
    mapped: &[String],
) -> Result<(), KeyMismatch> {
    let needed: Vec<&String> = keys
        .required
        .iter()
        .filter(|k| !keys.optional.contains(k))
        .collect();
    let ok = needed.iter().all(|k| mapped.contains(k))
        && mapped
            .iter()
            .all(|m| keys.required.contains(m) || keys.optional.contains(m));
    if ok {
        return Ok(());
    }
    let mut mapped = mapped.to_vec();
    mapped.sort();
    Err(KeyMismatch {
        template: template.to_string(),
        required: keys.required.to_vec(),
        optional: keys.optional.to_vec(),
        mapped,
    })
}

/// A template's inputs, borrowed.
pub struct TemplateKeysView<'a> {
    /// Every input it takes.
    pub required: &'a [String],
    /// Those it can do without.
    pub optional: &'a [String],
}

/// The known inputs of a template, when this crate knows it.
pub fn known_keys(template: &str) -> Option<(Vec<String>, Vec<String>)> {
    KNOWN_TEMPLATES
        .iter()
        .find(|(n, _, _)| *n == template)
        .map(|(_, r, o)| {
            (
                r.iter().map(|s| s.to_string()).collect(),
                o.iter().map(|s| s.to_string()).collect(),
            )
        })
}

/// A FutureAGI eval template as an evaluator.
#[derive(Clone)]
pub struct FutureAgiEvaluator {
    name: String,
    template: String,
    eval_model: String,
    client: FutureAgiClient,
    model: Arc<dyn ChatModel>,
    keys: Vec<String>,
    max_concurrency: Option<usize>,
}

impl std::fmt::Debug for FutureAgiEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureAgiEvaluator")
            .field("template", &self.template)
            .field("model", &self.eval_model)
            .finish()
    }
}

impl FutureAgiEvaluator {
    /// Scores with `template` on `eval_model` (e.g. `turing_flash`), sending the evaluator
    /// inputs named `keys` (the key map's names, which are the template's inputs).
    pub fn new(
        client: FutureAgiClient,
        template: impl Into<String>,
        eval_model: impl Into<String>,
        keys: Vec<String>,
    ) -> Self {
        let template = template.into();
        FutureAgiEvaluator {
            name: format!("futureagi:{template}"),
            model: Arc::new(client.clone()),
            client,
            template,
            eval_model: eval_model.into(),
            keys,
            max_concurrency: None,
        }
    }

    /// Caps how many items are scored at once (default: no cap of its own).
    pub fn with_max_concurrency(mut self, n: Option<usize>) -> Self {
        self.max_concurrency = n.map(|n| n.max(1));
        self
    }

    /// Checks the key map against the live catalogue (one `get-evals` call, cached by the
    /// client), before any evaluation is made. A template the catalogue lacks is an error too.
    pub async fn check(&self) -> Result<(), crate::CheckError> {
        let catalogue = self
            .client
            .catalogue()
            .await
            .map_err(crate::CheckError::Catalogue)?;
        let Some((_, keys)) = catalogue.iter().find(|(n, _)| *n == self.template) else {
            let mut names: Vec<&str> = catalogue.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            return Err(crate::CheckError::UnknownTemplate(
                self.template.clone(),
                names
                    .iter()
                    .take(40)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        };
        let TemplateKeys { required, optional } = keys;
        check_keys(
            &self.template,
            &TemplateKeysView { required, optional },
            &self.keys,
        )
        .map_err(crate::CheckError::Keys)
    }

    /// The request for one item.
    pub fn request(&self, input: &EvalInput) -> ChatRequest {
        let mut inputs = serde_json::Map::new();
        for k in &self.keys {
            let v = match input.get(k) {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    Value::Array(items.clone())
                }
                Some(Value::Null) | None => Value::String(String::new()),
                // Objects and mixed lists go as JSON text, as the API takes strings only.
                Some(other) => Value::String(other.to_string()),
            };
            inputs.insert(k.clone(), v);
        }
        let call = json!({"eval_name": self.template, "inputs": inputs, "model": self.eval_model});
        ChatRequest::user(call.to_string())
    }

    async fn one(&self, input: &EvalInput) -> EvalResult {
        let resp = match self.model.complete(self.request(input)).await {
            Ok(r) => r,
            Err(e) => return EvalResult::error(format!("FutureAGI call failed: {e}")),
        };
        let v: Value = serde_json::from_str(&resp.text).unwrap_or(Value::Null);
        let reason = v["reason"].as_str().unwrap_or("").to_string();
        match api::score(&v["output"]) {
            Some(s) => EvalResult::new(s, reason).unwrap_or_else(|_| {
                EvalResult::error("FutureAGI returned a score that is not a number")
            }),
            None => EvalResult::error(format!(
                "FutureAGI returned no score (output {}){}",
                v["output"],
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            )),
        }
    }
}

#[async_trait]
impl Evaluator for FutureAgiEvaluator {
    fn name(&self) -> &str {
        &self.name
    }

    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        let mut e = self.clone();
        e.model = layer(self.model.clone());
        ModelUse::Layered(Arc::new(e))
    }

    fn model_calls_per_item(&self) -> u32 {
        1
    }

    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let mut out: Vec<Option<EvalResult>> = vec![None; inputs.len()];
        let calls: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| async move { (i, self.one(input).await) })
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
