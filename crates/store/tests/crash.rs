#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash safety: a child process writing rounds is killed with SIGKILL at several moments; the
//! database must open with every committed round intact.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metaprompt_core::Checkpointer;
use metaprompt_core::run::RoundRecord;
use metaprompt_store::SqliteStore;

const CHILD_ENV: &str = "METAPROMPT_STORE_CRASH_CHILD";

fn record(round: u32) -> RoundRecord {
    RoundRecord {
        round,
        analysis: "x".repeat(2000),
        hypothesis: format!("h{round}"),
        candidate_prompt: format!("prompt {round} {{text}}"),
        minibatch_score: Some(0.5),
        parent_minibatch_score: Some(0.4),
        val_score: Some(0.6),
        accepted: round.is_multiple_of(2),
        reason: "r".into(),
        repaired: false,
        failed: false,
        ..RoundRecord::default()
    }
}

/// Runs only as the child: writes rounds and checkpoints until killed.
#[tokio::test]
async fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    store.start_run("run", "cfg", None).await.unwrap();
    for round in 1.. {
        store.record_round("run", &record(round)).await.unwrap();
        store
            .save(
                "run",
                round,
                &serde_json::json!({"round": round, "pad": "y".repeat(4000)}),
            )
            .await
            .unwrap();
    }
}

fn rounds_on_disk(path: &std::path::Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(path) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).ok();
    conn.query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
        .unwrap_or(0)
}

async fn kill_after(rounds: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while rounds_on_disk(&path) < rounds {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let store = SqliteStore::open(&path).unwrap();
    let run = store.load_run("run").await.unwrap().unwrap();
    let n = run.rounds.len() as u32;
    assert!(
        n as i64 >= rounds,
        "committed rounds were lost: {n} < {rounds}"
    );
    for (i, r) in run.rounds.iter().enumerate() {
        assert_eq!(r, &record(i as u32 + 1));
    }
    let cp = store.load_latest("run").await.unwrap().unwrap();
    assert!(
        cp.round == n || cp.round + 1 == n,
        "checkpoint {} vs rounds {n}",
        cp.round
    );
    assert_eq!(cp.state["round"], cp.round);
}

#[tokio::test]
async fn sigkill_at_several_moments_keeps_committed_rounds() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    for rounds in [1, 7, 40, 150] {
        kill_after(rounds).await;
    }
}
