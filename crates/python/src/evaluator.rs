//! A Python callable as an evaluator: `fn(outputs, rows) -> list[float | (float, str)]`,
//! called once per batch the engine scores.

use std::sync::Arc;

use metaprompt::core::{EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, async_trait};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// The callable and the name reports show.
pub(crate) struct PyEvaluator {
    name: String,
    func: Arc<Py<PyAny>>,
}

impl PyEvaluator {
    pub(crate) fn new(name: String, func: Py<PyAny>) -> Self {
        PyEvaluator {
            name,
            func: Arc::new(func),
        }
    }
}

/// One item of what the callable returned.
fn item(v: &Bound<'_, PyAny>) -> Result<EvalResult, String> {
    let (score, reason) = if let Ok(t) = v.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(format!(
                "a tuple must be (score, reason), got {} items",
                t.len()
            ));
        }
        let s: f64 = t
            .get_item(0)
            .and_then(|x| x.extract())
            .map_err(|_| "the score must be a number".to_string())?;
        let r: String = t
            .get_item(1)
            .and_then(|x| x.str().map(|s| s.to_string()))
            .map_err(|e| e.to_string())?;
        (s, r)
    } else {
        let s: f64 = v
            .extract()
            .map_err(|_| format!("a score must be a number or (number, reason), got {v}"))?;
        (s, String::new())
    };
    EvalResult::new(score, reason).map_err(|e| e.to_string())
}

fn call(py: Python<'_>, func: &Py<PyAny>, inputs: &[EvalInput]) -> Result<Vec<EvalResult>, String> {
    let json = py.import("json").map_err(|e| e.to_string())?;
    let outputs: Vec<String> = inputs
        .iter()
        .map(|i| i.response().unwrap_or_default())
        .collect();
    let text = serde_json::to_string(&inputs.iter().map(|i| &i.fields).collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    let rows = json
        .call_method1("loads", (text,))
        .map_err(|e| e.to_string())?;
    let got = func
        .bind(py)
        .call1((outputs, rows))
        .map_err(|e| format!("the evaluator raised {e}"))?;
    let list = got
        .cast::<PyList>()
        .map_err(|_| "the evaluator must return a list (one score per output)".to_string())?;
    if list.len() != inputs.len() {
        return Err(format!(
            "the evaluator returned {} scores for {} outputs",
            list.len(),
            inputs.len()
        ));
    }
    list.iter().map(|v| item(&v)).collect()
}

#[async_trait]
impl Evaluator for PyEvaluator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult> {
        let func = self.func.clone();
        let owned = inputs.to_vec();
        let n = inputs.len();
        let done =
            tokio::task::spawn_blocking(move || Python::attach(|py| call(py, &func, &owned)))
                .await
                .unwrap_or_else(|e| Err(format!("the evaluator's thread failed: {e}")));
        match done {
            Ok(results) => results,
            Err(message) => (0..n).map(|_| EvalResult::error(&message)).collect(),
        }
    }

    /// A Python callable's own model calls are out of the engine's sight: score with a
    /// built-in judge (`Evaluator("judge", ...)`) to have them cached, metered and budgeted.
    fn with_model_layer(&self, _layer: &ModelLayer<'_>) -> ModelUse {
        ModelUse::None
    }
}
