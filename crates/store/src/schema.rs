//! The database schema and its migrations.

use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

/// Migrations in order; the index + 1 is the schema version. Never edit a released one: add a
/// new one.
const MIGRATIONS: &[&str] = &[
    // 1: cache, runs, rounds, candidates, scores, evaluations, checkpoints.
    "
    CREATE TABLE cache (
        key        TEXT PRIMARY KEY,
        response   TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        config_hash TEXT NOT NULL,
        config      TEXT,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        status      TEXT NOT NULL,
        stop_reason TEXT,
        result      TEXT
    );
    CREATE TABLE rounds (
        run_id TEXT NOT NULL,
        round  INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (run_id, round)
    );
    CREATE TABLE candidates (
        hash TEXT PRIMARY KEY,
        text TEXT NOT NULL
    );
    CREATE TABLE candidate_scores (
        run_id         TEXT NOT NULL,
        candidate_hash TEXT NOT NULL,
        split          TEXT NOT NULL,
        score          REAL NOT NULL,
        n              INTEGER NOT NULL,
        PRIMARY KEY (run_id, candidate_hash, split)
    );
    CREATE TABLE evaluations (
        run_id         TEXT NOT NULL,
        candidate_hash TEXT NOT NULL,
        row_id         TEXT NOT NULL,
        score          REAL NOT NULL,
        reason         TEXT NOT NULL,
        output         TEXT NOT NULL,
        PRIMARY KEY (run_id, candidate_hash, row_id)
    );
    CREATE TABLE checkpoints (
        run_id     TEXT NOT NULL,
        round      INTEGER NOT NULL,
        state      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, round)
    );
    ",
    // 2: several children per round (the search's proposals): rounds keyed by child too.
    "
    CREATE TABLE rounds_v2 (
        run_id TEXT NOT NULL,
        round  INTEGER NOT NULL,
        child  INTEGER NOT NULL DEFAULT 0,
        record TEXT NOT NULL,
        PRIMARY KEY (run_id, round, child)
    );
    INSERT INTO rounds_v2 (run_id, round, child, record) SELECT run_id, round, 0, record FROM rounds;
    DROP TABLE rounds;
    ALTER TABLE rounds_v2 RENAME TO rounds;
    ",
    // 3: provider batches a run waits on (re-attached on resume), and requests exported as
    // batch files for an offline engine (vLLM's run-batch), answered by an import.
    "
    CREATE TABLE batches (
        run_id       TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        record       TEXT NOT NULL,
        status       TEXT NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (run_id, fingerprint)
    );
    CREATE TABLE batch_exports (
        custom_id   TEXT PRIMARY KEY,
        model       TEXT NOT NULL,
        request     TEXT NOT NULL,
        exported_at INTEGER NOT NULL,
        imported_at INTEGER
    );
    ",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], refusing a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);",
    )?;
    let current: i64 = conn
        .query_row("SELECT MAX(version) FROM migrations", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::FutureSchema {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, crate::now()],
        )?;
        tx.commit()?;
    }
    Ok(())
}
