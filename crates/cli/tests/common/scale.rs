#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Set-up of the scale-out tests: SMS-like rows, a config whose student can use the Batch
//! API or an endpoint pool, and `metaprompt eval --json` of a prompt file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

pub(crate) const WORDS: [&str; 4] = [
    "win a free prize now",
    "see you at dinner",
    "claim your cash today",
    "running late, sorry",
];

/// `n` SMS-like rows: spam and ham in turn.
pub(crate) fn rows(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let label = if i % 4 == 0 || i % 4 == 2 {
            "spam"
        } else {
            "ham"
        };
        text.push_str(
            &serde_json::json!({"id": i.to_string(), "text": format!("{} #{i}", WORDS[i % 4]), "label": label})
                .to_string(),
        );
        text.push('\n');
    }
    let path = dir.join("rows.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// A config on `rows` rows split 10/80/10, the student with `batch = true` (or pool lines).
pub(crate) fn batch_config(
    dir: &Path,
    base_url: &str,
    n: usize,
    student_extra: &str,
    optimizer: &str,
) -> PathBuf {
    rows(dir, n);
    let text = format!(
        r#"task_description = "Decide whether an SMS message is spam."
initial_prompts = ["Is this message spam or ham? Answer with one word.\n\n{{text}}"]

[dataset]
path = "rows.jsonl"
split = {{ train = 0.1, val = 0.8, test = 0.1 }}
seed = 7
label_fields = ["label"]

[student]
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "{KEY_VAR}"
max_tokens = 16
{student_extra}

[teacher]
provider = "openai"
model = "gpt-4o"
base_url = "{base_url}"
api_key_env = "{KEY_VAR}"

[evaluator]
kind = "exact_match"
normalize = true

[mapping]
response = "generated_output"
expected_response = "label"

[output]
store = "shared.db"

[optimizer]
num_rounds = 1
eval_subset_size = 8
concurrency = 16
seed = 7
batch_poll_secs = 0.3
{optimizer}
"#
    );
    let path = dir.join("batch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn prompt_file(dir: &Path) -> PathBuf {
    let p = dir.join("prompt.txt");
    std::fs::write(
        &p,
        "Is this message spam or ham? Answer with one word.\n\n{text}",
    )
    .unwrap();
    p
}

pub(crate) async fn run_async(args: Vec<String>, cwd: PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, &cwd)
    })
    .await
    .unwrap()
}

pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `metaprompt eval --json` of the prompt file in `dir` (the config's directory), parsed.
pub(crate) async fn eval(cfg: &Path, extra: &[&str]) -> Value {
    let dir = cfg.parent().unwrap().to_path_buf();
    let prompt = prompt_file(&dir);
    let mut a = args(&[
        "eval",
        "--config",
        &cfg.display().to_string(),
        "--prompt",
        &prompt.display().to_string(),
        "--json",
    ]);
    a.extend(args(extra));
    json_out(&run_async(a, dir).await)
}

/// The student's lines for the mock at `url`, with the Batch API or without.
pub(crate) fn student_at(url: &str, batch: bool) -> String {
    format!(
        "base_url = \"{url}\"{}",
        if batch { "\nbatch = true" } else { "" }
    )
}

pub(crate) fn json_out(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_str(text(&o.stdout).trim()).unwrap()
}
