//! The batch contract: whole-split scoring handed to a provider's batch engine (OpenAI or
//! Azure Batch at half price, vLLM's `run-batch` as files) instead of the live path.
//!
//! A [`BatchExecutor`] runs the calls of one model. The engine decides what goes into a batch
//! (the uncached calls of a split), writes the input as JSONL files through
//! [`BatchExecutor::encode`], and hands the files to [`BatchExecutor::submit`]; it keeps the
//! returned [`BatchTicket`] in the run's checkpoint before it starts polling, so that a killed
//! run re-attaches to the same batch. Results are read back line by line with
//! [`BatchExecutor::decode`] and [`BatchExecutor::answer`] into the response cache; lines that
//! failed are made again on the live path.
//!
//! A line's `custom_id` is the call's [`CacheKey`](crate::CacheKey): a batch answer is stored
//! exactly where the live call's answer would have been.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::{ChatRequest, ChatResponse};
use crate::model::ModelError;
use crate::usage::Price;

/// How big one input file may be (a provider's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most lines in one file.
    pub max_lines: u64,
    /// Most bytes in one file.
    pub max_bytes: u64,
}

impl Default for BatchLimits {
    /// OpenAI's: 50,000 requests and 200 MB per file.
    fn default() -> Self {
        BatchLimits {
            max_lines: 50_000,
            max_bytes: 200 * 1024 * 1024,
        }
    }
}

/// One written input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFile {
    /// Where it is.
    pub path: PathBuf,
    /// Lines in it.
    pub lines: u64,
    /// Its size.
    pub bytes: u64,
}

/// What a submitted batch is known by: everything a resumed run needs to find it again.
/// Kept in checkpoints, so it holds ids only, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTicket {
    /// The model whose calls it runs.
    pub model: String,
    /// The provider's batch ids, one per input file.
    pub batch_ids: Vec<String>,
    /// The uploaded input files' ids.
    pub input_file_ids: Vec<String>,
    /// Lines submitted.
    pub lines: u64,
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// The input is being checked.
    Validating,
    /// Lines are being answered.
    InProgress,
    /// Output files are being written.
    Finalizing,
    /// Done; output (and error) files are ready.
    Completed,
    /// Being cancelled.
    Cancelling,
    /// Cancelled; partial output may exist.
    Cancelled,
    /// The completion window ended; partial output may exist.
    Expired,
    /// The input was refused.
    Failed,
}

impl BatchState {
    /// Whether the batch will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BatchState::Completed
                | BatchState::Cancelled
                | BatchState::Expired
                | BatchState::Failed
        )
    }

    /// The state as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Validating => "validating",
            BatchState::InProgress => "in_progress",
            BatchState::Finalizing => "finalizing",
            BatchState::Completed => "completed",
            BatchState::Cancelling => "cancelling",
            BatchState::Cancelled => "cancelled",
            BatchState::Expired => "expired",
            BatchState::Failed => "failed",
        }
    }

    /// Reads a status string leniently: any case, `-` or `_` or spaces (Azure writes
    /// `Validating`, OpenAI `validating`); `None` for a status this build does not know.
    pub fn parse(s: &str) -> Option<BatchState> {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match k.as_str() {
            "validating" | "queued" | "notstarted" => BatchState::Validating,
            "inprogress" | "running" => BatchState::InProgress,
            "finalizing" => BatchState::Finalizing,
            "completed" | "succeeded" => BatchState::Completed,
            "cancelling" | "canceling" => BatchState::Cancelling,
            "cancelled" | "canceled" => BatchState::Cancelled,
            "expired" => BatchState::Expired,
            "failed" => BatchState::Failed,
            _ => return None,
        })
    }
}

/// A batch's progress: the state of its slowest part and the line counts over all parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// Where it is.
    pub state: BatchState,
    /// Lines submitted.
    pub total: u64,
    /// Lines answered.
    pub completed: u64,
    /// Lines that failed.
    pub failed: u64,
    /// Why a part failed, when one did.
    pub message: Option<String>,
}

/// One line of a batch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLine {
    /// The line's `custom_id`: the call's cache key.
    pub custom_id: String,
    /// The provider's answer (a chat completion, as the live endpoint returns it) or why the
    /// line failed.
    pub outcome: Result<serde_json::Value, String>,
}

/// A provider's batch engine for one model's calls.
#[async_trait]
pub trait BatchExecutor: Send + Sync {
    /// The model whose calls it runs: the same id as that model's
    /// [`ChatModel::id`](crate::ChatModel::id), so that cache keys agree.
    fn model_id(&self) -> &str;

    /// The price of one call in a batch (OpenAI and Azure: half the live price).
    fn price(&self) -> Option<Price>;

    /// How big one input file may be.
    fn limits(&self) -> BatchLimits {
        BatchLimits::default()
    }

    /// The input line (without its newline) that makes `request` under `custom_id`.
    fn encode(&self, custom_id: &str, request: &ChatRequest) -> Result<String, ModelError>;

    /// Reads one result line; `None` for a line that is not a result (blank, or not JSON with
    /// a `custom_id`).
    fn decode(&self, line: &str) -> Option<BatchLine>;

    /// The answer to `request` that a result line's body means, exactly as the live path
    /// would have returned it. `request` carries the original request's parameters; its
    /// messages may be empty.
    fn answer(
        &self,
        request: &ChatRequest,
        body: &serde_json::Value,
    ) -> Result<ChatResponse, ModelError>;

    /// Uploads the files and creates one batch per file.
    async fn submit(&self, files: &[BatchFile]) -> Result<BatchTicket, ModelError>;

    /// Where the batch is now.
    async fn progress(&self, ticket: &BatchTicket) -> Result<BatchProgress, ModelError>;

    /// Appends every result line (output and error files of every part) to `out`, streamed.
    async fn download(&self, ticket: &BatchTicket, out: &Path) -> Result<(), ModelError>;

    /// Asks the provider to cancel the batch.
    async fn cancel(&self, ticket: &BatchTicket) -> Result<(), ModelError>;
}

/// Writes input lines into files that respect `limits`, starting a new file when the next
/// line would pass one. Lines go to disk as they come; nothing holds them all.
#[derive(Debug)]
pub struct BatchFileWriter {
    dir: PathBuf,
    stem: String,
    limits: BatchLimits,
    files: Vec<BatchFile>,
    current: Option<std::io::BufWriter<std::fs::File>>,
}

impl BatchFileWriter {
    /// Writes `dir/stem-N.jsonl` files.
    pub fn new(dir: impl Into<PathBuf>, stem: impl Into<String>, limits: BatchLimits) -> Self {
        BatchFileWriter {
            dir: dir.into(),
            stem: stem.into(),
            limits,
            files: Vec::new(),
            current: None,
        }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.files.iter().map(|f| f.lines).sum()
    }

    /// Adds one line (a newline is written after it).
    pub fn push(&mut self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        let size = line.len() as u64 + 1;
        let full = self.files.last().is_none_or(|f| {
            f.lines + 1 > self.limits.max_lines
                || (f.lines > 0 && f.bytes + size > self.limits.max_bytes)
        });
        if full || self.current.is_none() {
            self.roll()?;
        }
        let (Some(w), Some(f)) = (self.current.as_mut(), self.files.last_mut()) else {
            return Err(std::io::Error::other("no batch file open"));
        };
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        f.lines += 1;
        f.bytes += size;
        Ok(())
    }

    fn roll(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(mut w) = self.current.take() {
            w.flush()?;
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self
            .dir
            .join(format!("{}-{}.jsonl", self.stem, self.files.len() + 1));
        self.current = Some(std::io::BufWriter::new(std::fs::File::create(&path)?));
        self.files.push(BatchFile {
            path,
            lines: 0,
            bytes: 0,
        });
        Ok(())
    }

    /// Flushes and returns the files written (none when no line was pushed).
    pub fn finish(mut self) -> std::io::Result<Vec<BatchFile>> {
        use std::io::Write;
        if let Some(mut w) = self.current.take() {
            w.flush()?;
        }
        Ok(std::mem::take(&mut self.files))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_any_spelling() {
        assert_eq!(
            BatchState::parse("in_progress"),
            Some(BatchState::InProgress)
        );
        assert_eq!(
            BatchState::parse("Validating"),
            Some(BatchState::Validating)
        );
        assert_eq!(
            BatchState::parse("InProgress"),
            Some(BatchState::InProgress)
        );
        assert_eq!(BatchState::parse("canceled"), Some(BatchState::Cancelled));
        assert_eq!(BatchState::parse("weird"), None);
        for s in [
            BatchState::Validating,
            BatchState::InProgress,
            BatchState::Finalizing,
            BatchState::Completed,
            BatchState::Cancelling,
            BatchState::Cancelled,
            BatchState::Expired,
            BatchState::Failed,
        ] {
            assert_eq!(BatchState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn files_split_at_the_line_and_byte_limits() {
        let dir = std::env::temp_dir().join(format!("mp-batch-{}", std::process::id()));
        let mut w = BatchFileWriter::new(
            &dir,
            "in",
            BatchLimits {
                max_lines: 3,
                max_bytes: 25,
            },
        );
        for i in 0..7 {
            w.push(&format!("line-{i}")).unwrap(); // 7 bytes with the newline
        }
        let files = w.finish().unwrap();
        // 3 lines = 21 bytes fit; the line limit splits 7 lines into 3 + 3 + 1.
        assert_eq!(files.iter().map(|f| f.lines).collect::<Vec<_>>(), [3, 3, 1]);
        let text = std::fs::read_to_string(&files[1].path).unwrap();
        assert_eq!(text, "line-3\nline-4\nline-5\n");
        let mut w = BatchFileWriter::new(
            &dir,
            "big",
            BatchLimits {
                max_lines: 100,
                max_bytes: 15,
            },
        );
        for i in 0..5 {
            w.push(&format!("line-{i}")).unwrap();
        }
        let files = w.finish().unwrap();
        // Two 7-byte lines fit in 15 bytes, a third would not.
        assert_eq!(files.iter().map(|f| f.lines).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(files.iter().all(|f| f.bytes <= 15));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
