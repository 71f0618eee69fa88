//! The Meta-Prompt optimizer: a teacher model studies where a prompt fails and rewrites it;
//! only rewrites that win on the same minibatch **and** on held-out validation data are kept,
//! and the final claim is a paired difference on test with its interval.
//!
//! **Who should depend on this crate:** code that wires its own providers and stores;
//! applications use the `metaprompt` facade. This crate knows traits, not vendors: it never
//! names an HTTP client, llama.cpp or SQLite.
//!
//! One round: N children from up to P parents drawn from the Pareto front of a pool of
//! candidates; each child is a teacher rewrite, a set of demonstrations picked by the engine,
//! or a merge of two front candidates; [guards](GuardContext) check it (re-asking the teacher
//! on violations); it is evaluated on its own minibatch against its parent and, only if it wins
//! there, on val, joining the pool; it replaces the best only when a paired test on val says
//! so. Every model call (student, teacher, judge) goes through the same cache and metering
//! layers. At the end the best and the initial prompts are scored on test, row by row.
//!
//! ```no_run
//! # async fn demo(student: std::sync::Arc<dyn metaprompt_core::ChatModel>, teacher: std::sync::Arc<dyn metaprompt_core::ChatModel>, dataset: metaprompt_data::Dataset) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use metaprompt_core::Prompt;
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
//!     vec![Prompt::parse("Is this message spam or ham? Answer with one word.\n\n{text}")?],
//! );
//! request.task_description = "Decide whether an SMS message is spam.".into();
//! request.config.num_rounds = 5;
//! request.config.eval_subset_size = 40;
//! let optimizer = MetaPromptOptimizer::builder().teacher(teacher).build()?;
//! let result = optimizer.optimize(request).await?;
//! println!("final score {:.3}", result.final_score);
//! println!("{}", result.best_generator.prompt_template());
//! println!("{}", result.verdict());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod batch;
mod brief;
mod child;
mod commit;
mod config;
mod demos;
pub mod doc;
mod dry_run;
mod edit;
mod evaluate;
mod guards;
mod layers;
mod optimizer;
mod pool;
mod proposal;
mod request;
mod result;
mod round;
mod run;
mod seeded;
mod state;
mod stats;
mod teacher;

use metaprompt_core::run::Phase;
use metaprompt_core::{ModelError, TemplateError};

pub use config::{
    Acceptance, BatchMode, DEFAULT_EVAL_SUBSET_SIZE, DEFAULT_NUM_ROUNDS, DEFAULT_TASK_DESCRIPTION,
    MutationKind, OptimizerConfig, ParentSelection, TeacherParams,
};
pub use demos::{Demo, DemoSource};
pub use edit::{EditMode, TeacherContext};
pub use guards::{CheckedRewrite, GuardContext, Violation, heal_braces};
pub use metaprompt_core::CancelFlag;
pub use optimizer::{MetaPromptOptimizer, OptimizerBuilder};
pub use request::{Checked, DataSource, OptimizeRequest};
pub use result::{
    ByRole, DryRun, ExampleReport, LineageNode, OptimizeResult, PromptScore, TestPair, UsageReport,
};
pub use stats::{PairedTest, TestDelta, ci95, paired_test};
pub use teacher::{ChatTeacherReply, InstructionReply, ReplyMessage, TeacherReply};

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
    /// A knob has a value the optimizer cannot use.
    #[error("[optimizer] {0}")]
    Config(String),
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
    /// The student cannot be used (credentials or quota): every call would fail the same way.
    #[error("the student model failed: {0}")]
    Student(ModelError),
    /// A checkpoint could not be written.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A provider batch could not be prepared, followed or read (it may still be running:
    /// a resumed run re-attaches to it).
    #[error("batch: {0}")]
    Batch(String),
    /// A checkpoint could not be read back.
    #[error("cannot resume from the checkpoint: {0}")]
    Resume(String),
    /// Interrupted (or out of budget) before the initial prompts were scored: nothing to return.
    #[error("stopped before the initial prompts were scored; nothing to return yet")]
    InterruptedBeforeBaseline,
}

impl EngineError {
    /// Whether the error is the user's input being wrong (a config, a prompt, the data), as
    /// opposed to something failing at run time.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EngineError::NoInitialPrompts
                | EngineError::Config(_)
                | EngineError::InvalidPrompt { .. }
                | EngineError::LabelInPrompt { .. }
                | EngineError::Data(_)
        )
    }
}
