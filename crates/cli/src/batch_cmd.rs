//! `metaprompt batch export | import | cancel`, and what an interrupted run does about a
//! provider batch still running.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use metaprompt::core::{
    BatchExecutor, CacheKey, ChatRequest, ChatResponse, Checkpointer, PendingBatch,
};
use metaprompt::engine::MetaPromptOptimizer;
use metaprompt::store::SqliteStore;

use crate::config::Loaded;
use crate::{Failure, UsageExt, args, build, config, engine_failure};

/// `metaprompt batch …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BatchAction {
    /// Write the student calls that scoring a prompt on a split needs (those the store cannot
    /// answer) as a batch file in the OpenAI format: what `vllm run-batch -i FILE -o OUT
    /// --model M` reads. Records them in the store so that `import` can read the answers.
    Export {
        /// The config file (its `[output] store` is the store used).
        #[arg(long, short)]
        config: PathBuf,
        /// train, val, test or all.
        #[arg(long, default_value = "val")]
        split: String,
        /// A file holding the prompt (a chat prompt as JSON), or - for stdin.
        #[arg(long)]
        prompt: String,
        /// The batch file to write.
        #[arg(long)]
        out: PathBuf,
        /// The store (default: the config's `[output] store`).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Load the answers of a batch output file (lines in any order) into the store: then
    /// `metaprompt eval` and resumed runs use them with no live call. Failed lines are
    /// reported and left out.
    Import {
        /// The config file (its `[output] store` is the store used).
        #[arg(long, short)]
        config: PathBuf,
        /// The output file of the batch engine.
        #[arg(long)]
        results: PathBuf,
        /// The store (default: the config's `[output] store`).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Cancel the provider batches an interrupted run left running.
    Cancel {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The run directory.
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) async fn run(action: BatchAction) -> Result<u8, Failure> {
    match action {
        BatchAction::Export {
            config,
            split,
            prompt,
            out,
            store,
        } => export(config, split, prompt, out, store).await,
        BatchAction::Import {
            config,
            results,
            store,
        } => import(config, results, store).await,
        BatchAction::Cancel { config, out } => cancel(config, out).await,
    }
}

/// The store export and import work on: `--store`, else `[output] store`.
fn store_of(
    loaded: &Loaded,
    flag: Option<PathBuf>,
    secrets: Vec<String>,
) -> Result<SqliteStore, Failure> {
    let path = match (flag, &loaded.config.output.store) {
        (Some(p), _) => p,
        (None, Some(p)) => loaded.resolve(p),
        (None, None) => {
            return Err(Failure::Usage(anyhow!(
                "set `[output] store = \"metaprompt.db\"` in {} (or pass --store) so that `eval` and resumed runs find the imported answers",
                loaded.path.display()
            )));
        }
    };
    SqliteStore::open_with_secrets(&path, secrets).map_err(|e| Failure::Runtime(anyhow!(e)))
}

async fn export(
    config_path: PathBuf,
    split: String,
    prompt: String,
    out: PathBuf,
    store: Option<PathBuf>,
) -> Result<u8, Failure> {
    args::check_split(&split)?;
    let loaded = config::load(&config_path).usage()?;
    let prompt = args::read_prompt(&prompt)?;
    let built = build::request(&loaded, None)?;
    let format = built
        .pool
        .batch_file_format(&loaded.config.student, "student")
        .usage()?;
    let store = store_of(&loaded, store, built.pool.secrets())?;
    let optimizer = MetaPromptOptimizer::builder()
        .teacher(built.teacher.clone())
        .cache(Arc::new(store.clone()))
        .build()
        .map_err(engine_failure)?;
    let calls = optimizer
        .uncached_student_calls(&built.checked, &prompt, &split)
        .await
        .map_err(engine_failure)?;
    let rows = built.checked.rows(&split).len();
    let file = std::fs::File::create(&out)
        .with_context(|| format!("cannot write {}", out.display()))
        .usage()?;
    let mut w = std::io::BufWriter::new(file);
    let mut records = Vec::with_capacity(calls.len());
    for (key, request) in &calls {
        let line = format
            .encode(key.as_str(), request)
            .map_err(|e| Failure::Runtime(anyhow!(e)))?;
        writeln!(w, "{line}")
            .and_then(|()| Ok(()))
            .with_context(|| format!("cannot write {}", out.display()))
            .map_err(Failure::Runtime)?;
        records.push((
            key.as_str().to_string(),
            serde_json::to_string(request).map_err(|e| Failure::Runtime(anyhow!(e)))?,
        ));
    }
    w.flush()
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(Failure::Runtime)?;
    store
        .record_exports(format.model_id(), records)
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    store
        .flush()
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    println!(
        "wrote {} lines to {} ({} of {rows} {split} rows already answered in {})",
        calls.len(),
        out.display(),
        rows - calls.len().min(rows),
        store.path().display()
    );
    if !calls.is_empty() {
        println!(
            "next: vllm run-batch -i {} -o results.jsonl --model {}\n      metaprompt batch import --config {} --results results.jsonl",
            out.display(),
            format.model_id(),
            config_path.display()
        );
    }
    Ok(0)
}

async fn import(
    config_path: PathBuf,
    results: PathBuf,
    store: Option<PathBuf>,
) -> Result<u8, Failure> {
    let loaded = config::load(&config_path).usage()?;
    let built = build::request(&loaded, None)?;
    let format = built
        .pool
        .batch_file_format(&loaded.config.student, "student")
        .usage()?;
    let store = store_of(&loaded, store, built.pool.secrets())?;
    let file = std::fs::File::open(&results)
        .with_context(|| format!("cannot read {}", results.display()))
        .usage()?;
    let (mut answered, mut unknown, mut skipped) = (0u64, 0u64, 0u64);
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut chunk: Vec<(CacheKey, ChatResponse)> = Vec::new();
    let mut ids = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line
            .with_context(|| format!("cannot read {}", results.display()))
            .usage()?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(l) = format.decode(&line) else {
            skipped += 1;
            eprintln!("warning: line {} is not a batch result; skipped", n + 1);
            continue;
        };
        let Some((model, request)) = store
            .exported(&l.custom_id)
            .await
            .map_err(|e| Failure::Runtime(anyhow!(e)))?
        else {
            unknown += 1;
            continue;
        };
        let request: ChatRequest = serde_json::from_str(&request)
            .map_err(|e| Failure::Runtime(anyhow!("stored request {}: {e}", l.custom_id)))?;
        if model != format.model_id() {
            unknown += 1;
            continue;
        }
        match l
            .outcome
            .and_then(|body| format.answer(&request, &body).map_err(|e| e.to_string()))
        {
            Ok(resp) => {
                ids.push(l.custom_id.clone());
                chunk.push((CacheKey::from_hex(l.custom_id), resp));
                answered += 1;
            }
            Err(why) => failed.push((l.custom_id, why)),
        }
        if chunk.len() >= 1000 {
            flush(&store, &mut chunk, &mut ids).await?;
        }
    }
    flush(&store, &mut chunk, &mut ids).await?;
    println!(
        "imported {answered} answers into {}; {} failed (left for live calls), {unknown} not exported from this store, {skipped} unreadable",
        store.path().display(),
        failed.len()
    );
    for (id, why) in failed.iter().take(5) {
        println!("  failed {id}: {why}");
    }
    Ok(0)
}

async fn flush(
    store: &SqliteStore,
    chunk: &mut Vec<(CacheKey, ChatResponse)>,
    ids: &mut Vec<String>,
) -> Result<(), Failure> {
    if chunk.is_empty() {
        return Ok(());
    }
    metaprompt::core::layer::import_answers(store, chunk)
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    store
        .mark_imported(std::mem::take(ids))
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    chunk.clear();
    Ok(())
}

/// The batches of `run_id` still waiting at the provider.
pub(crate) async fn waiting(store: &SqliteStore, run_id: &str) -> Vec<PendingBatch> {
    store
        .batches(run_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.status == "waiting")
        .collect()
}

/// One line about a waiting batch.
pub(crate) fn describe(b: &PendingBatch) -> String {
    format!(
        "batch {} ({} calls, {}) of {}",
        b.ticket.batch_ids.join(", "),
        b.ticket.lines,
        b.phase,
        b.ticket.model
    )
}

/// After an interrupted run: what to do with its batches still running. On a terminal the
/// user chooses (leave them, the default, or cancel them); elsewhere they are left and the
/// way to cancel is printed.
pub(crate) async fn on_interrupt(
    store: &SqliteStore,
    run_id: &str,
    executors: &[Arc<dyn BatchExecutor>],
    resume_hint: &str,
) {
    let pending = waiting(store, run_id).await;
    if pending.is_empty() {
        return;
    }
    for b in &pending {
        eprintln!("{} is still running at the provider", describe(b));
    }
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let cancel_it = interactive
        && {
            eprint!(
                "[l]eave it running (`{resume_hint}` re-attaches and pays nothing twice) or [c]ancel it? [L/c] "
            );
            let _ = std::io::stderr().flush();
            let answer = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map(|_| s)
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            answer.trim().eq_ignore_ascii_case("c")
        };
    if cancel_it {
        cancel_all(store, run_id, &pending, executors).await;
    } else {
        eprintln!(
            "left running: `{resume_hint}` re-attaches to it; `metaprompt batch cancel` cancels it"
        );
    }
}

async fn cancel_all(
    store: &SqliteStore,
    run_id: &str,
    pending: &[PendingBatch],
    executors: &[Arc<dyn BatchExecutor>],
) -> bool {
    let mut all = true;
    for b in pending {
        let Some(ex) = executors.iter().find(|e| e.model_id() == b.ticket.model) else {
            eprintln!(
                "cannot cancel {}: the config has no batch model `{}`",
                describe(b),
                b.ticket.model
            );
            all = false;
            continue;
        };
        match ex.cancel(&b.ticket).await {
            Ok(()) => {
                let mut done = b.clone();
                done.status = "cancelled".into();
                let _ = store.save_batch(run_id, &done).await;
                eprintln!("cancelled {}", describe(b));
            }
            Err(e) => {
                eprintln!("cannot cancel {}: {e}", describe(b));
                all = false;
            }
        }
    }
    let _ = store.flush().await;
    all
}

async fn cancel(config_path: PathBuf, out: PathBuf) -> Result<u8, Failure> {
    let loaded = config::load(&config_path).usage()?;
    let built = build::request(&loaded, None)?;
    let run_id = std::fs::read_to_string(out.join("run_id"))
        .with_context(|| format!("{} is not a run directory (no run_id file)", out.display()))
        .usage()?;
    let run_id = run_id.trim();
    let store = run_store(&loaded, &out, built.pool.secrets())?;
    let pending = waiting(&store, run_id).await;
    if pending.is_empty() {
        println!("run {run_id} has no batch waiting");
        return Ok(0);
    }
    let ok = cancel_all(&store, run_id, &pending, &built.checked.request().batch).await;
    Ok(if ok { 0 } else { 1 })
}

/// The store of a run directory: `[output] store`, else the directory's own.
pub(crate) fn run_store(
    loaded: &Loaded,
    dir: &Path,
    secrets: Vec<String>,
) -> Result<SqliteStore, Failure> {
    let path = loaded.store_path(dir);
    if !path.is_file() {
        return Err(Failure::Usage(anyhow!("no store at {}", path.display())));
    }
    SqliteStore::open_with_secrets(&path, secrets).map_err(|e| Failure::Runtime(anyhow!(e)))
}
