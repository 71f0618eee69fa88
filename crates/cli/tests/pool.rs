#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An endpoint pool of three replicas with one killed mid-run, driven through the binary: the
//! run completes, the live replicas share the calls, nothing is paid twice.

mod common;

use common::scale::*;
use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_pool_survives_a_replica_killed_mid_run() {
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            MockServer::spawn(MockConfig {
                latency: Duration::from_millis(15),
                ..MockConfig::default()
            })
            .unwrap()
        })
        .collect();
    let teacher = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("\"{}\"", r.base_url()))
        .collect();
    let cfg = batch_config(
        dir.path(),
        &teacher.base_url(),
        600,
        &format!("base_urls = [{}]\nmax_concurrency = 4", urls.join(", ")),
        "",
    );
    let out = dir.path().join("run");
    let mut child = spawn(
        args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--json",
        ]),
        dir.path(),
    );
    wait_until(&mut child, "the kill", || replicas[1].stats().student >= 60).await;
    replicas[1].kill();
    let killed_at = replicas[1].stats().student;
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "completed");
    let counts: Vec<u64> = replicas.iter().map(|r| r.stats().student).collect();
    assert_eq!(counts[1], killed_at, "nothing answered after the kill");
    assert!(
        counts[0] > 100 && counts[2] > 100,
        "the live replicas share the load: {counts:?}"
    );
    // Nothing paid twice: no request body was answered by two replicas (or twice by one).
    let mut all: Vec<u64> = replicas
        .iter()
        .flat_map(|r| r.answered_students())
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a request was answered twice");
    assert_eq!(
        r["usage"]["by_role"]["student"]["calls"].as_u64().unwrap(),
        n as u64 + r["usage"]["by_role"]["student"]["errors"].as_u64().unwrap()
    );
}
