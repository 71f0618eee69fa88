//! The batch layer and the collector of a split's uncached calls.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use metaprompt_core::layer::CallRole;
use metaprompt_core::{
    BatchExecutor, BatchFile, BatchFileWriter, CacheKey, ChatModel, ChatRequest, ChatResponse,
    ModelError, Price, ResponseCache, async_trait,
};
use sha2::{Digest, Sha256};

tokio::task_local! {
    /// Set while a split is scored to collect its uncached calls.
    pub(crate) static COLLECTING: Arc<Collector>;
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers a batch stored, waiting to be read by the scoring pass: their keys (the answers
/// are in the cache), or the answers themselves when the run has no cache.
#[derive(Default)]
pub(crate) struct Imported {
    pub(crate) keys: Mutex<HashSet<CacheKey>>,
    pub(crate) answers: Mutex<HashMap<CacheKey, ChatResponse>>,
    /// Calls whose batch line failed: made live, never batched again this session.
    pub(crate) failed: Mutex<HashSet<CacheKey>>,
}

/// One model's calls collected for a batch.
pub(crate) struct Group {
    pub(crate) executor: Arc<dyn BatchExecutor>,
    /// The layers under the batch layer (cache, meter): the batch's answers go down them.
    pub(crate) layers: Arc<dyn ChatModel>,
    pub(crate) role: CallRole,
    writer: Option<BatchFileWriter>,
    pub(crate) files: Vec<BatchFile>,
    /// Each call's key and the index of its parameters in `params`.
    pub(crate) keys: HashMap<String, u32>,
    /// The distinct parameter sets of the calls (requests without their messages).
    pub(crate) params: Vec<ChatRequest>,
}

impl Group {
    pub(crate) fn lines(&self) -> u64 {
        self.keys.len() as u64
    }

    pub(crate) fn fingerprint(&self) -> String {
        let mut keys: Vec<&String> = self.keys.keys().collect();
        keys.sort();
        let mut h = Sha256::new();
        h.update(self.executor.model_id().as_bytes());
        for k in keys {
            h.update([0]);
            h.update(k.as_bytes());
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// Collects the uncached calls of one scoring pass, writing their lines to files as they come.
pub(crate) struct Collector {
    dir: PathBuf,
    groups: Mutex<Vec<Group>>,
    error: Mutex<Option<String>>,
    /// Every uncached call, whatever its model, when the calls themselves are wanted (a batch
    /// file for an offline engine) rather than written for an executor.
    recorded: Option<Mutex<Vec<(CacheKey, ChatRequest, CallRole)>>>,
}

impl Collector {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Collector {
            dir,
            groups: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            recorded: None,
        }
    }

    /// A collector that keeps the calls themselves.
    pub(crate) fn recording() -> Self {
        Collector {
            recorded: Some(Mutex::new(Vec::new())),
            ..Collector::new(PathBuf::new())
        }
    }

    /// The calls a recording collector kept, each once.
    pub(crate) fn recorded(&self) -> Vec<(CacheKey, ChatRequest, CallRole)> {
        let mut seen = HashSet::new();
        self.recorded
            .as_ref()
            .map(|r| std::mem::take(&mut *lock(r)))
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _, _)| seen.insert(k.clone()))
            .collect()
    }

    fn add(
        &self,
        executor: &Arc<dyn BatchExecutor>,
        layers: &Arc<dyn ChatModel>,
        role: CallRole,
        key: &CacheKey,
        request: &ChatRequest,
    ) {
        let mut groups = lock(&self.groups);
        let i = match groups
            .iter()
            .position(|g| Arc::ptr_eq(&g.executor, executor) && g.role == role)
        {
            Some(i) => i,
            None => {
                let stem = format!("{}-{}", role_name(role), groups.len());
                groups.push(Group {
                    executor: executor.clone(),
                    layers: layers.clone(),
                    role,
                    writer: Some(BatchFileWriter::new(
                        self.dir.clone(),
                        stem,
                        executor.limits(),
                    )),
                    files: Vec::new(),
                    keys: HashMap::new(),
                    params: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        if g.keys.contains_key(key.as_str()) {
            return;
        }
        let line = match executor.encode(key.as_str(), request) {
            Ok(l) => l,
            Err(e) => {
                lock(&self.error).get_or_insert(e.to_string());
                return;
            }
        };
        if let Some(w) = g.writer.as_mut()
            && let Err(e) = w.push(&line)
        {
            lock(&self.error).get_or_insert(format!("cannot write a batch file: {e}"));
            return;
        }
        let mut shape = request.clone();
        shape.messages.clear();
        let idx = match g.params.iter().position(|p| *p == shape) {
            Some(i) => i,
            None => {
                g.params.push(shape);
                g.params.len() - 1
            }
        };
        g.keys.insert(key.as_str().to_string(), idx as u32);
    }

    pub(crate) fn finish(&self) -> Result<Vec<Group>, String> {
        if let Some(e) = lock(&self.error).clone() {
            return Err(e);
        }
        let mut groups = std::mem::take(&mut *lock(&self.groups));
        for g in &mut groups {
            if let Some(w) = g.writer.take() {
                g.files = w
                    .finish()
                    .map_err(|e| format!("cannot write a batch file: {e}"))?;
            }
        }
        Ok(groups)
    }
}

fn role_name(role: CallRole) -> &'static str {
    match role {
        CallRole::Student => "student",
        CallRole::Teacher => "teacher",
        _ => "judge",
    }
}

/// The batch layer: collects while a collector is in scope, serves batch answers once.
pub(crate) struct Batched {
    pub(crate) inner: Arc<dyn ChatModel>,
    pub(crate) cache: Option<Arc<dyn ResponseCache>>,
    pub(crate) executor: Option<Arc<dyn BatchExecutor>>,
    pub(crate) role: CallRole,
    pub(crate) imported: Arc<Imported>,
}

impl Batched {
    async fn stored(&self, key: &CacheKey) -> Option<ChatResponse> {
        if let Some(r) = lock(&self.imported.answers).get(key) {
            return Some(r.clone());
        }
        match &self.cache {
            Some(c) => c.get(key).await.ok().flatten(),
            None => None,
        }
    }
}

#[async_trait]
impl ChatModel for Batched {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn price(&self) -> Option<Price> {
        self.inner.price()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        // The cache layer's key: the ids of the layers below are the model's.
        let key = CacheKey::for_request(self.inner.id(), &request, 0);
        if let Ok(collector) = COLLECTING.try_with(Arc::clone) {
            if let Some(r) = self.stored(&key).await {
                return Ok(r);
            }
            if let Some(r) = &collector.recorded {
                lock(r).push((key, request, self.role));
            } else if lock(&self.imported.failed).contains(&key) {
                // Its batch line failed: the scoring pass makes it live.
            } else if let Some(ex) = &self.executor {
                collector.add(ex, &self.inner, self.role, &key, &request);
            }
            return Err(ModelError::Deferred);
        }
        let fresh = lock(&self.imported.keys).remove(&key);
        if fresh {
            if let Some(r) = lock(&self.imported.answers).remove(&key) {
                return Ok(r);
            }
            if let Some(r) = self.stored(&key).await {
                return Ok(r);
            }
        }
        self.inner.complete(request).await
    }

    async fn absorb(&self, answers: &[(CacheKey, ChatResponse)], price: Option<Price>) -> bool {
        self.inner.absorb(answers, price).await
    }
}
