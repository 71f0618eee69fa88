//! Turning a configuration into data, models, an evaluator and a checked request.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use metaprompt::core::{BatchExecutor, ChatModel, GenerateParams, ResponseSchema};
use metaprompt::data::{BasicDataMapper, Dataset, LoadOptions, SplitConfig, Splits, load};
use metaprompt::engine::{Checked, DataSource, OptimizeRequest, TeacherParams};
use metaprompt::evals::BuildContext;

use crate::Failure;
use crate::config::{Loaded, ModelSection};
use crate::models::ModelPool;

/// Loads the data the config names.
pub(crate) fn data(loaded: &Loaded) -> Result<(DataSource, Dataset)> {
    let d = &loaded.config.dataset;
    let opts = LoadOptions {
        id_field: d.id_field.clone(),
        ..LoadOptions::default()
    };
    let with_labels =
        |ds: Dataset| -> Result<Dataset> { Ok(ds.with_label_fields(d.label_fields.clone())?) };
    match (&d.path, &d.train) {
        (Some(p), None) => {
            let ds = with_labels(load(loaded.resolve(p), &opts)?)?;
            let source = match &d.split_column {
                Some(col) => {
                    if d.split.is_some() {
                        bail!("[dataset]: give `split` fractions or a `split_column`, not both");
                    }
                    DataSource::Splits(ds.split_by_column(col)?)
                }
                None => {
                    let f = d.split.unwrap_or(crate::config::Fractions {
                        train: 0.5,
                        val: 0.25,
                        test: 0.25,
                    });
                    DataSource::Dataset(
                        ds.clone(),
                        SplitConfig {
                            train: f.train,
                            val: f.val,
                            test: f.test,
                            seed: d.seed,
                            stratify_by: d.stratify.clone(),
                        },
                    )
                }
            };
            Ok((source, ds))
        }
        (None, Some(train)) => {
            let val = d
                .val
                .as_ref()
                .ok_or_else(|| anyhow!("[dataset]: with `train`, give `val` too"))?;
            let tr = with_labels(load(loaded.resolve(train), &opts)?)?;
            let va = with_labels(load(loaded.resolve(val), &opts)?)?;
            let te = d
                .test
                .as_ref()
                .map(|t| load(loaded.resolve(t), &opts))
                .transpose()?
                .map(with_labels)
                .transpose()?;
            let splits = Splits::from_datasets(tr, va, te);
            let all = Dataset::new(
                splits
                    .train
                    .iter()
                    .chain(&splits.val)
                    .chain(&splits.test)
                    .cloned()
                    .collect(),
            )
            .with_label_fields(d.label_fields.clone())?;
            Ok((DataSource::Splits(splits), all))
        }
        (Some(_), Some(_)) => bail!("[dataset]: give `path` or `train`/`val`/`test`, not both"),
        (None, None) => bail!("[dataset]: give `path` (one file) or `train` and `val` files"),
    }
}

/// Everything a run needs, built and checked once, before any model call.
pub(crate) struct Built {
    pub(crate) checked: Checked,
    pub(crate) teacher: Arc<dyn ChatModel>,
    pub(crate) pool: Arc<ModelPool>,
    /// Hosted evaluators whose key map is checked against their live catalogue before a run.
    pub(crate) hosted: crate::hosted::Hosted,
}

/// How the teacher samples, from `[teacher]` (the engine's defaults for keys not set).
fn teacher_params(section: &ModelSection) -> TeacherParams {
    let d = TeacherParams::default();
    TeacherParams {
        temperature: section.temperature.unwrap_or(d.temperature),
        temperature_step: section.temperature_step.unwrap_or(d.temperature_step),
        max_tokens: section.max_tokens.unwrap_or(d.max_tokens),
        frequency_penalty: section.frequency_penalty.or(d.frequency_penalty),
    }
}

/// The student's call parameters from `[student]`.
fn student_params(section: &ModelSection) -> Result<GenerateParams> {
    for (key, set) in [
        ("temperature_step", section.temperature_step.is_some()),
        ("frequency_penalty", section.frequency_penalty.is_some()),
    ] {
        if set {
            bail!("[student] `{key}` is a [teacher] key: the student answers with fixed sampling");
        }
    }
    let mut params = GenerateParams {
        temperature: Some(section.temperature.unwrap_or(0.0)),
        max_tokens: section.max_tokens,
        ..GenerateParams::default()
    };
    if let Some(out) = &section.output {
        match (&out.choices, &out.schema) {
            (Some(c), None) if !c.is_empty() => params.choices = c.clone(),
            (None, Some(schema)) => {
                params.schema = Some(ResponseSchema {
                    name: "answer".into(),
                    schema: serde_json::from_value(schema.clone())
                        .map_err(|e| anyhow!("[student.output] schema: {e}"))?,
                });
            }
            _ => bail!(
                "[student] output: give `enum = [\"…\", …]` (a non-empty list) or `schema = {{…}}`, not both"
            ),
        }
    }
    Ok(params)
}

/// Builds and checks everything a config names. Errors in the config or the data are usage
/// errors (exit 2).
pub(crate) fn request(loaded: &Loaded, seed: Option<u64>) -> Result<Built, Failure> {
    use crate::UsageExt;
    let c = &loaded.config;
    // Data first: it is the most common source of mistakes and costs nothing to check.
    let (source, all) = data(loaded).usage()?;
    if c.mapping.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "[mapping] is empty; map the model output, e.g. response = \"generated_output\""
        )));
    }
    let mapper = BasicDataMapper::for_dataset(c.mapping.clone(), &all)
        .map_err(|e| anyhow!("[mapping]: {e}"))
        .usage()?;
    let pool = Arc::new(ModelPool::default());
    let hosted = crate::hosted::Hosted::default();
    let student = pool.build(loaded, &c.student, "student").usage()?;
    let teacher = pool.build(loaded, &c.teacher, "teacher").usage()?;
    let mut batch: Vec<Arc<dyn BatchExecutor>> = Vec::new();
    batch.extend(pool.batch_executor(&c.student, "student").usage()?);
    let judge = match c.evaluator.judge_model_section() {
        Some(m) => {
            let section: ModelSection = serde_json::from_value(m.clone())
                .map_err(|e| anyhow!("[evaluator.model]: {e}"))
                .usage()?;
            batch.extend(pool.batch_executor(&section, "evaluator.model").usage()?);
            pool.build(loaded, &section, "evaluator.model").usage()?
        }
        // Without its own model, the teacher judges (through its own layers: judge calls are
        // counted as judge calls).
        None => teacher.clone(),
    };
    let evaluator = c
        .evaluator
        .build(&BuildContext {
            judge_model: Some(judge),
            base_dir: loaded.base_dir.clone(),
            external: Some(hosted.builder(pool.clone(), c.mapping.keys().cloned().collect())),
        })
        .map_err(|e| anyhow!("[evaluator]: {e}"))
        .usage()?;
    let mut req = OptimizeRequest::new(
        student,
        evaluator,
        Arc::new(mapper),
        source,
        c.initial_prompts.clone(),
    );
    req.student_params = student_params(&c.student).usage()?;
    req.task_description = c.task_description.clone();
    req.config = c.optimizer.clone();
    req.batch = batch;
    if let Some(s) = seed {
        req.config.seed = s;
    }
    req.teacher_params = teacher_params(&c.teacher);
    let checked = req.check().map_err(crate::engine_failure)?;
    Ok(Built {
        checked,
        teacher,
        pool,
        hosted,
    })
}
