//! The embedded store of metaprompt, on SQLite: a response cache (nothing paid for is paid for
//! twice), run records (a report can be rebuilt from the database alone) and checkpoints (no
//! crash loses a run).
//!
//! **Who should depend on this crate:** applications that want persistence without the rest;
//! others use the `metaprompt` facade with its `store` feature.
//!
//! Design: one writer thread owns the writing connection and commits queued writes in batched
//! transactions (so 64 concurrent writers never see `SQLITE_BUSY`); a few reader threads, each
//! with its own read connection, serve the reads. The database runs in WAL mode with
//! `synchronous = NORMAL`: a process killed at any moment leaves a database that opens, with
//! every committed transaction intact.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use metaprompt_core::{CacheKey, ChatRequest, ResponseCache};
//! let store = metaprompt_store::SqliteStore::open("runs/metaprompt.db")?;
//! let key = CacheKey::for_request("gpt-4o-mini", &ChatRequest::user("hi"), 0);
//! assert!(store.get(&key).await?.is_none());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod cache;
mod checkpoints;
mod readers;
mod records;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metaprompt_core::PendingBatch;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use readers::Readers;
pub use records::{
    CandidateScore, EvaluationRecord, RunRecord, RunRecorder, RunStatus, prompt_hash,
};
pub use schema::SCHEMA_VERSION;
use writer::{Write, Writer};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer metaprompt.
    #[error(
        "the database has schema version {found}, but this metaprompt knows up to {supported}; upgrade metaprompt or use another store path"
    )]
    FutureSchema {
        /// Version in the file.
        found: i64,
        /// Newest version known here.
        supported: i64,
    },
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The writer thread is gone.
    #[error("the store's writer has stopped")]
    WriterStopped,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Replaces registered secrets in text before it is written.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn redact(&self, text: String) -> String {
        let mut text = text;
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "[REDACTED]");
            }
        }
        text
    }
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The SQLite store. Cheap to clone; clones share the connections and the writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Cache counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Gets that found a response.
    pub hits: u64,
    /// Gets that found nothing.
    pub misses: u64,
    /// Responses stored.
    pub entries: u64,
}

impl SqliteStore {
    /// Opens (creating and migrating) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStore::open_with_secrets(path, Vec::new())
    }

    /// Opens the store; every text written is scrubbed of `secrets` (API keys), so that even a
    /// model that echoes a key cannot put it on disk.
    pub fn open_with_secrets(
        path: impl AsRef<Path>,
        secrets: Vec<String>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = open_connection(&path, OpenFlags::default())?;
        schema::migrate(&mut conn)?;
        let redactor = Redactor {
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        };
        let writer = Writer::start(conn, redactor)?;
        let readers = Readers::start(&path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer,
                readers,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read on one of the reader threads' connections.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .readers
            .submit(Box::new(move |conn: &Connection| {
                let _ = tx.send(f(conn));
            }))?;
        rx.await
            .map_err(|_| StoreError::Corrupt("a read of the store failed".into()))?
    }

    /// Queues a write and waits until it is committed.
    pub(crate) async fn write(&self, w: Write) -> Result<(), StoreError> {
        self.inner.writer.submit(w).await
    }

    /// Queues a write without waiting (used by the event sink).
    pub(crate) fn write_detached(&self, w: Write) {
        self.inner.writer.submit_detached(w);
    }

    /// Waits until every write queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(Write::Flush).await
    }

    /// Cache counters since this store was opened, and the number of entries.
    pub async fn cache_stats(&self) -> Result<CacheStats, StoreError> {
        let entries = self
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM cache", [], |r| r.get::<_, i64>(0))?))
            .await?;
        Ok(CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            entries: entries as u64,
        })
    }

    /// Records requests written to a batch file for an offline engine, by `custom_id`, so
    /// that [`exported`](Self::exported) can read the answers back.
    pub async fn record_exports(
        &self,
        model: &str,
        entries: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        self.write(Write::Exports {
            model: model.to_string(),
            entries,
        })
        .await
    }

    /// An exported request: its model and the request (JSON), if `custom_id` was exported.
    pub async fn exported(&self, custom_id: &str) -> Result<Option<(String, String)>, StoreError> {
        let id = custom_id.to_string();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT model, request FROM batch_exports WHERE custom_id = ?1")?
                    .query_row([id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?,
            )
        })
        .await
    }

    /// Marks exported requests as answered.
    pub async fn mark_imported(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.write(Write::Imported { ids }).await
    }

    /// Every provider batch still waiting, with its run's id.
    pub async fn waiting_batches(&self) -> Result<Vec<(String, PendingBatch)>, StoreError> {
        let rows = self
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT run_id, record FROM batches WHERE status = 'waiting' ORDER BY rowid",
                )?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, r)| {
                serde_json::from_str(&r)
                    .map(|b| (id, b))
                    .map_err(|e| StoreError::Corrupt(format!("batch record: {e}")))
            })
            .collect()
    }

    /// Deletes every cached response; returns how many there were.
    pub async fn clear_cache(&self) -> Result<u64, StoreError> {
        let before = self.cache_stats().await?.entries;
        self.write(Write::ClearCache).await?;
        Ok(before)
    }
}
