//! Evaluators built from other evaluators or from closures.

use std::future::Future;
use std::sync::Arc;

use metaprompt_core::{
    ChatModel, EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, async_trait,
};

/// The parts with `layer` around their models, or `None` when no part calls a model.
fn layered(
    parts: &[Arc<dyn Evaluator>],
    layer: &ModelLayer<'_>,
) -> Option<Vec<Arc<dyn Evaluator>>> {
    let wrapped: Vec<ModelUse> = parts.iter().map(|p| p.with_model_layer(layer)).collect();
    if wrapped.iter().all(|w| matches!(w, ModelUse::None)) {
        return None;
    }
    Some(
        wrapped
            .into_iter()
            .zip(parts)
            .map(|(w, p)| w.or(p))
            .collect(),
    )
}

fn calls_per_item(parts: &[Arc<dyn Evaluator>]) -> u32 {
    parts.iter().map(|p| p.model_calls_per_item()).sum()
}

/// Runs every part once on the whole batch, concurrently.
async fn run_parts(parts: &[Arc<dyn Evaluator>], inputs: &[EvalInput]) -> Vec<Vec<EvalResult>> {
    let runs = parts.iter().map(|p| p.evaluate(inputs));
    let mut results = futures::future::join_all(runs).await;
    // Enforce the contract: one result per input, whatever a part returned.
    for r in &mut results {
        r.resize_with(inputs.len(), || {
            EvalResult::error("the evaluator returned too few results")
        });
    }
    results
}

fn combine(
    parts: &[Arc<dyn Evaluator>],
    results: &[Vec<EvalResult>],
    i: usize,
    score: impl Fn(&[f64]) -> f64,
) -> EvalResult {
    let items: Vec<&EvalResult> = results.iter().map(|r| &r[i]).collect();
    let reason = parts
        .iter()
        .zip(&items)
        .map(|(p, r)| format!("{}: {}", p.name(), r.reason()))
        .collect::<Vec<_>>()
        .join(" | ");
    if items.iter().any(|r| r.is_error()) {
        return EvalResult::error(reason);
    }
    let scores: Vec<f64> = items.iter().map(|r| r.score()).collect();
    EvalResult::new(score(&scores), reason)
        .unwrap_or_else(|_| EvalResult::error("combined score is NaN"))
}

/// The weighted mean of several evaluators; reasons are joined. An item that errors in any
/// part is an error.
pub struct Weighted {
    parts: Vec<Arc<dyn Evaluator>>,
    weights: Vec<f64>,
}

impl Weighted {
    /// Parts with their weights (non-negative, not all zero).
    pub fn new(parts: Vec<(Arc<dyn Evaluator>, f64)>) -> Result<Self, String> {
        if parts.is_empty() {
            return Err("a weighted evaluator needs at least one part".into());
        }
        if parts.iter().any(|(_, w)| !w.is_finite() || *w < 0.0)
            || parts.iter().all(|(_, w)| *w == 0.0)
        {
            return Err("weights must be non-negative numbers, not all zero".into());
        }
        let (parts, weights) = parts.into_iter().unzip();
        Ok(Weighted { parts, weights })
    }
}

#[async_trait]
impl Evaluator for Weighted {
    fn name(&self) -> &str {
        "weighted"
    }

    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        match layered(&self.parts, layer) {
            Some(parts) => ModelUse::Layered(Arc::new(Weighted {
                parts,
                weights: self.weights.clone(),
            })),
            None => ModelUse::None,
        }
    }

    fn model_calls_per_item(&self) -> u32 {
        calls_per_item(&self.parts)
    }

    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let results = run_parts(&self.parts, inputs).await;
        let total: f64 = self.weights.iter().sum();
        (0..inputs.len())
            .map(|i| {
                combine(&self.parts, &results, i, |s| {
                    s.iter().zip(&self.weights).map(|(s, w)| s * w).sum::<f64>() / total
                })
            })
            .collect()
    }
}

/// A gate: the minimum of its parts' scores (with 0/1 parts, passes only if all pass).
pub struct AllOf {
    parts: Vec<Arc<dyn Evaluator>>,
}

impl AllOf {
    /// All of these.
    pub fn new(parts: Vec<Arc<dyn Evaluator>>) -> Self {
        AllOf { parts }
    }
}

#[async_trait]
impl Evaluator for AllOf {
    fn name(&self) -> &str {
        "all_of"
    }
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        layered(&self.parts, layer).map_or(ModelUse::None, |p| {
            ModelUse::Layered(Arc::new(AllOf::new(p)))
        })
    }
    fn model_calls_per_item(&self) -> u32 {
        calls_per_item(&self.parts)
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let results = run_parts(&self.parts, inputs).await;
        (0..inputs.len())
            .map(|i| {
                combine(&self.parts, &results, i, |s| {
                    s.iter().copied().fold(1.0, f64::min)
                })
            })
            .collect()
    }
}

/// A gate: the maximum of its parts' scores (with 0/1 parts, passes if any passes).
pub struct AnyOf {
    parts: Vec<Arc<dyn Evaluator>>,
}

impl AnyOf {
    /// Any of these.
    pub fn new(parts: Vec<Arc<dyn Evaluator>>) -> Self {
        AnyOf { parts }
    }
}

#[async_trait]
impl Evaluator for AnyOf {
    fn name(&self) -> &str {
        "any_of"
    }
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        layered(&self.parts, layer).map_or(ModelUse::None, |p| {
            ModelUse::Layered(Arc::new(AnyOf::new(p)))
        })
    }
    fn model_calls_per_item(&self) -> u32 {
        calls_per_item(&self.parts)
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let results = run_parts(&self.parts, inputs).await;
        (0..inputs.len())
            .map(|i| {
                combine(&self.parts, &results, i, |s| {
                    s.iter().copied().fold(0.0, f64::max)
                })
            })
            .collect()
    }
}

/// An evaluator from a closure scoring one item.
///
/// ```
/// use metaprompt_core::{EvalInput, EvalResult, Evaluator};
/// use metaprompt_evals::FnEvaluator;
/// let short = FnEvaluator::new("short", |i: &EvalInput| {
///     let n = i.response().unwrap_or_default().len();
///     EvalResult::pass_fail(n < 10, format!("{n} bytes"))
/// });
/// let r = futures::executor::block_on(short.evaluate(&[EvalInput::default().with("response", "ok")]));
/// assert_eq!(r[0].score(), 1.0);
/// ```
pub struct FnEvaluator<F> {
    name: String,
    f: F,
}

impl<F: Fn(&EvalInput) -> EvalResult + Send + Sync> FnEvaluator<F> {
    /// Wraps a closure.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnEvaluator {
            name: name.into(),
            f,
        }
    }
}

#[async_trait]
impl<F: Fn(&EvalInput) -> EvalResult + Send + Sync> Evaluator for FnEvaluator<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn with_model_layer(&self, _layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::None
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        inputs.iter().map(|i| (self.f)(i)).collect()
    }
}

/// An evaluator from an async closure scoring one item; items run concurrently.
pub struct AsyncFnEvaluator<F> {
    name: String,
    f: F,
}

impl<F, Fut> AsyncFnEvaluator<F>
where
    F: Fn(EvalInput) -> Fut + Send + Sync,
    Fut: Future<Output = EvalResult> + Send,
{
    /// Wraps an async closure.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        AsyncFnEvaluator {
            name: name.into(),
            f,
        }
    }
}

#[async_trait]
impl<F, Fut> Evaluator for AsyncFnEvaluator<F>
where
    F: Fn(EvalInput) -> Fut + Send + Sync,
    Fut: Future<Output = EvalResult> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn with_model_layer(&self, _layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::None
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        futures::future::join_all(inputs.iter().cloned().map(|i| (self.f)(i))).await
    }
}

/// An evaluator from an async closure that scores one item with a model: the closure
/// receives the model, which in a run is the one the engine wrapped in its cache, meter and
/// budget. Items run concurrently.
///
/// ```
/// use std::sync::Arc;
/// use metaprompt_core::{ChatModel, ChatRequest, EvalResult, Evaluator};
/// use metaprompt_evals::ModelEvaluator;
///
/// fn politeness(model: Arc<dyn ChatModel>) -> impl Evaluator {
///     ModelEvaluator::new("polite", model, |model: Arc<dyn ChatModel>, input| async move {
///         let reply = input.response().unwrap_or_default();
///         let question = format!("Is this polite? Answer yes or no.\n{reply}");
///         match model.complete(ChatRequest::user(question)).await {
///             Ok(r) => EvalResult::pass_fail(r.text.trim().starts_with("yes"), r.text),
///             Err(e) => EvalResult::error(e.to_string()),
///         }
///     })
/// }
/// ```
pub struct ModelEvaluator<F> {
    name: String,
    model: Arc<dyn ChatModel>,
    f: Arc<F>,
}

impl<F, Fut> ModelEvaluator<F>
where
    F: Fn(Arc<dyn ChatModel>, EvalInput) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = EvalResult> + Send + 'static,
{
    /// Wraps an async closure and the model it calls.
    pub fn new(name: impl Into<String>, model: Arc<dyn ChatModel>, f: F) -> Self {
        ModelEvaluator {
            name: name.into(),
            model,
            f: Arc::new(f),
        }
    }
}

#[async_trait]
impl<F, Fut> Evaluator for ModelEvaluator<F>
where
    F: Fn(Arc<dyn ChatModel>, EvalInput) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = EvalResult> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::Layered(Arc::new(ModelEvaluator {
            name: self.name.clone(),
            model: layer(self.model.clone()),
            f: self.f.clone(),
        }))
    }
    fn model_calls_per_item(&self) -> u32 {
        1
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let calls = inputs
            .iter()
            .cloned()
            .map(|i| (self.f)(self.model.clone(), i));
        futures::future::join_all(calls).await
    }
}
