//! `result.json`: the contract, built from an `OptimizeResult` (the CLI's run directory and
//! the Python package's result are the same document).

use crate::{ExampleReport, OptimizeResult};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// One child of a round in `result.json` (one per round when `proposals_per_round = 1`).
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RoundDoc {
    /// 1-based round.
    round: u32,
    /// The child's number within its round (0-based).
    child: u32,
    /// The candidate's id in the pool, when it was scored on val.
    candidate_id: Option<u32>,
    /// The candidates it was made from.
    parents: Vec<u32>,
    /// `rewrite`, `demos` or `merge`.
    mutation: Value,
    /// The teacher's hypothesis (for a demos child: which demonstrations).
    hypothesis: String,
    /// The instructions that were tested (empty when the child failed).
    candidate_prompt: String,
    /// The train rows shown as demonstrations.
    demo_ids: Vec<String>,
    /// The candidate's mean score on its minibatch.
    minibatch_score: Option<f64>,
    /// The parent's mean score on the same minibatch.
    parent_minibatch_score: Option<f64>,
    /// The candidate's val score, when it passed the minibatch gate.
    val_score: Option<f64>,
    /// Whether it became the best prompt.
    accepted: bool,
    /// Whether it joined the pool.
    pooled: bool,
    /// Why.
    reason: String,
    /// The teacher's analysis.
    analysis: String,
    /// Whether dropped inputs were appended by repair.
    repaired: bool,
    /// Whether the child produced no usable candidate.
    failed: bool,
}

/// Spending in `result.json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UsageDoc {
    /// Student calls made (cache hits excluded).
    student_calls: u64,
    /// Teacher calls made.
    teacher_calls: u64,
    /// Judge calls made (LLM judges, hosted evaluators).
    judge_calls: u64,
    /// Requests of every role answered by the cache.
    cache_hits: u64,
    /// Input tokens of paid calls.
    input_tokens: u64,
    /// Output tokens of paid calls.
    output_tokens: u64,
    /// Cost in USD at the models' prices.
    cost_usd: f64,
    /// Calls, cache hits, errors, tokens and cost of each role.
    by_role: Value,
}

/// Best − initial on test, row by row.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TestDeltaDoc {
    /// Mean of (best − initial) per test row.
    difference: f64,
    /// Its 95% interval [lo, hi].
    ci95: [f64; 2],
    /// Whether the interval lies above zero (lo > 0).
    significant: bool,
    /// Test rows where the best prompt scored higher.
    wins: usize,
    /// Test rows where it scored lower.
    losses: usize,
    /// Test rows where both scored the same.
    ties: usize,
}

/// One message of a chat prompt.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct MessageDoc {
    /// `system`, `user` or `assistant`.
    role: String,
    /// The message's template.
    content: String,
}

/// `result.json`. The fields up to `wall_seconds` are a contract; fields are only ever added.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ResultDoc {
    /// The best prompt (by val score), demonstrations included; a chat prompt's messages
    /// under role headers.
    best_prompt: String,
    /// The best prompt's val score.
    final_score: f64,
    /// The best initial prompt's val score.
    initial_score: f64,
    /// The best prompt's test score; null without a test split.
    test_score: Option<f64>,
    /// Its 95% interval [lo, hi]; null without a test split.
    test_ci95: Option<[f64; 2]>,
    /// One entry per child of every round.
    rounds: Vec<RoundDoc>,
    /// Spending.
    usage: UsageDoc,
    /// completed, target_reached, no_improvement, budget_calls|tokens|cost|duration, interrupted.
    stop_reason: String,
    /// Wall time in seconds, including time before a resume.
    wall_seconds: f64,
    /// The run's id.
    run_id: String,
    /// The best initial prompt.
    initial_prompt: String,
    /// Val score of every initial prompt.
    initial_scores: Vec<f64>,
    /// The best initial prompt's test score.
    initial_test_score: Option<f64>,
    /// Its 95% interval.
    initial_test_ci95: Option<[f64; 2]>,
    /// Rows per split.
    splits: SplitsDoc,
    /// The best prompt's lowest-scoring val examples.
    worst_examples: Vec<ExampleDoc>,
    /// The best prompt's messages, in order (one user message for a one-string prompt).
    best_messages: Vec<MessageDoc>,
    /// The best initial prompt's messages.
    initial_messages: Vec<MessageDoc>,
    /// The train rows the best prompt shows as demonstrations.
    best_demo_ids: Vec<String>,
    /// Whether the best prompt is a repaired rewrite (the teacher dropped inputs and the
    /// engine appended them).
    best_repaired: bool,
    /// Best − initial on test, row by row, with its interval; null without test scores.
    test_delta: Option<TestDeltaDoc>,
    /// The one-line claim: "improved by X [lo, hi] on test" only when significant.
    verdict: String,
    /// The best prompt's val score minus its test score.
    val_test_gap: Option<f64>,
    /// Every candidate of the pool, with the path to the best marked.
    lineage: Value,
    /// The initial and the best prompt's answers on every test row (also in
    /// `test_outputs.jsonl`); empty without test scores.
    test_outputs: Vec<TestRowDoc>,
}

/// One test row's answers under the initial and the best prompt.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TestRowDoc {
    row_id: String,
    /// The row's values of the prompt's variables (the best prompt's).
    inputs: serde_json::Map<String, Value>,
    expected: Option<String>,
    initial: AnswerDoc,
    best: AnswerDoc,
}

/// A prompt's answer on one row.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AnswerDoc {
    output: String,
    score: f64,
    reason: String,
    /// The row failed (no answer, or the evaluator failed) rather than scored.
    error: bool,
}

/// Rows per split.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SplitsDoc {
    train: usize,
    val: usize,
    test: usize,
}

/// One row's answer and score: a low-scoring example, or a line of `eval --outputs`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExampleDoc {
    row_id: String,
    /// The row's values of the prompt's variables.
    inputs: serde_json::Map<String, Value>,
    output: String,
    expected: Option<String>,
    score: f64,
    reason: String,
    /// The row failed (no answer, or the evaluator failed) rather than scored.
    error: bool,
}

impl From<&ExampleReport> for ExampleDoc {
    fn from(e: &ExampleReport) -> Self {
        ExampleDoc {
            row_id: e.row_id.clone(),
            inputs: e.inputs.clone(),
            output: e.output.clone(),
            expected: e.expected.clone(),
            score: e.score,
            reason: e.reason.clone(),
            error: e.error,
        }
    }
}

impl From<&ExampleReport> for AnswerDoc {
    fn from(e: &ExampleReport) -> Self {
        AnswerDoc {
            output: e.output.clone(),
            score: e.score,
            reason: e.reason.clone(),
            error: e.error,
        }
    }
}

/// The JSON schema of `result.json`.
pub fn result_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(ResultDoc)).unwrap_or_default()
}

fn messages(p: &metaprompt_core::Prompt) -> Vec<MessageDoc> {
    p.messages()
        .iter()
        .map(|m| MessageDoc {
            role: m.role.to_string(),
            content: m.template.source().to_string(),
        })
        .collect()
}

/// The result document: `result.json`, whose schema [`result_schema`] gives.
pub fn result_json(r: &OptimizeResult) -> Value {
    let pair = |c: Option<(f64, f64)>| c.map(|(a, b)| [a, b]);
    let doc = ResultDoc {
        best_prompt: r.best_prompt.text(),
        final_score: r.final_score,
        initial_score: r.initial_score,
        test_score: r.test_score,
        test_ci95: pair(r.test_ci95),
        rounds: r
            .history
            .iter()
            .map(|h| RoundDoc {
                round: h.round,
                child: h.child,
                candidate_id: h.candidate_id,
                parents: h.parents.clone(),
                mutation: serde_json::to_value(h.mutation).unwrap_or_default(),
                hypothesis: h.hypothesis.clone(),
                candidate_prompt: h.candidate_prompt.clone(),
                demo_ids: h.demo_ids.clone(),
                minibatch_score: h.minibatch_score,
                parent_minibatch_score: h.parent_minibatch_score,
                val_score: h.val_score,
                accepted: h.accepted,
                pooled: h.pooled,
                reason: h.reason.clone(),
                analysis: h.analysis.clone(),
                repaired: h.repaired,
                failed: h.failed,
            })
            .collect(),
        usage: UsageDoc {
            student_calls: r.usage.student_calls,
            teacher_calls: r.usage.teacher_calls,
            judge_calls: r.usage.judge_calls,
            cache_hits: r.usage.cache_hits,
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            cost_usd: r.usage.cost_usd,
            by_role: serde_json::to_value(r.usage.by_role).unwrap_or_default(),
        },
        stop_reason: r.stop_reason.to_string(),
        wall_seconds: r.wall_seconds,
        run_id: r.run_id.clone(),
        initial_prompt: r.initial_prompt.text(),
        initial_scores: r.initial_scores.clone(),
        initial_test_score: r.initial_test_score,
        initial_test_ci95: pair(r.initial_test_ci95),
        splits: SplitsDoc {
            train: r.splits.0,
            val: r.splits.1,
            test: r.splits.2,
        },
        worst_examples: r.worst_examples.iter().map(ExampleDoc::from).collect(),
        best_repaired: r.best_repaired,
        best_messages: messages(&r.best_prompt),
        initial_messages: messages(&r.initial_prompt),
        best_demo_ids: r.best_demos.iter().map(|d| d.row_id.clone()).collect(),
        test_delta: r.test_delta.map(|d| TestDeltaDoc {
            difference: d.difference,
            ci95: [d.ci95.0, d.ci95.1],
            significant: d.significant,
            wins: d.wins,
            losses: d.losses,
            ties: d.ties,
        }),
        verdict: r.verdict(),
        val_test_gap: r.val_test_gap(),
        lineage: serde_json::to_value(&r.lineage).unwrap_or_default(),
        test_outputs: r
            .test_outputs
            .iter()
            .map(|p| TestRowDoc {
                row_id: p.best.row_id.clone(),
                inputs: p.best.inputs.clone(),
                expected: p.best.expected.clone(),
                initial: AnswerDoc::from(&p.initial),
                best: AnswerDoc::from(&p.best),
            })
            .collect(),
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// The messages of a result document's prompt (`best` or `initial`): the `*_messages` field,
/// or, in a document written before chat prompts, one user message holding the text.
pub fn prompt_messages(d: &Value, which: &str) -> Vec<(String, String)> {
    if let Some(list) = d[format!("{which}_messages")].as_array() {
        return list
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap_or("user").to_string(),
                    m["content"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
    }
    vec![(
        "user".into(),
        d[format!("{which}_prompt")]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )]
}
