//! The Meta-Prompt optimizer: a teacher model studies where a prompt fails and rewrites it;
//! only rewrites that win on the same minibatch **and** on held-out validation data are kept.
//!
//! **Who should depend on this crate:** code that wires its own providers and stores;
//! applications use the `metaprompt` facade. This crate knows traits, not vendors: it never
//! names an HTTP client, llama.cpp or SQLite.
//!
//! One round: a seeded minibatch of train rows → the current prompt is evaluated on it → the
//! teacher sees the low scorers (inputs, outputs, references, scores, reasons), a few
//! successes, the task, the variables to keep, the forbidden fields and the ledger of earlier
//! attempts, and returns `{analysis, hypothesis, improved_prompt}` → [guards](GuardContext)
//! check the rewrite (re-asking on violations) → the candidate is evaluated on the same
//! minibatch and, only if it wins there, on val → the state is checkpointed. At the end the
//! best prompt by val is scored on test with a 95% interval.
//!
//! ```no_run
//! # async fn demo(student: std::sync::Arc<dyn metaprompt_core::ChatModel>, teacher: std::sync::Arc<dyn metaprompt_core::ChatModel>, dataset: metaprompt_data::Dataset) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use metaprompt_data::{BasicDataMapper, SplitConfig};
//! use metaprompt_engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
//! use metaprompt_evals::{ExactMatch, Normalize};
//!
//! let mapper = BasicDataMapper::for_dataset([("response", "generated_output"), ("expected_response", "label")], &dataset)?;
//! let mut request = OptimizeRequest::new(
//!     student,
//!     Arc::new(ExactMatch::new(Normalize::all())),
//!     Arc::new(mapper),
//!     DataSource::Dataset(dataset, SplitConfig { seed: 7, ..SplitConfig::default() }),
//!     vec!["Is this message spam or ham? Answer with one word.\n\n{text}".into()],
//! );
//! request.task_description = "Decide whether an SMS message is spam.".into();
//! let optimizer = MetaPromptOptimizer::builder().teacher(teacher).build()?;
//! let result = optimizer.optimize(request).await?;
//! println!("final score {:.3}", result.final_score);
//! println!("{}", result.best_generator.prompt_template());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod cancel;
mod config;
mod evaluate;
mod guards;
mod optimizer;
mod result;
mod stats;
mod teacher;

use metaprompt_core::run::Phase;
use metaprompt_core::{ModelError, TemplateError};

pub use cancel::CancelFlag;
pub use config::{
    DEFAULT_EVAL_SUBSET_SIZE, DEFAULT_NUM_ROUNDS, DEFAULT_TASK_DESCRIPTION, OptimizerConfig,
};
pub use evaluate::SpendCounters;
pub use guards::{Checked, GuardContext, Violation, heal_braces};
pub use optimizer::{DataSource, MetaPromptOptimizer, OptimizeRequest, OptimizerBuilder};
pub use result::{DryRun, ExampleReport, OptimizeResult, PromptScore, UsageReport};
pub use stats::ci95;
pub use teacher::{SYSTEM_PROMPT, TeacherReply};

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No teacher was given.
    #[error("the optimizer needs a teacher model: call `.teacher(...)` on the builder")]
    NoTeacher,
    /// No initial prompt.
    #[error("give at least one initial prompt")]
    NoInitialPrompts,
    /// An initial prompt does not parse.
    #[error("initial prompt {index}: {error}")]
    InvalidPrompt {
        /// Which prompt (0-based).
        index: usize,
        /// Why.
        error: TemplateError,
    },
    /// An initial prompt reads an answer field.
    #[error(
        "initial prompt {index} uses {{{field}}}, a label field holding the expected answers; a prompt must never read it"
    )]
    LabelInPrompt {
        /// Which prompt.
        index: usize,
        /// The field.
        field: String,
    },
    /// The data is not usable.
    #[error(transparent)]
    Data(#[from] metaprompt_data::DataError),
    /// Too many items failed: optimizing against noise would be worse than stopping.
    #[error(
        "{errors} of {total} items failed during {phase:?} evaluation (more than the allowed error rate); first error: {sample}. Fix the evaluator or the model settings, then resume"
    )]
    EvaluatorUnhealthy {
        /// Which evaluation.
        phase: Phase,
        /// Items that failed.
        errors: usize,
        /// Items in all.
        total: usize,
        /// One failure's reason.
        sample: String,
    },
    /// The teacher cannot be used (credentials or quota).
    #[error("the teacher model failed: {0}")]
    Teacher(ModelError),
    /// A checkpoint could not be written.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A checkpoint could not be read back.
    #[error("cannot resume from the checkpoint: {0}")]
    Resume(String),
    /// Interrupted (or out of budget) before the initial prompts were scored: nothing to return.
    #[error("stopped before the initial prompts were scored; nothing to return yet")]
    InterruptedBeforeBaseline,
}
