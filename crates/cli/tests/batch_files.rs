#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Batch files for vLLM's `run-batch`, driven through the binary: export, answer with a fake
//! `run-batch`, import, then eval with no live call and the live path's score.

mod common;

use common::scale::*;
use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_run_batch_import_then_eval_makes_no_live_call() {
    let live = MockServer::start(MockConfig::default()).await.unwrap();
    let offline = MockServer::start(MockConfig::default()).await.unwrap();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let live_cfg = batch_config(
        d1.path(),
        &live.base_url(),
        500,
        &student_at(&live.base_url(), false),
        "",
    );
    let cfg = batch_config(
        d2.path(),
        &offline.base_url(),
        500,
        &student_at(&offline.base_url(), false),
        "",
    );
    let p = prompt_file(d2.path());
    let cfg_s = cfg.display().to_string();
    let expected = eval(&live_cfg, &[]).await;
    let input = d2.path().join("in.jsonl");
    let e = run(
        &[
            "batch",
            "export",
            "--config",
            &cfg_s,
            "--split",
            "val",
            "--prompt",
            &p.display().to_string(),
            "--out",
            &input.display().to_string(),
        ],
        d2.path(),
    );
    assert!(e.status.success(), "{}", text(&e.stderr));
    assert!(
        text(&e.stdout).contains("wrote 400 lines"),
        "{}",
        text(&e.stdout)
    );
    let lines = std::fs::read_to_string(&input).unwrap();
    assert_eq!(lines.lines().count(), 400);
    let ids: std::collections::HashSet<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 400, "custom_id is unique");
    // The offline engine: one failed line in 100 the first time; a second pass answers them.
    let results = d2.path().join("out.jsonl");
    std::fs::write(&results, metaprompt_mock::run_batch(&lines, 100)).unwrap();
    let i = run(
        &[
            "batch",
            "import",
            "--config",
            &cfg_s,
            "--results",
            &results.display().to_string(),
        ],
        d2.path(),
    );
    assert!(i.status.success(), "{}", text(&i.stderr));
    assert!(
        text(&i.stdout).contains("imported 396 answers"),
        "{}",
        text(&i.stdout)
    );
    assert!(text(&i.stdout).contains("4 failed"), "{}", text(&i.stdout));
    // Export again: only the four failed rows are left to answer.
    let e = run(
        &[
            "batch",
            "export",
            "--config",
            &cfg_s,
            "--split",
            "val",
            "--prompt",
            &p.display().to_string(),
            "--out",
            &input.display().to_string(),
        ],
        d2.path(),
    );
    assert!(
        text(&e.stdout).contains("wrote 4 lines"),
        "{}",
        text(&e.stdout)
    );
    let lines = std::fs::read_to_string(&input).unwrap();
    std::fs::write(&results, metaprompt_mock::run_batch(&lines, 0)).unwrap();
    let i = run(
        &[
            "batch",
            "import",
            "--config",
            &cfg_s,
            "--results",
            &results.display().to_string(),
        ],
        d2.path(),
    );
    assert!(
        text(&i.stdout).contains("imported 4 answers"),
        "{}",
        text(&i.stdout)
    );
    let got = eval(&cfg, &[]).await;
    assert_eq!(offline.stats().requests, 0, "no live call");
    assert_eq!(got["score"], expected["score"]);
    assert_eq!(got["n"], 400);
    assert_eq!(got["usage"]["by_role"]["student"]["cache_hits"], 400);
}
