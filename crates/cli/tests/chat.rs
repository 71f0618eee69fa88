#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Chat prompts through the binary: a `{ system, user }` initial prompt, `best_prompt.json`,
//! and `eval --prompt best_prompt.json`.

mod common;

use std::path::Path;

use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

async fn run_blocking(args: Vec<String>, cwd: &Path) -> std::process::Output {
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, &cwd)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_and_user_prompt_is_optimized_and_round_trips_through_best_prompt_json() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    // The initial prompt as a table: instructions in the system message, the input in the user's.
    let config_text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("initial_prompts = [{PROMPT:?}]"),
        "initial_prompts = [{ system = \"Decide whether the message is spam or ham. Answer with one word.\", user = \"\\n\\n{text}\" }]",
    );
    std::fs::write(&cfg, config_text).unwrap();
    let out = dir.path().join("run");
    let o = run_blocking(
        vec![
            "optimize".into(),
            "--config".into(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        dir.path(),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stats = server.stats();
    assert!(stats.student > 0);
    assert_eq!(
        stats.student_with_system, stats.student,
        "every student call has the system message"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let messages = doc["best_messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert!(
        doc["final_score"].as_f64().unwrap() > doc["initial_score"].as_f64().unwrap(),
        "the mock teacher's idea went into the system message and helped: {doc}"
    );
    assert!(messages[0]["content"].as_str().unwrap().contains("prizes"));
    let best_json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best_prompt.json")).unwrap())
            .unwrap();
    assert_eq!(best_json["messages"], doc["best_messages"]);
    let txt = std::fs::read_to_string(out.join("best_prompt.txt")).unwrap();
    assert!(
        txt.starts_with("[system]\n") && txt.contains("\n[user]\n"),
        "{txt}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("<h3>system</h3>") && report.contains("<h3>user (unchanged)</h3>"),
        "{}",
        report
            .split("<h2>Initial → best")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(600)
            .collect::<String>()
    );

    // The best prompt scored again from best_prompt.json: the same val score.
    let o = run_blocking(
        vec![
            "eval".into(),
            "--config".into(),
            cfg.display().to_string(),
            "--prompt".into(),
            out.join("best_prompt.json").display().to_string(),
            "--split".into(),
            "val".into(),
            "--json".into(),
        ],
        dir.path(),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let score: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(score["score"], doc["final_score"]);
}

#[test]
fn a_bad_chat_prompt_file_is_a_usage_error_naming_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9/v1", "", PROMPT);
    let p = dir.path().join("p.json");
    std::fs::write(
        &p,
        "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}",
    )
    .unwrap();
    let o = run(
        &[
            "eval",
            "--config",
            cfg.to_str().unwrap(),
            "--prompt",
            p.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is not a chat prompt"),
        "{}",
        text(&o.stderr)
    );
}
