//! From the Python side's request to a checked engine request: data, key map, models,
//! evaluator and knobs, every mistake reported before any call is made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use metaprompt::core::{BatchExecutor, ChatModel, Evaluator, Prompt, Role, Row};
use metaprompt::data::{BasicDataMapper, Dataset, LoadOptions, SplitConfig, load};
use metaprompt::engine::{Checked, DataSource, OptimizeRequest, OptimizerConfig, TeacherParams};
use metaprompt::evals::{BuildContext, EvaluatorSpec, ExternalBuilder};
use metaprompt::futureagi::{FutureAgiEvaluator, from_spec};
use pyo3::prelude::*;
use serde::Deserialize;

use crate::Failure;
use crate::evaluator::PyEvaluator;
use crate::models::{ModelSpec, PyGenerator};

/// What `metaprompt.MetaPromptOptimizer.optimize` sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The `[optimizer]` knobs (`num_rounds`, `eval_subset_size`, …).
    config: serde_json::Value,
    teacher: TeacherParams,
    student: StudentParams,
    rows: Option<Vec<serde_json::Value>>,
    path: Option<String>,
    id_field: Option<String>,
    label_fields: Vec<String>,
    key_map: BTreeMap<String, String>,
    split: Split,
    initial_prompts: Vec<PromptSpec>,
    task_description: String,
    run_dir: Option<PathBuf>,
    progress: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StudentParams {
    temperature: Option<f32>,
    max_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Split {
    train: f64,
    val: f64,
    test: f64,
    seed: u64,
    stratify_by: Option<String>,
}

/// A prompt: template text, or chat messages as `{"role", "content"}` objects.
#[derive(Deserialize)]
#[serde(untagged)]
enum PromptSpec {
    Text(String),
    Messages(Vec<BTreeMap<String, String>>),
}

/// Everything a run needs.
pub(crate) struct Built {
    pub(crate) checked: Checked,
    pub(crate) teacher: Arc<dyn ChatModel>,
    pub(crate) secrets: Vec<String>,
    /// FutureAGI evaluators, whose key map is checked against the live catalogue first.
    pub(crate) hosted: Vec<FutureAgiEvaluator>,
    pub(crate) run_dir: Option<PathBuf>,
    pub(crate) progress: bool,
    pub(crate) request_text: String,
}

fn usage(m: impl std::fmt::Display) -> Failure {
    Failure::Usage(m.to_string())
}

/// A `_spec()` JSON text, when the object is a built-in one.
fn spec_of(py: Python<'_>, obj: &Py<PyAny>) -> Result<Option<String>, Failure> {
    let o = obj.bind(py);
    if !o.hasattr("_spec").map_err(usage)? {
        return Ok(None);
    }
    let text = o.call_method0("_spec").map_err(usage)?;
    Ok(Some(text.extract::<String>().map_err(usage)?))
}

fn type_name(py: Python<'_>, obj: &Py<PyAny>) -> String {
    obj.bind(py)
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "python".into())
}

/// A generator as a model, and its Batch API executor when it has `batch=True`.
type Model = (Arc<dyn ChatModel>, Option<Arc<dyn BatchExecutor>>);

fn model(
    py: Python<'_>,
    obj: Py<PyAny>,
    role: &str,
    secrets: &mut Vec<String>,
) -> Result<Model, Failure> {
    if let Some(text) = spec_of(py, &obj)? {
        let spec: ModelSpec =
            serde_json::from_str(&text).map_err(|e| usage(format!("{role}: {e}")))?;
        let built = spec.build().map_err(|e| usage(format!("{role}: {e}")))?;
        secrets.extend(built.secrets);
        return Ok((built.model, built.batch));
    }
    let o = obj.bind(py);
    if !o.hasattr("generate").map_err(usage)? {
        return Err(usage(format!(
            "{role}: expected a generator (OpenAIGenerator, AnthropicGenerator, LlamaGenerator or a Generator subclass with generate(messages) -> str), got {}",
            type_name(py, &obj)
        )));
    }
    // The id keys the cache: the class and its `model_id` when it has one.
    let id = match o.getattr("model_id").and_then(|v| v.extract::<String>()) {
        Ok(m) => format!("python:{}:{m}", type_name(py, &obj)),
        Err(_) => format!("python:{}", type_name(py, &obj)),
    };
    Ok((Arc::new(PyGenerator::new(id, obj)), None))
}

/// A built-in evaluator (`_spec()`) or a Python callable.
///
/// `keys` are the key map's evaluator keys (FutureAGI templates check them); the secrets a
/// hosted evaluator read from the environment are added to `secrets`.
pub(crate) fn evaluator(
    py: Python<'_>,
    obj: Py<PyAny>,
    judge: Option<Arc<dyn ChatModel>>,
    keys: Vec<String>,
    secrets: &mut Vec<String>,
    hosted_built: &mut Vec<FutureAgiEvaluator>,
) -> Result<Arc<dyn Evaluator>, Failure> {
    if let Some(text) = spec_of(py, &obj)? {
        let spec: EvaluatorSpec =
            serde_json::from_str(&text).map_err(|e| usage(format!("evaluator: {e}")))?;
        type Made = (Vec<String>, Vec<FutureAgiEvaluator>);
        let read: Arc<Mutex<Made>> = Arc::default();
        let sink = read.clone();
        let hosted: Arc<ExternalBuilder> = Arc::new(move |spec| {
            Some(from_spec(spec, &keys)?.map(|made| {
                if let Ok(mut s) = sink.lock() {
                    s.0.extend(made.secrets);
                    s.1.push(made.evaluator.clone());
                }
                Arc::new(made.evaluator) as Arc<dyn Evaluator>
            }))
        });
        let built = spec
            .build(&BuildContext {
                judge_model: judge,
                base_dir: std::env::current_dir().unwrap_or_default(),
                external: Some(hosted),
            })
            .map_err(usage)?;
        if let Ok(mut r) = read.lock() {
            secrets.append(&mut r.0);
            hosted_built.append(&mut r.1);
        }
        return Ok(built);
    }
    if !obj.bind(py).is_callable() {
        return Err(usage(format!(
            "evaluator: expected an Evaluator or a callable fn(outputs, rows) -> list of scores, got {}",
            type_name(py, &obj)
        )));
    }
    let name = obj
        .bind(py)
        .getattr("__name__")
        .and_then(|n| n.extract::<String>())
        .unwrap_or_else(|_| "python".into());
    Ok(Arc::new(PyEvaluator::new(format!("python:{name}"), obj)))
}

fn dataset(r: &Request) -> Result<Dataset, Failure> {
    let ds = match (&r.rows, &r.path) {
        (Some(rows), None) => {
            let mut out = Vec::with_capacity(rows.len());
            for (i, v) in rows.iter().enumerate() {
                let id = match r.id_field.as_deref().and_then(|f| v.get(f)) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => (i + 1).to_string(),
                };
                out.push(
                    Row::from_json(id, v.clone())
                        .map_err(|e| usage(format!("dataset: row {} is not a dict: {e}", i + 1)))?,
                );
            }
            Dataset::new(out)
        }
        (None, Some(p)) => load(
            p,
            &LoadOptions {
                id_field: r.id_field.clone(),
                ..LoadOptions::default()
            },
        )
        .map_err(|e| usage(format!("dataset: {e}")))?,
        _ => return Err(usage("dataset: give rows or a path")),
    };
    ds.with_label_fields(r.label_fields.clone())
        .map_err(|e| usage(format!("dataset: {e}")))
}

fn prompts(specs: &[PromptSpec]) -> Result<Vec<Prompt>, Failure> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            PromptSpec::Text(t) => {
                Prompt::parse(t).map_err(|e| usage(format!("initial_prompts[{i}]: {e}")))
            }
            PromptSpec::Messages(list) => {
                let mut pairs = Vec::with_capacity(list.len());
                for m in list {
                    let role = match m.get("role").map(String::as_str).unwrap_or("user") {
                        "system" => Role::System,
                        "user" => Role::User,
                        "assistant" => Role::Assistant,
                        other => {
                            return Err(usage(format!(
                                "initial_prompts[{i}]: unknown role `{other}`; use system, user or assistant"
                            )));
                        }
                    };
                    pairs.push((role, m.get("content").cloned().unwrap_or_default()));
                }
                Prompt::from_messages(pairs)
                    .map_err(|e| usage(format!("initial_prompts[{i}]: {e}")))
            }
        })
        .collect()
}

/// Parses and checks the request; builds models and evaluator.
pub(crate) fn build(
    py: Python<'_>,
    text: &str,
    student: Py<PyAny>,
    teacher: Py<PyAny>,
    evaluator_obj: Py<PyAny>,
) -> Result<Built, Failure> {
    let r: Request = serde_json::from_str(text).map_err(|e| usage(format!("request: {e}")))?;
    let config: OptimizerConfig =
        serde_json::from_value(r.config.clone()).map_err(|e| usage(format!("optimizer: {e}")))?;
    let ds = dataset(&r)?;
    let mapper = BasicDataMapper::for_dataset(r.key_map.clone(), &ds)
        .map_err(|e| usage(format!("data_mapper: {e}")))?;
    let initial = prompts(&r.initial_prompts)?;
    let mut secrets = Vec::new();
    let (student, batch) = model(py, student, "student", &mut secrets)?;
    let (teacher, teacher_batch) = model(py, teacher, "teacher_generator", &mut secrets)?;
    if teacher_batch.is_some() {
        return Err(usage(
            "teacher_generator: batch=True is for the student (its whole-split scoring goes to the Batch API); the teacher's calls are live",
        ));
    }
    let keys = r.key_map.keys().cloned().collect();
    let mut hosted = Vec::new();
    let evaluator = evaluator(
        py,
        evaluator_obj,
        Some(teacher.clone()),
        keys,
        &mut secrets,
        &mut hosted,
    )?;
    let source = DataSource::Dataset(
        ds,
        SplitConfig {
            train: r.split.train,
            val: r.split.val,
            test: r.split.test,
            seed: r.split.seed,
            stratify_by: r.split.stratify_by.clone(),
        },
    );
    let mut req = OptimizeRequest::new(student, evaluator, Arc::new(mapper), source, initial);
    req.task_description = r.task_description.clone();
    req.config = config;
    req.teacher_params = r.teacher;
    req.batch = batch.into_iter().collect();
    req.student_params.temperature = r.student.temperature;
    req.student_params.max_tokens = r.student.max_tokens;
    let checked = req.check()?;
    Ok(Built {
        checked,
        teacher,
        secrets,
        hosted,
        run_dir: r.run_dir,
        progress: r.progress,
        request_text: text.to_string(),
    })
}
