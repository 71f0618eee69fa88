//! What a run returns.

use metaprompt_core::run::{RoundRecord, StopReason};
use metaprompt_core::{CallRole, Generator, MeterSnapshot, Prompt, RoleSpend};
use serde::Serialize;

use crate::demos::Demo;
use crate::evaluate::Outcome;
use crate::pool::Candidate;
use crate::stats::TestDelta;

/// Calls, tokens and money, per role and in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct UsageReport {
    /// Student calls made.
    pub student_calls: u64,
    /// Teacher calls made.
    pub teacher_calls: u64,
    /// Judge calls made (LLM judges and hosted evaluators).
    pub judge_calls: u64,
    /// Requests of every role answered from the cache.
    pub cache_hits: u64,
    /// Input tokens of paid calls.
    pub input_tokens: u64,
    /// Output tokens of paid calls.
    pub output_tokens: u64,
    /// Cost at the models' prices.
    pub cost_usd: f64,
    /// The same, role by role.
    pub by_role: ByRole,
}

/// Spending role by role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ByRole {
    /// The student's.
    pub student: RoleSpend,
    /// The teacher's.
    pub teacher: RoleSpend,
    /// The judges'.
    pub judge: RoleSpend,
}

impl From<&MeterSnapshot> for UsageReport {
    fn from(s: &MeterSnapshot) -> Self {
        let usage = s.usage();
        UsageReport {
            student_calls: s.role(CallRole::Student).calls,
            teacher_calls: s.role(CallRole::Teacher).calls,
            judge_calls: s.role(CallRole::Judge).calls,
            cache_hits: s.cache_hits(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: s.cost_usd(),
            by_role: ByRole {
                student: s.student,
                teacher: s.teacher,
                judge: s.judge,
            },
        }
    }
}

/// One row's answer and score under a prompt: what `metaprompt eval --outputs` writes, the
/// run's `test_outputs.jsonl` pairs and the reports show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleReport {
    /// The row.
    pub row_id: String,
    /// The row's values of the prompt's variables.
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// The student's output.
    pub output: String,
    /// The reference, when the mapper provides one.
    pub expected: Option<String>,
    /// Score.
    pub score: f64,
    /// The evaluator's reason (or why the row could not be scored).
    pub reason: String,
    /// Whether the row failed (no answer, or the evaluator failed) rather than scored.
    pub error: bool,
}

impl ExampleReport {
    /// The row's answer and score under `prompt`, for reports and `eval --outputs`.
    pub(crate) fn of(o: &Outcome, prompt: &Prompt) -> ExampleReport {
        let inputs = prompt
            .variables()
            .into_iter()
            .filter_map(|v| Some((v.to_string(), o.row.lookup(v)?.clone())))
            .collect();
        ExampleReport {
            row_id: o.row.id().to_string(),
            inputs,
            output: o.output.clone(),
            expected: o.expected.clone(),
            score: o.result.score(),
            reason: o.result.reason().to_string(),
            error: o.result.is_error(),
        }
    }
}

/// The initial and the best prompt's answers on one test row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestPair {
    /// The best initial prompt's answer.
    pub initial: ExampleReport,
    /// The best prompt's answer.
    pub best: ExampleReport,
}

/// One candidate of the pool, for the lineage of the best prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageNode {
    /// The candidate's id.
    pub id: u32,
    /// The ids it was made from.
    pub parents: Vec<u32>,
    /// How it was made (`initial`, `rewrite`, `demos`, `merge`).
    pub mutation: String,
    /// The round it was made in.
    pub round: u32,
    /// Its mean val score.
    pub val_score: f64,
    /// Its demonstrations' train row ids.
    pub demo_ids: Vec<String>,
    /// Whether it is on the path from an initial prompt to the best one.
    pub on_best_path: bool,
    /// Whether it is the best.
    pub best: bool,
    /// Whether the engine's repair appended inputs the teacher's rewrite had dropped.
    pub repaired: bool,
}

/// Every pooled candidate, with the path to the best marked.
pub(crate) fn lineage(pool: &[Candidate], best: usize) -> Vec<LineageNode> {
    let mut on_path = vec![false; pool.len()];
    let mut stack = vec![best];
    while let Some(i) = stack.pop() {
        if i >= pool.len() || on_path[i] {
            continue;
        }
        on_path[i] = true;
        for p in &pool[i].parents {
            stack.push(*p as usize);
        }
    }
    pool.iter()
        .enumerate()
        .map(|(i, c)| LineageNode {
            id: c.id,
            parents: c.parents.clone(),
            mutation: c.mutation.map_or_else(
                || "initial".to_string(),
                |m| {
                    serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                },
            ),
            round: c.round,
            val_score: c.val_mean,
            demo_ids: c.demos.iter().map(|d| d.row_id.clone()).collect(),
            on_best_path: on_path[i],
            best: i == best,
            repaired: c.repaired,
        })
        .collect()
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct OptimizeResult {
    /// The run's id.
    pub run_id: String,
    /// The best prompt's val score.
    pub final_score: f64,
    /// The best initial prompt's val score.
    pub initial_score: f64,
    /// The best prompt's test score (none without a test split or when interrupted).
    pub test_score: Option<f64>,
    /// Its 95% interval.
    pub test_ci95: Option<(f64, f64)>,
    /// The best initial prompt's test score, for comparison.
    pub initial_test_score: Option<f64>,
    /// Its 95% interval.
    pub initial_test_ci95: Option<(f64, f64)>,
    /// Best − initial on test, row by row, with its 95% interval: whether the gain is real.
    pub test_delta: Option<TestDelta>,
    /// The best prompt, its demonstrations written in: what to ship.
    pub best_prompt: Prompt,
    /// The best prompt's demonstrations (train rows).
    pub best_demos: Vec<Demo>,
    /// Whether the best prompt is a repaired rewrite: the teacher dropped inputs and the
    /// engine appended them (read it before adopting it).
    pub best_repaired: bool,
    /// The best initial prompt.
    pub initial_prompt: Prompt,
    /// The student with the best prompt (`best_generator.prompt_template()`).
    pub best_generator: Generator,
    /// Val score of each initial prompt.
    pub initial_scores: Vec<f64>,
    /// One record per child of every round.
    pub history: Vec<RoundRecord>,
    /// Every candidate of the pool, with the path to the best marked.
    pub lineage: Vec<LineageNode>,
    /// Spending.
    pub usage: UsageReport,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// Wall time, including time before a resume.
    pub wall_seconds: f64,
    /// The best prompt's lowest-scoring val examples.
    pub worst_examples: Vec<ExampleReport>,
    /// The initial and the best prompt's answers on every test row, in the split's order
    /// (empty when not scored on test).
    pub test_outputs: Vec<TestPair>,
    /// Sizes of train, val and test.
    pub splits: (usize, usize, usize),
}

impl OptimizeResult {
    /// The best prompt's val score minus its test score, when both are known: how much of the
    /// val score was selection on val.
    pub fn val_test_gap(&self) -> Option<f64> {
        self.test_score.map(|t| self.final_score - t)
    }

    /// One line saying honestly what the run found on test.
    pub fn verdict(&self) -> String {
        let verdict = match &self.test_delta {
            Some(d) if d.significant => format!(
                "improved by {:+.3} [{:+.3}, {:+.3}] on test ({} rows better, {} worse)",
                d.difference, d.ci95.0, d.ci95.1, d.wins, d.losses
            ),
            Some(d) => format!(
                "no significant difference on test: {:+.3} [{:+.3}, {:+.3}] ({} rows better, {} worse, {} tied)",
                d.difference, d.ci95.0, d.ci95.1, d.wins, d.losses, d.ties
            ),
            None => "not scored on test".to_string(),
        };
        if self.best_repaired {
            format!(
                "{verdict}; the best prompt is a repaired rewrite (the teacher dropped inputs and the engine appended them)"
            )
        } else {
            verdict
        }
    }
}

/// The projected work of a run (see `MetaPromptOptimizer::dry_run`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    /// Student calls of a run without refusals, every candidate reaching val, no cache.
    pub student_calls: u64,
    /// Teacher calls of such a run.
    pub teacher_calls: u64,
    /// Most teacher calls any run can make (every rewrite re-asked).
    pub teacher_calls_max: u64,
    /// Judge calls of such a run (one per student output an LLM judge or hosted evaluator
    /// scores).
    pub judge_calls: u64,
    /// Rows in train.
    pub train: usize,
    /// Rows in val.
    pub val: usize,
    /// Rows in test.
    pub test: usize,
    /// An upper bound on cost, when prices are known (every call live).
    pub cost_upper_bound_usd: Option<f64>,
    /// Of the student and judge calls, those that go to provider batches (whole-split
    /// scoring of models with a batch executor, as `batch` says).
    pub batched_calls: u64,
    /// The same bound with those calls at the batch price, when there are any.
    pub batch_cost_upper_bound_usd: Option<f64>,
    /// Warnings about the data.
    pub warnings: Vec<String>,
}

/// One prompt's score on a split (see `MetaPromptOptimizer::evaluate_prompt`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptScore {
    /// `train`, `val`, `test` or `all`.
    pub split: String,
    /// Mean score.
    pub score: f64,
    /// 95% interval.
    pub ci95: Option<(f64, f64)>,
    /// Rows scored.
    pub n: usize,
    /// Items that failed.
    pub errors: usize,
    /// Spending.
    pub usage: UsageReport,
    /// Every row's answer and score, in the split's order.
    pub rows: Vec<ExampleReport>,
}
