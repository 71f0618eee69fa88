//! `MetaPromptOptimizer`: the rounds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use metaprompt_core::run::{Phase, RoundRecord, RunEvent, StopReason};
use metaprompt_core::{
    ChatModel, Checkpoint, Checkpointer, DataMapper, Evaluator, EventSink, GenerateParams,
    Generator, NoEvents, Price, PromptTemplate, ResponseCache, Row,
};
use metaprompt_data::{Dataset, MinibatchState, Minibatches, SplitConfig, Splits};
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::cancel::CancelFlag;
use crate::config::{
    DEFAULT_EVAL_SUBSET_SIZE, DEFAULT_NUM_ROUNDS, DEFAULT_TASK_DESCRIPTION, OptimizerConfig,
};
use crate::evaluate::{Evaluation, Interrupt, Meter, Scorer, SpendCounters};
use crate::guards::{GuardContext, normalised};
use crate::result::{DryRun, ExampleReport, OptimizeResult, PromptScore, UsageReport};
use crate::stats::ci95;
use crate::teacher::{Brief, TeacherCall};

/// Where the rows come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// One dataset, split by fractions with a seed.
    Dataset(Dataset, SplitConfig),
    /// Splits made by the caller.
    Splits(Splits),
}

/// Everything one optimization needs besides the teacher.
///
/// Mirrors the Python original's `optimize(evaluator, data_mapper, dataset, initial_prompts,
/// task_description, num_rounds=5, eval_subset_size=40)`, plus the student the prompt is for.
#[derive(Clone)]
pub struct OptimizeRequest {
    /// The model the prompt is optimized for.
    pub student: Arc<dyn ChatModel>,
    /// The student's call parameters.
    pub student_params: GenerateParams,
    /// Scores outputs.
    pub evaluator: Arc<dyn Evaluator>,
    /// Builds evaluator inputs.
    pub data_mapper: Arc<dyn DataMapper>,
    /// The rows.
    pub data: DataSource,
    /// Fields no prompt may read (added to the dataset's own label fields).
    pub label_fields: Vec<String>,
    /// Every initial prompt is scored on val; the best one starts.
    pub initial_prompts: Vec<String>,
    /// What the prompt is for, in a sentence.
    pub task_description: String,
    /// Rounds (default 5).
    pub num_rounds: u32,
    /// Minibatch size (default 40).
    pub eval_subset_size: usize,
    /// The other knobs.
    pub config: OptimizerConfig,
    /// Prices for cost accounting and budgets.
    pub student_price: Option<Price>,
    /// The teacher's price.
    pub teacher_price: Option<Price>,
    /// The run's id (checkpoints are stored under it). Default: derived from the seed.
    pub run_id: Option<String>,
    /// Continue from this checkpoint.
    pub resume: Option<Checkpoint>,
}

impl std::fmt::Debug for OptimizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimizeRequest")
            .field("student", &self.student.id())
            .field("evaluator", &self.evaluator.name())
            .field("initial_prompts", &self.initial_prompts)
            .field("num_rounds", &self.num_rounds)
            .field("eval_subset_size", &self.eval_subset_size)
            .finish_non_exhaustive()
    }
}

impl OptimizeRequest {
    /// A request with the Python original's defaults.
    pub fn new(
        student: Arc<dyn ChatModel>,
        evaluator: Arc<dyn Evaluator>,
        data_mapper: Arc<dyn DataMapper>,
        data: DataSource,
        initial_prompts: Vec<String>,
    ) -> Self {
        OptimizeRequest {
            student,
            student_params: GenerateParams {
                temperature: Some(0.0),
                ..GenerateParams::default()
            },
            evaluator,
            data_mapper,
            data,
            label_fields: Vec::new(),
            initial_prompts,
            task_description: DEFAULT_TASK_DESCRIPTION.to_string(),
            num_rounds: DEFAULT_NUM_ROUNDS,
            eval_subset_size: DEFAULT_EVAL_SUBSET_SIZE,
            config: OptimizerConfig::default(),
            student_price: None,
            teacher_price: None,
            run_id: None,
            resume: None,
        }
    }
}

/// A prompt with its val score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Scored {
    pub(crate) prompt: String,
    pub(crate) val_score: f64,
    pub(crate) round: u32,
}

/// Everything needed to continue a run: what a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    pub(crate) run_id: String,
    pub(crate) round_done: u32,
    pub(crate) initial: Vec<Scored>,
    pub(crate) current: Scored,
    pub(crate) best: Scored,
    pub(crate) history: Vec<RoundRecord>,
    pub(crate) seen: Vec<String>,
    pub(crate) minibatch: MinibatchState,
    pub(crate) rounds_since_improvement: u32,
    pub(crate) spend: SpendCounters,
    pub(crate) elapsed_secs: f64,
}

/// The Meta-Prompt optimizer.
///
/// ```no_run
/// # async fn demo(teacher: std::sync::Arc<dyn metaprompt_core::ChatModel>, request: metaprompt_engine::OptimizeRequest) -> Result<(), metaprompt_engine::EngineError> {
/// use metaprompt_engine::MetaPromptOptimizer;
/// let optimizer = MetaPromptOptimizer::builder().teacher(teacher).build()?;
/// let result = optimizer.optimize(request).await?;
/// println!("{:.3} → {:.3}\n{}", result.initial_score, result.final_score, result.best_generator.prompt_template());
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
    /// A response cache for student calls.
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

/// The checked inputs of a run.
struct Prepared {
    splits: Splits,
    initial: Vec<PromptTemplate>,
    guards: GuardContext,
    labels: Vec<String>,
}

fn prepare(req: &OptimizeRequest) -> Result<Prepared, EngineError> {
    if req.initial_prompts.is_empty() {
        return Err(EngineError::NoInitialPrompts);
    }
    let (splits, mut labels) = match &req.data {
        DataSource::Dataset(ds, cfg) => (ds.split(cfg)?, ds.label_fields().to_vec()),
        DataSource::Splits(s) => (s.clone(), Vec::new()),
    };
    labels.extend(req.label_fields.iter().cloned());
    labels.sort();
    labels.dedup();
    if splits.train.is_empty() {
        return Err(EngineError::Data(metaprompt_data::DataError::Split(
            "the train split is empty".into(),
        )));
    }
    let mut initial = Vec::new();
    for (i, p) in req.initial_prompts.iter().enumerate() {
        let t = PromptTemplate::parse(p)
            .map_err(|error| EngineError::InvalidPrompt { index: i, error })?;
        if let Some(l) = t
            .variables()
            .into_iter()
            .find(|v| labels.iter().any(|l| l == v))
        {
            return Err(EngineError::LabelInPrompt {
                index: i,
                field: l.to_string(),
            });
        }
        initial.push(t);
    }
    let all_rows: Vec<Row> = splits
        .train
        .iter()
        .chain(&splits.val)
        .chain(&splits.test)
        .cloned()
        .collect();
    let all = Dataset::new(all_rows);
    for t in &initial {
        all.require_fields(&t.variables(), "the initial prompt")?;
    }
    all.require_fields(&req.data_mapper.source_fields(), "the key map")?;
    let required: BTreeSet<String> = initial[0]
        .variables()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let available: BTreeSet<String> = all.schema().fields.keys().cloned().collect();
    let longest = req
        .initial_prompts
        .iter()
        .map(|p| p.chars().count())
        .max()
        .unwrap_or(0);
    let mut guards = GuardContext {
        required,
        available,
        labels: labels.iter().cloned().collect(),
        max_chars: req
            .config
            .max_prompt_chars
            .unwrap_or((longest * 4).max(2000)),
        ..GuardContext::default()
    };
    if req.config.forbid_reference_copy {
        for r in &splits.train {
            for l in &labels {
                if let Some(t) = r.text(l) {
                    guards.add_reference(&t);
                }
            }
        }
    }
    Ok(Prepared {
        splits,
        initial,
        guards,
        labels,
    })
}

impl MetaPromptOptimizer {
    /// Starts building an optimizer.
    pub fn builder() -> OptimizerBuilder {
        OptimizerBuilder::default()
    }

    /// The calls a run would make, from the configuration alone, before any call.
    ///
    /// `student_calls` and `teacher_calls` are what a run with no refused rewrites, every
    /// candidate reaching val and an empty cache makes; the `_max` figures bound any run.
    pub fn dry_run(&self, req: &OptimizeRequest) -> Result<DryRun, EngineError> {
        let p = prepare(req)?;
        let rounds = u64::from(req.num_rounds);
        let k = req.config.candidates_per_round.max(1) as u64;
        let m = req.eval_subset_size.clamp(1, p.splits.train.len()) as u64;
        let (val, test) = (p.splits.val.len() as u64, p.splits.test.len() as u64);
        let baseline = p.initial.len() as u64 * val;
        let per_round = m + k * m + val;
        let student = baseline + rounds * per_round + 2 * test;
        let teacher = rounds * k;
        let teacher_max = teacher * (1 + u64::from(req.config.teacher_retries));
        let bound = |price: Option<Price>, calls: u64, input: u64, output: u64| {
            price.map(|p| {
                p.cost(metaprompt_core::Usage {
                    input_tokens: calls * input,
                    output_tokens: calls * output,
                })
            })
        };
        // Token bounds per call: the prompt budget for the teacher, a generous guess for the
        // student; output at the configured limits.
        let teacher_cost = bound(
            req.teacher_price,
            teacher_max,
            (req.config.teacher_input_budget / 3) as u64 + 1500,
            u64::from(req.config.teacher_max_tokens),
        );
        let student_cost = bound(
            req.student_price,
            student,
            1000,
            u64::from(req.student_params.max_tokens.unwrap_or(512)),
        );
        Ok(DryRun {
            student_calls: student,
            teacher_calls: teacher,
            teacher_calls_max: teacher_max,
            train: p.splits.train.len(),
            val: p.splits.val.len(),
            test: p.splits.test.len(),
            cost_upper_bound_usd: match (teacher_cost, student_cost) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            },
            warnings: p.splits.warnings.clone(),
        })
    }

    fn scorer(&self, req: &OptimizeRequest) -> Scorer {
        Scorer {
            student: req.student.clone(),
            params: req.student_params.clone(),
            evaluator: req.evaluator.clone(),
            mapper: req.data_mapper.clone(),
            cache: self.cache.clone(),
            concurrency: req.config.concurrency,
            price: req.student_price,
            budget: req.config.budget,
            cancel: self.cancel.clone(),
        }
    }

    /// Scores one prompt on a split (`train`, `val`, `test` or `all`) without optimizing.
    pub async fn evaluate_prompt(
        &self,
        req: &OptimizeRequest,
        prompt: &str,
        split: &str,
    ) -> Result<PromptScore, EngineError> {
        let p = prepare(req)?;
        let t = PromptTemplate::parse(prompt)
            .map_err(|error| EngineError::InvalidPrompt { index: 0, error })?;
        if let Some(l) = t
            .variables()
            .into_iter()
            .find(|v| p.labels.iter().any(|l| l == v))
        {
            return Err(EngineError::LabelInPrompt {
                index: 0,
                field: l.to_string(),
            });
        }
        let rows: Vec<Row> = match split {
            "train" => p.splits.train.clone(),
            "val" => p.splits.val.clone(),
            "test" => p.splits.test.clone(),
            _ => p
                .splits
                .train
                .iter()
                .chain(&p.splits.val)
                .chain(&p.splits.test)
                .cloned()
                .collect(),
        };
        Dataset::new(rows.clone()).require_fields(&t.variables(), "the prompt")?;
        let scorer = self.scorer(req);
        let meter = Meter::new(SpendCounters::default(), 0.0);
        let e = scorer
            .evaluate(&t, &rows, Phase::Test, &meter, self.events.as_ref())
            .await
            .map_err(|_| EngineError::InterruptedBeforeBaseline)?;
        let spend = meter.snapshot();
        Ok(PromptScore {
            split: split.to_string(),
            score: e.mean,
            ci95: ci95(&e.scores(), req.config.seed),
            n: e.outcomes.len(),
            errors: e.errors,
            usage: UsageReport {
                student_calls: spend.student_calls,
                teacher_calls: 0,
                judge_calls: 0,
                cache_hits: spend.cache_hits,
                input_tokens: spend.usage.input_tokens,
                output_tokens: spend.usage.output_tokens,
                cost_usd: spend.cost_usd,
            },
        })
    }

    /// Runs the optimization.
    pub async fn optimize(&self, req: OptimizeRequest) -> Result<OptimizeResult, EngineError> {
        let p = prepare(&req)?;
        let cfg = &req.config;
        let seed = cfg.seed;
        let scorer = self.scorer(&req);
        let events = self.events.as_ref();
        let run_id = req.run_id.clone().unwrap_or_else(|| format!("run-{seed}"));
        let mut memo: HashMap<String, Evaluation> = HashMap::new();

        // Restore or baseline.
        let restored: Option<RunState> = match &req.resume {
            Some(cp) => Some(
                serde_json::from_value(cp.state.clone())
                    .map_err(|e| EngineError::Resume(e.to_string()))?,
            ),
            None => None,
        };
        let meter = Meter::new(
            restored.as_ref().map(|s| s.spend).unwrap_or_default(),
            restored.as_ref().map_or(0.0, |s| s.elapsed_secs),
        );
        events.emit(&RunEvent::RunStarted {
            run_id: run_id.clone(),
            num_rounds: req.num_rounds,
        });
        let mut state = match restored {
            Some(s) => s,
            None => {
                let mut initial = Vec::new();
                for (i, t) in p.initial.iter().enumerate() {
                    let e = match self
                        .score(
                            &scorer,
                            t,
                            &p.splits.val,
                            Phase::Baseline,
                            &meter,
                            &mut memo,
                            cfg,
                        )
                        .await
                    {
                        Ok(e) => e,
                        Err(Stop::Interrupt(_)) => {
                            return Err(EngineError::InterruptedBeforeBaseline);
                        }
                        Err(Stop::Error(e)) => return Err(e),
                    };
                    events.emit(&RunEvent::Baseline {
                        index: i,
                        val_score: e.mean,
                    });
                    initial.push(Scored {
                        prompt: t.source().to_string(),
                        val_score: e.mean,
                        round: 0,
                    });
                }
                let best = initial
                    .iter()
                    .cloned()
                    .reduce(|a, b| if b.val_score > a.val_score { b } else { a })
                    .ok_or(EngineError::NoInitialPrompts)?;
                RunState {
                    run_id: run_id.clone(),
                    round_done: 0,
                    seen: initial.iter().map(|s| normalised(&s.prompt)).collect(),
                    initial,
                    current: best.clone(),
                    best,
                    history: Vec::new(),
                    minibatch: MinibatchState::default(),
                    rounds_since_improvement: 0,
                    spend: meter.snapshot(),
                    elapsed_secs: 0.0,
                }
            }
        };
        if req.resume.is_none() {
            self.checkpoint(&mut state, &meter).await?;
        }
        let mut minibatches = Minibatches::resume(
            p.splits.train.clone(),
            req.eval_subset_size,
            seed,
            state.minibatch,
        );
        let mut guards = p.guards.clone();
        guards.seen.extend(state.seen.iter().cloned());

        let mut stop = StopReason::Completed;
        while state.round_done < req.num_rounds {
            if let Some(r) = self.stop_before_round(&state, &req, &meter) {
                stop = r;
                break;
            }
            let round = state.round_done + 1;
            events.emit(&RunEvent::RoundStarted { round });
            match self
                .round(
                    round,
                    &req,
                    &p,
                    &scorer,
                    &meter,
                    &mut memo,
                    &mut minibatches,
                    &mut guards,
                    &mut state,
                )
                .await
            {
                Ok(record) => {
                    events.emit(&RunEvent::RoundFinished {
                        record: record.clone(),
                    });
                    state.history.push(record);
                    state.round_done = round;
                    state.minibatch = minibatches.state();
                    self.checkpoint(&mut state, &meter).await?;
                }
                Err(Stop::Interrupt(i)) => {
                    stop = match i {
                        Interrupt::Cancelled => StopReason::Interrupted,
                        Interrupt::Budget(k) => StopReason::Budget(k),
                    };
                    break;
                }
                Err(Stop::Error(e)) => {
                    self.checkpoint(&mut state, &meter).await?;
                    return Err(e);
                }
            }
        }
        if stop == StopReason::Completed
            && let Some(r) = self.stop_before_round(&state, &req, &meter)
            && matches!(r, StopReason::TargetReached)
        {
            stop = r;
        }
        self.checkpoint(&mut state, &meter).await?;

        // Final scores on test (skipped when interrupted: the user asked to stop).
        let best_t = PromptTemplate::parse(&state.best.prompt)
            .map_err(|error| EngineError::InvalidPrompt { index: 0, error })?;
        let initial_best = state
            .initial
            .iter()
            .cloned()
            .reduce(|a, b| if b.val_score > a.val_score { b } else { a })
            .ok_or(EngineError::NoInitialPrompts)?;
        // The best prompt and the best initial prompt on test (the memo scores a prompt once
        // when they are the same).
        let mut on_test = [(None, None), (None, None)];
        if !p.splits.test.is_empty() && stop != StopReason::Interrupted {
            let init_t = PromptTemplate::parse(&initial_best.prompt)
                .map_err(|error| EngineError::InvalidPrompt { index: 0, error })?;
            for (slot, t) in on_test.iter_mut().zip([&best_t, &init_t]) {
                if let Ok(e) = self
                    .score(
                        &scorer,
                        t,
                        &p.splits.test,
                        Phase::Test,
                        &meter,
                        &mut memo,
                        cfg,
                    )
                    .await
                {
                    *slot = (Some(e.mean), ci95(&e.scores(), seed));
                }
            }
        }
        let [(test_score, test_ci), (initial_test, initial_ci)] = on_test;
        let worst = memo
            .get(&memo_key(&best_t, &p.splits.val))
            .map(|e| worst_examples(e, 5))
            .unwrap_or_default();
        events.emit(&RunEvent::Finished {
            stop_reason: stop,
            final_score: state.best.val_score,
        });
        let spend = meter.snapshot();
        Ok(OptimizeResult {
            run_id,
            final_score: state.best.val_score,
            initial_score: initial_best.val_score,
            test_score,
            test_ci95: test_ci,
            initial_test_score: initial_test,
            initial_test_ci95: initial_ci,
            best_prompt: best_t.clone(),
            initial_prompt: initial_best.prompt.clone(),
            best_generator: Generator::new(req.student.clone(), best_t, req.student_params.clone()),
            initial_scores: state.initial.iter().map(|s| s.val_score).collect(),
            history: state.history.clone(),
            usage: UsageReport {
                student_calls: spend.student_calls,
                teacher_calls: spend.teacher_calls,
                judge_calls: 0,
                cache_hits: spend.cache_hits,
                input_tokens: spend.usage.input_tokens,
                output_tokens: spend.usage.output_tokens,
                cost_usd: spend.cost_usd,
            },
            stop_reason: stop,
            wall_seconds: meter.elapsed_secs(),
            worst_examples: worst,
            splits: (
                p.splits.train.len(),
                p.splits.val.len(),
                p.splits.test.len(),
            ),
        })
    }

    fn stop_before_round(
        &self,
        state: &RunState,
        req: &OptimizeRequest,
        meter: &Meter,
    ) -> Option<StopReason> {
        if self.cancel.is_cancelled() {
            return Some(StopReason::Interrupted);
        }
        if let Some(t) = req.config.target_score
            && state.best.val_score >= t
        {
            return Some(StopReason::TargetReached);
        }
        if let Some(p) = req.config.patience
            && state.rounds_since_improvement >= p
        {
            return Some(StopReason::NoImprovement);
        }
        req.config
            .budget
            .exhausted(&meter.spend())
            .map(StopReason::Budget)
    }

    async fn checkpoint(&self, state: &mut RunState, meter: &Meter) -> Result<(), EngineError> {
        state.spend = meter.snapshot();
        state.elapsed_secs = meter.elapsed_secs();
        if let Some(c) = &self.checkpointer {
            let value = serde_json::to_value(&*state)
                .map_err(|e| EngineError::Checkpoint(e.to_string()))?;
            c.save(&state.run_id, state.round_done, &value)
                .await
                .map_err(|e| EngineError::Checkpoint(e.to_string()))?;
        }
        Ok(())
    }

    /// Evaluates with the val memo and the evaluator-health check.
    #[allow(clippy::too_many_arguments)]
    async fn score(
        &self,
        scorer: &Scorer,
        t: &PromptTemplate,
        rows: &[Row],
        phase: Phase,
        meter: &Meter,
        memo: &mut HashMap<String, Evaluation>,
        cfg: &OptimizerConfig,
    ) -> Result<Evaluation, Stop> {
        let key = memo_key(t, rows);
        if let Some(e) = memo.get(&key) {
            return Ok(e.clone());
        }
        let e = scorer
            .evaluate(t, rows, phase, meter, self.events.as_ref())
            .await
            .map_err(Stop::Interrupt)?;
        if !e.outcomes.is_empty() {
            let rate = e.errors as f64 / e.outcomes.len() as f64;
            if rate > cfg.max_error_rate {
                let sample = e
                    .outcomes
                    .iter()
                    .find(|o| o.result.is_error())
                    .map(|o| o.result.reason().to_string())
                    .unwrap_or_default();
                return Err(Stop::Error(EngineError::EvaluatorUnhealthy {
                    phase,
                    errors: e.errors,
                    total: e.outcomes.len(),
                    sample,
                }));
            }
        }
        if matches!(phase, Phase::Baseline | Phase::Validation | Phase::Test) {
            memo.insert(key, e.clone());
        }
        Ok(e)
    }

    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        round: u32,
        req: &OptimizeRequest,
        p: &Prepared,
        scorer: &Scorer,
        meter: &Meter,
        memo: &mut HashMap<String, Evaluation>,
        minibatches: &mut Minibatches,
        guards: &mut GuardContext,
        state: &mut RunState,
    ) -> Result<RoundRecord, Stop> {
        let cfg = &req.config;
        let batch = minibatches.next_batch();
        let current = PromptTemplate::parse(&state.current.prompt)
            .map_err(|error| Stop::Error(EngineError::InvalidPrompt { index: 0, error }))?;
        let parent = self
            .score(scorer, &current, &batch, Phase::Minibatch, meter, memo, cfg)
            .await?;

        // Ask the teacher (k proposals concurrently).
        let k = cfg.candidates_per_round.max(1);
        let ledger_start = state.history.len().saturating_sub(cfg.ledger_size);
        let required: Vec<String> = guards.required.iter().cloned().collect();
        if let Some(kind) = cfg.budget.would_exceed(&meter.spend(), k as u64) {
            return Err(Stop::Interrupt(Interrupt::Budget(kind)));
        }
        if self.cancel.is_cancelled() {
            return Err(Stop::Interrupt(Interrupt::Cancelled));
        }
        let proposals = futures::future::join_all((0..k).map(|i| {
            let brief = Brief {
                task: &req.task_description,
                current: &current,
                required: required.clone(),
                labels: p.labels.clone(),
                ledger: &state.history[ledger_start..],
                evaluation: &parent,
                max_failures: cfg.max_failures,
                max_successes: cfg.max_successes,
                budget_chars: cfg.teacher_input_budget,
                proposal: (i, k),
            };
            let call = TeacherCall {
                teacher: &self.teacher,
                temperature: cfg.teacher_temperature + 0.1 * i as f32,
                max_tokens: cfg.teacher_max_tokens,
                seed: cfg
                    .seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(u64::from(round) * 101 + i as u64),
                retries: cfg.teacher_retries,
                append_inputs: cfg.append_inputs,
            };
            let user = brief.render();
            let guards = &*guards;
            async move { call.propose(user, guards).await }
        }))
        .await;
        let mut candidates = Vec::new();
        let mut failures = Vec::new();
        let mut hypotheses = Vec::new();
        let mut analyses = Vec::new();
        for prop in proposals {
            meter.update(|c| {
                c.teacher_calls += prop.calls;
                c.usage += prop.usage;
                c.cost_usd += req.teacher_price.map_or(0.0, |pr| pr.cost(prop.usage));
            });
            if let Some(e) = prop.fatal {
                return Err(Stop::Error(EngineError::Teacher(e)));
            }
            for v in &prop.rejections {
                self.events.emit(&RunEvent::GuardRejected {
                    round,
                    violation: v.clone(),
                });
            }
            if let Some(r) = &prop.reply {
                self.events.emit(&RunEvent::TeacherProposed {
                    round,
                    hypothesis: r.hypothesis.clone(),
                });
                hypotheses.push(r.hypothesis.clone());
                analyses.push(r.analysis.clone());
            }
            match prop.outcome {
                Ok(c) => {
                    guards.seen.insert(normalised(c.template.source()));
                    state.seen.push(normalised(c.template.source()));
                    candidates.push((c, prop.reply));
                }
                Err(reason) => failures.push(reason),
            }
        }
        let mut record = RoundRecord {
            round,
            analysis: analyses.join("\n---\n"),
            hypothesis: hypotheses.join(" | "),
            candidate_prompt: String::new(),
            minibatch_score: None,
            parent_minibatch_score: Some(parent.mean),
            val_score: None,
            accepted: false,
            reason: String::new(),
            repaired: false,
            failed: false,
        };
        if candidates.is_empty() {
            record.failed = true;
            record.reason = format!("no usable rewrite: {}", failures.join("; "));
            state.rounds_since_improvement += 1;
            return Ok(record);
        }

        // Gate every candidate on the same minibatch; the best goes on.
        let mut best_gate: Option<(usize, f64)> = None;
        for (i, (c, _)) in candidates.iter().enumerate() {
            let e = self
                .score(
                    scorer,
                    &c.template,
                    &batch,
                    Phase::Candidate,
                    meter,
                    memo,
                    cfg,
                )
                .await?;
            if best_gate.is_none_or(|(_, s)| e.mean > s) {
                best_gate = Some((i, e.mean));
            }
        }
        let Some((ci, cand_mb)) = best_gate else {
            record.failed = true;
            record.reason = "no candidate was evaluated".into();
            return Ok(record);
        };
        let (chosen, reply) = &candidates[ci];
        if let Some(r) = reply {
            record.hypothesis = r.hypothesis.clone();
            record.analysis = r.analysis.clone();
        }
        record.candidate_prompt = chosen.template.source().to_string();
        record.repaired = chosen.repaired;
        record.minibatch_score = Some(cand_mb);
        if cand_mb <= parent.mean + cfg.min_delta {
            record.reason = format!(
                "minibatch {cand_mb:.3} does not beat the current prompt's {:.3}",
                parent.mean
            );
            state.rounds_since_improvement += 1;
            return Ok(record);
        }
        // Validation: an empty val split accepts on the minibatch alone (the data crate warned).
        let val = if p.splits.val.is_empty() {
            cand_mb
        } else {
            self.score(
                scorer,
                &chosen.template,
                &p.splits.val,
                Phase::Validation,
                meter,
                memo,
                cfg,
            )
            .await?
            .mean
        };
        record.val_score = Some(val);
        if val >= state.current.val_score {
            record.accepted = true;
            state.current = Scored {
                prompt: record.candidate_prompt.clone(),
                val_score: val,
                round,
            };
            self.events.emit(&RunEvent::CandidateAccepted {
                round,
                val_score: val,
            });
            if val > state.best.val_score {
                let previous = state.best.val_score;
                state.best = state.current.clone();
                state.rounds_since_improvement = 0;
                self.events.emit(&RunEvent::BestImproved {
                    round,
                    val_score: val,
                });
                record.reason = format!("val {val:.3} beats the best {previous:.3}; new best");
            } else {
                state.rounds_since_improvement += 1;
                record.reason = format!("val {val:.3} ties the current prompt; accepted");
            }
            if record.repaired {
                record
                    .reason
                    .push_str(" (missing inputs appended by repair)");
            }
        } else {
            record.reason = format!(
                "val {val:.3} is below the current prompt's {:.3}",
                state.current.val_score
            );
            state.rounds_since_improvement += 1;
        }
        Ok(record)
    }
}

/// Why a step stopped.
pub(crate) enum Stop {
    Interrupt(Interrupt),
    Error(EngineError),
}

/// The memo key of a prompt on a set of rows: every row id counts, so two different row sets
/// never share a memoised score.
fn memo_key(t: &PromptTemplate, rows: &[Row]) -> String {
    let mut key = String::with_capacity(t.source().len() + rows.len() * 4);
    key.push_str(t.source());
    for r in rows {
        key.push('\u{0}');
        key.push_str(r.id().as_str());
    }
    key
}

fn worst_examples(e: &Evaluation, n: usize) -> Vec<ExampleReport> {
    let mut v: Vec<&crate::evaluate::Outcome> = e.outcomes.iter().collect();
    v.sort_by(|a, b| a.result.score().total_cmp(&b.result.score()));
    v.into_iter()
        .take(n)
        .filter(|o| o.result.score() < 1.0)
        .map(|o| ExampleReport {
            row_id: o.row.id().to_string(),
            output: o.output.clone(),
            expected: o.input.as_ref().and_then(|i| i.expected()),
            score: o.result.score(),
            reason: o.result.reason().to_string(),
        })
        .collect()
}
