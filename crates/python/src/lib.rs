//! The native half of the `metaprompt` Python package: the engine, its models, evaluators,
//! store and progress, behind one call that the pure-Python half (`python/metaprompt`) wraps
//! in agent-opt's interface.
//!
//! The engine runs on its own threads with the interpreter released; the interpreter is
//! taken only to call Python code (a `Generator` subclass, an evaluator callable) and, every
//! 100 ms, to look for Ctrl-C.
#![deny(missing_docs)]

mod evaluator;
mod models;
mod progress;
mod request;
mod run;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// An error the user's input caused (`ValueError`) or one the run met (`RuntimeError`).
pub(crate) enum Failure {
    /// Bad config, data, key map or prompt.
    Usage(String),
    /// A failure while running.
    Runtime(String),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Usage(m) => PyValueError::new_err(m),
            Failure::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

impl From<metaprompt::engine::EngineError> for Failure {
    fn from(e: metaprompt::engine::EngineError) -> Failure {
        if e.is_usage() {
            Failure::Usage(e.to_string())
        } else {
            Failure::Runtime(e.to_string())
        }
    }
}

/// Runs an optimization; returns the result document (`result.json`) as JSON text.
///
/// `request` is the JSON the Python side writes; `student` and `teacher` are generators (a
/// built-in one describes itself with `_spec()`, anything else is called through
/// `generate(messages)`); `evaluator` is a built-in `Evaluator` (`_spec()`) or a callable.
#[pyfunction]
fn optimize(
    py: Python<'_>,
    request: &str,
    student: Py<PyAny>,
    teacher: Py<PyAny>,
    evaluator: Py<PyAny>,
) -> PyResult<String> {
    let built = request::build(py, request, student, teacher, evaluator)?;
    run::execute(py, built)
}

/// Scores `outputs` against `rows` (the mapped fields, e.g. `expected_response`) with an
/// evaluator, in batches of `batch_size` as a run does; returns `(scores, seconds)` with
/// each score as `(score, reason)`. The interpreter is released while built-ins score.
#[pyfunction]
#[pyo3(signature = (evaluator, items, batch_size = 40))]
fn score(
    py: Python<'_>,
    evaluator: Py<PyAny>,
    items: &str,
    batch_size: usize,
) -> PyResult<(Vec<(f64, String)>, f64)> {
    let fields: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(items).map_err(|err| Failure::Usage(format!("items: {err}")))?;
    let keys = fields
        .first()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    let e = request::evaluator(py, evaluator, None, keys, &mut Vec::new(), &mut Vec::new())?;
    let fields: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(items).map_err(|err| Failure::Usage(format!("items: {err}")))?;
    let inputs: Vec<metaprompt::core::EvalInput> = fields
        .into_iter()
        .map(|f| metaprompt::core::EvalInput {
            row_id: None,
            fields: f,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Runtime(err.to_string()))?;
    let (results, secs) = py.detach(|| {
        let start = std::time::Instant::now();
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(batch_size.max(1)) {
            out.extend(rt.block_on(e.evaluate(chunk)));
        }
        (out, start.elapsed().as_secs_f64())
    });
    Ok((
        results
            .iter()
            .map(|r| (r.score(), r.reason().to_string()))
            .collect(),
        secs,
    ))
}

/// The version of the engine inside the wheel.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Whether this wheel carries the embedded provider (`LlamaGenerator`).
#[pyfunction]
fn embedded() -> bool {
    cfg!(feature = "embedded")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(optimize, m)?)?;
    m.add_function(wrap_pyfunction!(score, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(embedded, m)?)?;
    Ok(())
}
