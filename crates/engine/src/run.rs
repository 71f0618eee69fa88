//! A run: the state, the wrapped models, the memo, the guards; the loop over rounds; the
//! checkpoints; the final scores on test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metaprompt_core::run::{Phase, RunEvent, StopReason};
use metaprompt_core::{
    CancelFlag, Checkpointer, EventSink, Generator, Meter, MeterSnapshot, Prompt, Row,
};
use metaprompt_data::MinibatchState;

use crate::EngineError;
use crate::batch::Batching;
pub(crate) use crate::evaluate::Stop;
use crate::evaluate::{Evaluation, Interrupt, Scorer};
use crate::guards::normalised;
use crate::layers::RunModels;
use crate::pool::Candidate;
use crate::request::Checked;
use crate::result::{ExampleReport, OptimizeResult, TestPair, UsageReport};
use crate::state::{RunState, STATE_VERSION};
use crate::stats::{TestDelta, ci95};

/// Everything a run works with besides its state.
pub(crate) struct Run<'a> {
    pub(crate) checked: &'a Checked,
    pub(crate) models: RunModels,
    pub(crate) scorer: Scorer,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) checkpointer: Option<Arc<dyn Checkpointer>>,
    pub(crate) cancel: CancelFlag,
    /// Scores already computed this session, keyed by prompt and rows. Only a shortcut: the
    /// cache would answer the same calls; never checkpointed.
    memo: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Evaluation>>>>>,
    /// Provider batches' executors and answers.
    pub(crate) batching: Arc<Batching>,
    run_id: String,
}

/// The memo key of a prompt on a set of rows: every row id counts, so two different row sets
/// never share a memoised score.
fn memo_key(prompt: &Prompt, rows: &[Row]) -> String {
    let key = prompt.key();
    let mut k = String::with_capacity(key.len() + rows.len() * 4);
    k.push_str(&key);
    for r in rows {
        k.push('\u{0}');
        k.push_str(r.id().as_str());
    }
    k
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        checked: &'a Checked,
        models: RunModels,
        events: Arc<dyn EventSink>,
        checkpointer: Option<Arc<dyn Checkpointer>>,
        cancel: CancelFlag,
        run_id: &str,
    ) -> Self {
        let req = &checked.request;
        let scorer = Scorer {
            student: models.student.clone(),
            params: req.student_params.clone(),
            evaluator: models.evaluator.clone(),
            mapper: req.data_mapper.clone(),
            concurrency: req.config.concurrency,
            meter: models.meter.clone(),
            events: events.clone(),
        };
        Run {
            checked,
            batching: models.batching.clone(),
            models,
            scorer,
            events,
            checkpointer,
            cancel,
            memo: Mutex::new(HashMap::new()),
            run_id: run_id.to_string(),
        }
    }

    pub(crate) fn run_id(&self) -> String {
        self.run_id.clone()
    }

    /// A number unique within this process, for temporary file names: several runs may share
    /// a process (and its pid), so a count per run would let one run's files overwrite, or
    /// delete, another's.
    pub(crate) fn batch_seq(&self) -> u64 {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        SEQ.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn meter(&self) -> &Arc<Meter> {
        &self.models.meter
    }

    /// The prompt a candidate is evaluated with: its instructions with its demonstrations.
    pub(crate) fn effective(&self, c: &Candidate) -> Prompt {
        self.checked
            .demo_template
            .apply(&c.prompt, &c.demos, &self.checked.splits.train)
    }

    /// Evaluates with the memo and the evaluator-health check. The memo and the callers share
    /// one copy of each evaluation.
    pub(crate) async fn score(
        &self,
        prompt: &Prompt,
        rows: &[Row],
        phase: Phase,
    ) -> Result<Arc<Evaluation>, Stop> {
        let key = memo_key(prompt, rows);
        // One cell per prompt and rows: two children of a round that made the same prompt
        // wait for one evaluation instead of paying for it twice.
        let cell = Arc::clone(
            self.memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key)
                .or_default(),
        );
        cell.get_or_try_init(|| async {
            self.prefetch(prompt, rows, phase).await?;
            let e = Arc::new(self.scorer.evaluate(prompt, rows, phase).await?);
            if !e.outcomes.is_empty() {
                let rate = e.errors as f64 / e.outcomes.len() as f64;
                if rate > self.checked.request.config.max_error_rate {
                    return Err(Stop::Error(EngineError::EvaluatorUnhealthy {
                        phase,
                        errors: e.errors,
                        total: e.outcomes.len(),
                        sample: e.first_error(),
                    }));
                }
            }
            Ok(e)
        })
        .await
        .cloned()
    }

    /// Scores every initial prompt on val: the pool's first candidates.
    async fn baseline(&self, run_id: &str) -> Result<RunState, EngineError> {
        let req = &self.checked.request;
        let val = &self.checked.splits.val;
        let mut pool = Vec::new();
        for (i, p) in req.initial_prompts.iter().enumerate() {
            let e = match self.score(p, val, Phase::Baseline).await {
                Ok(e) => e,
                Err(Stop::Interrupt(_)) => return Err(EngineError::InterruptedBeforeBaseline),
                Err(Stop::Error(e)) => return Err(e),
            };
            self.events.emit(&RunEvent::Baseline {
                index: i,
                val_score: e.mean,
            });
            pool.push(Candidate {
                id: i as u32,
                prompt: p.clone(),
                demos: Vec::new(),
                parents: Vec::new(),
                mutation: None,
                round: 0,
                val: e.scores(),
                val_mean: e.mean,
                repaired: false,
            });
        }
        let best = crate::pool::best_index(&pool);
        Ok(RunState {
            version: STATE_VERSION,
            run_id: run_id.to_string(),
            round_done: 0,
            seen: pool.iter().map(|c| normalised(&c.prompt.key())).collect(),
            initial: pool.len(),
            pool,
            best,
            current: best,
            history: Vec::new(),
            minibatch: MinibatchState::default(),
            tests_made: 0,
            rounds_since_improvement: 0,
            meter: self.meter().snapshot(),
        })
    }

    fn stop_before_round(&self, state: &RunState) -> Option<StopReason> {
        let cfg = &self.checked.request.config;
        if self.cancel.is_cancelled() {
            return Some(StopReason::Interrupted);
        }
        if let Some(t) = cfg.target_score
            && state.pool[state.best].val_mean >= t
        {
            return Some(StopReason::TargetReached);
        }
        if let Some(p) = cfg.patience
            && state.rounds_since_improvement >= p
        {
            return Some(StopReason::NoImprovement);
        }
        self.meter().exhausted().map(StopReason::Budget)
    }

    /// Saves the committed state with the spending as it is now.
    async fn checkpoint(&self, state: &mut RunState) -> Result<(), EngineError> {
        state.meter = self.meter().snapshot();
        if let Some(c) = &self.checkpointer {
            let value = serde_json::to_value(&*state)
                .map_err(|e| EngineError::Checkpoint(e.to_string()))?;
            c.save(&state.run_id, state.round_done, &value)
                .await
                .map_err(|e| EngineError::Checkpoint(e.to_string()))?;
        }
        Ok(())
    }

    /// The whole run: restore or baseline, the rounds, the final scores.
    pub(crate) async fn execute(
        &self,
        restored: Option<RunState>,
        run_id: String,
    ) -> Result<OptimizeResult, EngineError> {
        let rounds = self.checked.request.config.num_rounds;
        self.events.emit(&RunEvent::RunStarted {
            run_id: run_id.clone(),
            num_rounds: rounds,
        });
        let mut state = match restored {
            Some(s) => s,
            None => {
                let mut s = self.baseline(&run_id).await?;
                self.checkpoint(&mut s).await?;
                s
            }
        };
        let mut stop = StopReason::Completed;
        while state.round_done < rounds {
            if let Some(r) = self.stop_before_round(&state) {
                stop = r;
                break;
            }
            let round = state.round_done + 1;
            self.events.emit(&RunEvent::RoundStarted { round });
            match self.round(&state, round).await {
                Ok(outcome) => {
                    self.commit(&mut state, round, outcome);
                    self.checkpoint(&mut state).await?;
                }
                Err(Stop::Interrupt(i)) => {
                    stop = match i {
                        Interrupt::Cancelled => StopReason::Interrupted,
                        Interrupt::Budget(k) => StopReason::Budget(k),
                    };
                    break;
                }
                Err(Stop::Error(e)) => {
                    self.checkpoint(&mut state).await?;
                    return Err(e);
                }
            }
        }
        if stop == StopReason::Completed
            && let Some(r @ StopReason::TargetReached) = self.stop_before_round(&state)
        {
            stop = r;
        }
        // The state as the last round left it, with what the interrupted round spent.
        self.checkpoint(&mut state).await?;
        self.finish(state, stop).await
    }

    /// Scores the best and the best initial prompt on test and builds the result.
    async fn finish(
        &self,
        state: RunState,
        stop: StopReason,
    ) -> Result<OptimizeResult, EngineError> {
        let req = &self.checked.request;
        let seed = req.config.seed;
        let test = &self.checked.splits.test;
        let best = &state.pool[state.best];
        let initial = &state.pool[state.initial_best()];
        let best_prompt = self.effective(best);
        let initial_prompt = self.effective(initial);
        // The memo scores a prompt once when both are the same. Skipped when interrupted (the
        // user asked to stop); after a budget ran out the meter refuses the calls and the
        // test scores stay empty.
        let mut on_test: [Option<Arc<Evaluation>>; 2] = [None, None];
        if !test.is_empty() && stop != StopReason::Interrupted {
            for (slot, p) in on_test.iter_mut().zip([&best_prompt, &initial_prompt]) {
                match self.score(p, test, Phase::Test).await {
                    Ok(e) => *slot = Some(e),
                    Err(Stop::Interrupt(_)) => break,
                    Err(Stop::Error(e)) => return Err(e),
                }
            }
        }
        let [best_test, initial_test] = on_test;
        let test_delta = match (&best_test, &initial_test) {
            (Some(b), Some(i)) => TestDelta::of(&b.scores(), &i.scores()),
            _ => None,
        };
        let worst = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&memo_key(&best_prompt, &self.checked.splits.val))
            .and_then(|cell| cell.get().map(|e| worst_examples(e, &best_prompt, 5)))
            .unwrap_or_default();
        let test_outputs = match (&best_test, &initial_test) {
            (Some(b), Some(i)) => i
                .outcomes
                .iter()
                .zip(&b.outcomes)
                .map(|(i, b)| TestPair {
                    initial: ExampleReport::of(i, &initial_prompt),
                    best: ExampleReport::of(b, &best_prompt),
                })
                .collect(),
            _ => Vec::new(),
        };
        self.events.emit(&RunEvent::Finished {
            stop_reason: stop,
            final_score: best.val_mean,
        });
        let spend: MeterSnapshot = self.meter().snapshot();
        Ok(OptimizeResult {
            run_id: state.run_id.clone(),
            final_score: best.val_mean,
            initial_score: initial.val_mean,
            test_score: best_test.as_ref().map(|e| e.mean),
            test_ci95: best_test.as_ref().and_then(|e| ci95(&e.scores(), seed)),
            initial_test_score: initial_test.as_ref().map(|e| e.mean),
            initial_test_ci95: initial_test.as_ref().and_then(|e| ci95(&e.scores(), seed)),
            test_delta,
            best_prompt: best_prompt.clone(),
            best_demos: best.demos.clone(),
            best_repaired: best.repaired,
            initial_prompt: initial_prompt.clone(),
            best_generator: Generator::new(
                req.student.clone(),
                best_prompt,
                req.student_params.clone(),
            ),
            initial_scores: state.pool[..state.initial]
                .iter()
                .map(|c| c.val_mean)
                .collect(),
            history: state.history.clone(),
            lineage: crate::result::lineage(&state.pool, state.best),
            usage: UsageReport::from(&spend),
            stop_reason: stop,
            wall_seconds: spend.elapsed_secs,
            worst_examples: worst,
            test_outputs,
            splits: self.checked.sizes(),
        })
    }
}

/// A resumed state, or why it cannot be used.
pub(crate) fn restore(value: &serde_json::Value) -> Result<RunState, EngineError> {
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(STATE_VERSION)) {
        return Err(EngineError::Resume(format!(
            "the checkpoint was written by another version of metaprompt (format {}, this one reads {STATE_VERSION}); start the run again (its paid calls are still cached)",
            version.map_or("1".to_string(), |v| v.to_string())
        )));
    }
    serde_json::from_value(value.clone()).map_err(|e| EngineError::Resume(e.to_string()))
}

fn worst_examples(e: &Evaluation, prompt: &Prompt, n: usize) -> Vec<ExampleReport> {
    let mut v: Vec<&crate::evaluate::Outcome> = e.outcomes.iter().collect();
    v.sort_by(|a, b| a.result.score().total_cmp(&b.result.score()));
    v.into_iter()
        .take(n)
        .filter(|o| o.result.score() < 1.0)
        .map(|o| ExampleReport::of(o, prompt))
        .collect()
}
