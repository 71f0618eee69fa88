#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The generated documentation is what this binary generates now: `docs/config.schema.json`,
//! `docs/config-reference.md` and `docs/result.schema.json` (written by `cargo xtask codegen`).
//! Checked here, against the binary the tests already built, so that no second build of the
//! command is needed.

use std::path::PathBuf;
use std::process::Command;

fn generated(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_metaprompt"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn docs(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn generated_docs_are_up_to_date() {
    for (file, args) in [
        ("config.schema.json", &["schema"][..]),
        ("config-reference.md", &["schema", "--reference"][..]),
        ("result.schema.json", &["schema", "--result"][..]),
    ] {
        assert!(
            docs(file) == generated(args),
            "docs/{file} is stale: run `cargo xtask codegen`"
        );
    }
}

#[test]
fn the_reference_names_every_optimizer_knob() {
    let reference = generated(&["schema", "--reference"]);
    for knob in [
        "num_rounds",
        "eval_subset_size",
        "concurrency",
        "proposals_per_round",
        "parent_selection",
        "mutations",
        "acceptance",
        "editable",
        "max_llm_calls",
    ] {
        assert!(reference.contains(&format!("`{knob}`")), "{knob} missing");
    }
}
