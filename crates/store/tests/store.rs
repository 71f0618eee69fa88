#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store on a real SQLite file in a temporary directory.

use std::sync::Arc;

use metaprompt_core::run::RoundRecord;
use metaprompt_core::{
    CacheKey, ChatRequest, ChatResponse, Checkpointer, FinishReason, ResponseCache, Usage,
};
use metaprompt_store::{EvaluationRecord, RunStatus, SqliteStore, StoreError};
use serde_json::json;

fn response(text: &str) -> ChatResponse {
    ChatResponse {
        text: text.into(),
        usage: Usage {
            input_tokens: 10,
            output_tokens: 2,
        },
        model: "m".into(),
        finish_reason: FinishReason::Stop,
    }
}

fn key(i: usize) -> CacheKey {
    CacheKey::for_request("m", &ChatRequest::user(format!("q{i}")), 0)
}

fn record(round: u32) -> RoundRecord {
    RoundRecord {
        round,
        analysis: "a".into(),
        hypothesis: format!("h{round}"),
        candidate_prompt: "p {text}".into(),
        minibatch_score: Some(0.5),
        parent_minibatch_score: Some(0.4),
        val_score: None,
        accepted: false,
        reason: "r".into(),
        repaired: false,
        failed: false,
        ..RoundRecord::default()
    }
}

#[tokio::test]
async fn cache_get_put_and_hit_counting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
    store.put(&key(1), &response("spam")).await.unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap(), Some(response("spam")));
    assert_eq!(
        store
            .get(&key(1))
            .await
            .unwrap()
            .unwrap()
            .usage
            .input_tokens,
        10
    );
    let stats = store.cache_stats().await.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 1, 1));
    // A second process (here: a second open) sees the committed entry.
    let again = SqliteStore::open(dir.path().join("s.db")).unwrap();
    assert!(again.get(&key(1)).await.unwrap().is_some());
    assert_eq!(store.clear_cache().await.unwrap(), 1);
    assert_eq!(again.get(&key(1)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_writers_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("s.db")).unwrap());
    let mut tasks = Vec::new();
    for w in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                store
                    .put(&key(w * 1000 + i), &response(&format!("{w}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.cache_stats().await.unwrap().entries, 64 * 200);
    for w in [0, 17, 63] {
        for i in [0, 99, 199] {
            let got = store.get(&key(w * 1000 + i)).await.unwrap().unwrap();
            assert_eq!(got.text, format!("{w}-{i}"));
        }
    }
}

#[tokio::test]
async fn migrates_an_empty_file_and_rejects_a_future_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(&path, b"").unwrap();
    SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("SELECT MAX(version) FROM migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, metaprompt_store::SCHEMA_VERSION);
    conn.execute(
        "INSERT INTO migrations (version, applied_at) VALUES (99, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::FutureSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade metaprompt"));
}

#[tokio::test]
async fn checkpoint_round_trips_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    assert!(store.load_latest("run").await.unwrap().is_none());
    let state = json!({"round": 2, "best": {"prompt": "Classify {text}", "val": 0.8}, "ledger": [1, 2], "rng": [1u64 << 60]});
    store.save("run", 1, &json!({"round": 1})).await.unwrap();
    store.save("run", 2, &state).await.unwrap();
    store.save("other", 5, &json!({})).await.unwrap();
    let cp = store.load_latest("run").await.unwrap().unwrap();
    assert_eq!(cp.round, 2);
    assert_eq!(cp.state, state);
}

#[tokio::test]
async fn run_records_rebuild_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    store
        .start_run("r1", "cfg", Some(&json!({"num_rounds": 2})))
        .await
        .unwrap();
    store.record_round("r1", &record(1)).await.unwrap();
    store.record_round("r1", &record(2)).await.unwrap();
    let evals = vec![EvaluationRecord {
        row_id: "7".into(),
        score: 1.0,
        reason: "match".into(),
        output: "spam".into(),
    }];
    store
        .record_candidate("r1", "Classify {text}", "val", 0.9, evals.clone())
        .await
        .unwrap();
    store
        .finish_run(
            "r1",
            RunStatus::Finished,
            Some("completed"),
            Some(&json!({"final_score": 0.9})),
        )
        .await
        .unwrap();
    let run = store.load_run("r1").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(
        run.rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(run.result.unwrap()["final_score"], 0.9);
    let scores = store.candidate_scores("r1").await.unwrap();
    assert_eq!(scores[0].text, "Classify {text}");
    assert_eq!(scores[0].n, 1);
    assert_eq!(
        store.evaluations("r1", "Classify {text}").await.unwrap(),
        evals
    );
    assert_eq!(store.list_runs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn recorder_event_sink_records_rounds() {
    use metaprompt_core::{EventSink, RunEvent};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    store.start_run("r", "c", None).await.unwrap();
    let sink = store.recorder("r");
    sink.emit(&RunEvent::RoundStarted { round: 1 });
    sink.emit(&RunEvent::RoundFinished {
        record: Box::new(record(1)),
    });
    store.flush().await.unwrap();
    assert_eq!(store.load_run("r").await.unwrap().unwrap().rounds.len(), 1);
}

#[tokio::test]
async fn secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let secret = "sk-planted-0123456789abcdef";
    let store = SqliteStore::open_with_secrets(&path, vec![secret.into()]).unwrap();
    // A model that echoes the key, a state and a config that carry it: all scrubbed.
    store
        .put(&key(1), &response(&format!("your key is {secret}")))
        .await
        .unwrap();
    store.save("r", 1, &json!({"note": secret})).await.unwrap();
    store
        .start_run("r", "c", Some(&json!({"api_key": secret})))
        .await
        .unwrap();
    let mut rec = record(1);
    rec.reason = format!("saw {secret}");
    store.record_round("r", &rec).await.unwrap();
    store.flush().await.unwrap();
    let hit = store.get(&key(1)).await.unwrap().unwrap();
    assert_eq!(hit.text, "your key is [REDACTED]");
    drop(store);
    // Give the writer thread a moment to close; then read whatever files are left.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
            continue;
        };
        scanned += bytes.len();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found on disk"
        );
    }
    assert!(scanned > 4096, "the database was not scanned");
}
