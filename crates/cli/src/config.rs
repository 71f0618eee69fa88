//! The TOML configuration: typed, strict (unknown keys are errors with their line), with a
//! JSON schema (`metaprompt schema`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use metaprompt::core::Prompt;
use metaprompt::engine::{DEFAULT_TASK_DESCRIPTION, OptimizerConfig};
use metaprompt::evals::EvaluatorSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod parse;
mod redact;

pub(crate) use redact::redacted;

#[cfg(test)]
pub(crate) use parse::parse;

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
    /// Prompts to start from; `{field}` inserts a row field. Each is a string (one user
    /// message), `{ system = "…", user = "…" }` or `{ messages = [{ role, content }, …] }`.
    /// All are scored; the best starts.
    pub(crate) initial_prompts: Vec<Prompt>,
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
    /// The optimizer's knobs (every one has a default).
    #[serde(default)]
    pub(crate) optimizer: OptimizerConfig,
    /// Where results go.
    #[serde(default)]
    pub(crate) output: RunOutputSection,
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
    /// Anthropic's Messages API.
    Anthropic,
}

/// A header value: the value itself, or `{ env = "VAR" }` to read it from the environment
/// (so that a credential never has to be written in the file).
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum HeaderValue {
    /// The value.
    Text(String),
    /// An environment variable holding the value.
    Env {
        /// Its name.
        env: String,
    },
}

impl HeaderValue {
    /// The value, read from the environment when the config names a variable.
    pub(crate) fn resolve(&self, header: &str, section: &str) -> Result<String> {
        match self {
            HeaderValue::Text(t) => Ok(t.clone()),
            HeaderValue::Env { env } => std::env::var(env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "[{section}] header `{header}` reads the environment variable `{env}`, which is not set; export it"
                    )
                }),
        }
    }
}

/// A constraint on the student's answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputSection {
    /// The answer must be exactly one of these strings (sent as structured output to
    /// OpenAI-compatible students and as a grammar to the embedded one).
    #[serde(default, rename = "enum")]
    pub(crate) choices: Option<Vec<String>>,
    /// Or: the answer must be JSON following this schema.
    #[serde(default)]
    pub(crate) schema: Option<serde_json::Value>,
}

/// `[student]` and `[teacher]`.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    /// `openai`, `anthropic` or `llama`.
    pub(crate) provider: Provider,
    /// The model name (openai, anthropic).
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// The endpoint (openai: default `OPENAI_BASE_URL`, else OpenAI's; anthropic: the API root
    /// without `/v1`, default Anthropic's).
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the API key (openai: default `OPENAI_API_KEY`;
    /// anthropic: `ANTHROPIC_API_KEY`). Keys never go in this file.
    #[serde(default)]
    pub(crate) api_key_env: Option<String>,
    /// Sampling temperature (for the teacher, default 0.7; for the student, 0).
    #[serde(default)]
    pub(crate) temperature: Option<f32>,
    /// Token limit per reply (for the teacher, default 2,048). The run's token budget is
    /// `[optimizer] max_total_tokens`.
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    /// The teacher only: added to `temperature` for each further proposal of a round, so a
    /// round's proposals differ (default 0.1; 0 samples all at `temperature`).
    #[serde(default)]
    pub(crate) temperature_step: Option<f32>,
    /// The teacher only: frequency penalty (OpenAI semantics; default 0.5), which keeps a weak
    /// teacher from repeating one sentence until its token limit.
    #[serde(default)]
    pub(crate) frequency_penalty: Option<f32>,
    /// An extra cap on requests in flight to this endpoint, for one shared with others.
    /// Default: none; `[optimizer] concurrency` limits a run's calls.
    #[serde(default, alias = "concurrency")]
    pub(crate) max_concurrency: Option<usize>,
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
    /// Extra HTTP headers (openai, anthropic): a value, or `{ env = "VAR" }`. Values are
    /// treated as secrets: never logged, stored or reported.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, HeaderValue>,
    /// Timeout of each call in seconds (openai and anthropic: each attempt; llama: the whole
    /// call, queueing included).
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
    /// Sections naming the same file load it once; each shape (`context`, `parallel`,
    /// `workers`, `threads`) gets workers of its own on it, so a teacher can use every core
    /// while the students keep one each.
    #[serde(default)]
    pub(crate) workers: Option<usize>,
    /// CPU threads per worker (llama; default: the cores divided among the workers).
    #[serde(default)]
    pub(crate) threads: Option<i32>,
    /// The `anthropic-version` header (anthropic; default `2023-06-01`).
    #[serde(default)]
    pub(crate) anthropic_version: Option<String>,
    /// Constrains the student's answers: `{ enum = ["spam", "ham"] }` or `{ schema = {…} }`.
    #[serde(default)]
    pub(crate) output: Option<OutputSection>,
    /// Score whole splits (the baseline, val, test) through the provider's Batch API when
    /// `[optimizer] batch` says so (openai: OpenAI and Azure Batch, at half the live price).
    /// Rounds' minibatches stay live.
    #[serde(default)]
    pub(crate) batch: bool,
    /// Azure: the Global Batch deployment each batch line names (default: `azure_deployment`).
    #[serde(default)]
    pub(crate) batch_deployment: Option<String>,
    /// Several replicas of one model (openai), instead of `base_url`: each call goes to the
    /// healthy replica with the fewest calls in flight (`max_concurrency` caps each one); a
    /// replica that refuses connections or fails three times in a row is left out for a
    /// back-off (1 s, doubling to 30 s), and its calls are made on another at once.
    #[serde(default)]
    pub(crate) base_urls: Vec<String>,
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

/// `[output]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunOutputSection {
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

    /// The store a run in `dir` uses: `[output] store` (relative to the config), else the
    /// run directory's own `metaprompt.db`.
    pub(crate) fn store_path(&self, dir: &Path) -> PathBuf {
        self.config
            .output
            .store
            .as_ref()
            .map(|p| self.resolve(p))
            .unwrap_or_else(|| dir.join("metaprompt.db"))
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
    let (config, warnings) = parse::parse_with_warnings(&text, path)?;
    for w in warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
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

/// The JSON schema of the config file.
pub(crate) fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}
