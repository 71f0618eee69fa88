#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! 2,000 calls through the client to a local mock with 20 ms latency at concurrency 64:
//! calls/s, client overhead (wall minus server latency) p50/p99, and peak RSS.
//!
//! `cargo bench -p metaprompt-openai`

use std::time::{Duration, Instant};

use metaprompt_core::{ChatModel, ChatRequest};
use metaprompt_mock::{MockConfig, MockServer};
use metaprompt_openai::OpenAiChat;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency = Duration::from_millis(20);
    let (n, conc) = (2000usize, 64usize);
    let server = MockServer::start(MockConfig {
        latency,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let client = OpenAiChat::builder("gpt-4o-mini")
        .base_url(server.base_url())
        .api_key("k")
        .max_concurrency(conc)
        .build()
        .unwrap();
    // Warm the connection pool.
    for _ in 0..conc {
        client
            .complete(ChatRequest::user("warm msg 1"))
            .await
            .unwrap();
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                c.complete(ChatRequest::user(format!("Is this spam?\n\nmsg {i}")))
                    .await
                    .unwrap();
                t.elapsed()
            })
        })
        .collect();
    let mut overheads = Vec::with_capacity(n);
    for t in tasks {
        overheads.push(t.await.unwrap());
    }
    let wall = start.elapsed().as_secs_f64();
    // Each call's own time in flight is latency plus overhead; calls waiting for a permit are
    // excluded by measuring the in-flight part: the semaphore wait is not client overhead.
    // Approximation: overhead = per-call elapsed − latency − queueing, where queueing is
    // estimated from the call's batch position.
    let bound = (n as f64 / conc as f64).ceil() * latency.as_secs_f64();
    let mut per_call: Vec<f64> = overheads.iter().map(|d| d.as_secs_f64()).collect();
    per_call.sort_by(f64::total_cmp);
    // Direct measure of overhead: sequential calls, one at a time.
    let mut seq = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        client
            .complete(ChatRequest::user(format!("seq msg {i}")))
            .await
            .unwrap();
        seq.push((t.elapsed().saturating_sub(latency)).as_secs_f64() * 1000.0);
    }
    seq.sort_by(f64::total_cmp);
    println!(
        "{n} calls, concurrency {conc}, server latency {} ms",
        latency.as_millis()
    );
    println!(
        "throughput: {:.0} calls/s (bound {:.0} calls/s; wall {wall:.2} s vs bound {bound:.2} s, {:.1}% over)",
        n as f64 / wall,
        n as f64 / bound,
        (wall / bound - 1.0) * 100.0
    );
    println!(
        "client overhead (200 sequential calls): p50 {:.2} ms, p99 {:.2} ms",
        seq[100], seq[197]
    );
    println!("peak RSS: {:.1} MB", peak_rss_mb());
    assert_eq!(server.stats().max_in_flight as usize, conc);
}
