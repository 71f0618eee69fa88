//! What a run returns.

use metaprompt_core::run::{RoundRecord, StopReason};
use metaprompt_core::{Generator, PromptTemplate};
use serde::Serialize;

/// Calls, tokens and money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct UsageReport {
    /// Student calls made.
    pub student_calls: u64,
    /// Teacher calls made.
    pub teacher_calls: u64,
    /// Judge calls made (filled in by callers that own the judge's model).
    pub judge_calls: u64,
    /// Student calls answered from the cache.
    pub cache_hits: u64,
    /// Input tokens of paid calls.
    pub input_tokens: u64,
    /// Output tokens of paid calls.
    pub output_tokens: u64,
    /// Cost at the configured prices.
    pub cost_usd: f64,
}

/// A low-scoring example of the best prompt, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleReport {
    /// The row.
    pub row_id: String,
    /// The student's output.
    pub output: String,
    /// The reference, when the mapper provides one.
    pub expected: Option<String>,
    /// Score.
    pub score: f64,
    /// The evaluator's reason.
    pub reason: String,
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
    /// The best prompt.
    pub best_prompt: PromptTemplate,
    /// The best initial prompt.
    pub initial_prompt: String,
    /// The student with the best prompt (`best_generator.prompt_template()`).
    pub best_generator: Generator,
    /// Val score of each initial prompt.
    pub initial_scores: Vec<f64>,
    /// One record per round.
    pub history: Vec<RoundRecord>,
    /// Spending.
    pub usage: UsageReport,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// Wall time, including time before a resume.
    pub wall_seconds: f64,
    /// The best prompt's lowest-scoring val examples.
    pub worst_examples: Vec<ExampleReport>,
    /// Sizes of train, val and test.
    pub splits: (usize, usize, usize),
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
    /// Rows in train.
    pub train: usize,
    /// Rows in val.
    pub val: usize,
    /// Rows in test.
    pub test: usize,
    /// An upper bound on cost, when prices are known.
    pub cost_upper_bound_usd: Option<f64>,
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
}
