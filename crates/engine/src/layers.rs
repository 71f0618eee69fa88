//! The models of a run, each wrapped in the same layers.
//!
//! ```text
//! student: Batched ─► Cached ─► Limited(concurrency) ─► Metered(student) ─► the student
//! teacher:            Cached ─────────────────────────► Metered(teacher) ─► the teacher
//! judge:   Batched ─► Cached ─► Limited(concurrency) ─► Metered(judge)   ─► each model an evaluator calls
//! ```
//!
//! A cache hit costs no permit and no budget; a call waits for a permit before it is
//! admitted, so "in flight" means what it says. `Batched` (see `batch.rs`) collects a
//! split's uncached calls for a provider batch and hands its answers back once. The student's and the judges' limits are
//! separate, each `[optimizer] concurrency`: a provider's own limit is only an extra cap.

use std::sync::Arc;

use metaprompt_core::layer::{Cached, CallRole, Meter, Metered};
use metaprompt_core::{
    BatchExecutor, CacheKey, ChatModel, ChatRequest, ChatResponse, Evaluator, ModelError, Price,
    ResponseCache, async_trait,
};
use tokio::sync::Semaphore;

use crate::batch::{Batched, Batching};

/// Holds at most the semaphore's permits of calls in flight.
pub(crate) struct Limited {
    inner: Arc<dyn ChatModel>,
    permits: Arc<Semaphore>,
}

#[async_trait]
impl ChatModel for Limited {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn price(&self) -> Option<Price> {
        self.inner.price()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ModelError::Cancelled)?;
        self.inner.complete(request).await
    }

    async fn absorb(&self, answers: &[(CacheKey, ChatResponse)], price: Option<Price>) -> bool {
        self.inner.absorb(answers, price).await
    }
}

/// The layers every model of a run is wrapped in: meter, concurrency limit, batch, cache.
#[derive(Clone)]
struct LayerStack {
    meter: Arc<Meter>,
    cache: Option<Arc<dyn ResponseCache>>,
    batching: Arc<Batching>,
}

impl LayerStack {
    fn apply(
        &self,
        model: Arc<dyn ChatModel>,
        role: CallRole,
        limit: Option<Arc<Semaphore>>,
    ) -> Arc<dyn ChatModel> {
        let model_ref = model.clone();
        let metered: Arc<dyn ChatModel> = Arc::new(Metered::new(model, role, self.meter.clone()));
        let limited: Arc<dyn ChatModel> = match limit {
            Some(permits) => Arc::new(Limited {
                inner: metered,
                permits,
            }),
            None => metered,
        };
        let executor = self.batching.executor_for(model_ref.as_ref());
        let cached = match &self.cache {
            Some(c) => {
                Arc::new(Cached::new(limited, c.clone()).counting_hits(self.meter.clone(), role))
            }
            None => limited,
        };
        if role == CallRole::Teacher {
            return cached;
        }
        Arc::new(Batched {
            inner: cached,
            cache: self.cache.clone(),
            executor,
            role,
            imported: self.batching.imported.clone(),
        })
    }
}

/// The student, the teacher and the evaluator of a run, every model wrapped.
#[derive(Clone)]
pub(crate) struct RunModels {
    pub(crate) student: Arc<dyn ChatModel>,
    pub(crate) teacher: Arc<dyn ChatModel>,
    pub(crate) evaluator: Arc<dyn Evaluator>,
    pub(crate) meter: Arc<Meter>,
    pub(crate) batching: Arc<Batching>,
}

impl RunModels {
    pub(crate) fn new(
        student: Arc<dyn ChatModel>,
        teacher: Arc<dyn ChatModel>,
        evaluator: &Arc<dyn Evaluator>,
        cache: Option<Arc<dyn ResponseCache>>,
        meter: Arc<Meter>,
        concurrency: usize,
        executors: Vec<Arc<dyn BatchExecutor>>,
    ) -> Self {
        let batching = Arc::new(Batching {
            executors,
            imported: Arc::default(),
        });
        let stack = LayerStack {
            meter: meter.clone(),
            cache,
            batching: batching.clone(),
        };
        let student_permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let judge_permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let judge_stack = stack.clone();
        let evaluator = evaluator
            .with_model_layer(&move |m: Arc<dyn ChatModel>| {
                judge_stack.apply(m, CallRole::Judge, Some(judge_permits.clone()))
            })
            .or(evaluator);
        RunModels {
            student: stack.apply(student, CallRole::Student, Some(student_permits)),
            teacher: stack.apply(teacher, CallRole::Teacher, None),
            evaluator,
            meter,
            batching,
        }
    }
}
