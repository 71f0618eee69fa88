//! Layers: `ChatModel`s that wrap a `ChatModel` (tower's idea, kept small).
//!
//! Every paid call of a run goes through the same two layers, whatever role the model plays:
//!
//! ```text
//! Cached ──► (concurrency limit) ──► Metered ──► provider
//! ```
//!
//! - [`Cached`] answers a request it has seen from a [`ResponseCache`] and stores every new
//!   answer before returning it, so nothing paid for is paid again (a hit is counted on the
//!   meter, never charged).
//! - [`Metered`] admits a call only while the run's [`Budget`](crate::Budget) allows it and the
//!   run is not cancelled, then records calls, tokens and cost per [`CallRole`] on one shared
//!   [`Meter`].
//!
//! Answers that arrive another way, a provider batch's, take the same path down the layers
//! ([`ChatModel::absorb`]): [`Cached`] keeps them, [`Metered`] records them at the batch's
//! price. Caching, metering and budgets are written once, here; nothing caches or meters
//! inline.
//!
//! ```
//! use std::sync::Arc;
//! use metaprompt_core::layer::{CallRole, Cached, Meter, Metered};
//! use metaprompt_core::{Budget, ChatModel, ChatRequest};
//! # #[cfg(feature = "test-utils")] {
//! use metaprompt_core::testing::{MemoryCache, ScriptedModel};
//!
//! let meter = Arc::new(Meter::new(Budget { max_llm_calls: Some(1), ..Budget::default() }));
//! let model = Arc::new(ScriptedModel::new("m").with_handler(|_| Ok("hi".into())));
//! let teacher = Cached::new(
//!     Arc::new(Metered::new(model, CallRole::Teacher, meter.clone())),
//!     Arc::new(MemoryCache::new()),
//! )
//! .counting_hits(meter.clone(), CallRole::Teacher);
//! futures::executor::block_on(async {
//!     teacher.complete(ChatRequest::user("a")).await.unwrap();
//!     // The same request again is a cache hit: free, and allowed past the budget.
//!     teacher.complete(ChatRequest::user("a")).await.unwrap();
//!     // A new one would pass `max_llm_calls`: refused before any call.
//!     assert!(teacher.complete(ChatRequest::user("b")).await.is_err());
//! });
//! let spend = meter.snapshot();
//! assert_eq!((spend.teacher.calls, spend.teacher.cache_hits), (1, 1));
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::cache::{CacheKey, ResponseCache};
use crate::message::{ChatRequest, ChatResponse};
pub use crate::meter::{CallRole, CancelFlag, Meter, MeterSnapshot, RoleSpend};
use crate::model::{ChatModel, ModelError};
use crate::usage::Price;

/// Admits each call through a [`Meter`] and records what it spent.
pub struct Metered {
    inner: Arc<dyn ChatModel>,
    role: CallRole,
    meter: Arc<Meter>,
}

impl Metered {
    /// Meters `inner`'s calls as `role`.
    pub fn new(inner: Arc<dyn ChatModel>, role: CallRole, meter: Arc<Meter>) -> Self {
        Metered { inner, role, meter }
    }
}

#[async_trait]
impl ChatModel for Metered {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn price(&self) -> Option<Price> {
        self.inner.price()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        self.meter.admit(self.role)?;
        let out = self.inner.complete(request).await;
        self.meter
            .settle(self.role, self.inner.price(), out.as_ref());
        out
    }

    async fn absorb(&self, answers: &[(CacheKey, ChatResponse)], price: Option<Price>) -> bool {
        for (_, response) in answers {
            self.meter.record_batch(self.role, price, response);
        }
        self.inner.absorb(answers, price).await
    }
}

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
    in_flight: Mutex<HashMap<CacheKey, Arc<futures::lock::Mutex<()>>>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, BudgetKind};
    use crate::testing::{MemoryCache, ScriptedModel};
    use futures::executor::block_on;
    use std::time::Duration;

    fn echo() -> Arc<ScriptedModel> {
        Arc::new(
            ScriptedModel::new("m")
                .with_handler(|r| Ok(r.messages[0].content.clone()))
                .with_price(Price {
                    input_per_mtok: 1_000_000.0,
                    output_per_mtok: 0.0,
                    per_call: 0.5,
                }),
        )
    }

    #[test]
    fn the_call_budget_is_never_passed_and_refusals_are_remembered() {
        let meter = Arc::new(Meter::new(Budget {
            max_llm_calls: Some(2),
            ..Budget::default()
        }));
        let m = Metered::new(echo(), CallRole::Judge, meter.clone());
        block_on(async {
            assert!(m.complete(ChatRequest::user("a")).await.is_ok());
            assert!(m.complete(ChatRequest::user("b")).await.is_ok());
            let err = m.complete(ChatRequest::user("c")).await.unwrap_err();
            assert_eq!(err, ModelError::Budget(BudgetKind::Calls));
        });
        let s = meter.snapshot();
        assert_eq!(s.judge.calls, 2);
        // One input token each at $1 a token, plus $0.5 a call.
        assert!(
            (s.judge.cost_usd - 3.0).abs() < 1e-9,
            "{}",
            s.judge.cost_usd
        );
        assert_eq!(meter.refusal(), Some(ModelError::Budget(BudgetKind::Calls)));
    }

    #[test]
    fn a_cancelled_run_admits_nothing() {
        let cancel = CancelFlag::new();
        let meter = Arc::new(Meter::resume(
            Budget::default(),
            cancel.clone(),
            MeterSnapshot::default(),
        ));
        let inner = echo();
        let m = Metered::new(inner.clone(), CallRole::Student, meter.clone());
        cancel.cancel();
        assert_eq!(
            block_on(m.complete(ChatRequest::user("a"))).unwrap_err(),
            ModelError::Cancelled
        );
        assert_eq!(inner.call_count(), 0);
    }

    #[test]
    fn cache_hits_are_free_and_counted_per_role() {
        let meter = Arc::new(Meter::new(Budget::default()));
        let inner = echo();
        let cached = Cached::new(
            Arc::new(Metered::new(
                inner.clone(),
                CallRole::Teacher,
                meter.clone(),
            )),
            Arc::new(MemoryCache::new()),
        )
        .counting_hits(meter.clone(), CallRole::Teacher);
        block_on(async {
            for _ in 0..3 {
                assert_eq!(
                    cached.complete(ChatRequest::user("x")).await.unwrap().text,
                    "x"
                );
            }
        });
        assert_eq!(inner.call_count(), 1);
        let s = meter.snapshot();
        assert_eq!((s.teacher.calls, s.teacher.cache_hits), (1, 2));
        assert_eq!(s.student, RoleSpend::default());
    }

    /// Suspends once before answering, so that calls really overlap.
    struct Slow(Arc<ScriptedModel>);

    #[async_trait]
    impl ChatModel for Slow {
        fn id(&self) -> &str {
            "slow"
        }
        async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
            let mut yielded = false;
            futures::future::poll_fn(|cx| {
                if yielded {
                    std::task::Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
            self.0.complete(request).await
        }
    }

    #[test]
    fn the_same_request_made_at_once_is_paid_once() {
        let meter = Arc::new(Meter::new(Budget::default()));
        let inner = echo();
        let cached = Cached::new(
            Arc::new(Metered::new(
                Arc::new(Slow(inner.clone())),
                CallRole::Judge,
                meter.clone(),
            )),
            Arc::new(MemoryCache::new()),
        )
        .counting_hits(meter.clone(), CallRole::Judge);
        let all =
            futures::future::join_all((0..8).map(|_| cached.complete(ChatRequest::user("same"))));
        for r in block_on(all) {
            assert_eq!(r.unwrap().text, "same");
        }
        assert_eq!(inner.call_count(), 1);
        assert_eq!(meter.snapshot().judge.cache_hits, 7);
        assert!(cached.in_flight.lock().unwrap().is_empty());
    }

    #[test]
    fn failures_are_not_cached_and_are_counted_as_errors() {
        let meter = Arc::new(Meter::new(Budget::default()));
        let inner = Arc::new(
            ScriptedModel::new("f")
                .fail(ModelError::Server("500".into()))
                .reply("ok"),
        );
        let cached = Cached::new(
            Arc::new(Metered::new(
                inner.clone(),
                CallRole::Student,
                meter.clone(),
            )),
            Arc::new(MemoryCache::new()),
        );
        block_on(async {
            assert!(cached.complete(ChatRequest::user("x")).await.is_err());
            assert_eq!(
                cached.complete(ChatRequest::user("x")).await.unwrap().text,
                "ok"
            );
        });
        let s = meter.snapshot();
        assert_eq!((s.student.calls, s.student.errors), (2, 1));
    }

    #[test]
    fn a_resumed_meter_keeps_the_earlier_spending() {
        let earlier = MeterSnapshot {
            teacher: RoleSpend {
                calls: 4,
                ..RoleSpend::default()
            },
            elapsed_secs: 10.0,
            ..MeterSnapshot::default()
        };
        let meter = Meter::resume(
            Budget {
                max_llm_calls: Some(4),
                ..Budget::default()
            },
            CancelFlag::new(),
            earlier,
        );
        assert!(meter.elapsed() >= Duration::from_secs(10));
        assert_eq!(
            meter.admit(CallRole::Student),
            Err(ModelError::Budget(BudgetKind::Calls))
        );
    }
}
