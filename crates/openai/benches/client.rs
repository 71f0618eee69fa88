#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! 2,000 calls through the client to a local mock with 20 ms latency at concurrency 64:
//! calls/s against the concurrency × latency bound, client overhead (wall minus server
//! latency) p50/p99 on sequential calls, and peak RSS. The mock runs on its own thread and
//! runtime so the client's measurements are the client's.
//!
//! `cargo bench -p metaprompt-openai`

use std::time::{Duration, Instant};

use metaprompt_core::{ChatModel, ChatRequest};
use metaprompt_mock::{MockConfig, MockServer, peak_rss_mb};
use metaprompt_openai::OpenAiChat;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let latency = Duration::from_millis(20);
    let (n, conc) = (2000usize, 64usize);
    let server = MockServer::spawn(MockConfig {
        latency,
        ..MockConfig::default()
    })
    .unwrap();
    let client = OpenAiChat::builder("gpt-4o-mini")
        .base_url(server.base_url())
        .api_key("k")
        .max_concurrency(conc)
        .build()
        .unwrap();
    // Warm the connection pool.
    let warm: Vec<_> = (0..conc)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.complete(ChatRequest::user(format!("warm msg {i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.complete(ChatRequest::user(format!("Is this spam?\n\nmsg {i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let bound = (n as f64 / conc as f64).ceil() * latency.as_secs_f64();
    let max_in_flight = server.stats().max_in_flight;
    let loaded = server.handling_times();
    let mut server_ms: Vec<f64> = loaded[loaded.len() - n..].iter().copied().map(ms).collect();
    server_ms.sort_by(f64::total_cmp);
    // Overhead on sequential calls, where no call waits for a permit: the client's wall time
    // minus the time the server held that very request.
    let mut walls = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        client
            .complete(ChatRequest::user(format!("seq msg {i}")))
            .await
            .unwrap();
        walls.push(t.elapsed());
    }
    let held = server.handling_times();
    let held = &held[held.len() - walls.len()..];
    let mut seq: Vec<f64> = walls
        .iter()
        .zip(held)
        .map(|(w, h)| ms(w.saturating_sub(*h)))
        .collect();
    seq.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{n} calls, concurrency {conc}, server latency {} ms",
        latency.as_millis()
    );
    println!(
        "throughput: {:.0} calls/s (bound {:.0}); wall {wall:.3} s vs bound {bound:.3} s, {:.1}% over",
        n as f64 / wall,
        n as f64 / bound,
        (wall / bound - 1.0) * 100.0
    );
    println!(
        "server handling under load: p50 {:.2} ms, p99 {:.2} ms",
        pct(&server_ms, 0.5),
        pct(&server_ms, 0.99)
    );
    println!(
        "client overhead (wall minus the server's handling of the same call): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(&seq, 0.5),
        pct(&seq, 0.99),
        seq[seq.len() - 1]
    );
    println!("peak RSS: {:.1} MB", peak_rss_mb());
    assert_eq!(
        max_in_flight as usize, conc,
        "the server saw {max_in_flight} requests in flight"
    );
}
