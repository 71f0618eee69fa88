//! The response cache contract: nothing paid for is paid for twice.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::message::{ChatRequest, ChatResponse};

/// A content hash identifying one model call: sha256 of a canonical JSON of the model id,
/// the request (messages and parameters) and the sample index.
///
/// The sample index lets a caller draw several samples of the same request at
/// temperature > 0 without getting the first one back each time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of a request to a model.
    ///
    /// ```
    /// use metaprompt_core::{CacheKey, ChatRequest};
    /// let a = CacheKey::for_request("m", &ChatRequest::user("hi"), 0);
    /// assert_eq!(a, CacheKey::for_request("m", &ChatRequest::user("hi"), 0));
    /// assert_ne!(a, CacheKey::for_request("m", &ChatRequest::user("hi"), 1));
    /// assert_ne!(a, CacheKey::for_request("other", &ChatRequest::user("hi"), 0));
    /// ```
    pub fn for_request(model_id: &str, request: &ChatRequest, sample_index: u32) -> Self {
        #[derive(Serialize)]
        struct Canonical<'a> {
            model: &'a str,
            request: &'a ChatRequest,
            sample: u32,
        }
        // Serialising a struct of plain data to a Vec cannot fail; fall back to Debug text
        // rather than panic should that ever change.
        let bytes = serde_json::to_vec(&Canonical {
            model: model_id,
            request,
            sample: sample_index,
        })
        .unwrap_or_else(|_| format!("{model_id:?}{request:?}{sample_index}").into_bytes());
        CacheKey(hex::encode(Sha256::digest(&bytes)))
    }

    /// Wraps an existing hex digest (as read back from storage).
    pub fn from_hex(hex: impl Into<String>) -> Self {
        CacheKey(hex.into())
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why the cache failed. Callers treat a cache failure as a miss and log it; it never fails
/// a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("response cache: {0}")]
pub struct CacheError(pub String);

/// Stores model responses by [`CacheKey`].
#[async_trait]
pub trait ResponseCache: Send + Sync {
    /// The stored response, if any.
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>, CacheError>;
    /// Stores a response.
    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<(), CacheError>;

    /// Stores many responses; a store that can makes it all-or-nothing (one transaction), so
    /// that a crash while a batch's answers are stored leaves none or all of them.
    async fn put_many(&self, entries: &[(CacheKey, ChatResponse)]) -> Result<(), CacheError> {
        for (k, r) in entries {
            self.put(k, r).await?;
        }
        Ok(())
    }
}
