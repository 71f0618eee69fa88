#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Whole-split scoring on a batch executor (an in-memory provider): the same scores as live
//! calls, failed lines made live, batch answers metered at the batch price, and a run
//! interrupted while waiting re-attaching to its batch.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use metaprompt_core::testing::{MemoryCache, MemoryCheckpointer};
use metaprompt_core::{
    BatchExecutor, BatchFile, BatchLine, BatchProgress, BatchState, BatchTicket, CancelFlag,
    ChatRequest, ChatResponse, Checkpointer, FinishReason, ModelError, Price, Usage, async_trait,
};
use metaprompt_data::SplitConfig;
use metaprompt_engine::{
    BatchMode, DataSource, MetaPromptOptimizer, OptimizeRequest, OptimizeResult,
};
use serde_json::{Value, json};

/// A provider that answers each line like the scripted student, after `polls` polls, and
/// fails every `fail_every`-th line.
struct FakeBatch {
    model: &'static str,
    answer_with: fn(&ChatRequest) -> String,
    submitted: AtomicUsize,
    polls: AtomicUsize,
    lines: Mutex<Vec<(String, String)>>,
    fail_every: usize,
    /// Trips this flag at the first poll (a Ctrl-C while the batch runs).
    cancel_at_first_poll: Mutex<Option<CancelFlag>>,
}

impl FakeBatch {
    fn new(fail_every: usize) -> Arc<FakeBatch> {
        FakeBatch::of("student", accuracy_answer, fail_every)
    }

    fn of(
        model: &'static str,
        answer_with: fn(&ChatRequest) -> String,
        fail_every: usize,
    ) -> Arc<FakeBatch> {
        Arc::new(FakeBatch {
            model,
            answer_with,
            submitted: AtomicUsize::new(0),
            polls: AtomicUsize::new(0),
            lines: Mutex::new(Vec::new()),
            fail_every,
            cancel_at_first_poll: Mutex::new(None),
        })
    }
}

#[async_trait]
impl BatchExecutor for FakeBatch {
    fn model_id(&self) -> &str {
        self.model
    }
    fn price(&self) -> Option<Price> {
        Some(Price {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
            per_call: 0.5,
        })
    }
    fn encode(&self, custom_id: &str, request: &ChatRequest) -> Result<String, ModelError> {
        Ok(
            json!({"custom_id": custom_id, "body": serde_json::to_value(request).unwrap()})
                .to_string(),
        )
    }
    fn decode(&self, line: &str) -> Option<BatchLine> {
        let v: Value = serde_json::from_str(line).ok()?;
        Some(BatchLine {
            custom_id: v["custom_id"].as_str()?.to_string(),
            outcome: match v["text"].as_str() {
                Some(t) => Ok(json!({"text": t})),
                None => Err("failed".into()),
            },
        })
    }
    fn answer(&self, _: &ChatRequest, body: &Value) -> Result<ChatResponse, ModelError> {
        Ok(ChatResponse {
            text: body["text"].as_str().unwrap_or("").to_string(),
            usage: Usage::default(),
            model: "student".into(),
            finish_reason: FinishReason::Stop,
        })
    }
    async fn submit(&self, files: &[BatchFile]) -> Result<BatchTicket, ModelError> {
        let n = self.submitted.fetch_add(1, Ordering::SeqCst);
        let mut lines = self.lines.lock().unwrap();
        for f in files {
            for line in std::fs::read_to_string(&f.path).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let req: ChatRequest = serde_json::from_value(v["body"].clone()).unwrap();
                lines.push((
                    v["custom_id"].as_str().unwrap().to_string(),
                    (self.answer_with)(&req),
                ));
            }
        }
        Ok(BatchTicket {
            model: "student".into(),
            batch_ids: vec![format!("batch_{n}")],
            input_file_ids: vec![format!("file_{n}")],
            lines: lines.len() as u64,
        })
    }
    async fn progress(&self, ticket: &BatchTicket) -> Result<BatchProgress, ModelError> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst);
        if let Some(flag) = self.cancel_at_first_poll.lock().unwrap().take() {
            flag.cancel();
        }
        Ok(BatchProgress {
            state: if n < 2 {
                BatchState::InProgress
            } else {
                BatchState::Completed
            },
            total: ticket.lines,
            completed: 0,
            failed: 0,
            message: None,
        })
    }
    async fn download(&self, _: &BatchTicket, out: &Path) -> Result<(), ModelError> {
        let lines = self.lines.lock().unwrap();
        let mut text = String::new();
        // Reversed: the results' order is not the input's.
        for (i, (id, answer)) in lines.iter().enumerate().rev() {
            let v = if self.fail_every > 0 && i % self.fail_every == 0 {
                json!({"custom_id": id})
            } else {
                json!({"custom_id": id, "text": answer})
            };
            text.push_str(&v.to_string());
            text.push('\n');
        }
        std::fs::write(out, text).unwrap();
        Ok(())
    }
    async fn cancel(&self, _: &BatchTicket) -> Result<(), ModelError> {
        Ok(())
    }
}

fn batch_request(
    student: Arc<metaprompt_core::testing::ScriptedModel>,
    ex: Arc<FakeBatch>,
) -> metaprompt_engine::OptimizeRequest {
    let mut r = request_on(student, dataset(1000), 1);
    r.data = DataSource::Dataset(
        dataset(1000),
        SplitConfig {
            train: 0.2,
            val: 0.6,
            test: 0.2,
            seed: 3,
            stratify_by: None,
        },
    );
    r.config.batch = BatchMode::Auto;
    r.config.batch_min_calls = 100;
    r.config.batch_poll_secs = 0.1;
    r.batch = vec![ex];
    r.run_id = Some("batched".into());
    r
}

fn teacher() -> Arc<metaprompt_core::testing::ScriptedModel> {
    Arc::new(
        metaprompt_core::testing::ScriptedModel::new("teacher")
            .with_handler(|_| Ok(rewrite("rule a", "RULE-A\n{text}"))),
    )
}

/// A whole run with the scripted teacher and an empty cache.
async fn run_fresh(req: OptimizeRequest) -> OptimizeResult {
    MetaPromptOptimizer::builder()
        .teacher(teacher())
        .cache(Arc::new(MemoryCache::new()))
        .build()
        .unwrap()
        .optimize(req)
        .await
        .unwrap()
}

#[tokio::test]
async fn batch_scores_equal_live_scores_and_failed_lines_go_live() {
    let mut live_req = batch_request(accuracy_student(), FakeBatch::new(0));
    live_req.batch.clear();
    let live = run_fresh(live_req).await;
    let student = accuracy_student();
    let ex = FakeBatch::new(10);
    let res = run_fresh(batch_request(student.clone(), ex.clone())).await;
    assert_eq!(res.initial_score, live.initial_score);
    assert_eq!(res.final_score, live.final_score);
    assert_eq!(res.test_score, live.test_score);
    // Baseline val, the child's val, test for the initial and the best prompt: four batches.
    assert_eq!(ex.submitted.load(Ordering::SeqCst), 4);
    let spend = &res.usage.by_role.student;
    let batched = spend.batched;
    assert!(batched > 0);
    // A tenth of the lines failed and were made live; every row was answered once.
    assert_eq!(
        spend.calls, live.usage.by_role.student.calls,
        "as many calls as the live run"
    );
    let live_calls = student.call_count() as u64;
    assert_eq!(live_calls + batched, spend.calls);
    assert!(
        live_calls < spend.calls / 3,
        "most calls went to batches: {live_calls} live"
    );
    // Batch calls cost the batch price (0.5 each here); the live ones cost nothing.
    assert!((spend.cost_usd - 0.5 * batched as f64).abs() < 1e-9);
    // Batch answers are read back as calls, not cache hits.
    assert_eq!(spend.cache_hits, live.usage.by_role.student.cache_hits);
}

#[tokio::test]
async fn a_run_stopped_while_its_batch_runs_re_attaches_on_resume() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let cache = Arc::new(MemoryCache::new());
    let ex = FakeBatch::new(0);
    let cancel = CancelFlag::new();
    *ex.cancel_at_first_poll.lock().unwrap() = Some(cancel.clone());
    let first = MetaPromptOptimizer::builder()
        .teacher(teacher())
        .cache(cache.clone())
        .checkpointer(checkpoints.clone())
        .cancel_flag(cancel)
        .build()
        .unwrap()
        .optimize(batch_request(accuracy_student(), ex.clone()))
        .await;
    assert!(first.is_err(), "stopped before the baseline was scored");
    let pending = checkpoints.batches("batched").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, "waiting");
    assert_eq!(pending[0].phase, "baseline");
    // Resume: the same calls, the same fingerprint: the same batch, not a new one.
    let student = accuracy_student();
    let res = MetaPromptOptimizer::builder()
        .teacher(teacher())
        .cache(cache)
        .checkpointer(checkpoints.clone())
        .build()
        .unwrap()
        .optimize(batch_request(student.clone(), ex.clone()))
        .await
        .unwrap();
    assert!(res.test_score.is_some());
    let ids: Vec<String> = checkpoints
        .batches("batched")
        .await
        .unwrap()
        .iter()
        .map(|b| format!("{} {}", b.ticket.batch_ids[0], b.status))
        .collect();
    assert_eq!(ids[0], "batch_0 imported", "{ids:?}");
    // Three more batches (the child's val, test twice); the baseline's was not made again.
    assert_eq!(ex.submitted.load(Ordering::SeqCst), 4, "{ids:?}");
}

fn judge_answer(_: &ChatRequest) -> String {
    r#"{"reasoning": "names the label", "score": 5}"#.to_string()
}

/// The scripted student's answer, marked with its row, so that no two rows share a judge call.
fn marked_answer(req: &ChatRequest) -> String {
    format!("{} (row {})", accuracy_answer(req), row_of(req))
}

#[tokio::test]
async fn a_judge_with_a_batch_executor_is_batched_after_the_students_answers() {
    let judge = Arc::new(
        metaprompt_core::testing::ScriptedModel::new("judge").with_handler(|r| Ok(judge_answer(r))),
    );
    let student = Arc::new(
        metaprompt_core::testing::ScriptedModel::new("student")
            .with_handler(|r| Ok(marked_answer(r))),
    );
    let student_batch = FakeBatch::of("student", marked_answer, 0);
    let judge_batch = FakeBatch::of("judge", judge_answer, 7);
    let mut req = batch_request(student.clone(), student_batch.clone());
    req.config.num_rounds = 0;
    req.evaluator = Arc::new(metaprompt_evals::Judge::custom(
        judge.clone(),
        "Does the response name the reference label?",
    ));
    req.batch.push(judge_batch.clone());
    let res = run_fresh(req).await;
    // The baseline's val and the final test: a student batch, then a judge batch, for each.
    assert_eq!(student_batch.submitted.load(Ordering::SeqCst), 2);
    assert_eq!(student.call_count(), 0, "every student call was batched");
    assert_eq!(judge_batch.submitted.load(Ordering::SeqCst), 2);
    let j = &res.usage.by_role.judge;
    assert!(j.batched > 0);
    // Every seventh judge line failed and was asked live.
    assert_eq!(judge.call_count() as u64, j.calls - j.batched);
    assert!(judge.call_count() > 0);
    assert_eq!(
        res.initial_score, 1.0,
        "the judge gives 5 of 5 to every answer"
    );
}
