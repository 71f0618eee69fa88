#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `metaprompt` binary driven as a user drives it, against a local OpenAI-compatible
//! mock server on 127.0.0.1.

use std::process::Command;

use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

mod common;
use common::*;

async fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_writes_every_output_and_a_valid_result() {
    let server = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let out = dir.path().join("run");
    let o = tokio::task::spawn_blocking({
        let (cfg, out, cwd) = (cfg.clone(), out.clone(), dir.path().to_path_buf());
        move || {
            run(
                &[
                    "optimize",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
                &cwd,
            )
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The summary's "best" column starts at one place on the header, val and test lines,
    // however wide the initial test score's interval is.
    let err = text(&o.stderr);
    let line = |start: &str| err.lines().find(|l| l.starts_with(start)).unwrap();
    let header = line("              initial");
    let best_at = header.find("best").unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    for (row, score) in [("val ", "final_score"), ("test ", "test_score")] {
        let best = format!("{:.3}", doc[score].as_f64().unwrap());
        assert_eq!(&line(row)[best_at..best_at + best.len()], best, "{err}");
    }
    for f in [
        "result.json",
        "best_prompt.txt",
        "history.jsonl",
        "report.md",
        "report.html",
        "metaprompt.db",
        "config.toml",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    for k in [
        "best_prompt",
        "final_score",
        "initial_score",
        "test_score",
        "test_ci95",
        "rounds",
        "usage",
        "stop_reason",
        "wall_seconds",
    ] {
        assert!(doc.get(k).is_some(), "result.json lacks {k}");
    }
    for k in [
        "round",
        "hypothesis",
        "candidate_prompt",
        "minibatch_score",
        "parent_minibatch_score",
        "val_score",
        "accepted",
        "reason",
    ] {
        assert!(doc["rounds"][0].get(k).is_some(), "rounds[] lacks {k}");
    }
    for k in [
        "student_calls",
        "teacher_calls",
        "judge_calls",
        "cache_hits",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ] {
        assert!(doc["usage"].get(k).is_some(), "usage lacks {k}");
    }
    // 3 rounds of the default 2 proposals.
    assert_eq!(doc["rounds"].as_array().unwrap().len(), 6);
    assert_eq!(doc["stop_reason"], "completed");
    // The mock's student improves once told what spam looks like: the optimizer finds it.
    assert!(
        doc["final_score"].as_f64().unwrap() > doc["initial_score"].as_f64().unwrap(),
        "{doc}"
    );
    assert!(doc["best_prompt"].as_str().unwrap().contains("{text}"));
    assert_eq!(
        std::fs::read_to_string(out.join("history.jsonl"))
            .unwrap()
            .lines()
            .count(),
        6
    );
    let stats = server.stats();
    assert_eq!(
        doc["usage"]["student_calls"].as_u64().unwrap(),
        stats.student
    );
    assert_eq!(
        doc["usage"]["teacher_calls"].as_u64().unwrap(),
        stats.teacher
    );
    // No secret anywhere in the run directory or the output.
    for entry in std::fs::read_dir(&out).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    }
    assert!(!text(&o.stderr).contains(KEY) && !text(&o.stdout).contains(KEY));
    html_renders(&out.join("report.html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_flag_prints_only_the_result_on_stdout() {
    let server = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &[
                "optimize",
                "--config",
                cfg.to_str().unwrap(),
                "--out",
                "r",
                "--json",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert!(doc["final_score"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_makes_no_request() {
    let server = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &[
                "optimize",
                "--config",
                cfg.to_str().unwrap(),
                "--dry-run",
                "--json",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    // 48 rows: train 24, val 12, test 12; baseline 12 + 3 rounds × 2 children × (12 + 12 + 12)
    // + 2 demos children × 12 bootstrap rows (the 24 − 12 train rows outside the minibatch)
    // + 2 × 12 test; the teacher writes the 4 rewrites and merges.
    assert_eq!(plan["student_calls"], 12 + 6 * 36 + 2 * 12 + 24);
    assert_eq!(plan["teacher_calls"], 4);
    assert_eq!(server.stats().requests, 0);
}

async fn expect_usage_error(
    extra: &str,
    prompt: &str,
    edit: impl Fn(&str) -> String,
    env_key: bool,
    needle: &str,
) {
    let server = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), extra, prompt);
    std::fs::write(&cfg, edit(&std::fs::read_to_string(&cfg).unwrap())).unwrap();
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(bin());
        c.args(["optimize", "--config", cfg.to_str().unwrap(), "--out", "r"])
            .current_dir(&cwd)
            .env_remove(KEY_VAR);
        if env_key {
            c.env(KEY_VAR, KEY);
        }
        c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(needle),
        "expected {needle:?} in: {}",
        text(&o.stderr)
    );
    assert_eq!(server.stats().requests, 0, "a bad config must cost nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_a_usage_error_with_its_line() {
    expect_usage_error(
        "num_roundz = 3",
        PROMPT,
        |s| s.to_string(),
        true,
        "sms.toml:37: unknown field `num_roundz`; did you mean `num_rounds`?",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_column_is_a_usage_error_naming_the_field() {
    expect_usage_error(
        "",
        "Classify: {body}",
        |s| s.to_string(),
        true,
        "missing body",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_reading_a_label_is_a_usage_error() {
    expect_usage_error(
        "",
        "{text} (hint: {label})",
        |s| s.to_string(),
        true,
        "uses {label}, a label field holding the expected answers",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_llama_workers_is_a_usage_error() {
    expect_usage_error(
        "",
        PROMPT,
        |s| {
            let start = s.find("[student]").unwrap();
            let end = s.find("[teacher]").unwrap();
            format!(
                "{}[student]\nprovider = \"llama\"\nworkers = 0\n\n{}",
                &s[..start],
                &s[end..]
            )
        },
        true,
        "[student]: `workers` must be at least 1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_api_key_variable_is_a_usage_error() {
    expect_usage_error(
        "",
        PROMPT,
        |s| s.to_string(),
        false,
        "the environment variable `MP_TEST_KEY` holding the API key is not set",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_json_follows_the_contract() {
    let server = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let prompt = dir.path().join("p.txt");
    std::fs::write(
        &prompt,
        "Messages offering prizes, money or urgent claims are spam.\n\n{text}\n",
    )
    .unwrap();
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &[
                "eval",
                "--config",
                cfg.to_str().unwrap(),
                "--prompt",
                prompt.to_str().unwrap(),
                "--split",
                "all",
                "--json",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["split"], "all");
    assert_eq!(d["n"], 48);
    assert_eq!(d["errors"], 0);
    assert!(d["score"].as_f64().unwrap() > 0.8);
    assert_eq!(d["ci95"].as_array().unwrap().len(), 2);
    assert_eq!(d["usage"]["student_calls"], 48);
}

fn help(args: &[&str]) -> String {
    let o = Command::new(bin()).args(args).output().unwrap();
    assert!(o.status.success());
    text(&o.stdout)
}

#[test]
fn help_texts_are_stable() {
    insta::assert_snapshot!("help", help(&["--help"]));
    for sub in [
        "optimize", "eval", "demo", "model", "schema", "runs", "report", "cache",
    ] {
        insta::assert_snapshot!(format!("help_{sub}"), help(&[sub, "--help"]));
    }
}

#[test]
fn schema_is_json_and_names_the_sections() {
    let s: Value = serde_json::from_str(&help(&["schema"])).unwrap();
    for k in [
        "dataset",
        "student",
        "teacher",
        "evaluator",
        "mapping",
        "optimizer",
        "output",
    ] {
        assert!(s["properties"].get(k).is_some(), "schema lacks {k}");
    }
}
