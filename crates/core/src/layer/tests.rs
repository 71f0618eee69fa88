//! The layers' tests: cache, meter and budget together.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::budget::{Budget, BudgetKind};
use crate::message::{ChatRequest, ChatResponse};
use crate::model::{ChatModel, ModelError};
use crate::testing::{MemoryCache, ScriptedModel};
use crate::usage::Price;
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
    let all = futures::future::join_all((0..8).map(|_| cached.complete(ChatRequest::user("same"))));
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
