//! The optimizer's knobs, with the defaults of the Python original where it has them.

use metaprompt_core::Budget;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rounds of the Python original's default.
pub const DEFAULT_NUM_ROUNDS: u32 = 5;
/// Minibatch size of the Python original's default.
pub const DEFAULT_EVAL_SUBSET_SIZE: usize = 40;
/// The Python original's default task description.
pub const DEFAULT_TASK_DESCRIPTION: &str = "I want to improve my prompt.";

fn d_concurrency() -> usize {
    16
}
fn d_candidates() -> usize {
    1
}
fn d_ledger() -> usize {
    6
}
fn d_failures() -> usize {
    8
}
fn d_successes() -> usize {
    2
}
fn d_budget_chars() -> usize {
    12_000
}
fn d_retries() -> u32 {
    2
}
fn d_true() -> bool {
    true
}
fn d_error_rate() -> f64 {
    0.5
}
fn d_teacher_temperature() -> f32 {
    0.7
}
fn d_teacher_max_tokens() -> u32 {
    2048
}

/// Everything about a run besides the models, the data and the prompts.
///
/// Every stop condition but the number of rounds is off by default, so a default run does
/// exactly `num_rounds` rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Student calls in flight at once.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Seed for minibatches and teacher sampling.
    #[serde(default)]
    pub seed: u64,
    /// Rewrites asked for per round; all are gated on the same minibatch, the best gated one
    /// goes to val.
    #[serde(default = "d_candidates")]
    pub candidates_per_round: usize,
    /// Earlier attempts shown to the teacher.
    #[serde(default = "d_ledger")]
    pub ledger_size: usize,
    /// Low scorers shown to the teacher.
    #[serde(default = "d_failures")]
    pub max_failures: usize,
    /// High scorers shown for contrast.
    #[serde(default = "d_successes")]
    pub max_successes: usize,
    /// Character budget of the teacher's prompt; example fields are truncated to fit.
    #[serde(default = "d_budget_chars")]
    pub teacher_input_budget: usize,
    /// Longest accepted rewrite (default: 4× the initial prompt, at least 2,000).
    #[serde(default)]
    pub max_prompt_chars: Option<usize>,
    /// Times the teacher is asked again after a refused rewrite or malformed reply.
    #[serde(default = "d_retries")]
    pub teacher_retries: u32,
    /// When only missing variables remain after the retries, append them in a labelled input
    /// block instead of failing the round.
    #[serde(default = "d_true")]
    pub append_inputs: bool,
    /// A candidate must beat the current prompt on the minibatch by more than this.
    #[serde(default)]
    pub min_delta: f64,
    /// Refuse rewrites that copy an 8-word run from a train row's reference answer.
    #[serde(default)]
    pub forbid_reference_copy: bool,
    /// Stop once the best val score reaches this.
    #[serde(default)]
    pub target_score: Option<f64>,
    /// Stop after this many rounds without a val improvement.
    #[serde(default)]
    pub patience: Option<u32>,
    /// Limits on calls, tokens, money and time.
    #[serde(default)]
    pub budget: Budget,
    /// Stop when more than this fraction of a batch's items fail (student or evaluator errors).
    #[serde(default = "d_error_rate")]
    pub max_error_rate: f64,
    /// The teacher's sampling temperature.
    #[serde(default = "d_teacher_temperature")]
    pub teacher_temperature: f32,
    /// The teacher's token limit per reply.
    #[serde(default = "d_teacher_max_tokens")]
    pub teacher_max_tokens: u32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            concurrency: d_concurrency(),
            seed: 0,
            candidates_per_round: d_candidates(),
            ledger_size: d_ledger(),
            max_failures: d_failures(),
            max_successes: d_successes(),
            teacher_input_budget: d_budget_chars(),
            max_prompt_chars: None,
            teacher_retries: d_retries(),
            append_inputs: true,
            min_delta: 0.0,
            forbid_reference_copy: false,
            target_score: None,
            patience: None,
            budget: Budget::default(),
            max_error_rate: d_error_rate(),
            teacher_temperature: d_teacher_temperature(),
            teacher_max_tokens: d_teacher_max_tokens(),
        }
    }
}
