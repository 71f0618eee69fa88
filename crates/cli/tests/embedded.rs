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
    assert!(doc["best_prompt"].as_str().unwrap().contains("{text}"));
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
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{}: {err}", path.display());
        assert!(err.contains("student calls:"), "{}: {err}", path.display());
        assert!(!err.contains("warning:"), "{}: {err}", path.display());
    }
    assert!(seen >= 4, "only {seen} example configs found");
}
