//! The run's side of provider batches: collect a split's uncached calls, send them, wait,
//! and store the answers through the batch layer (see the parent module for the steps).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use metaprompt_core::run::{Phase, RunEvent};
use metaprompt_core::{
    BatchLine, BatchProgress, BatchState, CacheKey, ChatResponse, ModelError, NoEvents,
    PendingBatch, Prompt, Row,
};

use super::{COLLECTING, Collector, Group, lock};
use crate::config::BatchMode;
use crate::evaluate::{Interrupt, Stop};
use crate::run::Run;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Baseline => "baseline",
        Phase::Validation => "val",
        Phase::Test => "test",
        Phase::Minibatch => "minibatch",
        _ => "candidate",
    }
}

/// Batch answers stored per cache write while a results file is read.
const IMPORT_CHUNK: usize = 1_000;

/// How a batch ended for the run.
enum Waited {
    Done(BatchProgress),
    /// The provider could not run it (refused input, no batch API): live calls instead.
    Unusable(String),
}

impl Run<'_> {
    /// Before a whole split is scored: its uncached calls, when there are enough of them, are
    /// answered by provider batches and stored.
    pub(crate) async fn prefetch(
        &self,
        prompt: &Prompt,
        rows: &[Row],
        phase: Phase,
    ) -> Result<(), Stop> {
        let cfg = &self.checked.request.config;
        let whole = matches!(phase, Phase::Baseline | Phase::Validation | Phase::Test);
        if cfg.batch == BatchMode::Off || self.batching.executors.is_empty() || !whole {
            return Ok(());
        }
        // A student batch, then a judge batch on its answers.
        let judged = self.checked.request.evaluator.model_calls_per_item() > 0;
        for stage in 0..2 {
            if stage == 1 && !judged {
                return Ok(());
            }
            let dir = std::env::temp_dir().join(format!(
                "metaprompt-batch-{}-{}",
                std::process::id(),
                self.batch_seq()
            ));
            let collector = Arc::new(Collector::new(dir.clone()));
            if stage == 0 {
                // The student's calls alone: no outputs, no scores are kept.
                COLLECTING
                    .scope(
                        collector.clone(),
                        self.scorer.call_student_only(prompt, rows),
                    )
                    .await;
            } else {
                // The judges' calls need the student's answers: the whole scoring, silent.
                let mut silent = self.scorer.clone();
                silent.events = Arc::new(NoEvents);
                let _ = COLLECTING
                    .scope(collector.clone(), silent.evaluate(prompt, rows, phase))
                    .await;
            }
            let groups = collector.finish().map_err(|e| {
                Stop::Error(crate::EngineError::Batch(format!(
                    "cannot prepare the batch: {e}"
                )))
            })?;
            let lines: u64 = groups.iter().map(Group::lines).sum();
            let enough = match cfg.batch {
                BatchMode::Always => lines > 0,
                _ => lines > 0 && lines >= cfg.batch_min_calls as u64,
            };
            if !enough {
                let _ = std::fs::remove_dir_all(&dir);
                if stage == 0 && judged {
                    continue;
                }
                return Ok(());
            }
            for g in groups {
                self.run_group(g, phase).await?;
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    }

    /// The student calls scoring `prompt` on `rows` would make that the cache cannot answer.
    pub(crate) async fn uncached_student_calls(
        &self,
        prompt: &Prompt,
        rows: &[Row],
    ) -> Vec<(CacheKey, metaprompt_core::ChatRequest)> {
        let collector = Arc::new(Collector::recording());
        let mut silent = self.scorer.clone();
        silent.events = Arc::new(NoEvents);
        let _ = COLLECTING
            .scope(
                collector.clone(),
                silent.evaluate(prompt, rows, Phase::Test),
            )
            .await;
        collector
            .recorded()
            .into_iter()
            .filter(|(_, _, role)| *role == metaprompt_core::CallRole::Student)
            .map(|(k, r, _)| (k, r))
            .collect()
    }

    /// Runs one model's batch (or re-attaches to it); whether its answers were stored.
    async fn run_group(&self, g: Group, phase: Phase) -> Result<bool, Stop> {
        let fingerprint = g.fingerprint();
        let run_id = self.run_id();
        let known = match &self.checkpointer {
            Some(c) => c.batches(&run_id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the run's batches");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let earlier = known
            .into_iter()
            .find(|b| b.fingerprint == fingerprint && b.status == "waiting");
        let resumed = earlier.is_some();
        let ticket = match earlier {
            Some(b) => b.ticket,
            None => {
                if self.meter().would_exceed(g.lines()).is_some() {
                    // The live path stops at the budget within one batch of calls.
                    return Ok(false);
                }
                match g.executor.submit(&g.files).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "the batch could not be submitted; scoring with live calls");
                        return Ok(false);
                    }
                }
            }
        };
        let mut pending = PendingBatch {
            fingerprint,
            ticket: ticket.clone(),
            phase: phase_name(phase).to_string(),
            submitted_at: now_secs(),
            status: "waiting".into(),
        };
        self.save_batch(&run_id, &pending).await?;
        let progress = match self.wait(&g, &ticket, phase, resumed).await? {
            Waited::Done(p) => p,
            Waited::Unusable(why) => {
                tracing::warn!(reason = %why, "the batch failed; scoring with live calls");
                pending.status = "failed".into();
                self.save_batch(&run_id, &pending).await?;
                return Ok(false);
            }
        };
        let (answered, failed) = self.import(&g, &ticket).await?;
        pending.status = "imported".into();
        self.save_batch(&run_id, &pending).await?;
        tracing::debug!(
            state = progress.state.as_str(),
            answered,
            failed,
            "batch imported"
        );
        self.events.emit(&RunEvent::BatchImported {
            phase,
            answered,
            failed,
        });
        Ok(answered > 0)
    }

    async fn save_batch(&self, run_id: &str, b: &PendingBatch) -> Result<(), Stop> {
        if let Some(c) = &self.checkpointer {
            c.save_batch(run_id, b).await.map_err(|e| {
                Stop::Error(crate::EngineError::Checkpoint(format!(
                    "cannot record the batch {}: {e}",
                    b.ticket.batch_ids.join(", ")
                )))
            })?;
        }
        Ok(())
    }

    /// Polls until the batch ends, with back-off; cancellation leaves it running.
    async fn wait(
        &self,
        g: &Group,
        ticket: &metaprompt_core::BatchTicket,
        phase: Phase,
        resumed: bool,
    ) -> Result<Waited, Stop> {
        let max = Duration::from_secs_f64(self.checked.request.config.batch_poll_secs);
        let mut interval = Duration::from_millis(500).min(max);
        let mut errors = 0u32;
        loop {
            match g.executor.progress(ticket).await {
                Ok(p) => {
                    errors = 0;
                    self.events.emit(&RunEvent::Batch {
                        phase,
                        progress: p.clone(),
                        batch_ids: ticket.batch_ids.clone(),
                        resumed,
                    });
                    if p.state == BatchState::Failed {
                        return Ok(Waited::Unusable(
                            p.message.unwrap_or_else(|| "the batch failed".into()),
                        ));
                    }
                    if p.state.is_terminal() {
                        return Ok(Waited::Done(p));
                    }
                }
                Err(e) => {
                    errors += 1;
                    tracing::warn!(error = %e, attempt = errors, "cannot read the batch's status");
                    if errors >= 10 || matches!(e, ModelError::Auth(_)) {
                        return Err(Stop::Error(crate::EngineError::Batch(format!(
                            "cannot read the status of batch {}: {e}; it may still be running — `--resume` re-attaches to it",
                            ticket.batch_ids.join(", ")
                        ))));
                    }
                }
            }
            // Sleep in short steps so that Ctrl-C is seen at once.
            let until = tokio::time::Instant::now() + interval;
            while tokio::time::Instant::now() < until {
                if self.meter().cancelled() {
                    return Err(Stop::Interrupt(Interrupt::Cancelled));
                }
                tokio::time::sleep(Duration::from_millis(50).min(interval)).await;
            }
            interval = (interval.mul_f64(1.5)).min(max);
        }
    }

    /// Downloads the results and stores every answer, a chunk of lines at a time (memory does
    /// not grow with the batch's size); returns the lines answered and failed.
    async fn import(
        &self,
        g: &Group,
        ticket: &metaprompt_core::BatchTicket,
    ) -> Result<(u64, u64), Stop> {
        let out = std::env::temp_dir().join(format!(
            "metaprompt-batch-out-{}-{}.jsonl",
            std::process::id(),
            self.batch_seq()
        ));
        let _ = std::fs::remove_file(&out);
        g.executor.download(ticket, &out).await.map_err(|e| {
            Stop::Error(crate::EngineError::Batch(format!(
                "cannot download the results of batch {}: {e}; `--resume` tries again",
                ticket.batch_ids.join(", ")
            )))
        })?;
        let file = std::fs::File::open(&out).map_err(|e| {
            Stop::Error(crate::EngineError::Batch(format!(
                "cannot read the downloaded results {}: {e}",
                out.display()
            )))
        })?;
        let mut answered: HashSet<CacheKey> = HashSet::new();
        let mut chunk: Vec<(CacheKey, ChatResponse)> = Vec::with_capacity(IMPORT_CHUNK);
        use std::io::BufRead;
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { continue };
            let Some(BatchLine { custom_id, outcome }) = g.executor.decode(&line) else {
                continue;
            };
            let Some(&idx) = g.keys.get(&custom_id) else {
                continue;
            };
            let key = CacheKey::from_hex(custom_id);
            if answered.contains(&key) {
                continue;
            }
            match outcome.and_then(|body| {
                g.executor
                    .answer(&g.params[idx as usize], &body)
                    .map_err(|e| e.to_string())
            }) {
                Ok(resp) => {
                    answered.insert(key.clone());
                    chunk.push((key, resp));
                    if chunk.len() == IMPORT_CHUNK {
                        self.store_answers(g, &mut chunk).await;
                    }
                }
                Err(why) => {
                    tracing::debug!(line = %key.as_str(), reason = %why, "batch line failed");
                }
            }
        }
        self.store_answers(g, &mut chunk).await;
        let _ = std::fs::remove_file(&out);
        // Lines that failed, and lines the results do not mention (an expired or cancelled
        // batch), are live calls in the scoring pass.
        let failed = g.lines() - answered.len() as u64;
        {
            let mut f = lock(&self.batching.imported.failed);
            for k in g.keys.keys() {
                let k = CacheKey::from_hex(k.clone());
                if !answered.contains(&k) {
                    f.insert(k);
                }
            }
        }
        let n = answered.len() as u64;
        lock(&self.batching.imported.keys).extend(answered);
        Ok((n, failed))
    }

    /// Hands a chunk of batch answers down the model's layers (metered at the batch price,
    /// kept by the cache in one write); kept in memory for this session when no cache kept
    /// them.
    async fn store_answers(&self, g: &Group, chunk: &mut Vec<(CacheKey, ChatResponse)>) {
        if chunk.is_empty() {
            return;
        }
        if g.layers.absorb(chunk, g.executor.price()).await {
            chunk.clear();
        } else {
            lock(&self.batching.imported.answers).extend(chunk.drain(..));
        }
    }
}
