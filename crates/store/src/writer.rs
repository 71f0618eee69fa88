//! The writer thread: owns the writing connection and commits queued writes in batches.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::{Redactor, StoreError, now};

/// One write.
#[derive(Debug)]
pub(crate) enum Write {
    CachePut {
        key: String,
        response: String,
    },
    /// Many answers, in the one transaction of this write.
    CachePutMany {
        entries: Vec<(String, String)>,
    },
    Batch {
        run_id: String,
        fingerprint: String,
        record: String,
        status: String,
    },
    Exports {
        model: String,
        entries: Vec<(String, String)>,
    },
    Imported {
        ids: Vec<String>,
    },
    ClearCache,
    Checkpoint {
        run_id: String,
        round: u32,
        state: String,
    },
    RunStarted {
        id: String,
        config_hash: String,
        config: Option<String>,
    },
    RunFinished {
        id: String,
        status: String,
        stop_reason: Option<String>,
        result: Option<String>,
    },
    Round {
        run_id: String,
        round: u32,
        child: u32,
        record: String,
    },
    Candidate {
        hash: String,
        text: String,
    },
    CandidateScore {
        run_id: String,
        hash: String,
        split: String,
        score: f64,
        n: u64,
    },
    Evaluations {
        run_id: String,
        hash: String,
        rows: Vec<(String, f64, String, String)>,
    },
    Flush,
}

type Ack = oneshot::Sender<Result<(), String>>;

pub(crate) struct Writer {
    tx: Sender<(Write, Option<Ack>)>,
}

/// Most writes committed in one transaction.
const BATCH: usize = 1024;

impl Writer {
    pub(crate) fn start(conn: Connection, redactor: Redactor) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("metaprompt-store-writer".into())
            .spawn(move || run(conn, redactor, rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    pub(crate) async fn submit(&self, w: Write) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((w, Some(ack)))
            .map_err(|_| StoreError::WriterStopped)?;
        done.await
            .map_err(|_| StoreError::WriterStopped)?
            .map_err(StoreError::Corrupt)
    }

    pub(crate) fn submit_detached(&self, w: Write) {
        if self.tx.send((w, None)).is_err() {
            tracing::warn!("the store's writer has stopped; a record was not saved");
        }
    }
}

fn run(mut conn: Connection, redactor: Redactor, rx: Receiver<(Write, Option<Ack>)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let together = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for (w, _) in &batch {
                apply(&tx, w, &redactor)?;
            }
            tx.commit()
        })();
        match together {
            Ok(()) => {
                for (_, ack) in batch {
                    if let Some(a) = ack {
                        let _ = a.send(Ok(()));
                    }
                }
            }
            Err(_) => {
                // One bad write must not sink the others: retry each on its own.
                for (w, ack) in batch {
                    let one = (|| -> rusqlite::Result<()> {
                        let tx = conn.transaction()?;
                        apply(&tx, &w, &redactor)?;
                        tx.commit()
                    })();
                    if let Err(e) = &one {
                        tracing::warn!(error = %e, "store write failed");
                    }
                    if let Some(a) = ack {
                        let _ = a.send(one.map_err(|e| e.to_string()));
                    }
                }
            }
        }
    }
}

fn apply(c: &Connection, w: &Write, r: &Redactor) -> rusqlite::Result<()> {
    let red = |s: &str| r.redact(s.to_string());
    match w {
        Write::CachePut { key, response } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO cache (key, response, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key, red(response), now()])?;
        }
        Write::CachePutMany { entries } => {
            let mut stmt = c.prepare_cached(
                "INSERT OR REPLACE INTO cache (key, response, created_at) VALUES (?1, ?2, ?3)",
            )?;
            let t = now();
            for (key, response) in entries {
                stmt.execute(params![key, red(response), t])?;
            }
        }
        Write::Batch {
            run_id,
            fingerprint,
            record,
            status,
        } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO batches (run_id, fingerprint, record, status, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run_id, fingerprint, red(record), status, now()])?;
        }
        Write::Exports { model, entries } => {
            let mut stmt = c.prepare_cached(
                "INSERT OR REPLACE INTO batch_exports (custom_id, model, request, exported_at, imported_at) VALUES (?1, ?2, ?3, ?4, NULL)",
            )?;
            let t = now();
            for (id, request) in entries {
                stmt.execute(params![id, model, red(request), t])?;
            }
        }
        Write::Imported { ids } => {
            let mut stmt =
                c.prepare_cached("UPDATE batch_exports SET imported_at = ?2 WHERE custom_id = ?1")?;
            let t = now();
            for id in ids {
                stmt.execute(params![id, t])?;
            }
        }
        Write::ClearCache => {
            c.execute("DELETE FROM cache", [])?;
        }
        Write::Checkpoint {
            run_id,
            round,
            state,
        } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (run_id, round, state, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![run_id, round, red(state), now()])?;
        }
        Write::RunStarted {
            id,
            config_hash,
            config,
        } => {
            c.execute(
                "INSERT INTO runs (id, config_hash, config, started_at, status) VALUES (?1, ?2, ?3, ?4, 'running')
                 ON CONFLICT(id) DO UPDATE SET status = 'running', finished_at = NULL",
                params![id, config_hash, config.as_deref().map(red), now()],
            )?;
        }
        Write::RunFinished {
            id,
            status,
            stop_reason,
            result,
        } => {
            c.execute(
                "UPDATE runs SET finished_at = ?2, status = ?3, stop_reason = ?4, result = ?5 WHERE id = ?1",
                params![id, now(), status, stop_reason, result.as_deref().map(red)],
            )?;
        }
        Write::Round {
            run_id,
            round,
            child,
            record,
        } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO rounds (run_id, round, child, record) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![run_id, round, child, red(record)])?;
        }
        Write::Candidate { hash, text } => {
            c.prepare_cached("INSERT OR IGNORE INTO candidates (hash, text) VALUES (?1, ?2)")?
                .execute(params![hash, red(text)])?;
        }
        Write::CandidateScore {
            run_id,
            hash,
            split,
            score,
            n,
        } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO candidate_scores (run_id, candidate_hash, split, score, n) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run_id, hash, split, score, *n as i64])?;
        }
        Write::Evaluations { run_id, hash, rows } => {
            let mut stmt = c.prepare_cached(
                "INSERT OR REPLACE INTO evaluations (run_id, candidate_hash, row_id, score, reason, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (row_id, score, reason, output) in rows {
                stmt.execute(params![
                    run_id,
                    hash,
                    row_id,
                    score,
                    red(reason),
                    red(output)
                ])?;
            }
        }
        Write::Flush => {}
    }
    Ok(())
}
