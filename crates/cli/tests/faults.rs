#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Reliability under faults, with the real binary against the fault-injecting mock server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use metaprompt::core::Checkpointer;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

/// Timeouts short enough that hangs are cut, attempts enough that faults never win.
const RESILIENT: &str = "timeout_secs = 0.5\nmax_attempts = 12";

async fn optimize(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (cfg, out) = (cfg.to_path_buf(), out.to_path_buf());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut args = vec![
            "optimize".to_string(),
            "--config".into(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, cfg.parent().unwrap())
    })
    .await
    .unwrap()
}

fn result(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap()
}

/// What must not depend on faults: prompts, scores, verdicts.
fn essence(doc: &Value) -> Value {
    let rounds: Vec<Value> = doc["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!([
                r["candidate_prompt"],
                r["minibatch_score"],
                r["parent_minibatch_score"],
                r["val_score"],
                r["accepted"],
                r["reason"]
            ])
        })
        .collect();
    serde_json::json!({"best": doc["best_prompt"], "final": doc["final_score"], "initial": doc["initial_score"], "test": doc["test_score"], "rounds": rounds})
}

async fn clean_run(dir: &Path) -> Value {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let cfg = config_with(dir, &server.base_url(), "", PROMPT, RESILIENT);
    let out = dir.join("clean");
    let o = optimize(&cfg, &out, &[]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    result(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_run(dir.path()).await;
    let faulty = MockServer::start(MockConfig {
        p_429: 0.10,
        p_500: 0.10,
        p_hang: 0.05,
        hang: Duration::from_secs(2),
        p_truncate: 0.02,
        seed: 42,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let fdir = dir.path().join("f");
    std::fs::create_dir_all(&fdir).unwrap();
    let cfg = config_with(&fdir, &faulty.base_url(), "", PROMPT, RESILIENT);
    let out = fdir.join("faulty");
    let o = optimize(&cfg, &out, &[]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        faulty.stats().faults > 10,
        "too few faults injected: {:?}",
        faulty.stats()
    );
    assert_eq!(essence(&result(&out)), essence(&clean));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_three_moments_then_resume_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_run(dir.path()).await;
    for (i, kill_at) in [8u64, 30, 70].into_iter().enumerate() {
        let server = MockServer::start(MockConfig {
            latency: Duration::from_millis(30),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let kdir = dir.path().join(format!("k{i}"));
        std::fs::create_dir_all(&kdir).unwrap();
        let cfg = config_with(&kdir, &server.base_url(), "", PROMPT, RESILIENT);
        let out = kdir.join("run");
        let mut child = spawn(
            [
                "optimize",
                "--config",
                cfg.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &kdir,
        );
        wait_until(&mut child, "the kill point", || {
            server.stats().student >= kill_at
        })
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let before = server.stats();
        let o = optimize(&cfg, &out, &["--resume"]).await;
        assert!(o.status.success(), "kill at {kill_at}: {}", text(&o.stderr));
        let after = server.stats();
        // Only calls in flight at the kill (at most the concurrency of 4) may be asked again.
        assert!(
            after.repeated_student <= 4,
            "kill at {kill_at}: {} repeated student calls",
            after.repeated_student
        );
        assert!(after.student > before.student || before.student >= 12 + 3 * 36);
        assert_eq!(essence(&result(&out)), essence(&clean), "kill at {kill_at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_returning_garbage_for_a_round_fails_that_round_only() {
    let server = MockServer::start(MockConfig {
        garbage_teacher_calls: 3,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One rewrite per round, so the garbage reply is round 1's only child.
    let cfg = config(
        dir.path(),
        &server.base_url(),
        "proposals_per_round = 1\nparents_per_round = 1\nmutations = [\"rewrite\"]",
        PROMPT,
    );
    let out = dir.path().join("run");
    let o = optimize(&cfg, &out, &[]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = result(&out);
    let rounds = doc["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    assert_eq!(rounds[0]["failed"], true);
    assert!(
        rounds[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not the required JSON"),
        "{}",
        rounds[0]["reason"]
    );
    assert_eq!(rounds[1]["failed"], false);
    assert!(!rounds[1]["candidate_prompt"].as_str().unwrap().is_empty());
    assert_eq!(doc["stop_reason"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mostly_failing_items_stop_the_run_with_exit_1_and_a_checkpoint() {
    // After the baseline (12 val rows), 80% of student requests fail for good.
    let server = MockServer::start(MockConfig {
        fail_students_after: Some((12, 0.8)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &server.base_url(),
        "",
        PROMPT,
        "max_attempts = 2",
    );
    let out: PathBuf = dir.path().join("run");
    let o = optimize(&cfg, &out, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("items failed during Minibatch evaluation"),
        "{}",
        text(&o.stderr)
    );
    let store = metaprompt::store::SqliteStore::open(out.join("metaprompt.db")).unwrap();
    let id = std::fs::read_to_string(out.join("run_id")).unwrap();
    let cp = store
        .load_latest(id.trim())
        .await
        .unwrap()
        .expect("a checkpoint was written");
    assert_eq!(cp.round, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_130_and_resume_gives_the_uninterrupted_result() {
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = clean_run(clean_dir.path()).await;
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(40),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &server.base_url(), "", PROMPT, RESILIENT);
    let out = dir.path().join("run");
    let mut child = spawn(
        [
            "optimize",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    // Wait until the baseline is done and round 1 is under way.
    wait_until(&mut child, "round 1", || server.stats().student >= 20).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(status.status.code(), Some(130), "{}", text(&status.stderr));
    let before = server.stats();
    assert!(
        before.student < 12 + 3 * 36,
        "the run finished before the interrupt"
    );
    let cwd = dir.path().to_path_buf();
    let (c2, o2) = (cfg.clone(), out.clone());
    let o = tokio::task::spawn_blocking(move || {
        run(
            &[
                "optimize",
                "--config",
                c2.to_str().unwrap(),
                "--out",
                o2.to_str().unwrap(),
                "--resume",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = server.stats();
    assert_eq!(
        after.repeated_student, 0,
        "a paid student call was repeated after resume"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["stop_reason"], "completed");
    // 3 rounds of the default 2 proposals.
    assert_eq!(doc["rounds"].as_array().unwrap().len(), 6);
    assert_eq!(essence(&doc), essence(&clean), "the resumed run differs");
}
