//! Run records: enough to rebuild a report from the database alone.

use metaprompt_core::EventSink;
use metaprompt_core::run::{RoundRecord, RunEvent};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::writer::Write;
use crate::{SqliteStore, StoreError};

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (or killed).
    Running,
    /// Finished normally.
    Finished,
    /// Stopped by the user; resumable.
    Interrupted,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
    fn parse(s: &str) -> RunStatus {
        match s {
            "finished" => RunStatus::Finished,
            "interrupted" => RunStatus::Interrupted,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Running,
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// Hash of its configuration.
    pub config_hash: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds, once finished.
    pub finished_at: Option<i64>,
    /// State.
    pub status: RunStatus,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// The result document, once finished.
    pub result: Option<serde_json::Value>,
    /// The ledger.
    pub rounds: Vec<RoundRecord>,
}

/// A candidate's score on a split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateScore {
    /// Hash of the prompt text.
    pub hash: String,
    /// The prompt text.
    pub text: String,
    /// `train`, `val`, `test` or `minibatch`.
    pub split: String,
    /// Mean score.
    pub score: f64,
    /// Rows scored.
    pub n: u64,
}

/// One stored evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationRecord {
    /// The row.
    pub row_id: String,
    /// Score.
    pub score: f64,
    /// Reason.
    pub reason: String,
    /// The model's output.
    pub output: String,
}

/// A stable, short content hash of a prompt (FNV-1a 64, hex): prompts are deduplicated by it,
/// and it needs no cryptographic strength.
pub fn prompt_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn encode<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqliteStore {
    /// Records that a run started (or resumed).
    pub async fn start_run(
        &self,
        id: &str,
        config_hash: &str,
        config: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let config = config.map(encode).transpose()?;
        self.write(Write::RunStarted {
            id: id.into(),
            config_hash: config_hash.into(),
            config,
        })
        .await
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        stop_reason: Option<&str>,
        result: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let result = result.map(encode).transpose()?;
        self.write(Write::RunFinished {
            id: id.into(),
            status: status.as_str().into(),
            stop_reason: stop_reason.map(str::to_string),
            result,
        })
        .await
    }

    /// Records a ledger entry.
    pub async fn record_round(&self, run_id: &str, record: &RoundRecord) -> Result<(), StoreError> {
        self.write(Write::Round {
            run_id: run_id.into(),
            round: record.round,
            child: record.child,
            record: encode(record)?,
        })
        .await
    }

    /// Records a candidate prompt's score on a split, with its per-row evaluations; returns the
    /// prompt's hash.
    pub async fn record_candidate(
        &self,
        run_id: &str,
        prompt: &str,
        split: &str,
        score: f64,
        evaluations: Vec<EvaluationRecord>,
    ) -> Result<String, StoreError> {
        let hash = prompt_hash(prompt);
        self.write(Write::Candidate {
            hash: hash.clone(),
            text: prompt.into(),
        })
        .await?;
        self.write(Write::CandidateScore {
            run_id: run_id.into(),
            hash: hash.clone(),
            split: split.into(),
            score,
            n: evaluations.len() as u64,
        })
        .await?;
        self.write(Write::Evaluations {
            run_id: run_id.into(),
            hash: hash.clone(),
            rows: evaluations
                .into_iter()
                .map(|e| (e.row_id, e.score, e.reason, e.output))
                .collect(),
        })
        .await?;
        Ok(hash)
    }

    /// Every run, newest first.
    pub async fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let ids: Vec<String> = self
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT id FROM runs ORDER BY started_at DESC, id DESC")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = self.load_run(&id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One run with its ledger.
    pub async fn load_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            let head = c
                .query_row(
                    "SELECT id, config_hash, started_at, finished_at, status, stop_reason, result FROM runs WHERE id = ?1",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, config_hash, started_at, finished_at, status, stop_reason, result)) = head else {
                return Ok(None);
            };
            let mut stmt = c.prepare("SELECT record FROM rounds WHERE run_id = ?1 ORDER BY round, child")?;
            let rounds = stmt
                .query_map([&id], |r| r.get::<_, String>(0))?
                .map(|t| {
                    let t = t?;
                    serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("round record: {e}")))
                })
                .collect::<Result<Vec<RoundRecord>, StoreError>>()?;
            let result = result
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("run result: {e}")))?;
            Ok(Some(RunRecord {
                id,
                config_hash,
                started_at,
                finished_at,
                status: RunStatus::parse(&status),
                stop_reason,
                result,
                rounds,
            }))
        })
        .await
    }

    /// Every candidate score of a run.
    pub async fn candidate_scores(&self, run_id: &str) -> Result<Vec<CandidateScore>, StoreError> {
        let id = run_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.candidate_hash, c.text, s.split, s.score, s.n FROM candidate_scores s
                 JOIN candidates c ON c.hash = s.candidate_hash WHERE s.run_id = ?1 ORDER BY s.rowid",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(CandidateScore {
                    hash: r.get(0)?,
                    text: r.get(1)?,
                    split: r.get(2)?,
                    score: r.get(3)?,
                    n: r.get::<_, i64>(4)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The stored evaluations of a prompt in a run.
    pub async fn evaluations(
        &self,
        run_id: &str,
        prompt: &str,
    ) -> Result<Vec<EvaluationRecord>, StoreError> {
        let (id, hash) = (run_id.to_string(), prompt_hash(prompt));
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT row_id, score, reason, output FROM evaluations WHERE run_id = ?1 AND candidate_hash = ?2 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([id, hash], |r| {
                Ok(EvaluationRecord {
                    row_id: r.get(0)?,
                    score: r.get(1)?,
                    reason: r.get(2)?,
                    output: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// An event sink that records a run's ledger as the engine emits it.
    pub fn recorder(&self, run_id: &str) -> RunRecorder {
        RunRecorder {
            store: self.clone(),
            run_id: run_id.to_string(),
        }
    }
}

/// Records `RoundFinished` events of one run (see [`SqliteStore::recorder`]).
#[derive(Debug, Clone)]
pub struct RunRecorder {
    store: SqliteStore,
    run_id: String,
}

impl EventSink for RunRecorder {
    fn emit(&self, event: &RunEvent) {
        if let RunEvent::RoundFinished { record } = event {
            match serde_json::to_string(record) {
                Ok(text) => self.store.write_detached(Write::Round {
                    run_id: self.run_id.clone(),
                    round: record.round,
                    child: record.child,
                    record: text,
                }),
                Err(e) => tracing::warn!(error = %e, "cannot encode a round record"),
            }
        }
    }
}
