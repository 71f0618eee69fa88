//! Test doubles for other crates' tests (feature `test-utils`).

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::message::{ChatRequest, ChatResponse, FinishReason};
use crate::model::{ChatModel, ModelError};
use crate::usage::Usage;

type Handler = Box<dyn Fn(&ChatRequest) -> Result<String, ModelError> + Send + Sync>;

/// A chat model that answers from a script and records every request it gets.
///
/// Replies come from a queue first; when the queue is empty, from the handler if one is set;
/// otherwise the call fails with [`ModelError::Other`] saying the script ran out.
///
/// ```
/// use metaprompt_core::{ChatModel, ChatRequest, testing::ScriptedModel};
/// let m = ScriptedModel::new("fake").reply("one").reply("two");
/// let r = futures::executor::block_on(m.complete(ChatRequest::user("hi"))).unwrap();
/// assert_eq!(r.text, "one");
/// assert_eq!(m.requests()[0].messages[0].content, "hi");
/// ```
pub struct ScriptedModel {
    id: String,
    price: Option<crate::usage::Price>,
    queue: Mutex<VecDeque<Result<String, ModelError>>>,
    handler: Option<Handler>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl std::fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("id", &self.id)
            .finish()
    }
}

impl ScriptedModel {
    /// A model with an empty script.
    pub fn new(id: impl Into<String>) -> Self {
        ScriptedModel {
            id: id.into(),
            price: None,
            queue: Mutex::new(VecDeque::new()),
            handler: None,
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Sets the price the model reports.
    pub fn with_price(mut self, price: crate::usage::Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Queues a reply.
    pub fn reply(self, text: impl Into<String>) -> Self {
        self.push(Ok(text.into()));
        self
    }

    /// Queues several replies.
    pub fn replies<I, S>(self, texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for t in texts {
            self.push(Ok(t.into()));
        }
        self
    }

    /// Queues a failure.
    pub fn fail(self, error: ModelError) -> Self {
        self.push(Err(error));
        self
    }

    /// Answers with a closure once the queue is empty.
    pub fn with_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&ChatRequest) -> Result<String, ModelError> + Send + Sync + 'static,
    {
        self.handler = Some(Box::new(handler));
        self
    }

    /// Appends a reply to the queue of a model already shared.
    pub fn push(&self, reply: Result<String, ModelError>) {
        lock(&self.queue).push_back(reply);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// How many requests were received.
    pub fn call_count(&self) -> usize {
        lock(&self.requests).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another test thread must not hide this model's record.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[async_trait]
impl ChatModel for ScriptedModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn price(&self) -> Option<crate::usage::Price> {
        self.price
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        lock(&self.requests).push(request.clone());
        let next = lock(&self.queue).pop_front();
        let text = match next {
            Some(reply) => reply?,
            None => match &self.handler {
                Some(h) => h(&request)?,
                None => {
                    return Err(ModelError::Other(format!(
                        "scripted model `{}` has no reply left for request {}",
                        self.id,
                        self.call_count()
                    )));
                }
            },
        };
        let input_tokens = request.messages.iter().map(|m| words(&m.content)).sum();
        Ok(ChatResponse {
            usage: Usage {
                input_tokens,
                output_tokens: words(&text),
            },
            text,
            model: self.id.clone(),
            finish_reason: FinishReason::Stop,
        })
    }
}

/// An in-memory [`ResponseCache`](crate::ResponseCache) that counts hits.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<std::collections::HashMap<crate::CacheKey, ChatResponse>>,
    hits: std::sync::atomic::AtomicU64,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        MemoryCache::default()
    }
    /// Entries stored.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }
    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Gets that found an entry.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl crate::ResponseCache for MemoryCache {
    async fn get(&self, key: &crate::CacheKey) -> Result<Option<ChatResponse>, crate::CacheError> {
        let hit = lock(&self.entries).get(key).cloned();
        if hit.is_some() {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(hit)
    }
    async fn put(
        &self,
        key: &crate::CacheKey,
        response: &ChatResponse,
    ) -> Result<(), crate::CacheError> {
        lock(&self.entries).insert(key.clone(), response.clone());
        Ok(())
    }
}

/// An in-memory [`Checkpointer`](crate::Checkpointer) keeping every saved state.
#[derive(Debug, Default)]
pub struct MemoryCheckpointer {
    saved: Mutex<Vec<crate::Checkpoint>>,
    batches: Mutex<Vec<(String, crate::checkpoint::PendingBatch)>>,
}

impl MemoryCheckpointer {
    /// No checkpoints yet.
    pub fn new() -> Self {
        MemoryCheckpointer::default()
    }
    /// Every checkpoint saved, in order.
    pub fn all(&self) -> Vec<crate::Checkpoint> {
        lock(&self.saved).clone()
    }
}

#[async_trait]
impl crate::Checkpointer for MemoryCheckpointer {
    async fn save(
        &self,
        run_id: &str,
        round: u32,
        state: &serde_json::Value,
    ) -> Result<(), crate::CheckpointError> {
        lock(&self.saved).push(crate::Checkpoint {
            run_id: run_id.into(),
            round,
            state: state.clone(),
        });
        Ok(())
    }
    async fn load_latest(
        &self,
        run_id: &str,
    ) -> Result<Option<crate::Checkpoint>, crate::CheckpointError> {
        Ok(lock(&self.saved)
            .iter()
            .rev()
            .find(|c| c.run_id == run_id)
            .cloned())
    }
    async fn save_batch(
        &self,
        run_id: &str,
        batch: &crate::checkpoint::PendingBatch,
    ) -> Result<(), crate::CheckpointError> {
        let mut all = lock(&self.batches);
        match all
            .iter_mut()
            .find(|(r, b)| r == run_id && b.fingerprint == batch.fingerprint)
        {
            Some(slot) => slot.1 = batch.clone(),
            None => all.push((run_id.to_string(), batch.clone())),
        }
        Ok(())
    }
    async fn batches(
        &self,
        run_id: &str,
    ) -> Result<Vec<crate::checkpoint::PendingBatch>, crate::CheckpointError> {
        Ok(lock(&self.batches)
            .iter()
            .filter(|(r, _)| r == run_id)
            .map(|(_, b)| b.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn records_requests_and_replies_in_order() {
        let m = ScriptedModel::new("s").replies(["a", "b"]);
        let mut req = ChatRequest::user("first question");
        req.temperature = Some(0.0);
        assert_eq!(block_on(m.complete(req)).unwrap().text, "a");
        assert_eq!(
            block_on(m.complete(ChatRequest::user("second")))
                .unwrap()
                .text,
            "b"
        );
        let recorded = m.requests();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].temperature, Some(0.0));
        assert_eq!(recorded[1].messages[0].content, "second");
    }

    #[test]
    fn falls_back_to_handler_then_errors_without_one() {
        let m = ScriptedModel::new("s")
            .reply("queued")
            .with_handler(|r| Ok(format!("echo {}", r.messages[0].content)));
        assert_eq!(
            block_on(m.complete(ChatRequest::user("x"))).unwrap().text,
            "queued"
        );
        assert_eq!(
            block_on(m.complete(ChatRequest::user("y"))).unwrap().text,
            "echo y"
        );
        let empty = ScriptedModel::new("e");
        let err = block_on(empty.complete(ChatRequest::user("z"))).unwrap_err();
        assert!(err.to_string().contains("no reply left"));
        assert_eq!(empty.call_count(), 1);
    }

    #[test]
    fn queued_failures_are_returned() {
        let m =
            ScriptedModel::new("s").fail(ModelError::Timeout(std::time::Duration::from_secs(1)));
        assert!(matches!(
            block_on(m.complete(ChatRequest::user("x"))),
            Err(ModelError::Timeout(_))
        ));
    }

    #[test]
    fn usage_counts_words() {
        let m = ScriptedModel::new("s").reply("two words");
        let r = block_on(m.complete(ChatRequest::user("three little words"))).unwrap();
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 3,
                output_tokens: 2
            }
        );
    }
}
