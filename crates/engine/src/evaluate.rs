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
    /// The interruption a refused call stands for (a budget ran out, the run was cancelled).
    pub(crate) fn from_refusal(e: &ModelError) -> Option<Interrupt> {
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
    /// The reference answer the evaluator was given (`expected_response`), if any.
    pub(crate) expected: Option<String>,
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
        // Each row's call is made when the stream reaches it: memory holds `concurrency`
        // calls, not one per row.
        let calls = rows.iter().enumerate().map(|(i, row)| {
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
                                None if matches!(e, ModelError::Auth(_) | ModelError::Quota(_)) => {
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
        });
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

        // Map, then score the mappable items a chunk at a time: the evaluator's contract makes
        // each item's score independent of the others, so chunks change nothing but memory.
        let chunk = (self.concurrency.max(1) * 32).max(1_024);
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
        let mut pending: Vec<(usize, EvalInput)> = Vec::new();
        for (i, (row, out)) in rows.iter().zip(outputs).enumerate() {
            match out.unwrap_or_else(|| Err(Err("not evaluated".into()))) {
                Ok(text) => match self.mapper.map(&text, row) {
                    Ok(input) => {
                        outcomes.push(Outcome {
                            row: row.clone(),
                            output: text,
                            expected: input.expected(),
                            result: EvalResult::error("pending"),
                        });
                        pending.push((i, input));
                        if pending.len() == chunk {
                            self.score_items(&mut pending, &mut outcomes).await;
                        }
                    }
                    Err(e) => outcomes.push(Outcome {
                        row: row.clone(),
                        output: text,
                        expected: None,
                        result: EvalResult::error(e.to_string()),
                    }),
                },
                Err(e) => outcomes.push(Outcome {
                    row: row.clone(),
                    output: String::new(),
                    expected: None,
                    result: EvalResult::error(e.err().unwrap_or_default()),
                }),
            }
        }
        self.score_items(&mut pending, &mut outcomes).await;
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

    /// Scores the mapped items waiting in `pending` into their outcomes.
    async fn score_items(&self, pending: &mut Vec<(usize, EvalInput)>, outcomes: &mut [Outcome]) {
        if pending.is_empty() {
            return;
        }
        let (index, inputs): (Vec<usize>, Vec<EvalInput>) = pending.drain(..).unzip();
        let mut results = self.evaluator.evaluate(&inputs).await;
        results.resize_with(inputs.len(), || {
            EvalResult::error("the evaluator returned too few results")
        });
        for (i, r) in index.into_iter().zip(results) {
            outcomes[i].result = r;
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use metaprompt_core::testing::ScriptedModel;
    use metaprompt_core::{Budget, ModelUse, NoEvents, async_trait};
    use metaprompt_data::BasicDataMapper;
    use serde_json::json;

    use super::*;

    /// Exact match that records the size of every batch it is given.
    #[derive(Default)]
    struct Recording {
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl Evaluator for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn with_model_layer(&self, _layer: &metaprompt_core::ModelLayer<'_>) -> ModelUse {
            ModelUse::None
        }
        async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
            self.batches.lock().unwrap().push(inputs.len());
            inputs
                .iter()
                .map(|i| EvalResult::pass_fail(i.text("response") == i.expected(), ""))
                .collect()
        }
    }

    #[tokio::test]
    async fn a_large_split_is_scored_in_chunks_with_every_score_on_its_own_row() {
        // The student answers "spam" when the text names a multiple of 3, else "ham"; the label
        // is "spam" on even rows: rows that are both or neither score 1, and the pattern
        // crosses every chunk boundary.
        let student = ScriptedModel::new("student").with_handler(|r| {
            let n: usize = r.messages[0]
                .content
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            Ok(if n.is_multiple_of(3) { "spam" } else { "ham" }.to_string())
        });
        let rows: Vec<Row> = (0..2_500)
            .map(|i| {
                let label = if i % 2 == 0 { "spam" } else { "ham" };
                Row::from_json(
                    i.to_string(),
                    json!({"text": format!("row {i}"), "label": label}),
                )
                .unwrap()
            })
            .collect();
        let evaluator = Arc::new(Recording::default());
        let scorer = Scorer {
            student: Arc::new(student),
            params: GenerateParams::default(),
            evaluator: evaluator.clone(),
            mapper: Arc::new(BasicDataMapper::new([
                ("response", "generated_output"),
                ("expected_response", "label"),
            ])),
            concurrency: 8,
            meter: Arc::new(Meter::new(Budget::default())),
            events: Arc::new(NoEvents),
        };
        let prompt = Prompt::parse("{text}").unwrap();
        let Ok(e) = scorer.evaluate(&prompt, &rows, Phase::Validation).await else {
            panic!("the evaluation stopped");
        };
        let expected: Vec<f64> = (0..2_500)
            .map(|i| f64::from(u8::from((i % 3 == 0) == (i % 2 == 0))))
            .collect();
        assert_eq!(e.scores(), expected);
        assert_eq!(e.errors, 0);
        assert_eq!(e.outcomes[1_024].row.id().as_str(), "1024");
        assert_eq!(e.outcomes[7].expected.as_deref(), Some("ham"));
        // 32 × concurrency is below the floor of 1,024 items per chunk.
        assert_eq!(*evaluator.batches.lock().unwrap(), vec![1_024, 1_024, 452]);
    }
}
