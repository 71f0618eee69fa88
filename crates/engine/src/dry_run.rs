//! What a run would spend, from the configuration alone (`MetaPromptOptimizer::dry_run`), in
//! named steps: count the calls, find the judges' models, price each role's calls live and,
//! with batching, at the batch price.

use std::sync::{Arc, Mutex, PoisonError};

use metaprompt_core::{BatchExecutor, ChatModel, Price, Usage};

use crate::config::{BatchMode, MutationKind};
use crate::request::Checked;
use crate::result::DryRun;

/// Tokens a student call is assumed to read (a generous guess; it writes up to its limit).
const STUDENT_INPUT_TOKENS: u64 = 1000;
/// A student's reply limit when none is configured.
const STUDENT_OUTPUT_TOKENS: u64 = 512;
/// Tokens a judge call is assumed to read and write.
const JUDGE_TOKENS: (u64, u64) = (1500, 512);
/// What the teacher reads besides its context budget: the brief and the schema.
const TEACHER_BRIEF_TOKENS: u64 = 1500;

/// Some calls of one role, each assumed to use the same tokens.
#[derive(Debug, Clone, Copy)]
struct Calls {
    n: u64,
    input: u64,
    output: u64,
}

impl Calls {
    /// Their cost at `price` (`None` when the price is unknown).
    fn cost(self, price: Option<Price>) -> Option<f64> {
        price.map(|p| {
            p.cost(Usage {
                input_tokens: self.n * self.input,
                output_tokens: self.n * self.output,
            }) + self.n as f64 * p.per_call
        })
    }

    fn times(self, n: u64) -> Calls {
        Calls { n, ..self }
    }

    /// Their cost when up to `batched` of them go to a batch at `batch_price`: the live part
    /// and the batch part.
    fn split_cost(
        self,
        live: Option<Price>,
        batch: Option<(Option<Price>, u64)>,
    ) -> [Option<f64>; 2] {
        match batch {
            Some((batch_price, batched)) => {
                let batched = batched.min(self.n);
                [
                    self.times(self.n - batched).cost(live),
                    self.times(batched).cost(batch_price),
                ]
            }
            None => [self.cost(live), Some(0.0)],
        }
    }
}

/// The sum of the known costs, `None` when none is known.
fn known_sum(costs: &[Option<f64>]) -> Option<f64> {
    (!costs.iter().all(Option::is_none)).then(|| costs.iter().flatten().sum())
}

/// The calls of a run with no refused rewrites, every candidate reaching val and an empty
/// cache.
struct Counts {
    student: u64,
    teacher: u64,
    teacher_max: u64,
    judge: u64,
    /// Student calls that score a whole split with batching on (they may go to a batch).
    batchable: u64,
}

impl Counts {
    fn of(checked: &Checked) -> Counts {
        let req = &checked.request;
        let cfg = &req.config;
        let (train, val, test) = checked.sizes();
        let rounds = u64::from(cfg.num_rounds);
        let n = cfg.proposals_per_round.max(1) as u64;
        let m = cfg.eval_subset_size.clamp(1, train.max(1)) as u64;
        let (val, test) = (val as u64, test as u64);
        let baseline = req.initial_prompts.len() as u64 * val;
        // Children of each kind, in the order the run uses them.
        let demos_children = (0..rounds * n)
            .filter(|turn| {
                cfg.mutations[(*turn as usize) % cfg.mutations.len()] == MutationKind::Demos
            })
            .count() as u64;
        let teacher = rounds * n - demos_children;
        // A demos child also scores its parent on train rows outside its minibatch, to find
        // the student's own correct answers.
        let bootstrap = (cfg.max_demos.max(1) * crate::child::BOOTSTRAP_ROWS_PER_DEMO)
            .min(train.saturating_sub(m as usize)) as u64;
        let student = baseline + rounds * n * (2 * m + val) + demos_children * bootstrap + 2 * test;
        // With batching, whole splits are batched (`auto`: splits of at least
        // `batch_min_calls` rows).
        let on = |rows: u64| match cfg.batch {
            BatchMode::Off => false,
            BatchMode::Always => rows > 0,
            BatchMode::Auto => rows >= cfg.batch_min_calls as u64,
        };
        let batchable = if on(val) {
            baseline + rounds * n * val
        } else {
            0
        } + if on(test) { 2 * test } else { 0 };
        Counts {
            student,
            teacher,
            teacher_max: teacher * (1 + u64::from(cfg.teacher_retries)),
            judge: student * u64::from(req.evaluator.model_calls_per_item()),
            batchable,
        }
    }
}

/// The judges' models as the evaluator hands them to the layers: id and price.
fn judge_models(checked: &Checked) -> Vec<(String, Option<Price>)> {
    let seen = Mutex::new(Vec::new());
    let _ = checked
        .request
        .evaluator
        .with_model_layer(&|m: Arc<dyn ChatModel>| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((m.id().to_string(), m.price()));
            m
        });
    seen.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// The dearest of some prices for a judge call: it bounds what the judges cost.
fn dearest(prices: impl Iterator<Item = Price>) -> Option<Price> {
    let (input_tokens, output_tokens) = JUDGE_TOKENS;
    let usage = Usage {
        input_tokens,
        output_tokens,
    };
    prices.reduce(|a, b| {
        if a.call_cost(usage) >= b.call_cost(usage) {
            a
        } else {
            b
        }
    })
}

/// The calls and costs a run would make (see [`DryRun`]).
pub(crate) fn project(teacher_model: &dyn ChatModel, checked: &Checked) -> DryRun {
    let req = &checked.request;
    let cfg = &req.config;
    let (train, val, test) = checked.sizes();
    let counts = Counts::of(checked);
    let judges = judge_models(checked);
    let judge_price = dearest(judges.iter().filter_map(|j| j.1));

    let teacher = Calls {
        n: counts.teacher_max,
        input: (cfg.teacher_input_budget / 3) as u64 + TEACHER_BRIEF_TOKENS,
        output: u64::from(req.teacher_params.max_tokens),
    };
    let student = Calls {
        n: counts.student,
        input: STUDENT_INPUT_TOKENS,
        output: req
            .student_params
            .max_tokens
            .map_or(STUDENT_OUTPUT_TOKENS, u64::from),
    };
    let judge = Calls {
        n: counts.judge,
        input: JUDGE_TOKENS.0,
        output: JUDGE_TOKENS.1,
    };
    let teacher_cost = teacher.cost(teacher_model.price());

    let executor = |id: &str| -> Option<&Arc<dyn BatchExecutor>> {
        req.batch.iter().find(|e| e.model_id() == id)
    };
    let student_batch = executor(req.student.id()).map(|e| (e.price(), counts.batchable));
    let judge_batch = judges.iter().find_map(|(id, _)| executor(id)).map(|e| {
        (
            e.price(),
            counts.batchable * u64::from(req.evaluator.model_calls_per_item()),
        )
    });
    let batch_cost_upper_bound_usd = (student_batch.is_some() || judge_batch.is_some())
        .then(|| {
            let [s_live, s_batch] = student.split_cost(req.student.price(), student_batch);
            let [j_live, j_batch] = judge.split_cost(judge_price, judge_batch);
            known_sum(&[teacher_cost, s_live, s_batch, j_live, j_batch])
        })
        .flatten();

    DryRun {
        student_calls: counts.student,
        teacher_calls: counts.teacher,
        teacher_calls_max: counts.teacher_max,
        judge_calls: counts.judge,
        train,
        val,
        test,
        cost_upper_bound_usd: known_sum(&[
            teacher_cost,
            student.cost(req.student.price()),
            judge.cost(judge_price),
        ]),
        batched_calls: student_batch.map_or(0, |b| b.1) + judge_batch.map_or(0, |b| b.1),
        batch_cost_upper_bound_usd,
        warnings: checked.warnings().to_vec(),
    }
}
