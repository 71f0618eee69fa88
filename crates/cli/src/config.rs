//! The TOML configuration: typed, strict (unknown keys are errors with their line), with a
//! JSON schema (`metaprompt schema`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use metaprompt::core::Budget;
use metaprompt::engine::{
    DEFAULT_EVAL_SUBSET_SIZE, DEFAULT_NUM_ROUNDS, DEFAULT_TASK_DESCRIPTION, OptimizerConfig,
};
use metaprompt::evals::EvaluatorSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn d_task() -> String {
    DEFAULT_TASK_DESCRIPTION.to_string()
}

/// A whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// What the prompt is for, in a sentence.
    #[serde(default = "d_task")]
    pub(crate) task_description: String,
    /// Prompts to start from; `{field}` inserts a row field. All are scored; the best starts.
    pub(crate) initial_prompts: Vec<String>,
    /// The data.
    pub(crate) dataset: DatasetSection,
    /// The model the prompt is optimized for.
    pub(crate) student: ModelSection,
    /// The model that rewrites the prompt.
    pub(crate) teacher: ModelSection,
    /// How outputs are scored: `kind` plus that kind's options.
    pub(crate) evaluator: EvaluatorSpec,
    /// The key map: evaluator field = source (`generated_output` or a row field).
    pub(crate) mapping: BTreeMap<String, String>,
    /// The optimizer's knobs.
    #[serde(default)]
    pub(crate) optimizer: OptimizerSection,
    /// Where results go.
    #[serde(default)]
    pub(crate) output: OutputSection,
}

/// Split fractions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fractions {
    pub(crate) train: f64,
    pub(crate) val: f64,
    #[serde(default)]
    pub(crate) test: f64,
}

/// `[dataset]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetSection {
    /// One file (.jsonl, .json or .csv), relative to the config file.
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
    /// Or separate files per split.
    #[serde(default)]
    pub(crate) train: Option<PathBuf>,
    /// Validation file.
    #[serde(default)]
    pub(crate) val: Option<PathBuf>,
    /// Test file.
    #[serde(default)]
    pub(crate) test: Option<PathBuf>,
    /// Fractions for splitting `path` (default 0.5/0.25/0.25).
    #[serde(default)]
    pub(crate) split: Option<Fractions>,
    /// Or a column holding `train`, `val` or `test`.
    #[serde(default)]
    pub(crate) split_column: Option<String>,
    /// The split seed.
    #[serde(default)]
    pub(crate) seed: u64,
    /// Keep this field's class ratios in every split.
    #[serde(default)]
    pub(crate) stratify: Option<String>,
    /// Fields holding expected answers: no prompt may read them.
    #[serde(default)]
    pub(crate) label_fields: Vec<String>,
    /// A field holding each row's id (default: line or record number).
    #[serde(default)]
    pub(crate) id_field: Option<String>,
}

/// Which provider serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Provider {
    /// Any OpenAI-compatible endpoint.
    Openai,
    /// A GGUF model in-process (default: the embedded SmolLM2).
    Llama,
}

/// `[student]` and `[teacher]`.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    /// `openai` or `llama`.
    pub(crate) provider: Provider,
    /// The model name (openai).
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// The endpoint (openai); default `OPENAI_BASE_URL`, else OpenAI's.
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the API key (openai). Keys never go in this file.
    #[serde(default)]
    pub(crate) api_key_env: Option<String>,
    /// Sampling temperature.
    #[serde(default)]
    pub(crate) temperature: Option<f32>,
    /// Token limit per reply.
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    /// Requests in flight at once on this endpoint.
    #[serde(default)]
    pub(crate) concurrency: Option<usize>,
    /// Requests per minute.
    #[serde(default)]
    pub(crate) rpm: Option<u32>,
    /// Tokens per minute.
    #[serde(default)]
    pub(crate) tpm: Option<u32>,
    /// USD per 1M input tokens (overrides the built-in price list).
    #[serde(default)]
    pub(crate) price_input: Option<f64>,
    /// USD per 1M output tokens.
    #[serde(default)]
    pub(crate) price_output: Option<f64>,
    /// Extra HTTP headers (openai).
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Per-attempt timeout in seconds (openai).
    #[serde(default)]
    pub(crate) timeout_secs: Option<f64>,
    /// Attempts per request, the first included (openai).
    #[serde(default)]
    pub(crate) max_attempts: Option<u32>,
    /// Azure OpenAI deployment (openai).
    #[serde(default)]
    pub(crate) azure_deployment: Option<String>,
    /// Azure OpenAI api-version (openai).
    #[serde(default)]
    pub(crate) azure_api_version: Option<String>,
    /// OpenAI organisation.
    #[serde(default)]
    pub(crate) organization: Option<String>,
    /// OpenAI project.
    #[serde(default)]
    pub(crate) project: Option<String>,
    /// A GGUF file (llama); default: the embedded model.
    #[serde(default)]
    pub(crate) model_path: Option<PathBuf>,
    /// Context per sequence in tokens (llama).
    #[serde(default)]
    pub(crate) context: Option<u32>,
    /// Requests served at once, over all workers (llama; default 4).
    #[serde(default)]
    pub(crate) parallel: Option<usize>,
    /// Contexts decoding side by side, each on its own threads (llama; default 1). A request
    /// alone is fastest with one worker; many requests at once on a small model get more
    /// tokens/s in aggregate from one worker per core with `parallel` equal to `workers`.
    #[serde(default)]
    pub(crate) workers: Option<usize>,
    /// CPU threads per worker (llama; default: the cores divided among the workers).
    #[serde(default)]
    pub(crate) threads: Option<i32>,
}

impl std::fmt::Debug for ModelSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers may carry credentials: show their names only.
        f.debug_struct("ModelSection")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn d_rounds() -> u32 {
    DEFAULT_NUM_ROUNDS
}
fn d_subset() -> usize {
    DEFAULT_EVAL_SUBSET_SIZE
}

/// `[optimizer]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptimizerSection {
    /// Rounds (default 5).
    #[serde(default = "d_rounds")]
    pub(crate) num_rounds: u32,
    /// Minibatch size (default 40).
    #[serde(default = "d_subset")]
    pub(crate) eval_subset_size: usize,
    /// Student calls in flight at once (default 16).
    #[serde(default)]
    pub(crate) concurrency: Option<usize>,
    /// Seed of minibatches and teacher sampling.
    #[serde(default)]
    pub(crate) seed: Option<u64>,
    /// Rewrites per round (default 1).
    #[serde(default)]
    pub(crate) candidates_per_round: Option<usize>,
    /// Earlier attempts shown to the teacher (default 6).
    #[serde(default)]
    pub(crate) ledger_size: Option<usize>,
    /// Low scorers shown to the teacher (default 8).
    #[serde(default)]
    pub(crate) max_failures: Option<usize>,
    /// High scorers shown for contrast (default 2).
    #[serde(default)]
    pub(crate) max_successes: Option<usize>,
    /// Character budget of the teacher's prompt (default 12,000).
    #[serde(default)]
    pub(crate) teacher_input_budget: Option<usize>,
    /// Longest accepted rewrite (default 4× the initial prompt, at least 2,000).
    #[serde(default)]
    pub(crate) max_prompt_chars: Option<usize>,
    /// Re-asks after a refused rewrite (default 2).
    #[serde(default)]
    pub(crate) teacher_retries: Option<u32>,
    /// Append dropped inputs instead of failing the round (default true).
    #[serde(default)]
    pub(crate) append_inputs: Option<bool>,
    /// Minimum minibatch improvement (default 0).
    #[serde(default)]
    pub(crate) min_delta: Option<f64>,
    /// Refuse rewrites copying 8 words of a reference answer (default false).
    #[serde(default)]
    pub(crate) forbid_reference_copy: Option<bool>,
    /// Stop when the best val score reaches this.
    #[serde(default)]
    pub(crate) target_score: Option<f64>,
    /// Stop after this many rounds without improvement.
    #[serde(default)]
    pub(crate) patience: Option<u32>,
    /// Stop when more than this fraction of a batch fails (default 0.5).
    #[serde(default)]
    pub(crate) max_error_rate: Option<f64>,
    /// Budget: model calls.
    #[serde(default)]
    pub(crate) max_llm_calls: Option<u64>,
    /// Budget: tokens.
    #[serde(default)]
    pub(crate) max_tokens: Option<u64>,
    /// Budget: USD.
    #[serde(default)]
    pub(crate) max_cost_usd: Option<f64>,
    /// Budget: seconds.
    #[serde(default)]
    pub(crate) max_duration_secs: Option<f64>,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        // An empty table deserialises to the documented defaults.
        toml::from_str("").unwrap_or_else(|_| OptimizerSection {
            num_rounds: d_rounds(),
            eval_subset_size: d_subset(),
            concurrency: None,
            seed: None,
            candidates_per_round: None,
            ledger_size: None,
            max_failures: None,
            max_successes: None,
            teacher_input_budget: None,
            max_prompt_chars: None,
            teacher_retries: None,
            append_inputs: None,
            min_delta: None,
            forbid_reference_copy: None,
            target_score: None,
            patience: None,
            max_error_rate: None,
            max_llm_calls: None,
            max_tokens: None,
            max_cost_usd: None,
            max_duration_secs: None,
        })
    }
}

impl OptimizerSection {
    pub(crate) fn to_config(&self, seed_override: Option<u64>) -> OptimizerConfig {
        let d = OptimizerConfig::default();
        OptimizerConfig {
            concurrency: self.concurrency.unwrap_or(d.concurrency),
            seed: seed_override.or(self.seed).unwrap_or(d.seed),
            candidates_per_round: self.candidates_per_round.unwrap_or(d.candidates_per_round),
            ledger_size: self.ledger_size.unwrap_or(d.ledger_size),
            max_failures: self.max_failures.unwrap_or(d.max_failures),
            max_successes: self.max_successes.unwrap_or(d.max_successes),
            teacher_input_budget: self.teacher_input_budget.unwrap_or(d.teacher_input_budget),
            max_prompt_chars: self.max_prompt_chars,
            teacher_retries: self.teacher_retries.unwrap_or(d.teacher_retries),
            append_inputs: self.append_inputs.unwrap_or(d.append_inputs),
            min_delta: self.min_delta.unwrap_or(d.min_delta),
            forbid_reference_copy: self
                .forbid_reference_copy
                .unwrap_or(d.forbid_reference_copy),
            target_score: self.target_score,
            patience: self.patience,
            budget: Budget {
                max_llm_calls: self.max_llm_calls,
                max_tokens: self.max_tokens,
                max_cost_usd: self.max_cost_usd,
                max_duration: self
                    .max_duration_secs
                    .filter(|s| *s >= 0.0)
                    .map(std::time::Duration::from_secs_f64),
            },
            max_error_rate: self.max_error_rate.unwrap_or(d.max_error_rate),
            teacher_temperature: d.teacher_temperature,
            teacher_max_tokens: d.teacher_max_tokens,
        }
    }
}

/// `[output]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputSection {
    /// The run directory (default `runs/<timestamp>-<config name>`), relative to the config.
    #[serde(default)]
    pub(crate) dir: Option<PathBuf>,
    /// A store shared between runs (default: `metaprompt.db` in the run directory).
    #[serde(default)]
    pub(crate) store: Option<PathBuf>,
}

/// A loaded configuration and where it came from.
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) path: PathBuf,
    pub(crate) base_dir: PathBuf,
    pub(crate) text: String,
}

impl Loaded {
    /// A path from the config, relative to the config file.
    pub(crate) fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The config file's stem, for run names.
    pub(crate) fn name(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned())
    }
}

/// Reads and checks a config file. Errors name the file and the line.
pub(crate) fn load(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let config = parse(&text, path)?;
    if config.initial_prompts.is_empty() {
        anyhow::bail!(
            "{}: `initial_prompts` is empty; give at least one prompt",
            path.display()
        );
    }
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        base_dir,
        text,
    })
}

/// Parses config text; errors name the file and the line.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Config> {
    toml::from_str(text).map_err(|e| {
        let where_ = e
            .span()
            .map(|s| {
                let end = s.start.min(text.len());
                // Count lines on bytes: a span never needs to fall on a character boundary here.
                let line = text.as_bytes()[..end]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{where_}: {}", path.display(), e.message())
    })
}

/// The JSON schema of the config file.
pub(crate) fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Long run: PROPTEST_CASES=100000 cargo test --release -p metaprompt-cli --bin metaprompt
    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s, Path::new("c.toml"));
        }

        #[test]
        fn config_like_text_never_panics(s in "(\\[?[a-z_]{1,12}\\]?( = (\"[^\"]{0,10}\"|[0-9.]{1,4}|true|\\{ ?[a-z]+ = [0-9] ?\\}|\\[\\]))?\\n){0,12}") {
            let _ = parse(&s, Path::new("c.toml"));
        }
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("task_description = \"x\"\nbogus = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("c.toml:"), "{err}");
    }
}
