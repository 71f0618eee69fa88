#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary on the embedded model (real llama.cpp inference) and on the example configs.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

#[test]
fn the_demo_runs_on_the_embedded_model() {
    // A reduced setting for CI: one round.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = Command::new(bin())
        .args(["demo", "--rounds", "1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["rounds"].as_array().unwrap().len(), 1);
    assert!(doc["final_score"].as_f64().unwrap() >= doc["initial_score"].as_f64().unwrap());
    assert!(doc["test_score"].is_number());
    assert!(doc["best_prompt"].as_str().unwrap().contains("{word}"));
    // The run directory holds the config that ran (`optimize --config` runs it again).
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        config.contains("[optimizer]") && config.contains("enum"),
        "{config}"
    );
    assert!(out.join("adjectives.jsonl").is_file());
}

/// Every config under examples/configs is valid and its data is where it says: a dry run of
/// each succeeds (keys set to placeholders; a dry run makes no request).
#[test]
fn every_example_config_dry_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        let o = Command::new(bin())
            .args(["optimize", "--config", path.to_str().unwrap(), "--dry-run"])
            .env("OPENAI_API_KEY", "placeholder")
            .env("OLLAMA_KEY", "placeholder")
            .env("ANTHROPIC_API_KEY", "placeholder")
            .env("FI_API_KEY", "placeholder")
            .env("FI_SECRET_KEY", "placeholder")
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{}: {err}", path.display());
        assert!(err.contains("student calls:"), "{}: {err}", path.display());
        assert!(!err.contains("warning:"), "{}: {err}", path.display());
    }
    assert!(seen >= 7, "only {seen} example configs found");
}

#[test]
fn a_chat_prompt_runs_through_two_demo_sized_rounds_on_the_embedded_model() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs/demo.toml");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/adjectives.jsonl");
    std::fs::copy(data, dir.path().join("adjectives.jsonl")).unwrap();
    let demo_text = std::fs::read_to_string(demo).unwrap().replace(
        "path = \"../data/adjectives.jsonl\"",
        "path = \"adjectives.jsonl\"",
    );
    let mut doc: toml::Table = demo_text.parse().unwrap();
    doc.insert(
        "initial_prompts".into(),
        toml::Value::Array(vec![toml::Value::Table(
            [
                (
                    "system".to_string(),
                    toml::Value::from(
                        "You judge whether English adjectives are positive or negative. Answer with one word.",
                    ),
                ),
                ("user".to_string(), toml::Value::from("{word} ({meaning})")),
            ]
            .into_iter()
            .collect(),
        )]),
    );
    let opt = doc
        .get_mut("optimizer")
        .and_then(toml::Value::as_table_mut)
        .unwrap();
    opt.insert("num_rounds".into(), 2.into());
    let cfg = dir.path().join("chat.toml");
    std::fs::write(&cfg, toml::to_string(&doc).unwrap()).unwrap();
    let out = dir.path().join("run");
    let o = Command::new(bin())
        .args([
            "optimize",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let rounds: Vec<u64> = doc["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert_eq!(rounds.last(), Some(&2), "{rounds:?}");
    assert_eq!(doc["best_messages"].as_array().unwrap().len(), 2);
    assert_eq!(doc["best_messages"][0]["role"], "system");
    assert!(doc["test_delta"].is_object(), "{doc}");
}
