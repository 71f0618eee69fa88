#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Cache puts/s and gets/s on a real SQLite file, and the size per 10,000 responses.
//!
//! `cargo bench -p metaprompt-store`

use std::sync::Arc;
use std::time::Instant;

use metaprompt_core::{CacheKey, ChatRequest, ChatResponse, FinishReason, ResponseCache, Usage};
use metaprompt_store::SqliteStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = 10_000usize;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let keys: Vec<CacheKey> = (0..n)
        .map(|i| {
            CacheKey::for_request(
                "gpt-4o-mini",
                &ChatRequest::user(format!("question {i}")),
                0,
            )
        })
        .collect();
    let text = "x".repeat(500);
    let resp = ChatResponse {
        text,
        usage: Usage {
            input_tokens: 120,
            output_tokens: 100,
        },
        model: "gpt-4o-mini".into(),
        finish_reason: FinishReason::Stop,
    };

    // Puts from 64 concurrent tasks, as a run's evaluations would issue them.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(n / 64 + 1) {
        let (store, chunk, resp) = (store.clone(), chunk.to_vec(), resp.clone());
        tasks.push(tokio::spawn(async move {
            for k in chunk {
                store.put(&k, &resp).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let put_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(n / 16 + 1) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for k in chunk {
                assert!(store.get(&k).await.unwrap().is_some());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let get_secs = start.elapsed().as_secs_f64();
    store.flush().await.unwrap();
    let size: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    println!("{n} responses of 500 chars");
    println!(
        "puts: {:.0}/s (64 concurrent writers, batched transactions)",
        n as f64 / put_secs
    );
    println!("gets: {:.0}/s (16 concurrent readers)", n as f64 / get_secs);
    println!(
        "size: {:.2} MB per 10,000 responses (db + wal)",
        size as f64 / 1e6 * 10_000.0 / n as f64
    );
}
