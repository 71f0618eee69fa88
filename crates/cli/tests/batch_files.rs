#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Batch files for vLLM's `run-batch`, driven through the binary: export, answer with a fake
//! `run-batch`, import, then eval with no live call and the live path's score.

mod common;

use std::path::Path;

use common::scale::*;
use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

/// `metaprompt batch export` of the config's val split for `prompt` into `out`; its stdout.
fn export(cfg: &Path, prompt: &Path, out: &Path) -> String {
    let o = run(
        &[
            "batch",
            "export",
            "--config",
            &cfg.display().to_string(),
            "--split",
            "val",
            "--prompt",
            &prompt.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        cfg.parent().unwrap(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
}

/// `metaprompt batch import` of `results` into the config's store; its stdout.
fn import(cfg: &Path, results: &Path) -> String {
    let o = run(
        &[
            "batch",
            "import",
            "--config",
            &cfg.display().to_string(),
            "--results",
            &results.display().to_string(),
        ],
        cfg.parent().unwrap(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_run_batch_import_then_eval_makes_no_live_call() {
    let live = MockServer::start(MockConfig::default()).await.unwrap();
    let offline = MockServer::start(MockConfig::default()).await.unwrap();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let config_at =
        |dir: &Path, url: &str| batch_config(dir, url, 500, &student_at(url, false), "");
    let live_cfg = config_at(d1.path(), &live.base_url());
    let cfg = config_at(d2.path(), &offline.base_url());
    let p = prompt_file(d2.path());
    let expected = eval(&live_cfg, &[]).await;
    let input = d2.path().join("in.jsonl");
    let results = d2.path().join("out.jsonl");

    let out = export(&cfg, &p, &input);
    assert!(out.contains("wrote 400 lines"), "{out}");
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
    std::fs::write(&results, metaprompt_mock::run_batch(&lines, 100)).unwrap();
    let out = import(&cfg, &results);
    assert!(out.contains("imported 396 answers"), "{out}");
    assert!(out.contains("4 failed"), "{out}");

    // Export again: only the four failed rows are left to answer.
    let out = export(&cfg, &p, &input);
    assert!(out.contains("wrote 4 lines"), "{out}");
    let lines = std::fs::read_to_string(&input).unwrap();
    std::fs::write(&results, metaprompt_mock::run_batch(&lines, 0)).unwrap();
    let out = import(&cfg, &results);
    assert!(out.contains("imported 4 answers"), "{out}");

    let got = eval(&cfg, &[]).await;
    assert_eq!(offline.stats().requests, 0, "no live call");
    assert_eq!(got["score"], expected["score"]);
    assert_eq!(got["n"], 400);
    assert_eq!(got["usage"]["by_role"]["student"]["cache_hits"], 400);
}
