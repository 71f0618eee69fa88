//! [`EndpointPool`]: one model served by several replicas (a vLLM fleet with no load balancer
//! in front), as one [`ChatModel`].
//!
//! Each call goes to the healthy replica with the fewest calls in flight (each replica keeps
//! its own concurrency cap). A replica that fails — a connection refused, or a burst of server
//! errors — is taken out for a back-off period (1 s, doubling to 30 s) and tried again after
//! it; the call that failed is made again on another replica at once. The pool's id is the
//! model's, so the cache key does not depend on which replica answered.
//!
//! ```
//! use std::sync::Arc;
//! use metaprompt_core::endpoints::EndpointPool;
//! use metaprompt_core::{ChatModel, ChatRequest};
//! # #[cfg(feature = "test-utils")] {
//! use metaprompt_core::testing::ScriptedModel;
//! let a = Arc::new(ScriptedModel::new("m").with_handler(|_| Ok("from a".into())));
//! let b = Arc::new(ScriptedModel::new("m").with_handler(|_| Ok("from b".into())));
//! let pool = EndpointPool::new(vec![a.clone(), b.clone()]).unwrap();
//! assert_eq!(pool.id(), "m");
//! futures::executor::block_on(pool.complete(ChatRequest::user("hi"))).unwrap();
//! assert_eq!(a.call_count() + b.call_count(), 1);
//! # }
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::message::{ChatRequest, ChatResponse};
use crate::model::{ChatModel, ModelError};
use crate::usage::Price;

/// Consecutive server errors that take a replica out.
const BURST: u32 = 3;
/// The first back-off; it doubles on each failed return, up to [`MAX_DOWN`].
const FIRST_DOWN: Duration = Duration::from_secs(1);
/// The longest back-off.
const MAX_DOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    down_until: Option<Instant>,
    next_down: Duration,
}

struct Member {
    model: Arc<dyn ChatModel>,
    in_flight: AtomicUsize,
    answered: AtomicU64,
    health: Mutex<Health>,
}

impl Member {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn down_until(&self, now: Instant) -> Option<Instant> {
        self.health().down_until.filter(|t| *t > now)
    }

    fn succeeded(&self) {
        let mut h = self.health();
        h.failures = 0;
        h.down_until = None;
        h.next_down = FIRST_DOWN;
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, unreachable: bool) {
        let mut h = self.health();
        h.failures += 1;
        if unreachable || h.failures >= BURST {
            let down = h.next_down.max(FIRST_DOWN);
            h.down_until = Some(Instant::now() + down);
            h.next_down = (down * 2).min(MAX_DOWN);
            h.failures = 0;
            tracing::warn!(
                replica = self.model.id(),
                seconds = down.as_secs_f64(),
                "replica taken out of the pool"
            );
        }
    }
}

/// Whether a failure may be another replica's success.
fn elsewhere(e: &ModelError) -> bool {
    matches!(
        e,
        ModelError::Server(_) | ModelError::Timeout(_) | ModelError::RateLimited { .. }
    )
}

/// Whether a failure means the replica could not be reached at all.
fn unreachable(e: &ModelError) -> bool {
    match e {
        ModelError::Server(m) => {
            let m = m.to_ascii_lowercase();
            m.contains("connect") || m.contains("refused") || m.contains("reset")
        }
        ModelError::Timeout(_) => true,
        _ => false,
    }
}

/// One model behind several endpoints.
pub struct EndpointPool {
    members: Vec<Member>,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("model", &self.id())
            .field("replicas", &self.members.len())
            .finish()
    }
}

impl EndpointPool {
    /// A pool of replicas of one model; they must share an id (the same model name).
    pub fn new(replicas: Vec<Arc<dyn ChatModel>>) -> Result<EndpointPool, String> {
        let Some(first) = replicas.first() else {
            return Err("an endpoint pool needs at least one endpoint".into());
        };
        if let Some(other) = replicas.iter().find(|r| r.id() != first.id()) {
            return Err(format!(
                "every endpoint of a pool must serve the same model, not `{}` and `{}`",
                first.id(),
                other.id()
            ));
        }
        Ok(EndpointPool {
            members: replicas
                .into_iter()
                .map(|model| Member {
                    model,
                    in_flight: AtomicUsize::new(0),
                    answered: AtomicU64::new(0),
                    health: Mutex::new(Health {
                        next_down: FIRST_DOWN,
                        ..Health::default()
                    }),
                })
                .collect(),
        })
    }

    /// Calls answered by each replica so far, in the order given.
    pub fn answered(&self) -> Vec<u64> {
        self.members
            .iter()
            .map(|m| m.answered.load(Ordering::Relaxed))
            .collect()
    }

    /// The replica for the next try: a healthy one not yet tried with the fewest calls in
    /// flight; if every untried one is out, the one back soonest (a probe).
    fn pick(&self, tried: &[usize]) -> usize {
        let now = Instant::now();
        let fresh = |i: &usize| !tried.contains(i);
        let healthy = (0..self.members.len())
            .filter(fresh)
            .filter(|&i| self.members[i].down_until(now).is_none())
            .min_by_key(|&i| self.members[i].in_flight.load(Ordering::Relaxed));
        if let Some(i) = healthy {
            return i;
        }
        let pool: Vec<usize> = (0..self.members.len()).filter(fresh).collect();
        let candidates = if pool.is_empty() {
            (0..self.members.len()).collect()
        } else {
            pool
        };
        candidates
            .into_iter()
            .min_by_key(|&i| self.members[i].down_until(now).unwrap_or(now))
            .unwrap_or(0)
    }
}

#[async_trait]
impl ChatModel for EndpointPool {
    fn id(&self) -> &str {
        self.members[0].model.id()
    }

    fn price(&self) -> Option<Price> {
        self.members[0].model.price()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut tried = Vec::new();
        // Every replica once, and once more for a replica coming back.
        let attempts = self.members.len() + 1;
        let mut last = None;
        for _ in 0..attempts {
            let i = self.pick(&tried);
            let m = &self.members[i];
            m.in_flight.fetch_add(1, Ordering::Relaxed);
            let out = m.model.complete(request.clone()).await;
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
            match out {
                Ok(r) => {
                    m.succeeded();
                    return Ok(r);
                }
                Err(e) if elsewhere(&e) => {
                    if !matches!(e, ModelError::RateLimited { .. }) {
                        m.failed(unreachable(&e));
                    }
                    tried.push(i);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ModelError::Server("no endpoint answered".into())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::ScriptedModel;
    use futures::executor::block_on;

    fn replica(answer: &'static str) -> Arc<ScriptedModel> {
        Arc::new(ScriptedModel::new("m").with_handler(move |_| Ok(answer.into())))
    }

    #[test]
    fn a_dead_replica_is_skipped_and_its_calls_go_elsewhere() {
        let dead = Arc::new(ScriptedModel::new("m").with_handler(|_| {
            Err(ModelError::Server(
                "request failed: connection refused".into(),
            ))
        }));
        let live = replica("ok");
        let pool = EndpointPool::new(vec![dead.clone(), live.clone()]).unwrap();
        for i in 0..20 {
            let r = block_on(pool.complete(ChatRequest::user(format!("q{i}")))).unwrap();
            assert_eq!(r.text, "ok");
        }
        // Tried once, then out for its back-off: every call after the first goes to `live`.
        assert_eq!(dead.call_count(), 1);
        assert_eq!(live.call_count(), 20);
        assert_eq!(pool.answered(), [0, 20]);
    }

    #[test]
    fn a_burst_of_server_errors_takes_a_replica_out() {
        let flaky = Arc::new(
            ScriptedModel::new("m")
                .with_handler(|_| Err(ModelError::Server("503 after 1 attempts: down".into()))),
        );
        let live = replica("ok");
        let pool = EndpointPool::new(vec![flaky.clone(), live.clone()]).unwrap();
        for i in 0..10 {
            block_on(pool.complete(ChatRequest::user(format!("q{i}")))).unwrap();
        }
        assert_eq!(flaky.call_count(), BURST as usize);
    }

    #[test]
    fn errors_that_no_replica_can_fix_are_not_retried() {
        let bad = Arc::new(
            ScriptedModel::new("m").with_handler(|_| Err(ModelError::BadRequest("400".into()))),
        );
        let other = replica("ok");
        let pool = EndpointPool::new(vec![bad.clone(), other.clone()]).unwrap();
        assert!(block_on(pool.complete(ChatRequest::user("q"))).is_err());
        assert_eq!(bad.call_count() + other.call_count(), 1);
    }

    #[test]
    fn replicas_must_serve_one_model() {
        let a: Arc<dyn ChatModel> = Arc::new(ScriptedModel::new("a"));
        let b: Arc<dyn ChatModel> = Arc::new(ScriptedModel::new("b"));
        assert!(
            EndpointPool::new(vec![a, b])
                .unwrap_err()
                .contains("same model")
        );
        assert!(EndpointPool::new(Vec::new()).is_err());
    }
}
