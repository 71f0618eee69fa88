//! `metaprompt optimize`, `eval` and `demo`: running a request with a store, progress and
//! outputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use metaprompt::core::run::StopReason;
use metaprompt::core::{Checkpointer, EventSink};
use metaprompt::engine::{CancelFlag, Checked, MetaPromptOptimizer};
use metaprompt::store::{RunStatus, SqliteStore};

use crate::progress::{Fanout, Progress};
use crate::{Failure, UsageExt, engine_failure, report};

/// Where and how a run executes.
pub(crate) struct RunPlan {
    pub(crate) dir: PathBuf,
    pub(crate) store_path: PathBuf,
    pub(crate) run_id: String,
    pub(crate) resume: bool,
    pub(crate) json: bool,
    /// The config with its secret-bearing values redacted: what the run directory keeps.
    pub(crate) config_text: String,
    pub(crate) secrets: Vec<String>,
}

fn hash(text: &str) -> String {
    metaprompt::store::prompt_hash(text)
}

/// Runs (or resumes) an optimization; returns the exit code (0, or 130 when interrupted).
pub(crate) async fn execute(
    mut checked: Checked,
    teacher: Arc<dyn metaprompt::core::ChatModel>,
    plan: RunPlan,
) -> Result<u8, Failure> {
    std::fs::create_dir_all(&plan.dir)
        .with_context(|| format!("cannot create the run directory {}", plan.dir.display()))
        .usage()?;
    let store = SqliteStore::open_with_secrets(&plan.store_path, plan.secrets.clone())
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    if plan.resume {
        let cp = store
            .load_latest(&plan.run_id)
            .await
            .map_err(|e| Failure::Runtime(anyhow!(e)))?;
        match cp {
            Some(cp) => {
                eprintln!("resuming run {} after round {}", plan.run_id, cp.round);
                checked.resume_from(Some(cp));
            }
            // Killed before the first checkpoint: start over; every call already paid for is
            // in the cache and is not paid again.
            None => eprintln!(
                "run {} has no checkpoint yet; starting it over (cached calls are reused)",
                plan.run_id
            ),
        }
    }
    checked.set_run_id(plan.run_id.clone());
    std::fs::write(plan.dir.join("config.toml"), &plan.config_text)
        .context("cannot write config.toml")
        .map_err(Failure::Runtime)?;
    std::fs::write(plan.dir.join("run_id"), &plan.run_id)
        .context("cannot write run_id")
        .map_err(Failure::Runtime)?;
    let config_json = serde_json::json!({"config_toml": plan.config_text});
    store
        .start_run(&plan.run_id, &hash(&plan.config_text), Some(&config_json))
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;

    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: finishing the calls in flight and saving a checkpoint (run again with --resume)…"
            );
            flag.cancel();
        }
    });
    let progress = Arc::new(Progress::new(
        checked.request().config.num_rounds,
        plan.json,
    ));
    let sinks: Vec<Arc<dyn EventSink>> =
        vec![progress.clone(), Arc::new(store.recorder(&plan.run_id))];
    let optimizer = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .cache(Arc::new(store.clone()))
        .checkpointer(Arc::new(store.clone()))
        .events(Arc::new(Fanout(sinks)))
        .cancel_flag(cancel)
        .build()
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let outcome = optimizer.optimize_checked(&checked).await;
    progress.finish();
    let resume_hint = format!(
        "metaprompt optimize --config … --out {} --resume",
        plan.dir.display()
    );
    let leave_or_cancel = || {
        crate::batch_cmd::on_interrupt(&store, &plan.run_id, &checked.request().batch, &resume_hint)
    };
    let result = match outcome {
        Ok(r) => r,
        // Ctrl-C while the initial prompts were scored (a batch of a large val, say).
        Err(metaprompt::engine::EngineError::InterruptedBeforeBaseline) => {
            let _ = store
                .finish_run(
                    &plan.run_id,
                    RunStatus::Interrupted,
                    Some("interrupted"),
                    None,
                )
                .await;
            let _ = store.flush().await;
            leave_or_cancel().await;
            eprintln!("interrupted before the initial prompts were scored; `--resume` goes on");
            return Ok(130);
        }
        Err(e) => {
            let _ = store
                .finish_run(&plan.run_id, RunStatus::Failed, Some("error"), None)
                .await;
            let _ = store.flush().await;
            return Err(engine_failure(e));
        }
    };
    let doc = report::result_json(&result);
    report::write_all(&plan.dir, &doc).map_err(Failure::Runtime)?;
    let interrupted = result.stop_reason == StopReason::Interrupted;
    let status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    store
        .finish_run(
            &plan.run_id,
            status,
            Some(&result.stop_reason.to_string()),
            Some(&doc),
        )
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    store
        .flush()
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    if plan.json {
        println!("{}", serde_json::to_string(&doc).unwrap_or_default());
    } else {
        report::print_summary(&doc, &plan.dir);
    }
    if interrupted {
        leave_or_cancel().await;
    }
    Ok(if interrupted { 130 } else { 0 })
}

/// The newest run directory under `root` whose name ends with `-<name>`.
pub(crate) fn latest_run_dir(root: &Path, name: &str) -> Option<PathBuf> {
    let suffix = format!("-{name}");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

pub(crate) fn timestamp() -> String {
    chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
}
