//! The meter layer: admits a call while the budget allows it and records what it spent.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::CacheKey;
use crate::message::{ChatRequest, ChatResponse};
use crate::meter::{CallRole, Meter};
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
