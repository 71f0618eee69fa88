#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An evaluator written by a user that calls a model: its calls go through the run's cache,
//! meter and budget like the student's, because the evaluator hands its model to the engine
//! (`with_model_layer` has no default) or receives it from the engine (`ModelEvaluator`).

mod common;

use std::sync::Arc;

use common::*;
use metaprompt_core::testing::{MemoryCache, ScriptedModel};
use metaprompt_core::{
    BudgetKind, ChatModel, ChatRequest, EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse,
    async_trait,
};
use metaprompt_engine::{MetaPromptOptimizer, OptimizeRequest};
use metaprompt_evals::ModelEvaluator;

/// A user's evaluator: asks its model whether the response matches the reference.
#[derive(Clone)]
struct AskTheModel {
    model: Arc<dyn ChatModel>,
}

fn question(input: &EvalInput) -> String {
    format!(
        "Reference: {}\nResponse: {}\nSame label? yes or no.",
        input.expected().unwrap_or_default(),
        input.response().unwrap_or_default()
    )
}

fn verdict(
    reply: Result<metaprompt_core::ChatResponse, metaprompt_core::ModelError>,
) -> EvalResult {
    match reply {
        Ok(r) => EvalResult::pass_fail(r.text == "yes", r.text),
        Err(e) => EvalResult::error(e.to_string()),
    }
}

#[async_trait]
impl Evaluator for AskTheModel {
    fn name(&self) -> &str {
        "ask_the_model"
    }
    fn with_model_layer(&self, layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::Layered(Arc::new(AskTheModel {
            model: layer(self.model.clone()),
        }))
    }
    fn model_calls_per_item(&self) -> u32 {
        1
    }
    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let calls = inputs
            .iter()
            .map(|i| self.model.complete(ChatRequest::user(question(i))));
        futures::future::join_all(calls)
            .await
            .into_iter()
            .map(verdict)
            .collect()
    }
}

/// The model the evaluator asks: "yes" when the response starts with the reference.
fn grader() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("grader").with_handler(|req: &ChatRequest| {
            let text = &req.messages[0].content;
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or("")
                    .to_string()
            };
            let same = field("Response: ").starts_with(&field("Reference: "));
            Ok(if same { "yes" } else { "no" }.to_string())
        }),
    )
}

fn teacher() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("teacher").with_handler(|req: &ChatRequest| {
            let rounds = req.messages[1].content.matches("\nRound ").count();
            Ok(rewrite(
                &format!("h{rounds}"),
                ["RULE-A {text}", "RULE-B {text}"][rounds % 2],
            ))
        }),
    )
}

fn graded(evaluator: Arc<dyn Evaluator>, rounds: u32) -> (Arc<ScriptedModel>, OptimizeRequest) {
    let student = accuracy_student();
    let mut req = request(student.clone(), rounds);
    req.evaluator = evaluator;
    (student, req)
}

async fn cached_and_metered(make: impl Fn(Arc<ScriptedModel>) -> Arc<dyn Evaluator>) {
    let cache = Arc::new(MemoryCache::new());
    let optimizer = |t: Arc<ScriptedModel>| {
        MetaPromptOptimizer::builder()
            .teacher(t)
            .cache(cache.clone())
            .build()
            .unwrap()
    };
    let g = grader();
    let (_, req) = graded(make(g.clone()), 2);
    let first = optimizer(teacher()).optimize(req).await.unwrap();
    assert!(g.call_count() > 0);
    assert_eq!(
        first.usage.judge_calls,
        g.call_count() as u64,
        "every call of the user's evaluator is metered as a judge call"
    );
    assert!(
        first.final_score > 0.0,
        "the grader's verdicts are the scores"
    );

    // The same run again on the warm cache: the evaluator's model is not called once.
    let g2 = grader();
    let (_, req) = graded(make(g2.clone()), 2);
    let again = optimizer(teacher()).optimize(req).await.unwrap();
    assert_eq!(
        g2.call_count(),
        0,
        "every judge request is answered from the cache"
    );
    assert_eq!(again.usage.judge_calls, 0);
    assert!(again.usage.cache_hits > 0);
    assert_eq!(again.best_prompt.text(), first.best_prompt.text());
}

async fn budgeted(make: impl Fn(Arc<ScriptedModel>) -> Arc<dyn Evaluator>) {
    for budget in [20u64, 45] {
        let (g, t) = (grader(), teacher());
        let (s, mut req) = graded(make(g.clone()), 5);
        req.config.max_llm_calls = Some(budget);
        let res = MetaPromptOptimizer::builder()
            .teacher(t.clone())
            .build()
            .unwrap()
            .optimize(req)
            .await;
        let made = (s.call_count() + t.call_count() + g.call_count()) as u64;
        assert!(g.call_count() > 0);
        assert!(made <= budget, "budget {budget}: {made} calls made");
        if let Ok(r) = res {
            assert_eq!(
                r.stop_reason,
                metaprompt_core::run::StopReason::Budget(BudgetKind::Calls)
            );
        }
    }
}

fn hand_written(g: Arc<ScriptedModel>) -> Arc<dyn Evaluator> {
    Arc::new(AskTheModel { model: g })
}

fn from_a_closure(g: Arc<ScriptedModel>) -> Arc<dyn Evaluator> {
    Arc::new(ModelEvaluator::new(
        "closure",
        g,
        |model: Arc<dyn ChatModel>, input: EvalInput| async move {
            verdict(model.complete(ChatRequest::user(question(&input))).await)
        },
    ))
}

#[tokio::test]
async fn a_user_evaluator_calling_a_model_is_cached_and_metered() {
    cached_and_metered(hand_written).await;
    cached_and_metered(from_a_closure).await;
}

#[tokio::test]
async fn a_user_evaluator_calling_a_model_stops_at_the_call_budget() {
    budgeted(hand_written).await;
    budgeted(from_a_closure).await;
}
