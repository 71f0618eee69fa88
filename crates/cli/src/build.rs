//! Turning a configuration into models, an evaluator, data and an optimize request.

#[cfg(feature = "embedded")]
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[cfg(feature = "openai")]
use std::time::Duration;

#[cfg(feature = "embedded")]
use anyhow::Context;
use anyhow::{Result, anyhow, bail};
use metaprompt::core::{ChatModel, GenerateParams, Price};
use metaprompt::data::{BasicDataMapper, Dataset, LoadOptions, SplitConfig, Splits, load};
use metaprompt::engine::{DataSource, OptimizeRequest};
use metaprompt::evals::BuildContext;
#[cfg(feature = "embedded")]
use metaprompt::llama::{LlamaChat, LlamaConfig, ModelLocator};
#[cfg(feature = "openai")]
use metaprompt::openai::{AzureSettings, OpenAiChat, RetryPolicy, list_price};

use crate::config::{Loaded, ModelSection, Provider};

/// A built model and what the CLI needs to know about it.
#[derive(Clone)]
pub(crate) struct BuiltModel {
    pub(crate) model: Arc<dyn ChatModel>,
    pub(crate) price: Option<Price>,
    /// Calls made by this model's client (and its clones) so far, where the provider counts them.
    pub(crate) calls: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
}

/// Models shared between sections: the same llama file loads once.
#[derive(Default)]
pub(crate) struct ModelPool {
    #[cfg(feature = "embedded")]
    llama: Mutex<HashMap<std::path::PathBuf, LlamaChat>>,
    /// API keys read, so the store can scrub them.
    pub(crate) secrets: Mutex<Vec<String>>,
}

impl ModelPool {
    pub(crate) fn build(
        &self,
        loaded: &Loaded,
        section: &ModelSection,
        what: &str,
    ) -> Result<BuiltModel> {
        let price = match (section.price_input, section.price_output) {
            (Some(i), Some(o)) => Some(Price {
                input_per_mtok: i,
                output_per_mtok: o,
            }),
            (None, None) => None,
            _ => bail!("[{what}]: give both `price_input` and `price_output`, or neither"),
        };
        match section.provider {
            Provider::Openai => self.openai(section, what, price),
            Provider::Llama => self.llama(loaded, section, what, price),
        }
    }

    #[cfg(not(feature = "openai"))]
    fn openai(&self, _: &ModelSection, what: &str, _: Option<Price>) -> Result<BuiltModel> {
        bail!(missing_feature(what, "openai", "openai"))
    }

    #[cfg(not(feature = "embedded"))]
    fn llama(
        &self,
        _: &Loaded,
        _: &ModelSection,
        what: &str,
        _: Option<Price>,
    ) -> Result<BuiltModel> {
        bail!(missing_feature(what, "llama", "embedded"))
    }

    #[cfg(feature = "openai")]
    fn openai(
        &self,
        section: &ModelSection,
        what: &str,
        price: Option<Price>,
    ) -> Result<BuiltModel> {
        {
            {
                let name = section.model.clone().ok_or_else(|| {
                    anyhow!("[{what}]: `model` is required for provider \"openai\"")
                })?;
                let mut b = OpenAiChat::builder(name.clone());
                if let Some(url) = &section.base_url {
                    b = b.base_url(url.clone());
                }
                let var = section
                    .api_key_env
                    .clone()
                    .unwrap_or_else(|| "OPENAI_API_KEY".into());
                b = b.api_key_env(&var).map_err(|e| anyhow!("[{what}]: {e}"))?;
                if let Ok(k) = std::env::var(&var) {
                    self.secrets
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(k);
                }
                for (k, v) in &section.headers {
                    b = b.header(k.clone(), v.clone());
                }
                if let (Some(d), Some(v)) = (&section.azure_deployment, &section.azure_api_version)
                {
                    b = b.azure(AzureSettings {
                        deployment: d.clone(),
                        api_version: v.clone(),
                    });
                } else if section.azure_deployment.is_some() || section.azure_api_version.is_some()
                {
                    bail!("[{what}]: Azure needs both `azure_deployment` and `azure_api_version`");
                }
                if let Some(o) = &section.organization {
                    b = b.organization(o.clone());
                }
                if let Some(p) = &section.project {
                    b = b.project(p.clone());
                }
                if let Some(t) = section.timeout_secs {
                    b = b.timeout(Duration::from_secs_f64(t.max(0.001)));
                }
                if let Some(a) = section.max_attempts {
                    b = b.retry(RetryPolicy {
                        max_attempts: a.max(1),
                        ..RetryPolicy::default()
                    });
                }
                if let Some(c) = section.concurrency {
                    b = b.max_concurrency(c);
                }
                if let Some(r) = section.rpm {
                    b = b.requests_per_minute(r);
                }
                if let Some(t) = section.tpm {
                    b = b.tokens_per_minute(t);
                }
                if let Some(p) = price {
                    b = b.price(p);
                }
                let chat = b.build().map_err(|e| anyhow!("[{what}]: {e}"))?;
                let counter = chat.clone();
                Ok(BuiltModel {
                    model: Arc::new(chat),
                    price: price.or_else(|| list_price(&name)),
                    calls: Some(Arc::new(move || counter.accounting().calls)),
                })
            }
        }
    }

    #[cfg(feature = "embedded")]
    fn llama(
        &self,
        loaded: &Loaded,
        section: &ModelSection,
        what: &str,
        price: Option<Price>,
    ) -> Result<BuiltModel> {
        {
            {
                for (key, value) in [
                    ("parallel", section.parallel),
                    ("workers", section.workers),
                    ("threads", section.threads.map(|t| t.max(0) as usize)),
                ] {
                    if value == Some(0) {
                        bail!(
                            "[{what}]: `{key}` must be at least 1 (leave it out for the default)"
                        );
                    }
                }
                let explicit = section.model_path.as_ref().map(|p| loaded.resolve(p));
                let path = ModelLocator::from_env(explicit)
                    .resolve()
                    .map_err(|e| anyhow!("[{what}]: {e}"))?;
                let mut pool = self
                    .llama
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let chat = match pool.get(&path) {
                    Some(c) => c.clone(),
                    None => {
                        let cfg = LlamaConfig {
                            n_parallel: section.parallel.unwrap_or(4),
                            workers: section.workers,
                            n_threads: section.threads,
                            ctx_per_seq: section.context.unwrap_or(4096),
                            ..LlamaConfig::default()
                        };
                        let c = LlamaChat::load(&path, cfg)
                            .with_context(|| format!("[{what}]: loading {}", path.display()))?;
                        pool.insert(path.clone(), c.clone());
                        c
                    }
                };
                Ok(BuiltModel {
                    model: Arc::new(chat),
                    price: price.or(Some(Price::default())),
                    calls: None,
                })
            }
        }
    }
}

/// The error for a provider this build leaves out.
fn missing_feature(what: &str, provider: &str, feature: &str) -> String {
    format!(
        "[{what}]: provider = \"{provider}\" is not in this build of metaprompt (built without the `{feature}` feature); reinstall with it, e.g. `cargo install metaprompt-cli --features {feature}`, or use another provider"
    )
}

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

/// Everything a run needs, built and checked before any model call.
pub(crate) struct Built {
    pub(crate) request: OptimizeRequest,
    pub(crate) teacher: BuiltModel,
    pub(crate) judge: Option<BuiltModel>,
    pub(crate) pool: ModelPool,
}

pub(crate) fn request(loaded: &Loaded, seed: Option<u64>) -> Result<Built> {
    let c = &loaded.config;
    // Data first: it is the most common source of mistakes and costs nothing to check.
    let (source, all) = data(loaded)?;
    for (i, p) in c.initial_prompts.iter().enumerate() {
        let t = metaprompt::core::PromptTemplate::parse(p)
            .map_err(|e| anyhow!("initial_prompts[{i}]: {e}"))?;
        if let Some(v) = t
            .variables()
            .into_iter()
            .find(|v| all.label_fields().iter().any(|l| l == v))
        {
            bail!(
                "initial_prompts[{i}] uses {{{v}}}, which is a label field (expected answers); a prompt must never read it"
            );
        }
        all.require_fields(&t.variables(), &format!("initial_prompts[{i}]"))?;
    }
    if c.mapping.is_empty() {
        bail!("[mapping] is empty; map the model output, e.g. response = \"generated_output\"");
    }
    let mapper = BasicDataMapper::for_dataset(c.mapping.clone(), &all)
        .map_err(|e| anyhow!("[mapping]: {e}"))?;
    let pool = ModelPool::default();
    let student = pool.build(loaded, &c.student, "student")?;
    let teacher = pool.build(loaded, &c.teacher, "teacher")?;
    let judge = match &c.evaluator {
        metaprompt::evals::EvaluatorSpec::Judge { model: Some(m), .. } => {
            let section: ModelSection =
                serde_json::from_value(m.clone()).map_err(|e| anyhow!("[evaluator.model]: {e}"))?;
            Some(pool.build(loaded, &section, "evaluator.model")?)
        }
        _ => None,
    };
    let judge_model = judge
        .as_ref()
        .map(|j| j.model.clone())
        .unwrap_or_else(|| teacher.model.clone());
    let evaluator = c
        .evaluator
        .build(&BuildContext {
            judge_model: Some(judge_model),
            base_dir: loaded.base_dir.clone(),
        })
        .map_err(|e| anyhow!("[evaluator]: {e}"))?;
    let mut req = OptimizeRequest::new(
        student.model.clone(),
        evaluator,
        Arc::new(mapper),
        source,
        c.initial_prompts.clone(),
    );
    req.student_params = GenerateParams {
        temperature: Some(c.student.temperature.unwrap_or(0.0)),
        max_tokens: c.student.max_tokens,
        ..GenerateParams::default()
    };
    req.task_description = c.task_description.clone();
    req.num_rounds = c.optimizer.num_rounds;
    req.eval_subset_size = c.optimizer.eval_subset_size;
    req.config = c.optimizer.to_config(seed);
    if let Some(t) = c.teacher.temperature {
        req.config.teacher_temperature = t;
    }
    if let Some(t) = c.teacher.max_tokens {
        req.config.teacher_max_tokens = t;
    }
    req.student_price = student.price;
    req.teacher_price = teacher.price;
    Ok(Built {
        request: req,
        teacher,
        judge,
        pool,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(provider: &str) -> ModelSection {
        serde_json::from_value(serde_json::json!({"provider": provider, "model": "m"})).unwrap()
    }

    fn loaded() -> Loaded {
        let text = "initial_prompts = [\"{text}\"]\n[dataset]\npath = \"d.jsonl\"\n[student]\nprovider = \"openai\"\n[teacher]\nprovider = \"openai\"\n[evaluator]\nkind = \"exact_match\"\n[mapping]\nresponse = \"generated_output\"\n";
        Loaded {
            config: crate::config::parse(text, std::path::Path::new("c.toml")).unwrap(),
            path: "c.toml".into(),
            base_dir: ".".into(),
            text: text.into(),
        }
    }

    /// A build without the embedded provider names the feature to enable.
    #[cfg(not(feature = "embedded"))]
    #[test]
    fn llama_without_the_embedded_feature_names_the_feature() {
        let err = ModelPool::default()
            .build(&loaded(), &section("llama"), "student")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("`embedded` feature"), "{text}");
        assert!(text.starts_with("[student]"), "{text}");
    }

    /// A build without the OpenAI provider names the feature to enable.
    #[cfg(not(feature = "openai"))]
    #[test]
    fn openai_without_the_feature_names_the_feature() {
        let err = ModelPool::default()
            .build(&loaded(), &section("openai"), "teacher")
            .err()
            .unwrap();
        assert!(err.to_string().contains("`openai` feature"), "{err}");
    }

    #[test]
    fn half_a_price_is_refused() {
        let mut s = section("openai");
        s.price_input = Some(1.0);
        let err = ModelPool::default()
            .build(&loaded(), &s, "student")
            .err()
            .unwrap();
        assert!(err.to_string().contains("price_output"), "{err}");
    }
}
