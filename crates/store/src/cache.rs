//! The store as a response cache.

use std::sync::atomic::Ordering;

use metaprompt_core::{CacheError, CacheKey, ChatResponse, ResponseCache, async_trait};
use rusqlite::OptionalExtension;

use crate::SqliteStore;
use crate::writer::Write;

#[async_trait]
impl ResponseCache for SqliteStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>, CacheError> {
        let k = key.as_str().to_string();
        let text = self
            .read(move |c| {
                Ok(
                    c.prepare_cached("SELECT response FROM cache WHERE key = ?1")?
                        .query_row([k], |r| r.get::<_, String>(0))
                        .optional()?,
                )
            })
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        match text {
            Some(t) => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                serde_json::from_str(&t)
                    .map(Some)
                    .map_err(|e| CacheError(format!("corrupt cache entry: {e}")))
            }
            None => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<(), CacheError> {
        let json = serde_json::to_string(response).map_err(|e| CacheError(e.to_string()))?;
        self.write(Write::CachePut {
            key: key.as_str().to_string(),
            response: json,
        })
        .await
        .map_err(|e| CacheError(e.to_string()))
    }

    async fn put_many(&self, entries: &[(CacheKey, ChatResponse)]) -> Result<(), CacheError> {
        let mut rows = Vec::with_capacity(entries.len());
        for (k, r) in entries {
            let json = serde_json::to_string(r).map_err(|e| CacheError(e.to_string()))?;
            rows.push((k.as_str().to_string(), json));
        }
        self.write(Write::CachePutMany { entries: rows })
            .await
            .map_err(|e| CacheError(e.to_string()))
    }
}
