//! Evaluating a prompt on rows: render, call the student (through the cache), map, score.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use metaprompt_core::run::{Phase, RunEvent};
use metaprompt_core::{
    Budget, BudgetKind, CacheKey, ChatModel, DataMapper, EvalInput, EvalResult, Evaluator,
    EventSink, GenerateParams, Price, PromptTemplate, ResponseCache, Row, Spend, Usage,
};
use serde::{Deserialize, Serialize};

use crate::cancel::CancelFlag;

/// Calls and tokens spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendCounters {
    /// Student calls made (cache hits excluded).
    pub student_calls: u64,
    /// Teacher calls made.
    pub teacher_calls: u64,
    /// Student calls answered by the cache.
    pub cache_hits: u64,
    /// Tokens used by paid calls.
    pub usage: Usage,
    /// Money spent (at the configured prices).
    pub cost_usd: f64,
}

/// Tracks spending across the run (shared by concurrent tasks; never locked across `.await`).
pub(crate) struct Meter {
    pub(crate) counters: Mutex<SpendCounters>,
    pub(crate) started: Instant,
    /// Time already spent before a resume.
    pub(crate) prior_secs: f64,
}

impl Meter {
    pub(crate) fn new(initial: SpendCounters, prior_secs: f64) -> Self {
        Meter {
            counters: Mutex::new(initial),
            started: Instant::now(),
            prior_secs,
        }
    }

    pub(crate) fn snapshot(&self) -> SpendCounters {
        *self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SpendCounters)) {
        f(&mut self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub(crate) fn elapsed_secs(&self) -> f64 {
        self.prior_secs + self.started.elapsed().as_secs_f64()
    }

    pub(crate) fn spend(&self) -> Spend {
        let c = self.snapshot();
        Spend {
            calls: c.student_calls + c.teacher_calls,
            usage: c.usage,
            cost_usd: c.cost_usd,
            elapsed: std::time::Duration::from_secs_f64(self.elapsed_secs()),
        }
    }
}

/// Why work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Budget(BudgetKind),
    Cancelled,
}

/// One row's outcome.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) row: Row,
    pub(crate) output: String,
    pub(crate) input: Option<EvalInput>,
    pub(crate) result: EvalResult,
}

/// A prompt's scores on some rows.
#[derive(Debug, Clone)]
pub(crate) struct Evaluation {
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) mean: f64,
    pub(crate) errors: usize,
}

impl Evaluation {
    pub(crate) fn scores(&self) -> Vec<f64> {
        self.outcomes.iter().map(|o| o.result.score()).collect()
    }
}

/// Everything needed to evaluate prompts for the student.
pub(crate) struct Scorer {
    pub(crate) student: Arc<dyn ChatModel>,
    pub(crate) params: GenerateParams,
    pub(crate) evaluator: Arc<dyn Evaluator>,
    pub(crate) mapper: Arc<dyn DataMapper>,
    pub(crate) cache: Option<Arc<dyn ResponseCache>>,
    pub(crate) concurrency: usize,
    pub(crate) price: Option<Price>,
    pub(crate) budget: Budget,
    pub(crate) cancel: CancelFlag,
}

enum Call {
    Ready(String),
    Failed(String),
    Pending(metaprompt_core::ChatRequest, Option<CacheKey>),
}

impl Scorer {
    /// Evaluates `template` on `rows`. Checks cancellation and the budget first (after cache
    /// lookups, so that cached work never counts against it).
    pub(crate) async fn evaluate(
        &self,
        template: &PromptTemplate,
        rows: &[Row],
        phase: Phase,
        meter: &Meter,
        events: &dyn EventSink,
    ) -> Result<Evaluation, Interrupt> {
        if self.cancel.is_cancelled() {
            return Err(Interrupt::Cancelled);
        }
        let total = rows.len();
        // Render and look every row up in the cache first.
        let mut calls = Vec::with_capacity(total);
        for row in rows {
            let call = match template.render(row) {
                Err(e) => Call::Failed(e.to_string()),
                Ok(text) => {
                    let request = self.params.request(text);
                    // The key is a hash of the whole request: only worth computing with a cache.
                    let key = self
                        .cache
                        .as_ref()
                        .map(|_| CacheKey::for_request(self.student.id(), &request, 0));
                    let hit = match (&self.cache, &key) {
                        (Some(c), Some(key)) => match c.get(key).await {
                            Ok(hit) => hit,
                            Err(e) => {
                                tracing::warn!(error = %e, "cache read failed; calling the model");
                                None
                            }
                        },
                        _ => None,
                    };
                    match hit {
                        Some(resp) => {
                            meter.update(|c| c.cache_hits += 1);
                            Call::Ready(resp.text)
                        }
                        None => Call::Pending(request, key),
                    }
                }
            };
            calls.push(call);
        }
        let misses = calls
            .iter()
            .filter(|c| matches!(c, Call::Pending(..)))
            .count() as u64;
        if misses > 0
            && let Some(kind) = self.budget.would_exceed(&meter.spend(), misses)
        {
            return Err(Interrupt::Budget(kind));
        }
        let done = std::sync::atomic::AtomicUsize::new(total - misses as usize);
        if misses == 0 {
            events.emit(&RunEvent::Evaluated {
                phase,
                done: total,
                total,
            });
        }
        let futures: Vec<_> = calls
            .into_iter()
            .enumerate()
            .map(|(i, call)| {
                let done = &done;
                async move {
                    let out = match call {
                        Call::Ready(t) => Ok(t),
                        Call::Failed(e) => Err(e),
                        Call::Pending(request, key) => {
                            let r = self.student.complete(request).await;
                            match r {
                                Ok(resp) => {
                                    meter.update(|c| {
                                        c.student_calls += 1;
                                        c.usage += resp.usage;
                                        c.cost_usd +=
                                            self.price.map_or(0.0, |p| p.cost(resp.usage));
                                    });
                                    if let (Some(cache), Some(key)) = (&self.cache, &key)
                                        && let Err(e) = cache.put(key, &resp).await
                                    {
                                        tracing::warn!(error = %e, "cache write failed");
                                    }
                                    let n =
                                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                    events.emit(&RunEvent::Evaluated {
                                        phase,
                                        done: n,
                                        total,
                                    });
                                    Ok(resp.text)
                                }
                                Err(e) => {
                                    meter.update(|c| c.student_calls += 1);
                                    let n =
                                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                    events.emit(&RunEvent::Evaluated {
                                        phase,
                                        done: n,
                                        total,
                                    });
                                    Err(format!("student call failed: {e}"))
                                }
                            }
                        }
                    };
                    (i, out)
                }
            })
            .collect();
        let mut outputs: Vec<Option<Result<String, String>>> = vec![None; total];
        let mut stream = futures::stream::iter(futures).buffer_unordered(self.concurrency.max(1));
        while let Some((i, out)) = stream.next().await {
            outputs[i] = Some(out);
        }
        drop(stream);

        // Map, then score every mappable item in one batch.
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
        let mut batch = Vec::new();
        let mut batch_index = Vec::new();
        for (i, (row, out)) in rows.iter().zip(outputs).enumerate() {
            let out = out.unwrap_or_else(|| Err("not evaluated".into()));
            match out {
                Ok(text) => match self.mapper.map(&text, row) {
                    Ok(input) => {
                        batch.push(input.clone());
                        batch_index.push(i);
                        outcomes.push(Outcome {
                            row: row.clone(),
                            output: text,
                            input: Some(input),
                            result: EvalResult::error("pending"),
                        });
                    }
                    Err(e) => outcomes.push(Outcome {
                        row: row.clone(),
                        output: text,
                        input: None,
                        result: EvalResult::error(e.to_string()),
                    }),
                },
                Err(e) => outcomes.push(Outcome {
                    row: row.clone(),
                    output: String::new(),
                    input: None,
                    result: EvalResult::error(e),
                }),
            }
        }
        if !batch.is_empty() {
            let mut results = self.evaluator.evaluate(&batch).await;
            results.resize_with(batch.len(), || {
                EvalResult::error("the evaluator returned too few results")
            });
            for (i, r) in batch_index.into_iter().zip(results) {
                outcomes[i].result = r;
            }
        }
        let errors = outcomes.iter().filter(|o| o.result.is_error()).count();
        let mean = if outcomes.is_empty() {
            0.0
        } else {
            outcomes.iter().map(|o| o.result.score()).sum::<f64>() / outcomes.len() as f64
        };
        Ok(Evaluation {
            outcomes,
            mean,
            errors,
        })
    }
}
