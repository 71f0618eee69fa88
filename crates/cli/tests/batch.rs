#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scale-out, driven through the binary: whole-split scoring on the mock's Files + Batches
//! API (the same scores as live calls; failed lines live; SIGKILL and resume re-attach;
//! cancel). Batch files for vLLM's `run-batch` are in `batch_files.rs`, endpoint pools in
//! `pool.rs`.

mod common;

use common::scale::*;
use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_row_val_on_a_batch_scores_as_the_live_path_and_failed_lines_go_live() {
    let live = MockServer::start(MockConfig::default()).await.unwrap();
    let batch = MockServer::start(MockConfig {
        batch_step: Duration::from_millis(150),
        batch_fail_every: 50,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let live_cfg = batch_config(
        d1.path(),
        &live.base_url(),
        2500,
        &student_at(&live.base_url(), false),
        "",
    );
    let batch_cfg = batch_config(
        d2.path(),
        &batch.base_url(),
        2500,
        &student_at(&batch.base_url(), true),
        "",
    );
    let a = eval(&live_cfg, &[]).await;
    let b = eval(&batch_cfg, &["--batch"]).await;
    assert_eq!(a["n"], 2000);
    assert_eq!(a["score"], b["score"], "batch and live agree");
    assert_eq!(a["ci95"], b["ci95"]);
    let s = batch.stats();
    assert_eq!(s.batches_created, 1);
    assert_eq!(s.files_uploaded, 1);
    assert_eq!(s.batch_lines, 2000);
    // Every 50th line failed in the batch and was asked live: 40 live student calls.
    assert_eq!(s.requests, 40, "{s:?}");
    assert_eq!(s.student, 2000, "each row answered once");
    assert_eq!(s.repeated_student, 0);
    let usage = &b["usage"]["by_role"]["student"];
    assert_eq!(usage["calls"], 2000);
    assert_eq!(usage["batched"], 1960);
    // gpt-4o-mini's list price, halved for the 1,960 batch lines.
    let live_cost = a["usage"]["by_role"]["student"]["cost_usd"]
        .as_f64()
        .unwrap();
    let batch_cost = usage["cost_usd"].as_f64().unwrap();
    assert!(
        batch_cost < 0.6 * live_cost && batch_cost > 0.4 * live_cost,
        "{batch_cost} vs {live_cost}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_the_batch_runs_then_resume_re_attaches_to_the_same_batch() {
    let server = MockServer::start(MockConfig {
        batch_step: Duration::from_millis(1500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(
        dir.path(),
        &server.base_url(),
        2500,
        &student_at(&server.base_url(), true),
        "",
    );
    let out = dir.path().join("run");
    let optimize = |extra: &[&str]| {
        let mut a = args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--json",
        ]);
        a.extend(args(extra));
        a
    };
    let mut child = spawn(optimize(&[]), dir.path());
    // The baseline's batch is in progress: lines are being answered.
    wait_until(&mut child, "a batch in progress", || {
        server.stats().batch_lines > 0
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(server.stats().batches_created, 1);
    let runs = run(&["runs", "--store", "shared.db"], dir.path());
    assert!(
        text(&runs.stdout).contains("waiting on batch batch_"),
        "{}",
        text(&runs.stdout)
    );
    let o = run_async(optimize(&["--resume"]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = server.stats();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "completed");
    // The baseline's batch was re-attached to, not made again: one batch for it, one more for
    // each distinct prompt scored on val (two children of a round that made the same prompt
    // share one evaluation).
    let children_on_val = r["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["val_score"].is_null())
        .map(|c| (c["candidate_prompt"].to_string(), c["demo_ids"].to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert_eq!(s.batches_created, 1 + children_on_val, "{s:?}");
    assert_eq!(s.repeated_student, 0, "{s:?}");
    let runs = run(&["runs", "--store", "shared.db"], dir.path());
    assert!(
        !text(&runs.stdout).contains("waiting on"),
        "{}",
        text(&runs.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_the_batch_running_and_batch_cancel_cancels_it() {
    let server = MockServer::start(MockConfig {
        batch_step: Duration::from_secs(20),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(
        dir.path(),
        &server.base_url(),
        1000,
        &student_at(&server.base_url(), true),
        "",
    );
    let out = dir.path().join("run");
    let mut child = Command::new(bin())
        .args(args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]))
        .current_dir(dir.path())
        .env(KEY_VAR, KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut child, "a batch", || server.stats().batches_created > 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("is still running at the provider"), "{err}");
    assert!(err.contains("left running"), "{err}");
    assert_eq!(server.stats().batches_cancelled, 0);
    let c = run(
        &[
            "batch",
            "cancel",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
    );
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(
        text(&c.stderr).contains("cancelled batch batch_"),
        "{}",
        text(&c.stderr)
    );
    assert_eq!(server.stats().batches_cancelled, 1);
    let again = run(
        &[
            "batch",
            "cancel",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
    );
    assert!(
        text(&again.stdout).contains("no batch waiting"),
        "{}",
        text(&again.stdout)
    );
}
