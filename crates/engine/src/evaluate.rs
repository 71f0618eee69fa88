//! Evaluating a prompt on rows: render, call the student, map, score.
//!
//! The student and the evaluator arrive already wrapped in the run's layers (cache, limit,
//! meter), so nothing here knows about caches or budgets beyond noticing that the meter
//! refused a call: an evaluation that lost a call to a budget or to cancellation is
//! incomplete and is never used.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use metaprompt_core::run::{Phase, RunEvent};
use metaprompt_core::{
    BudgetKind, ChatModel, DataMapper, EvalInput, EvalResult, Evaluator, EventSink, GenerateParams,
    Meter, ModelError, Prompt, Row,
};

/// Why work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Budget(BudgetKind),
    Cancelled,
}

/// Why a step stopped: interrupted (the run returns what it has) or failed.
pub(crate) enum Stop {
    Interrupt(Interrupt),
    Error(crate::EngineError),
}

impl From<Interrupt> for Stop {
    fn from(i: Interrupt) -> Self {
        Stop::Interrupt(i)
    }
}

impl Interrupt {
    fn from_refusal(e: &ModelError) -> Option<Interrupt> {
        match e {
            ModelError::Budget(k) => Some(Interrupt::Budget(*k)),
            ModelError::Cancelled => Some(Interrupt::Cancelled),
            _ => None,
        }
    }
}

/// Why an evaluation cannot go on.
#[derive(Debug, Clone)]
enum Halt {
    Interrupt(Interrupt),
    Fatal(ModelError),
}

/// One row's outcome.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) row: Row,
    pub(crate) output: String,
    pub(crate) input: Option<EvalInput>,
    pub(crate) result: EvalResult,
}

/// A prompt's scores on some rows, in the rows' order.
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

    /// The first failure's reason, for error messages.
    pub(crate) fn first_error(&self) -> String {
        self.outcomes
            .iter()
            .find(|o| o.result.is_error())
            .map(|o| o.result.reason().to_string())
            .unwrap_or_default()
    }
}

/// Everything needed to evaluate prompts for the student.
#[derive(Clone)]
pub(crate) struct Scorer {
    pub(crate) student: Arc<dyn ChatModel>,
    pub(crate) params: GenerateParams,
    pub(crate) evaluator: Arc<dyn Evaluator>,
    pub(crate) mapper: Arc<dyn DataMapper>,
    pub(crate) concurrency: usize,
    pub(crate) meter: Arc<Meter>,
    pub(crate) events: Arc<dyn EventSink>,
}

impl Scorer {
    /// Evaluates `prompt` on `rows`.
    pub(crate) async fn evaluate(
        &self,
        prompt: &Prompt,
        rows: &[Row],
        phase: Phase,
    ) -> Result<Evaluation, Stop> {
        if let Some(i) = self
            .meter
            .refusal()
            .as_ref()
            .and_then(Interrupt::from_refusal)
        {
            return Err(i.into());
        }
        let total = rows.len();
        let done = AtomicUsize::new(0);
        // Once a call fails for good (bad key, no quota), the rest are not even tried.
        let fatal = std::sync::atomic::AtomicBool::new(false);
        let calls: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let (done, fatal) = (&done, &fatal);
                async move {
                    let out = match prompt.render(row) {
                        Err(e) => Err(Err(e.to_string())),
                        Ok(_) if fatal.load(Ordering::Relaxed) => {
                            Err(Err("not called: an earlier call failed for good".into()))
                        }
                        Ok(messages) => {
                            let request = self.params.request(messages);
                            match self.student.complete(request).await {
                                Ok(resp) => Ok(resp.text),
                                Err(e) => Err(match Interrupt::from_refusal(&e) {
                                    Some(stop) => Ok(Halt::Interrupt(stop)),
                                    // Every further call would fail the same way.
                                    None if matches!(
                                        e,
                                        ModelError::Auth(_) | ModelError::Quota(_)
                                    ) =>
                                    {
                                        fatal.store(true, Ordering::Relaxed);
                                        Ok(Halt::Fatal(e))
                                    }
                                    None => Err(format!("student call failed: {e}")),
                                }),
                            }
                        }
                    };
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    self.events.emit(&RunEvent::Evaluated {
                        phase,
                        done: n,
                        total,
                    });
                    (i, out)
                }
            })
            .collect();
        type Out = Result<String, Result<Halt, String>>;
        let mut outputs: Vec<Option<Out>> = vec![None; total];
        let mut stream = futures::stream::iter(calls).buffer_unordered(self.concurrency.max(1));
        while let Some((i, out)) = stream.next().await {
            outputs[i] = Some(out);
        }
        drop(stream);
        if let Some(halt) = outputs.iter().find_map(|o| match o {
            Some(Err(Ok(halt))) => Some(halt.clone()),
            _ => None,
        }) {
            return Err(match halt {
                Halt::Interrupt(i) => Stop::Interrupt(i),
                Halt::Fatal(e) => Stop::Error(crate::EngineError::Student(e)),
            });
        }

        // Map, then score every mappable item in one batch.
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
        let mut batch = Vec::new();
        let mut batch_index = Vec::new();
        for (i, (row, out)) in rows.iter().zip(outputs).enumerate() {
            match out.unwrap_or_else(|| Err(Err("not evaluated".into()))) {
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
                    result: EvalResult::error(e.err().unwrap_or_default()),
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
        // A judge call refused by the budget or by cancellation leaves an error item that is
        // not the prompt's fault: the evaluation is incomplete.
        if let Some(i) = self
            .meter
            .refusal()
            .as_ref()
            .and_then(Interrupt::from_refusal)
        {
            return Err(i.into());
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

    /// Makes the student's call for each row and keeps nothing: the pass that collects a
    /// split's uncached calls for a batch (they answer `Deferred`, at no cost).
    pub(crate) async fn call_student_only(&self, prompt: &Prompt, rows: &[Row]) {
        let calls = rows.iter().filter_map(|row| {
            let messages = prompt.render(row).ok()?;
            let request = self.params.request(messages);
            Some(async move {
                let _ = self.student.complete(request).await;
            })
        });
        futures::stream::iter(calls)
            .buffer_unordered(self.concurrency.max(1))
            .for_each(|()| async {})
            .await;
    }
}
