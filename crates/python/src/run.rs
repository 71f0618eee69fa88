//! Running a checked request: the engine on its own runtime thread, the interpreter
//! released; a store in `run_dir` (cache, checkpoints, `result.json`) so that calling again
//! with the same `run_dir` resumes an interrupted run and pays for no call twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use metaprompt::core::run::StopReason;
use metaprompt::core::{Checkpointer, EventSink};
use metaprompt::engine::{CancelFlag, EngineError, MetaPromptOptimizer, OptimizeResult};
use metaprompt::store::{RunStatus, SqliteStore};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

use crate::Failure;
use crate::progress::Bar;
use crate::request::Built;

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// Forwards events to each sink.
struct Fanout(Vec<Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &metaprompt::core::RunEvent) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// The run id for `dir`: the unfinished run it holds (resumed), else a new one.
fn run_id(dir: &Path) -> (String, bool) {
    let unfinished = !dir.join("result.json").exists();
    match std::fs::read_to_string(dir.join("run_id")) {
        Ok(id) if unfinished && !id.trim().is_empty() => (id.trim().to_string(), true),
        _ => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (format!("py-{}-{:09}", t.as_secs(), t.subsec_nanos()), false)
        }
    }
}

/// What the runtime thread hands back.
type Outcome = Result<(serde_json::Value, bool), Failure>;

async fn drive(mut built: Built, cancel: CancelFlag) -> Outcome {
    // As the command does: a FutureAGI key map against the live catalogue, before any call.
    for e in &built.hosted {
        e.check().await.map_err(|err| match err {
            metaprompt::futureagi::CheckError::Catalogue(m) => {
                Failure::Runtime(format!("evaluator: {m}"))
            }
            other => Failure::Usage(format!("evaluator / data_mapper: {other}")),
        })?;
    }
    let bar = Arc::new(Bar::new(
        built.checked.request().config.num_rounds,
        built.progress,
    ));
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![bar.clone()];
    let mut optimizer = MetaPromptOptimizer::builder()
        .teacher(built.teacher.clone())
        .cancel_flag(cancel);
    let mut store = None;
    if let Some(dir) = &built.run_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Usage(format!("cannot create run_dir {}: {e}", dir.display())))?;
        let s = SqliteStore::open_with_secrets(dir.join("metaprompt.db"), built.secrets.clone())
            .map_err(runtime)?;
        let (id, resume) = run_id(dir);
        if resume && let Some(cp) = s.load_latest(&id).await.map_err(runtime)? {
            eprintln!("metaprompt: resuming run {id} after round {}", cp.round);
            built.checked.resume_from(Some(cp));
        }
        built.checked.set_run_id(id.clone());
        std::fs::write(dir.join("run_id"), &id).map_err(runtime)?;
        let hash = metaprompt::store::prompt_hash(&built.request_text);
        s.start_run(&id, &hash, None).await.map_err(runtime)?;
        sinks.push(Arc::new(s.recorder(&id)));
        optimizer = optimizer
            .cache(Arc::new(s.clone()))
            .checkpointer(Arc::new(s.clone()));
        store = Some((s, id, dir.clone()));
    }
    let optimizer = optimizer
        .events(Arc::new(Fanout(sinks)))
        .build()
        .map_err(Failure::from)?;
    let outcome = optimizer.optimize_checked(&built.checked).await;
    bar.finish();
    let result: OptimizeResult = match outcome {
        Ok(r) => r,
        Err(e) => {
            let interrupted = matches!(e, EngineError::InterruptedBeforeBaseline);
            if let Some((s, id, _)) = &store {
                let status = if interrupted {
                    RunStatus::Interrupted
                } else {
                    RunStatus::Failed
                };
                let _ = s.finish_run(id, status, Some("error"), None).await;
                let _ = s.flush().await;
            }
            if interrupted {
                return Ok((serde_json::Value::Null, true));
            }
            return Err(Failure::from(e));
        }
    };
    let doc = metaprompt::engine::doc::result_json(&result);
    let interrupted = result.stop_reason == StopReason::Interrupted;
    if let Some((s, id, dir)) = &store {
        let status = if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        };
        s.finish_run(
            id,
            status,
            Some(&result.stop_reason.to_string()),
            Some(&doc),
        )
        .await
        .map_err(runtime)?;
        s.flush().await.map_err(runtime)?;
        if !interrupted {
            let text = serde_json::to_string_pretty(&doc).map_err(runtime)?;
            std::fs::write(dir.join("result.json"), text).map_err(runtime)?;
        }
    }
    Ok((doc, interrupted))
}

/// Runs `built` with the interpreter released; Ctrl-C finishes the calls in flight, saves a
/// checkpoint and raises `KeyboardInterrupt`.
pub(crate) fn execute(py: Python<'_>, built: Built) -> PyResult<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(runtime)?;
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let has_dir = built.run_dir.is_some();
    let (tx, rx) = std::sync::mpsc::channel::<Outcome>();
    let worker = std::thread::spawn(move || {
        let out = rt.block_on(drive(built, flag));
        let _ = tx.send(out);
    });
    // `detach` needs what it borrows to be shareable.
    let rx = std::sync::Mutex::new(rx);
    let wait = || match rx.lock() {
        Ok(r) => r.recv_timeout(Duration::from_millis(100)),
        Err(_) => Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
    };
    let mut interrupted_by_user = false;
    let outcome = loop {
        match py.detach(wait) {
            Ok(out) => break out,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if py.check_signals().is_err() && !interrupted_by_user {
                    interrupted_by_user = true;
                    eprintln!(
                        "\nmetaprompt: interrupted: finishing the calls in flight{}…",
                        if has_dir {
                            " and saving a checkpoint (call optimize again with the same run_dir to resume)"
                        } else {
                            ""
                        }
                    );
                    cancel.cancel();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(Failure::Runtime(
                    "the run's thread stopped unexpectedly".into(),
                ));
            }
        }
    };
    let _ = py.detach(|| worker.join());
    let (doc, interrupted) = outcome?;
    // Ctrl-C after the last call: the run is complete and saved, so its result is returned.
    if interrupted {
        return Err(PyKeyboardInterrupt::new_err(if has_dir {
            "interrupted; the run's checkpoint is saved: call optimize again with the same run_dir to resume"
        } else {
            "interrupted (without run_dir nothing was kept: pass run_dir= to make a run resumable)"
        }));
    }
    serde_json::to_string(&doc).map_err(|e| runtime(e).into())
}
