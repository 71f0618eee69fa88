#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! 2,000 calls through the client to a local mock with 20 ms latency at concurrency 64:
//! calls/s against the concurrency × latency bound, client overhead (wall minus server
//! latency) p50/p99 on sequential calls, and peak RSS. The mock runs on its own thread and
//! runtime so the client's measurements are the client's.
//!
//! `cargo bench -p metaprompt-openai`

use std::sync::mpsc::{Receiver, channel};
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

fn mock_thread(latency: Duration) -> (String, Receiver<u64>) {
    let (url_tx, url_rx) = channel();
    let (stats_tx, stats_rx) = channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = MockServer::start(MockConfig {
                latency,
                ..MockConfig::default()
            })
            .await
            .unwrap();
            url_tx.send(server.base_url()).unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if stats_tx.send(server.stats().max_in_flight).is_err() {
                    break;
                }
            }
        });
    });
    (url_rx.recv().unwrap(), stats_rx)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let latency = Duration::from_millis(20);
    let (n, conc) = (2000usize, 64usize);
    let (base_url, max_in_flight) = mock_thread(latency);
    let client = OpenAiChat::builder("gpt-4o-mini")
        .base_url(base_url)
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
    // Overhead on sequential calls, where no call waits for a permit.
    let mut seq = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        client
            .complete(ChatRequest::user(format!("seq msg {i}")))
            .await
            .unwrap();
        seq.push(t.elapsed().saturating_sub(latency).as_secs_f64() * 1000.0);
    }
    seq.sort_by(f64::total_cmp);
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
        "client overhead, wall minus 20 ms (includes the mock's handling and timer rounding): p50 {:.2} ms, p99 {:.2} ms",
        seq[100], seq[197]
    );
    println!("peak RSS: {:.1} MB", peak_rss_mb());
    let seen = max_in_flight.try_iter().last().unwrap_or(0);
    assert_eq!(
        seen as usize, conc,
        "the server saw {seen} requests in flight"
    );
}
