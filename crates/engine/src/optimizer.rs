//! `MetaPromptOptimizer`: the entry points (optimize, evaluate one prompt, project a run).

use std::sync::Arc;

use metaprompt_core::run::Phase;
use metaprompt_core::{
    CacheKey, CancelFlag, ChatModel, ChatRequest, Checkpointer, EventSink, Meter, MeterSnapshot,
    NoEvents, Price, Prompt, ResponseCache, Usage,
};

use crate::EngineError;
use crate::config::{BatchMode, MutationKind};
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
        let req = &checked.request;
        let cfg = &req.config;
        let (train, val, test) = checked.sizes();
        let rounds = u64::from(cfg.num_rounds);
        let n = cfg.proposals_per_round.max(1) as u64;
        let m = cfg.eval_subset_size.clamp(1, train.max(1)) as u64;
        let (val, test) = (val as u64, test as u64);
        let baseline = req.initial_prompts.len() as u64 * val;
        // Children of each kind, in the order the run uses them.
        let mut teacher_children = 0u64;
        let mut demos_children = 0u64;
        for turn in 0..rounds * n {
            let kind = cfg.mutations[(turn as usize) % cfg.mutations.len()];
            if kind == MutationKind::Demos {
                demos_children += 1;
            } else {
                teacher_children += 1;
            }
        }
        // A demos child also scores its parent on train rows outside its minibatch, to find
        // the student's own correct answers.
        let bootstrap = (cfg.max_demos.max(1) * crate::child::BOOTSTRAP_ROWS_PER_DEMO)
            .min(train.saturating_sub(m as usize)) as u64;
        let student = baseline + rounds * n * (2 * m + val) + demos_children * bootstrap + 2 * test;
        let judge = student * u64::from(req.evaluator.model_calls_per_item());
        let teacher = teacher_children;
        let teacher_max = teacher * (1 + u64::from(cfg.teacher_retries));
        let bound = |price: Option<Price>, calls: u64, input: u64, output: u64| {
            price.map(|p| {
                p.cost(Usage {
                    input_tokens: calls * input,
                    output_tokens: calls * output,
                }) + calls as f64 * p.per_call
            })
        };
        // Token bounds per call: the prompt budget for the teacher, a generous guess for the
        // student and a judge; output at the configured limits.
        let teacher_cost = bound(
            self.teacher.price(),
            teacher_max,
            (cfg.teacher_input_budget / 3) as u64 + 1500,
            u64::from(req.teacher_params.max_tokens),
        );
        let student_cost = bound(
            req.student.price(),
            student,
            1000,
            u64::from(req.student_params.max_tokens.unwrap_or(512)),
        );
        // The judges' models, as the evaluator would hand them to the layers: their prices
        // (the highest of them bounds the cost).
        let seen = std::sync::Mutex::new(Vec::new());
        let _ = req.evaluator.with_model_layer(&|m: Arc<dyn ChatModel>| {
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((m.id().to_string(), m.price()));
            m
        });
        let judges = seen
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let judge_price = judges.iter().filter_map(|j| j.1).reduce(|a, b| {
            if a.call_cost(Usage {
                input_tokens: 1000,
                output_tokens: 500,
            }) >= b.call_cost(Usage {
                input_tokens: 1000,
                output_tokens: 500,
            }) {
                a
            } else {
                b
            }
        });
        let judge_cost = bound(judge_price, judge, 1500, 512);
        let costs = [teacher_cost, student_cost, judge_cost];
        // With batching, the whole-split calls of models with a batch executor cost the batch
        // price (`auto`: splits with at least `batch_min_calls` rows).
        let on = |rows: u64| match cfg.batch {
            BatchMode::Off => false,
            BatchMode::Always => rows > 0,
            BatchMode::Auto => rows >= cfg.batch_min_calls as u64,
        };
        let whole = if on(val) {
            baseline + rounds * n * val
        } else {
            0
        } + if on(test) { 2 * test } else { 0 };
        let executor = |id: &str| req.batch.iter().find(|e| e.model_id() == id);
        let student_batch = executor(req.student.id()).map(|e| (e.price(), whole));
        let per_item = u64::from(req.evaluator.model_calls_per_item());
        let judge_batch = judges
            .iter()
            .find_map(|(id, _)| executor(id))
            .map(|e| (e.price(), whole * per_item));
        let batch_cost_upper_bound_usd = (student_batch.is_some() || judge_batch.is_some())
            .then(|| {
                let split = |live: Option<Price>,
                             all: u64,
                             b: Option<(Option<Price>, u64)>,
                             i: u64,
                             o: u64| {
                    match b {
                        Some((price, n)) => {
                            let n = n.min(all);
                            [bound(live, all - n, i, o), bound(price, n, i, o)]
                        }
                        None => [bound(live, all, i, o), Some(0.0)],
                    }
                };
                let s = split(
                    req.student.price(),
                    student,
                    student_batch,
                    1000,
                    u64::from(req.student_params.max_tokens.unwrap_or(512)),
                );
                let j = split(judge_price, judge, judge_batch, 1500, 512);
                let parts = [teacher_cost, s[0], s[1], j[0], j[1]];
                (!parts.iter().all(Option::is_none)).then(|| parts.iter().flatten().sum())
            })
            .flatten();
        let batched_calls = student_batch.map_or(0, |b| b.1) + judge_batch.map_or(0, |b| b.1);
        DryRun {
            student_calls: student,
            teacher_calls: teacher,
            teacher_calls_max: teacher_max,
            judge_calls: judge,
            train,
            val: val as usize,
            test: test as usize,
            cost_upper_bound_usd: if costs.iter().all(Option::is_none) {
                None
            } else {
                Some(costs.iter().flatten().sum())
            },
            batched_calls,
            batch_cost_upper_bound_usd,
            warnings: checked.warnings().to_vec(),
        }
    }
}
