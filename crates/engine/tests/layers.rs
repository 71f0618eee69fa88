#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every paid call — student, teacher and judge — is cached, metered and budgeted in one
//! place; a resumed run is the run that was never interrupted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use metaprompt_core::run::StopReason;
use metaprompt_core::testing::{MemoryCache, MemoryCheckpointer, ScriptedModel};
use metaprompt_core::{BudgetKind, ChatRequest, Checkpointer};
use metaprompt_engine::{CancelFlag, MetaPromptOptimizer, OptimizeRequest, OptimizeResult};
use metaprompt_evals::{Judge, Scale};
use serde_json::json;

/// A student that answers like `accuracy_student` and adds a mark of the prompt, so that two
/// prompts never produce the same output (and so never share a judge request).
fn marked_answer(req: &ChatRequest) -> String {
    format!("{} #{}", accuracy_answer(req), whole(req).len() % 997)
}

fn marked_student() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new("student").with_handler(|req: &ChatRequest| Ok(marked_answer(req))))
}

/// A judge model: 5 when the response starts with the reference label, 1 otherwise.
fn judge_model() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("judge").with_handler(|req: &ChatRequest| {
            let user = &req.messages[1].content;
            let part = |title: &str| {
                user.split(&format!("## {title}\n<<<\n"))
                    .nth(1)
                    .and_then(|s| s.split("\n>>>").next())
                    .unwrap_or("")
                    .to_string()
            };
            let good = part("Response to evaluate").starts_with(&part("Reference answer"));
            Ok(json!({"reasoning": "compared", "score": if good { 5 } else { 1 }}).to_string())
        }),
    )
}

/// A teacher whose answer depends on the request only (round by round: better rewrites).
fn teacher() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("teacher").with_handler(|req: &ChatRequest| {
            let rounds = req.messages[1].content.matches("\nRound ").count();
            Ok(rewrite(
                &format!("h{rounds}"),
                [
                    "RULE-A {text}",
                    "HARM {text}",
                    "RULE-B {text}",
                    "RULE-B too {text}",
                ][rounds % 4],
            ))
        }),
    )
}

fn judged(student: Arc<ScriptedModel>, judge: Arc<ScriptedModel>, rounds: u32) -> OptimizeRequest {
    let mut req = request(student, rounds);
    req.evaluator =
        Arc::new(Judge::custom(judge, "Is the label right?").with_scale(Scale::OneToFive));
    req.run_id = Some("judged".into());
    req
}

fn optimizer_with(
    teacher: Arc<ScriptedModel>,
    cache: Arc<MemoryCache>,
    cps: Arc<MemoryCheckpointer>,
    cancel: CancelFlag,
) -> MetaPromptOptimizer {
    MetaPromptOptimizer::builder()
        .teacher(teacher)
        .cache(cache)
        .checkpointer(cps)
        .cancel_flag(cancel)
        .build()
        .unwrap()
}

/// What must be identical between an interrupted-and-resumed run and an uninterrupted one.
fn essence(r: &OptimizeResult) -> serde_json::Value {
    json!({
        "best": r.best_prompt.text(),
        "final": r.final_score,
        "test": r.test_score,
        "delta": r.test_delta.map(|d| d.difference),
        "history": serde_json::to_value(&r.history).unwrap(),
        "stop": r.stop_reason.to_string(),
    })
}

#[tokio::test]
async fn a_resumed_run_with_a_warm_cache_makes_no_call_of_any_role() {
    let (cache, cps) = (
        Arc::new(MemoryCache::new()),
        Arc::new(MemoryCheckpointer::new()),
    );
    let (s, j, t) = (marked_student(), judge_model(), teacher());
    let first = optimizer_with(t.clone(), cache.clone(), cps.clone(), CancelFlag::new())
        .optimize(judged(s.clone(), j.clone(), 3))
        .await
        .unwrap();
    assert!(j.call_count() > 0 && t.call_count() > 0);
    assert_eq!(
        first.usage.judge_calls,
        j.call_count() as u64,
        "judge calls are metered"
    );
    assert_eq!(first.usage.teacher_calls, t.call_count() as u64);
    assert_eq!(first.usage.student_calls, s.call_count() as u64);

    // From the checkpoint after round 2: rounds 1-2 are not redone, round 3 comes from the cache.
    let cp2 = cps.all().into_iter().find(|c| c.round == 2).unwrap();
    let (s2, j2, t2) = (marked_student(), judge_model(), teacher());
    let mut req = judged(s2.clone(), j2.clone(), 3);
    req.resume = Some(cp2);
    let resumed = optimizer_with(t2.clone(), cache.clone(), cps.clone(), CancelFlag::new())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(
        (s2.call_count(), t2.call_count(), j2.call_count()),
        (0, 0, 0)
    );
    assert_eq!(essence(&resumed), essence(&first));

    // A finished run resumed from its last checkpoint: nothing to do, nothing paid.
    let last = cps.load_latest("judged").await.unwrap().unwrap();
    let (s3, j3, t3) = (marked_student(), judge_model(), teacher());
    let mut req = judged(s3.clone(), j3.clone(), 3);
    req.resume = Some(last);
    let again = optimizer_with(t3.clone(), cache, cps, CancelFlag::new())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(
        (s3.call_count(), t3.call_count(), j3.call_count()),
        (0, 0, 0)
    );
    assert_eq!(essence(&again), essence(&first));
}

#[tokio::test]
async fn the_call_budget_covers_student_teacher_and_judge() {
    for budget in [15u64, 40, 77] {
        let (s, j, t) = (marked_student(), judge_model(), teacher());
        let mut req = judged(s.clone(), j.clone(), 5);
        req.config.max_llm_calls = Some(budget);
        let res = MetaPromptOptimizer::builder()
            .teacher(t.clone())
            .build()
            .unwrap()
            .optimize(req)
            .await;
        let made = (s.call_count() + t.call_count() + j.call_count()) as u64;
        assert!(made <= budget, "budget {budget}: {made} calls");
        if let Ok(r) = res {
            assert_eq!(r.stop_reason, StopReason::Budget(BudgetKind::Calls));
            assert_eq!(
                r.usage.student_calls + r.usage.teacher_calls + r.usage.judge_calls,
                made
            );
        }
    }
}

#[tokio::test]
async fn a_dry_run_projects_the_calls_of_all_three_roles() {
    let (s, j) = (marked_student(), judge_model());
    // Each rewrite is better than the last, so every candidate passes the gate and reaches val.
    let t = Arc::new(
        ScriptedModel::new("t")
            .replies([rewrite("a", "RULE-A {text}"), rewrite("b", "RULE-B {text}")]),
    );
    let req = judged(s.clone(), j.clone(), 2);
    let checked = req.check().unwrap();
    let opt = MetaPromptOptimizer::builder()
        .teacher(t.clone())
        .build()
        .unwrap();
    let plan = opt.dry_run(&checked);
    assert_eq!(s.call_count() + t.call_count() + j.call_count(), 0);
    let res = opt.optimize_checked(&checked).await.unwrap();
    assert!(res.history.iter().all(|r| r.val_score.is_some()));
    assert_eq!(plan.student_calls, s.call_count() as u64);
    assert_eq!(plan.teacher_calls, t.call_count() as u64);
    assert_eq!(plan.judge_calls, j.call_count() as u64);
}

/// Cancels the run when the student has been called `at` times.
fn cancelling_student(at: usize, cancel: CancelFlag) -> Arc<ScriptedModel> {
    let n = AtomicUsize::new(0);
    Arc::new(
        ScriptedModel::new("student").with_handler(move |req: &ChatRequest| {
            if n.fetch_add(1, Ordering::SeqCst) + 1 == at {
                cancel.cancel();
            }
            Ok(marked_answer(req))
        }),
    )
}

#[tokio::test]
async fn a_run_interrupted_anywhere_and_resumed_is_the_uninterrupted_run() {
    let reference = {
        let (s, j, t) = (marked_student(), judge_model(), teacher());
        let r = optimizer_with(
            t.clone(),
            Arc::new(MemoryCache::new()),
            Arc::new(MemoryCheckpointer::new()),
            CancelFlag::new(),
        )
        .optimize(judged(s.clone(), j.clone(), 4))
        .await
        .unwrap();
        (r, s.call_count() + j.call_count() + t.call_count())
    };
    // Baseline is 10 val rows; then each round evaluates 8 + 8 (+ 10 on val): cancel in the
    // middle of baselines, minibatches, candidates and val scoring, in several rounds.
    for at in [5, 14, 22, 31, 47, 60] {
        let (cache, cps) = (
            Arc::new(MemoryCache::new()),
            Arc::new(MemoryCheckpointer::new()),
        );
        let cancel = CancelFlag::new();
        let (s, j, t) = (
            cancelling_student(at, cancel.clone()),
            judge_model(),
            teacher(),
        );
        let interrupted = optimizer_with(t.clone(), cache.clone(), cps.clone(), cancel)
            .optimize(judged(s.clone(), j.clone(), 4))
            .await;
        let mut seen: Vec<ChatRequest> = s.requests();
        seen.extend(j.requests());
        seen.extend(t.requests());
        if let Ok(r) = &interrupted {
            assert_eq!(r.stop_reason, StopReason::Interrupted, "cancel at {at}");
        }
        let resume = cps.load_latest("judged").await.unwrap();
        let (s2, j2, t2) = (marked_student(), judge_model(), teacher());
        let mut req = judged(s2.clone(), j2.clone(), 4);
        req.resume = resume;
        let resumed = optimizer_with(t2.clone(), cache, cps, CancelFlag::new())
            .optimize(req)
            .await
            .unwrap();
        assert_eq!(
            essence(&resumed),
            essence(&reference.0),
            "cancelled at student call {at}"
        );
        // No call is made twice: what the resumed run asks was never asked before.
        let mut again: Vec<ChatRequest> = s2.requests();
        again.extend(j2.requests());
        again.extend(t2.requests());
        for r in &again {
            assert!(!seen.contains(r), "cancel at {at}: a request was repeated");
        }
        eprintln!(
            "at {at}: interrupted s{} j{} t{}; resumed s{} j{} t{}",
            s.call_count(),
            j.call_count(),
            t.call_count(),
            s2.call_count(),
            j2.call_count(),
            t2.call_count()
        );
        assert_eq!(
            seen.len() + again.len(),
            reference.1,
            "cancel at {at}: as many calls in all as the uninterrupted run"
        );
    }
}
