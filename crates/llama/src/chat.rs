//! `LlamaChat`: a GGUF model served in-process by a small pool of workers. Each worker is one
//! thread owning one llama.cpp context; it batches its sequences into each decode. All workers
//! share the loaded weights.
//!
//! The default is one worker on every core, fastest for a request on its own. Why a pool can be
//! asked for: on a CPU the decode of a small quantised model is compute-bound in the per-row
//! dot products, so batching more sequences into one decode saves little (llama.cpp's own
//! `llama-batched-bench` shows 1.3-1.5x for 4 sequences on 2 cores), while two contexts with
//! one thread each run side by side at nearly twice the aggregate rate. Contexts are created
//! one after another at load time (creating them concurrently is not safe). The async side
//! never blocks: a request is a message to the least-loaded worker and a oneshot reply.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use metaprompt_core::{ChatModel, ChatRequest, ChatResponse, ModelError, Usage, async_trait};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::worker::{Job, Seat, Shape, backend, worker};

/// How to run the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaConfig {
    /// Requests served at once, over all workers; more wait in a queue (default 4).
    pub n_parallel: usize,
    /// Workers: llama.cpp contexts decoding side by side, each on its own threads and sharing
    /// the weights (default 1, at most `n_parallel`). Each serves `ceil(n_parallel / workers)`
    /// sequences, batched into one decode, with `n_threads` threads.
    ///
    /// One worker using every core is fastest for a request on its own, which is what a
    /// teacher call is. When many requests run at once (a large student evaluation against a
    /// remote teacher), one worker per core with one sequence each gives more tokens/s in
    /// aggregate for a small model: on 2 cores with the embedded model, 2 workers of 1 thread
    /// generate 1.9-2.0x one stream, where one context batching 4 sequences reaches 1.3-1.5x (the
    /// per-row dot products dominate and batching shares little). For a large, memory-bound
    /// model keep one worker and raise `n_parallel`: batching then shares each weight read.
    pub workers: Option<usize>,
    /// Context window of each sequence, in tokens (capped at the model's training context).
    pub ctx_per_seq: u32,
    /// CPU threads per worker. Default: the cores divided among the workers, at least 1
    /// (more threads than cores in all makes every worker wait on the others).
    pub n_threads: Option<i32>,
    /// Tokens generated when a request sets no `max_tokens`.
    pub default_max_tokens: u32,
    /// The longest one call may take, queueing included; past it the call fails with
    /// [`ModelError::Timeout`] and its sequence is dropped at the next decode step. `None`: no
    /// limit.
    pub timeout: Option<std::time::Duration>,
}

impl Default for LlamaConfig {
    fn default() -> Self {
        LlamaConfig {
            n_parallel: 4,
            workers: None,
            ctx_per_seq: 4096,
            n_threads: None,
            default_max_tokens: 512,
            timeout: None,
        }
    }
}

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlamaError {
    /// The file is missing.
    #[error("model file {} does not exist", .0.display())]
    NotFound(PathBuf),
    /// llama.cpp refused the file.
    #[error("cannot load {} as a GGUF model: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// llama.cpp's error.
        message: String,
    },
    /// The inference thread could not start.
    #[error("cannot start the inference thread: {0}")]
    Thread(String),
}

/// Facts about the loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// File name plus a fingerprint prefix.
    pub id: String,
    /// The model's training context.
    pub n_ctx_train: u32,
    /// The context given to each sequence.
    pub ctx_per_seq: u32,
    /// Whether the model's own chat template is used (else ChatML).
    pub has_chat_template: bool,
    /// Contexts decoding side by side.
    pub workers: usize,
    /// Sequences each worker batches together.
    pub seqs_per_worker: usize,
    /// CPU threads of each worker.
    pub threads_per_worker: i32,
}

/// One worker as the async side sees it: where to send work and how much it holds.
struct Lane {
    jobs: Sender<Job>,
    /// Requests sent to the worker and not yet finished by it.
    load: Arc<AtomicUsize>,
}

/// The loaded weights, shared by every set of workers made from them.
struct Weights {
    path: PathBuf,
    model: Arc<LlamaModel>,
    template: Option<llama_cpp_2::model::LlamaChatTemplate>,
    id: String,
    n_ctx_train: u32,
}

/// A GGUF model in-process. Cheap to clone; every clone shares the workers.
/// [`LlamaChat::with_config`] makes other workers on the same weights.
#[derive(Clone)]
pub struct LlamaChat {
    weights: Arc<Weights>,
    info: Arc<ModelInfo>,
    timeout: Option<std::time::Duration>,
    lanes: Arc<[Lane]>,
    usage: Arc<Mutex<(u64, Usage)>>,
}

impl std::fmt::Debug for LlamaChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaChat")
            .field("info", &self.info)
            .finish()
    }
}

/// A fingerprint of a model file: sha256 of its size, first and last MiB. Cheap for
/// multi-gigabyte files, and different for any two real models.
fn fingerprint(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let n = f.read(&mut buf)?;
    h.update(&buf[..n]);
    if len > (2 << 20) {
        f.seek(SeekFrom::End(-(1 << 20)))?;
        let n = f.read(&mut buf)?;
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize())[..12].to_string())
}

impl LlamaChat {
    /// Loads a GGUF file and starts the inference thread.
    pub fn load(path: impl AsRef<Path>, config: LlamaConfig) -> Result<Self, LlamaError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(LlamaError::NotFound(path));
        }
        let fp = fingerprint(&path).map_err(|e| LlamaError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let name = path
            .file_name()
            .map_or_else(|| "model.gguf".into(), |n| n.to_string_lossy().into_owned());
        let id = format!("{name}@{fp}");
        let load_err = |message: String| LlamaError::Load {
            path: path.clone(),
            message,
        };
        let backend = backend().map_err(load_err)?;
        let model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| load_err(e.to_string()))?;
        let template = model.chat_template(None).ok();
        if template.is_none() {
            tracing::warn!(model = %id, "the model has no chat template; using ChatML");
        }
        let weights = Weights {
            path: path.clone(),
            n_ctx_train: model.n_ctx_train(),
            model: Arc::new(model),
            template,
            id,
        };
        Self::start(Arc::new(weights), config)
    }

    /// Other workers on the same weights, shaped by `config` (workers, sequences, threads,
    /// context, timeout): the model stays loaded once. The new workers have their own
    /// contexts and queue, and their own usage count. A teacher that runs one request at a
    /// time gets a context on every core, while the students keep one single-thread context
    /// per core.
    pub fn with_config(&self, config: LlamaConfig) -> Result<Self, LlamaError> {
        Self::start(self.weights.clone(), config)
    }

    /// Starts the workers of `config` on loaded weights.
    fn start(weights: Arc<Weights>, config: LlamaConfig) -> Result<Self, LlamaError> {
        let n_ctx_train = weights.n_ctx_train;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let n_parallel = config.n_parallel.max(1);
        let workers = config.workers.unwrap_or(1).clamp(1, n_parallel);
        let shape = Shape {
            seqs: n_parallel.div_ceil(workers),
            threads: config
                .n_threads
                .unwrap_or_else(|| (cores / workers).max(1) as i32)
                .max(1),
            ctx_per_seq: config.ctx_per_seq.clamp(64, n_ctx_train.max(64)),
            default_max_tokens: config.default_max_tokens,
        };
        let mut lanes = Vec::with_capacity(workers);
        // One worker at a time: each creates its context before the next one starts.
        for i in 0..workers {
            let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
            let load = Arc::new(AtomicUsize::new(0));
            let seat = Seat {
                model: weights.model.clone(),
                template: weights.template.clone(),
                id: weights.id.clone(),
                shape: shape.clone(),
                load: load.clone(),
            };
            std::thread::Builder::new()
                .name(format!("llama-worker-{i}"))
                .spawn(move || worker(seat, jobs_rx, ready_tx))
                .map_err(|e| LlamaError::Thread(e.to_string()))?;
            ready_rx
                .recv()
                .map_err(|_| {
                    LlamaError::Thread("the inference thread stopped while loading".into())
                })?
                .map_err(|message| LlamaError::Load {
                    path: weights.path.clone(),
                    message,
                })?;
            lanes.push(Lane {
                jobs: jobs_tx,
                load,
            });
        }
        let info = ModelInfo {
            id: weights.id.clone(),
            n_ctx_train,
            ctx_per_seq: shape.ctx_per_seq,
            has_chat_template: weights.template.is_some(),
            workers,
            seqs_per_worker: shape.seqs,
            threads_per_worker: shape.threads,
        };
        Ok(LlamaChat {
            weights,
            info: Arc::new(info),
            timeout: config.timeout,
            lanes: lanes.into(),
            usage: Arc::new(Mutex::new((0, Usage::default()))),
        })
    }

    /// Facts about the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Requests the workers hold right now (decoding or queued), over every clone.
    pub fn in_flight(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.load.load(Ordering::SeqCst))
            .sum()
    }

    /// Calls made and tokens used so far by every clone.
    pub fn usage(&self) -> (u64, Usage) {
        *self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ChatModel for LlamaChat {
    fn id(&self) -> &str {
        &self.info.id
    }

    /// A local model costs nothing per token.
    fn price(&self) -> Option<metaprompt_core::Price> {
        Some(metaprompt_core::Price::default())
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let (tx, rx) = oneshot::channel();
        // The least-loaded worker; the first on a tie, so one request alone always lands on
        // the same context. A worker that has stopped (its thread died) is passed over.
        let mut order: Vec<&Lane> = self.lanes.iter().collect();
        order.sort_by_key(|l| l.load.load(Ordering::SeqCst));
        let mut job = Some(Job { request, reply: tx });
        for lane in order {
            let Some(j) = job.take() else { break };
            lane.load.fetch_add(1, Ordering::SeqCst);
            if let Err(std::sync::mpsc::SendError(j)) = lane.jobs.send(j) {
                lane.load.fetch_sub(1, Ordering::SeqCst);
                job = Some(j);
            }
        }
        if job.is_some() {
            return Err(ModelError::Other(
                "every llama.cpp worker has stopped; load the model again".into(),
            ));
        }
        let dropped = |_| ModelError::Other("the llama.cpp worker dropped the request".into());
        let response = match self.timeout {
            // Dropping the receiver on a timeout is what makes the worker free the sequence.
            Some(limit) => tokio::time::timeout(limit, rx)
                .await
                .map_err(|_| ModelError::Timeout(limit))?
                .map_err(dropped)??,
            None => rx.await.map_err(dropped)??,
        };
        let mut u = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        u.0 += 1;
        u.1 += response.usage;
        Ok(response)
    }
}
