//! Evaluators described by configuration (`[evaluator]` in a config file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use metaprompt_core::{ChatModel, Evaluator};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::composite::{AllOf, AnyOf, Weighted};
use crate::judge::{Judge, Scale};
use crate::matching::{Contains, ContainsMode, ExactMatch, OneOf, Regex};
use crate::normalize::NormalizeSpec;
use crate::similarity::{Bleu, Length, LengthUnit, Levenshtein, RougeL, TokenF1};
use crate::structured::{JsonSchema as JsonSchemaMetric, JsonValid, Numeric};

fn default_max_n() -> usize {
    4
}

/// An evaluator as written in a configuration file: `kind` plus that kind's options.
///
/// ```
/// let spec: metaprompt_evals::EvaluatorSpec =
///     serde_json::from_str(r#"{"kind": "exact_match", "normalize": true}"#).unwrap();
/// let ev = spec.build(&Default::default()).unwrap();
/// assert_eq!(ev.name(), "exact_match");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EvaluatorSpec {
    /// Response equals the expected response.
    ExactMatch {
        /// Normalisation (`true`, `false` or options).
        #[serde(default)]
        normalize: NormalizeSpec,
    },
    /// Response contains strings (or the expected response when none are given).
    Contains {
        /// The strings to look for.
        #[serde(default)]
        values: Vec<String>,
        /// `any` or `all`.
        #[serde(default)]
        mode: ContainsMode,
        /// Normalisation.
        #[serde(default)]
        normalize: NormalizeSpec,
    },
    /// Response matches a regular expression.
    Regex {
        /// The pattern (Rust regex syntax).
        pattern: String,
        /// Require the whole response to match.
        #[serde(default)]
        full: bool,
    },
    /// Response is one of a set of labels (and equals the expected label).
    OneOf {
        /// Allowed labels.
        labels: Vec<String>,
        /// Normalisation.
        #[serde(default)]
        normalize: NormalizeSpec,
    },
    /// Response is valid JSON.
    JsonValid {},
    /// Response is JSON valid against a schema.
    JsonSchema {
        /// The schema inline.
        #[serde(default)]
        schema: Option<serde_json::Value>,
        /// Or a file holding it (relative to the config file).
        #[serde(default)]
        schema_path: Option<PathBuf>,
    },
    /// Last number within tolerance of the expected number.
    Numeric {
        /// Absolute tolerance.
        #[serde(default)]
        abs_tol: f64,
        /// Relative tolerance.
        #[serde(default)]
        rel_tol: f64,
    },
    /// Normalised Levenshtein similarity.
    Levenshtein {
        /// Normalisation.
        #[serde(default)]
        normalize: NormalizeSpec,
    },
    /// SQuAD-style token F1.
    TokenF1 {},
    /// Sentence BLEU.
    Bleu {
        /// Highest n-gram order.
        #[serde(default = "default_max_n")]
        max_n: usize,
    },
    /// ROUGE-L F1.
    RougeL {},
    /// Length within bounds.
    Length {
        /// `chars` or `words`.
        #[serde(default)]
        unit: LengthUnit,
        /// Minimum.
        #[serde(default)]
        min: Option<usize>,
        /// Maximum.
        #[serde(default)]
        max: Option<usize>,
    },
    /// An LLM judge.
    Judge {
        /// A named template (`summary_quality`, `factual_accuracy`, …).
        #[serde(default)]
        template: Option<String>,
        /// Or a custom rubric.
        #[serde(default)]
        rubric: Option<String>,
        /// `one_to_five` or `zero_to_one`.
        #[serde(default)]
        scale: Scale,
        /// An extra cap on judge calls in flight, for a judge endpoint shared with others
        /// (default: none; the run's `[optimizer] concurrency` applies).
        #[serde(default, alias = "concurrency")]
        max_concurrency: Option<usize>,
        /// The judge's model section (`provider`, `model`, …); read by the command line, which
        /// builds the model. Without it the teacher judges.
        #[serde(default)]
        model: Option<serde_json::Value>,
    },
    /// A FutureAGI eval template (built by the command line with the `metaprompt-futureagi`
    /// crate; the key map names the template's own inputs).
    Futureagi {
        /// The template (`summary_quality`, `ground_truth_match`, …).
        template: String,
        /// The evaluation model (default `turing_flash`).
        #[serde(default)]
        model: Option<String>,
        /// The API root without `/sdk/…` (default: `FI_BASE_URL`, else the FutureAGI API).
        #[serde(default)]
        base_url: Option<String>,
        /// The environment variable holding the API key (default `FI_API_KEY`).
        #[serde(default)]
        api_key_env: Option<String>,
        /// The environment variable holding the secret key (default `FI_SECRET_KEY`).
        #[serde(default)]
        secret_key_env: Option<String>,
        /// An extra cap on evaluations in flight (default: none; `[optimizer] concurrency`
        /// applies).
        #[serde(default)]
        max_concurrency: Option<usize>,
        /// Timeout of each HTTP attempt, in seconds (default 200).
        #[serde(default)]
        timeout_secs: Option<f64>,
        /// USD per evaluation, for cost accounting and budgets (default 0).
        #[serde(default)]
        price_per_call: Option<f64>,
        /// Submit each evaluation asynchronously and poll for its result (long templates).
        #[serde(default)]
        asynchronous: bool,
    },
    /// Weighted mean of evaluators.
    Weighted {
        /// The parts.
        parts: Vec<WeightedPart>,
    },
    /// Minimum of evaluators (all must pass).
    AllOf {
        /// The parts.
        evaluators: Vec<EvaluatorSpec>,
    },
    /// Maximum of evaluators (any may pass).
    AnyOf {
        /// The parts.
        evaluators: Vec<EvaluatorSpec>,
    },
}

/// One part of a weighted evaluator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedPart {
    /// The weight.
    pub weight: f64,
    /// The evaluator.
    pub evaluator: EvaluatorSpec,
}

/// Builds the kinds this crate describes but does not implement (a hosted evaluator whose
/// client lives in its own crate): `None` for the kinds it leaves to this crate.
pub type ExternalBuilder =
    dyn Fn(&EvaluatorSpec) -> Option<Result<Arc<dyn Evaluator>, SpecError>> + Send + Sync;

/// What building an evaluator may need.
#[derive(Clone, Default)]
pub struct BuildContext {
    /// The model judges use.
    pub judge_model: Option<Arc<dyn ChatModel>>,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// Builds the kinds implemented elsewhere (`futureagi`).
    pub external: Option<Arc<ExternalBuilder>>,
}

/// Why an evaluator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evaluator `{kind}`: {message}")]
pub struct SpecError {
    /// The kind.
    pub kind: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn err(kind: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        kind: kind.into(),
        message: message.into(),
    }
}

fn load_schema(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

impl EvaluatorSpec {
    /// Whether this spec (or a part of it) is an LLM judge or a hosted evaluator.
    pub fn uses_judge(&self) -> bool {
        match self {
            EvaluatorSpec::Judge { .. } | EvaluatorSpec::Futureagi { .. } => true,
            EvaluatorSpec::Weighted { parts } => parts.iter().any(|p| p.evaluator.uses_judge()),
            EvaluatorSpec::AllOf { evaluators } | EvaluatorSpec::AnyOf { evaluators } => {
                evaluators.iter().any(EvaluatorSpec::uses_judge)
            }
            _ => false,
        }
    }

    /// The model section of the (first) judge that names one, if any.
    pub fn judge_model_section(&self) -> Option<&serde_json::Value> {
        match self {
            EvaluatorSpec::Judge { model, .. } => model.as_ref(),
            EvaluatorSpec::Weighted { parts } => {
                parts.iter().find_map(|p| p.evaluator.judge_model_section())
            }
            EvaluatorSpec::AllOf { evaluators } | EvaluatorSpec::AnyOf { evaluators } => evaluators
                .iter()
                .find_map(EvaluatorSpec::judge_model_section),
            _ => None,
        }
    }

    /// Builds the evaluator.
    pub fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Evaluator>, SpecError> {
        if let Some(built) = ctx.external.as_ref().and_then(|f| f(self)) {
            return built;
        }
        Ok(match self {
            EvaluatorSpec::Futureagi { .. } => {
                return Err(err(
                    "futureagi",
                    "this build has no FutureAGI client; use the `metaprompt` command built with its `futureagi` feature, or the `metaprompt-futureagi` crate",
                ));
            }
            EvaluatorSpec::ExactMatch { normalize } => {
                Arc::new(ExactMatch::new((*normalize).into()))
            }
            EvaluatorSpec::Contains {
                values,
                mode,
                normalize,
            } => Arc::new(Contains::new(values.clone(), *mode, (*normalize).into())),
            EvaluatorSpec::Regex { pattern, full } => Arc::new(
                Regex::new(pattern, *full)
                    .map_err(|e| err("regex", format!("invalid pattern: {e}")))?,
            ),
            EvaluatorSpec::OneOf { labels, normalize } => {
                if labels.is_empty() {
                    return Err(err("one_of", "`labels` is empty; list the allowed labels"));
                }
                Arc::new(OneOf::new(labels.clone(), (*normalize).into()))
            }
            EvaluatorSpec::JsonValid {} => Arc::new(JsonValid),
            EvaluatorSpec::JsonSchema {
                schema,
                schema_path,
            } => {
                let schema = match (schema, schema_path) {
                    (Some(s), None) => s.clone(),
                    (None, Some(p)) => {
                        load_schema(&ctx.base_dir.join(p)).map_err(|m| err("json_schema", m))?
                    }
                    _ => {
                        return Err(err(
                            "json_schema",
                            "give exactly one of `schema` or `schema_path`",
                        ));
                    }
                };
                Arc::new(JsonSchemaMetric::new(&schema).map_err(|m| err("json_schema", m))?)
            }
            EvaluatorSpec::Numeric { abs_tol, rel_tol } => {
                if *abs_tol < 0.0 || *rel_tol < 0.0 {
                    return Err(err("numeric", "tolerances must be non-negative"));
                }
                Arc::new(Numeric::new(*abs_tol, *rel_tol))
            }
            EvaluatorSpec::Levenshtein { normalize } => {
                Arc::new(Levenshtein::new((*normalize).into()))
            }
            EvaluatorSpec::TokenF1 {} => Arc::new(TokenF1),
            EvaluatorSpec::Bleu { max_n } => Arc::new(Bleu::new(*max_n)),
            EvaluatorSpec::RougeL {} => Arc::new(RougeL::default()),
            EvaluatorSpec::Length { unit, min, max } => Arc::new(Length::new(*unit, *min, *max)),
            EvaluatorSpec::Judge {
                template,
                rubric,
                scale,
                max_concurrency,
                ..
            } => {
                let model = ctx.judge_model.clone().ok_or_else(|| {
                    err(
                        "judge",
                        "no model to judge with; give the judge a model section or a teacher",
                    )
                })?;
                let judge = match (template, rubric) {
                    (Some(t), None) => {
                        Judge::template(model, t).map_err(|e| err("judge", e.to_string()))?
                    }
                    (None, Some(r)) => Judge::custom(model, r.clone()),
                    (None, None) => {
                        return Err(err("judge", "give a `template` or a custom `rubric`"));
                    }
                    (Some(_), Some(_)) => {
                        return Err(err("judge", "give a `template` or a `rubric`, not both"));
                    }
                };
                Arc::new(
                    judge
                        .with_scale(*scale)
                        .with_max_concurrency(*max_concurrency),
                )
            }
            EvaluatorSpec::Weighted { parts } => {
                let built = parts
                    .iter()
                    .map(|p| Ok((p.evaluator.build(ctx)?, p.weight)))
                    .collect::<Result<Vec<_>, SpecError>>()?;
                Arc::new(Weighted::new(built).map_err(|m| err("weighted", m))?)
            }
            EvaluatorSpec::AllOf { evaluators } => Arc::new(AllOf::new(
                evaluators
                    .iter()
                    .map(|e| e.build(ctx))
                    .collect::<Result<_, _>>()?,
            )),
            EvaluatorSpec::AnyOf { evaluators } => Arc::new(AnyOf::new(
                evaluators
                    .iter()
                    .map(|e| e.build(ctx))
                    .collect::<Result<_, _>>()?,
            )),
        })
    }
}
