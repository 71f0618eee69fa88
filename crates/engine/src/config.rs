//! Every knob of the optimizer, each with one default (the Python original's where it has one).
//!
//! `OptimizerConfig` is the single source: the command line's `[optimizer]` table *is* this
//! struct, and the generated config reference is written from its doc comments. A field left
//! out of a table takes its value from [`OptimizerConfig::default`], the only place defaults
//! are written.

use std::time::Duration;

use crate::edit::{EditMode, TeacherContext};
pub use metaprompt_core::run::Mutation as MutationKind;
use metaprompt_core::{Budget, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rounds of the Python original's default.
pub const DEFAULT_NUM_ROUNDS: u32 = 5;
/// Minibatch size of the Python original's default.
pub const DEFAULT_EVAL_SUBSET_SIZE: usize = 40;
/// The Python original's default task description.
pub const DEFAULT_TASK_DESCRIPTION: &str = "I want to improve my prompt.";

/// How parents are chosen each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParentSelection {
    /// From the Pareto front of the pool (candidates best on some val example), weighted by
    /// how many val examples each is best on (GEPA's rule).
    Pareto,
    /// The best candidate by mean val score.
    Best,
    /// The last accepted candidate (one line of descent, as the Python original).
    Current,
}

/// When a candidate replaces the best one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// A one-sided paired test on the val rows (exact sign test for 0/1 scores, paired
    /// t-test otherwise) must say the candidate beats the best, with the error rate
    /// α = 1 − `confidence` spent over the run's tests: the k-th test of a run is made at
    /// level α/(k(k+1)), so a run that tests many candidates promotes a no-better one with
    /// probability at most α in all.
    Paired,
    /// Every paired test at the full level α = 1 − `confidence`, however many are made: a
    /// wide search promotes noise more often (measured in docs/concepts.md; for comparison).
    PairedUncorrected,
    /// A higher mean val score is enough (fits val noise; for comparison only).
    Mean,
}

/// When whole-split scoring (the baseline, val, test) goes to a provider batch instead of
/// live calls. Only models with a batch executor (`batch = true` on the model) take part;
/// rounds' minibatches always use live calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// Never.
    Off,
    /// When a split's uncached calls number at least `batch_min_calls`.
    Auto,
    /// Whenever a split has an uncached call.
    Always,
}

/// Everything about a run besides the models, the data and the prompts.
///
/// Every stop condition but the number of rounds is off by default, so a default run does
/// exactly `num_rounds` rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Rounds.
    pub num_rounds: u32,
    /// Train rows in each minibatch (each child of a round is gated on its own).
    pub eval_subset_size: usize,
    /// Student calls in flight at once over the whole run (and, separately, judge calls):
    /// every concurrent evaluation shares this one limit.
    pub concurrency: usize,
    /// Seed of minibatches, parent draws, demonstrations and teacher sampling.
    pub seed: u64,
    /// Children proposed per round, each gated on its own minibatch, all screened
    /// concurrently. Default 2 (with 2 parents and rewrite+demos+merge: the best of the
    /// settings measured in docs/concepts.md).
    #[serde(alias = "candidates_per_round")]
    pub proposals_per_round: usize,
    /// Distinct parents per round (children are spread over them).
    pub parents_per_round: usize,
    /// How parents are chosen: `pareto`, `best` or `current`.
    pub parent_selection: ParentSelection,
    /// The mutation kinds children are made with, used in turn: `rewrite`, `demos`, `merge`.
    pub mutations: Vec<MutationKind>,
    /// Most demonstrations (worked train examples) a candidate carries.
    pub max_demos: usize,
    /// How one demonstration is written into the prompt: the prompt's variables, plus
    /// `{answer}`. Default: one `Name: {variable}` line per variable, then `Answer: {answer}`.
    pub demo_template: Option<String>,
    /// When a candidate becomes the best: `paired` (a paired test must say it wins, the
    /// error rate spent over the run's tests), `paired_uncorrected` (each test at the full
    /// level) or `mean`.
    pub acceptance: Acceptance,
    /// Confidence of the paired tests (one-sided): 1 − the chance that a run promotes a
    /// candidate no better than the best, over all of its tests.
    pub confidence: f64,
    /// The roles of the prompt's messages the teacher may rewrite (default: every message).
    pub editable: Option<Vec<Role>>,
    /// What the teacher rewrites: `whole` (the prompt, every variable kept by the teacher),
    /// `instruction` (only the instruction; the engine keeps the lines with the inputs, so no
    /// variable can be dropped) or `auto` (`instruction` when the edited message has input
    /// lines to keep, else `whole`; chosen by the measurement in docs/concepts.md).
    pub edit: EditMode,
    /// Earlier attempts shown to the teacher.
    pub ledger_size: usize,
    /// Low scorers shown to the teacher.
    pub max_failures: usize,
    /// High scorers shown for contrast.
    pub max_successes: usize,
    /// Character budget of the teacher's prompt; example fields are truncated to fit.
    pub teacher_input_budget: usize,
    /// How much the teacher is shown: `full`, or `compact` for small teachers (at most 3
    /// failures, 1 success, 2 ledger entries, 3,000 characters).
    pub teacher_context: TeacherContext,
    /// Longest accepted prompt, demonstrations included (default: 4× the initial prompt, at
    /// least 2,000).
    pub max_prompt_chars: Option<usize>,
    /// Times the teacher is asked again after a refused rewrite or malformed reply.
    pub teacher_retries: u32,
    /// When only missing variables remain after the retries, append them in a labelled input
    /// block instead of failing the child.
    pub append_inputs: bool,
    /// The fewest words a rewrite's instruction may have (its text less the variables and
    /// the labels of input lines such as `Word: {word}`); 0 disables. A reply that is empty,
    /// only label values (`positive`) or shorter is refused like any guard violation and is
    /// never repaired into a candidate. Default 4: "Answer spam or ham." passes, a bare label
    /// or "positive or negative" does not; every initial prompt of the examples has 8 or more.
    pub min_instruction_words: usize,
    /// A child must beat its parent on the minibatch by more than this.
    pub min_delta: f64,
    /// Refuse rewrites that copy an 8-word run from a train row's reference answer.
    pub forbid_reference_copy: bool,
    /// Stop once the best val score reaches this.
    pub target_score: Option<f64>,
    /// Stop after this many rounds without a new best.
    pub patience: Option<u32>,
    /// Budget: model calls of every role (student, teacher, judge); cache hits are free.
    pub max_llm_calls: Option<u64>,
    /// Budget: tokens, input plus output, of every role, over the whole run (not a per-reply
    /// limit: that is `max_tokens` in `[student]` or `[teacher]`).
    pub max_total_tokens: Option<u64>,
    /// Budget: US dollars at the models' prices.
    pub max_cost_usd: Option<f64>,
    /// Budget: wall time in seconds, including time before a resume.
    pub max_duration_secs: Option<f64>,
    /// Stop when more than this fraction of a batch's items fail (student or evaluator errors).
    pub max_error_rate: f64,
    /// Whole-split scoring on a provider batch: `off`, `auto` (from `batch_min_calls`
    /// uncached calls) or `always`; only models with `batch = true` take part.
    pub batch: BatchMode,
    /// Uncached calls of one split from which `batch = "auto"` uses a batch.
    pub batch_min_calls: usize,
    /// Longest wait between two polls of a batch, in seconds (polls start at 0.5 s and
    /// back off to this).
    pub batch_poll_secs: f64,
}

/// How the teacher samples: in a config file, the `[teacher]` table's `temperature`,
/// `temperature_step`, `max_tokens` and `frequency_penalty`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherParams {
    /// Sampling temperature of a round's first proposal.
    pub temperature: f32,
    /// Added to the temperature for each further proposal of a round (proposal `i` samples at
    /// `temperature + i × temperature_step`), so a round's proposals differ; 0 samples all at
    /// `temperature`.
    pub temperature_step: f32,
    /// Token limit per reply.
    pub max_tokens: u32,
    /// Frequency penalty (OpenAI semantics): keeps a weak teacher from repeating one sentence
    /// until its token limit.
    pub frequency_penalty: Option<f32>,
}

impl Default for TeacherParams {
    fn default() -> Self {
        TeacherParams {
            temperature: 0.7,
            temperature_step: 0.1,
            max_tokens: 2048,
            frequency_penalty: Some(0.5),
        }
    }
}

impl TeacherParams {
    /// Why these cannot be used, if they cannot. Messages name the `[teacher]` key.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("temperature", self.temperature),
            ("temperature_step", self.temperature_step),
        ] {
            if !(v.is_finite() && (0.0..=2.0).contains(&v)) {
                out.push(format!(
                    "[teacher] `{name}` must be between 0 and 2, not {v}"
                ));
            }
        }
        if self.max_tokens == 0 {
            out.push("[teacher] `max_tokens` must be at least 1".into());
        }
        if let Some(p) = self.frequency_penalty
            && !(p.is_finite() && (-2.0..=2.0).contains(&p))
        {
            out.push(format!(
                "[teacher] `frequency_penalty` must be between -2 and 2, not {p}"
            ));
        }
        out
    }

    /// The temperature of a round's proposal `index` (0-based).
    pub fn temperature_of(&self, index: usize) -> f32 {
        self.temperature + self.temperature_step * index as f32
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            num_rounds: DEFAULT_NUM_ROUNDS,
            eval_subset_size: DEFAULT_EVAL_SUBSET_SIZE,
            concurrency: 16,
            seed: 0,
            proposals_per_round: 2,
            parents_per_round: 2,
            parent_selection: ParentSelection::Pareto,
            mutations: vec![
                MutationKind::Rewrite,
                MutationKind::Demos,
                MutationKind::Merge,
            ],
            max_demos: 4,
            demo_template: None,
            acceptance: Acceptance::Paired,
            confidence: 0.9,
            editable: None,
            edit: EditMode::Auto,
            ledger_size: 6,
            max_failures: 8,
            max_successes: 2,
            teacher_input_budget: 12_000,
            teacher_context: TeacherContext::Full,
            max_prompt_chars: None,
            teacher_retries: 2,
            append_inputs: true,
            min_instruction_words: 4,
            min_delta: 0.0,
            forbid_reference_copy: false,
            target_score: None,
            patience: None,
            max_llm_calls: None,
            max_total_tokens: None,
            max_cost_usd: None,
            max_duration_secs: None,
            max_error_rate: 0.5,
            batch: BatchMode::Auto,
            batch_min_calls: 500,
            batch_poll_secs: 60.0,
        }
    }
}

impl OptimizerConfig {
    /// The run's limits on calls, tokens, money and time.
    pub fn budget(&self) -> Budget {
        Budget {
            max_llm_calls: self.max_llm_calls,
            max_tokens: self.max_total_tokens,
            max_cost_usd: self.max_cost_usd,
            max_duration: self
                .max_duration_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
        }
    }

    /// Sets the budget from a [`Budget`].
    pub fn set_budget(&mut self, b: Budget) {
        self.max_llm_calls = b.max_llm_calls;
        self.max_total_tokens = b.max_tokens;
        self.max_cost_usd = b.max_cost_usd;
        self.max_duration_secs = b.max_duration.map(|d| d.as_secs_f64());
    }

    /// Why these knobs cannot be used, if they cannot. Messages name the knob.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let positive = [
            ("num_rounds", self.num_rounds as usize),
            ("eval_subset_size", self.eval_subset_size),
            ("concurrency", self.concurrency),
            ("proposals_per_round", self.proposals_per_round),
            ("parents_per_round", self.parents_per_round),
        ];
        for (name, v) in positive {
            // Zero rounds is a valid request (score the initial prompts only).
            if v == 0 && name != "num_rounds" {
                out.push(format!("`{name}` must be at least 1"));
            }
        }
        if self.mutations.is_empty() {
            out.push("`mutations` is empty; list at least one of rewrite, demos, merge".into());
        }
        if !(0.5..1.0).contains(&self.confidence) {
            out.push(format!(
                "`confidence` must be at least 0.5 and below 1 (got {})",
                self.confidence
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            out.push(format!(
                "`max_error_rate` must be between 0 and 1 (got {})",
                self.max_error_rate
            ));
        }
        if self
            .max_duration_secs
            .is_some_and(|s| !s.is_finite() || s < 0.0)
        {
            out.push("`max_duration_secs` must be a non-negative number of seconds".into());
        }
        if !self.batch_poll_secs.is_finite() || self.batch_poll_secs < 0.1 {
            out.push(format!(
                "`batch_poll_secs` must be at least 0.1 seconds (got {})",
                self.batch_poll_secs
            ));
        }
        if self.editable.as_ref().is_some_and(Vec::is_empty) {
            out.push("`editable` is empty; list the roles the teacher may rewrite".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_is_the_default() {
        let c: OptimizerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, OptimizerConfig::default());
        assert_eq!(c.num_rounds, 5);
        assert_eq!(c.eval_subset_size, 40);
    }

    #[test]
    fn the_old_name_of_proposals_per_round_is_accepted() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"candidates_per_round": 3}"#).unwrap();
        assert_eq!(c.proposals_per_round, 3);
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"bogus": 1}"#).is_err());
    }

    #[test]
    fn problems_name_the_knob() {
        let c = OptimizerConfig {
            concurrency: 0,
            confidence: 1.5,
            ..OptimizerConfig::default()
        };
        let p = c.problems().join("; ");
        assert!(
            p.contains("`concurrency`") && p.contains("`confidence`"),
            "{p}"
        );
        assert!(OptimizerConfig::default().problems().is_empty());
    }
}
