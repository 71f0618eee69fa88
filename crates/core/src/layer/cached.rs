//! The cache layer: nothing paid for is paid for twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::cache::{CacheKey, ResponseCache};
use crate::message::{ChatRequest, ChatResponse};
use crate::meter::{CallRole, Meter};
use crate::model::{ChatModel, ModelError};
use crate::usage::Price;

/// Answers from a [`ResponseCache`] when it can; stores every new answer before returning it.
///
/// The key is the model's id, the whole request (every message, the parameters, the schema)
/// and a sample index of 0: two requests that differ in anything get different answers, and a
/// repeated request (a resumed run, an unchanged prompt on the same row) costs nothing. The
/// same request made twice at once is made once: the second waits for the first and is
/// answered from the cache. A cache that fails is logged and treated as a miss; it never fails
/// a call.
pub struct Cached {
    inner: Arc<dyn ChatModel>,
    cache: Arc<dyn ResponseCache>,
    hits: Option<(Arc<Meter>, CallRole)>,
    pub(super) in_flight: Mutex<HashMap<CacheKey, Arc<futures::lock::Mutex<()>>>>,
}

impl Cached {
    /// Caches `inner`'s answers in `cache`.
    pub fn new(inner: Arc<dyn ChatModel>, cache: Arc<dyn ResponseCache>) -> Self {
        Cached {
            inner,
            cache,
            hits: None,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Counts hits on `meter` as `role`.
    pub fn counting_hits(mut self, meter: Arc<Meter>, role: CallRole) -> Self {
        self.hits = Some((meter, role));
        self
    }

    /// The key a request is stored under.
    pub fn key(&self, request: &ChatRequest) -> CacheKey {
        CacheKey::for_request(self.inner.id(), request, 0)
    }
}

#[async_trait]
impl ChatModel for Cached {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn price(&self) -> Option<Price> {
        self.inner.price()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let key = self.key(&request);
        let gate = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let held = gate.lock().await;
        let out = self.answer(&key, request).await;
        drop(held);
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's own reference and this call's: nobody else waits on this key.
        if Arc::strong_count(&gate) == 2 {
            map.remove(&key);
        }
        out
    }

    async fn absorb(&self, answers: &[(CacheKey, ChatResponse)], price: Option<Price>) -> bool {
        let below = self.inner.absorb(answers, price).await;
        match import_answers(self.cache.as_ref(), answers).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a batch's answers");
                below
            }
        }
    }
}

/// Stores answers made elsewhere (a batch file run by an offline engine) in `cache`, with no
/// run to meter them: the one write of answers outside a live call besides
/// [`ChatModel::absorb`].
pub async fn import_answers(
    cache: &dyn ResponseCache,
    answers: &[(CacheKey, ChatResponse)],
) -> Result<(), crate::cache::CacheError> {
    if answers.is_empty() {
        return Ok(());
    }
    cache.put_many(answers).await
}

impl Cached {
    async fn answer(
        &self,
        key: &CacheKey,
        request: ChatRequest,
    ) -> Result<ChatResponse, ModelError> {
        let key = key.clone();
        match self.cache.get(&key).await {
            Ok(Some(hit)) => {
                if let Some((meter, role)) = &self.hits {
                    meter.record_hit(*role);
                }
                return Ok(hit);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cache read failed; calling the model"),
        }
        let response = self.inner.complete(request).await?;
        // Awaited before the call counts as done: a crash after this point repeats nothing.
        if let Err(e) = self.cache.put(&key, &response).await {
            tracing::warn!(error = %e, "cache write failed");
        }
        Ok(response)
    }
}
