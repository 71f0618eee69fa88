//! `MetaPromptOptimizer`: the entry points (optimize, evaluate one prompt, project a run).

use std::sync::Arc;

use metaprompt_core::run::Phase;
use metaprompt_core::{
    CacheKey, CancelFlag, ChatModel, ChatRequest, Checkpointer, EventSink, Meter, MeterSnapshot,
    NoEvents, Prompt, ResponseCache,
};

use crate::EngineError;
use crate::layers::RunModels;
use crate::request::{Checked, OptimizeRequest};
use crate::result::{DryRun, ExampleReport, OptimizeResult, PromptScore, UsageReport};
use crate::run::{Run, Stop, restore};
use crate::stats::ci95;

/// The Meta-Prompt optimizer.
///
/// ```no_run
/// # async fn demo(teacher: std::sync::Arc<dyn metaprompt_core::ChatModel>, request: metaprompt_engine::OptimizeRequest) -> Result<(), metaprompt_engine::EngineError> {
/// use metaprompt_engine::MetaPromptOptimizer;
/// let optimizer = MetaPromptOptimizer::builder().teacher(teacher).build()?;
/// let result = optimizer.optimize(request).await?;
/// println!("{:.3} → {:.3}\n{}", result.initial_score, result.final_score, result.best_generator.prompt_template());
/// println!("{}", result.verdict());
/// # Ok(()) }
/// ```
pub struct MetaPromptOptimizer {
    teacher: Arc<dyn ChatModel>,
    cache: Option<Arc<dyn ResponseCache>>,
    checkpointer: Option<Arc<dyn Checkpointer>>,
    events: Arc<dyn EventSink>,
    cancel: CancelFlag,
}

/// Builds a [`MetaPromptOptimizer`].
#[derive(Default)]
pub struct OptimizerBuilder {
    teacher: Option<Arc<dyn ChatModel>>,
    cache: Option<Arc<dyn ResponseCache>>,
    checkpointer: Option<Arc<dyn Checkpointer>>,
    events: Option<Arc<dyn EventSink>>,
    cancel: Option<CancelFlag>,
}

impl OptimizerBuilder {
    /// The teacher (required).
    pub fn teacher(mut self, teacher: Arc<dyn ChatModel>) -> Self {
        self.teacher = Some(teacher);
        self
    }
    /// A response cache for every model call of a run: student, teacher and judges.
    pub fn cache(mut self, cache: Arc<dyn ResponseCache>) -> Self {
        self.cache = Some(cache);
        self
    }
    /// Where to checkpoint after each round.
    pub fn checkpointer(mut self, c: Arc<dyn Checkpointer>) -> Self {
        self.checkpointer = Some(c);
        self
    }
    /// Receives run events.
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }
    /// A flag that interrupts the run.
    pub fn cancel_flag(mut self, flag: CancelFlag) -> Self {
        self.cancel = Some(flag);
        self
    }
    /// Builds the optimizer.
    pub fn build(self) -> Result<MetaPromptOptimizer, EngineError> {
        Ok(MetaPromptOptimizer {
            teacher: self.teacher.ok_or(EngineError::NoTeacher)?,
            cache: self.cache,
            checkpointer: self.checkpointer,
            events: self.events.unwrap_or_else(|| Arc::new(NoEvents)),
            cancel: self.cancel.unwrap_or_default(),
        })
    }
}

impl MetaPromptOptimizer {
    /// Starts building an optimizer.
    pub fn builder() -> OptimizerBuilder {
        OptimizerBuilder::default()
    }

    fn models(&self, checked: &Checked, spent: MeterSnapshot) -> RunModels {
        let req = &checked.request;
        let meter = Arc::new(Meter::resume(
            req.config.budget(),
            self.cancel.clone(),
            spent,
        ));
        RunModels::new(
            req.student.clone(),
            self.teacher.clone(),
            &req.evaluator,
            self.cache.clone(),
            meter,
            req.config.concurrency,
            req.batch.clone(),
        )
    }

    fn run<'a>(&self, checked: &'a Checked, spent: MeterSnapshot, run_id: &str) -> Run<'a> {
        Run::new(
            checked,
            self.models(checked, spent),
            self.events.clone(),
            self.checkpointer.clone(),
            self.cancel.clone(),
            run_id,
        )
    }

    /// Checks the request, then runs it (see [`optimize_checked`](Self::optimize_checked)).
    pub async fn optimize(&self, req: OptimizeRequest) -> Result<OptimizeResult, EngineError> {
        self.optimize_checked(&req.check()?).await
    }

    /// Runs a checked request: resumes from its checkpoint when it has one.
    pub async fn optimize_checked(&self, checked: &Checked) -> Result<OptimizeResult, EngineError> {
        let req = &checked.request;
        let run_id = req
            .run_id
            .clone()
            .unwrap_or_else(|| format!("run-{}", req.config.seed));
        let restored = req
            .resume
            .as_ref()
            .map(|cp| restore(&cp.state))
            .transpose()?;
        let spent = restored.as_ref().map(|s| s.meter).unwrap_or_default();
        self.run(checked, spent, &run_id)
            .execute(restored, run_id.clone())
            .await
    }

    /// Scores one prompt on a split (`train`, `val`, `test` or `all`) without optimizing.
    pub async fn evaluate_prompt(
        &self,
        checked: &Checked,
        prompt: &Prompt,
        split: &str,
    ) -> Result<PromptScore, EngineError> {
        let rows = checked.rows(split);
        checked.check_prompt(prompt, &rows)?;
        let run_id = checked
            .request
            .run_id
            .clone()
            .unwrap_or_else(|| format!("eval-{split}"));
        let run = self.run(checked, MeterSnapshot::default(), &run_id);
        let e = match run.score(prompt, &rows, Phase::Test).await {
            Ok(e) => e,
            Err(Stop::Interrupt(_)) => return Err(EngineError::InterruptedBeforeBaseline),
            Err(Stop::Error(e)) => return Err(e),
        };
        Ok(PromptScore {
            split: split.to_string(),
            score: e.mean,
            ci95: ci95(&e.scores(), checked.request.config.seed),
            n: e.outcomes.len(),
            errors: e.errors,
            usage: UsageReport::from(&run.meter().snapshot()),
            rows: e
                .outcomes
                .iter()
                .map(|o| ExampleReport::of(o, prompt))
                .collect(),
        })
    }

    /// The student calls that scoring `prompt` on `split` would make and the cache cannot
    /// answer, with the keys their answers are stored under: what a batch file for an
    /// offline engine (vLLM's `run-batch`) holds. Makes no call.
    pub async fn uncached_student_calls(
        &self,
        checked: &Checked,
        prompt: &Prompt,
        split: &str,
    ) -> Result<Vec<(CacheKey, ChatRequest)>, EngineError> {
        let rows = checked.rows(split);
        checked.check_prompt(prompt, &rows)?;
        let run = self.run(checked, MeterSnapshot::default(), "export");
        Ok(run.uncached_student_calls(prompt, &rows).await)
    }

    /// The calls a run would make, from the configuration alone, before any call.
    ///
    /// `student_calls`, `teacher_calls` and `judge_calls` are what a run with no refused
    /// rewrites, every candidate reaching val and an empty cache makes; the `_max` figure
    /// bounds any run's teacher calls.
    pub fn dry_run(&self, checked: &Checked) -> DryRun {
        crate::dry_run::project(self.teacher.as_ref(), checked)
    }
}
