#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Coming from agent-opt: the teacher on Anthropic's Messages API and the evaluator on
//! FutureAGI's eval templates, through the binary, against a local mock of both.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

const FI_KEY: &str = "fi-planted-key-5150";
const FI_SECRET: &str = "fi-planted-secret-6160";

fn backends_config(dir: &Path, root: &str, mapping: &str) -> PathBuf {
    std::fs::copy(sms(), dir.join("sms.jsonl")).unwrap();
    let text = format!(
        r#"task_description = "Decide whether an SMS message is spam."
initial_prompts = [{PROMPT:?}]

[dataset]
path = "sms.jsonl"
split = {{ train = 0.5, val = 0.25, test = 0.25 }}
seed = 7
label_fields = ["label"]

[student]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{root}/v1"
api_key_env = "{KEY_VAR}"
max_tokens = 16

[teacher]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{root}"
api_key_env = "{KEY_VAR}"
max_tokens = 1024

[evaluator]
kind = "futureagi"
template = "ground_truth_match"
model = "turing_flash"
base_url = "{root}"
price_per_call = 0.001

[mapping]
{mapping}

[optimizer]
num_rounds = 2
eval_subset_size = 12
concurrency = 4
seed = 7
"#
    );
    let path = dir.join("agent-opt.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const MAPPING: &str = "generated_value = \"generated_output\"\nexpected_value = \"label\"";

async fn run_with_keys(args: Vec<String>, cwd: PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin())
            .args(&args)
            .current_dir(&cwd)
            .env(KEY_VAR, KEY)
            .env("FI_API_KEY", FI_KEY)
            .env("FI_SECRET_KEY", FI_SECRET)
            .env_remove("FI_BASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_teacher_and_a_futureagi_evaluator_run_a_whole_optimization() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let root = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = backends_config(dir.path(), &root, MAPPING);
    let out = dir.path().join("run");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "optimize",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // The dry run projects FutureAGI's calls as judge calls and makes none.
    let o = run_with_keys(args(&["--dry-run", "--json"]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(server.stats().requests, 0, "a dry run makes no request");
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["judge_calls"], plan["student_calls"], "{plan}");
    assert!(plan["cost_upper_bound_usd"].as_f64().unwrap() > 0.0);

    let o = run_with_keys(args(&[]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stats = server.stats();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert!(
        stats.anthropic > 0 && stats.teacher == stats.anthropic,
        "{stats:?}"
    );
    assert_eq!(
        stats.futureagi_catalogue, 1,
        "the catalogue is read once, before the run"
    );
    assert!(stats.futureagi > 0);
    assert_eq!(
        doc["usage"]["judge_calls"].as_u64().unwrap(),
        stats.futureagi
    );
    assert_eq!(
        doc["usage"]["teacher_calls"].as_u64().unwrap(),
        stats.teacher
    );
    let judge_cost = doc["usage"]["by_role"]["judge"]["cost_usd"]
        .as_f64()
        .unwrap();
    assert!(
        (judge_cost - 0.001 * stats.futureagi as f64).abs() < 1e-9,
        "{judge_cost}"
    );
    assert!(doc["usage"]["cost_usd"].as_f64().unwrap() >= judge_cost);
    // The mock's teacher names what spam looks like; FutureAGI's verdicts see the gain.
    assert!(
        doc["final_score"].as_f64().unwrap() > doc["initial_score"].as_f64().unwrap(),
        "{doc}"
    );
    for secret in [KEY, FI_KEY, FI_SECRET] {
        assert!(!text(&o.stderr).contains(secret));
        for e in std::fs::read_dir(&out).unwrap().flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_map_that_does_not_match_the_template_exits_2_before_any_call() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let root = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = backends_config(
        dir.path(),
        &root,
        "response = \"generated_output\"\nexpected_value = \"label\"",
    );
    for extra in [&["--dry-run"][..], &[]] {
        let mut a = vec![
            "optimize".to_string(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let o = run_with_keys(a, dir.path().into()).await;
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("`expected_value`, `generated_value`")
                || err.contains("`generated_value`, `expected_value`"),
            "{err}"
        );
        assert!(err.contains("`response`"), "{err}");
    }
    assert_eq!(server.stats().requests, 0, "nothing was called");
}
