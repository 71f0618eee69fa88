#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Loads a generated JSONL file of 1,000,000 rows (~200 MB) and prints rows/s and memory.
//!
//! `cargo bench -p metaprompt-data` (set `METAPROMPT_BENCH_ROWS` for another size).

use std::io::{BufWriter, Write};
use std::time::Instant;

use metaprompt_data::{LoadOptions, load};

fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("METAPROMPT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    {
        let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..n {
            writeln!(
                w,
                r#"{{"id": "row-{i}", "text": "message number {i} says hello to the spam filter and asks for a reply soon", "label": "{}", "score": {}, "meta": {{"source": "bench", "lang": "en"}}}}"#,
                if i % 3 == 0 { "spam" } else { "ham" },
                i % 100
            )
            .unwrap();
        }
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    let rss_before = status_kib("VmRSS:");
    let start = Instant::now();
    let ds = load(&path, &LoadOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let rss_after = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    let retained = rss_after.saturating_sub(rss_before);
    let peak_over = peak.saturating_sub(rss_before);
    println!("file: {n} rows, {:.1} MB", bytes as f64 / 1e6);
    println!(
        "load: {secs:.2} s, {:.0} rows/s, {:.0} MB/s",
        n as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    println!(
        "memory: retained rows {:.1} MB, peak during load {:.1} MB above start (ratio {:.2})",
        retained as f64 / 1024.0,
        peak_over as f64 / 1024.0,
        peak_over as f64 / retained.max(1) as f64
    );
    assert_eq!(ds.len(), n);
}
