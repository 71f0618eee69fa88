#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary against the mock with an LLM judge: every role's calls are cached, metered and
//! budgeted; secrets appear nowhere; one concurrency setting reaches the endpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

const HEADER_VAR: &str = "MP_TEST_HEADER";
const HEADER_SECRET: &str = "hdr-from-env-planted-7734";
const HEADER_LITERAL: &str = "hdr-literal-planted-5521";

/// A judge-scored config: the judge is the mock's judge, on its own model section.
fn judge_config(dir: &Path, base_url: &str, extra_optimizer: &str, headers: bool) -> PathBuf {
    let path = config(dir, base_url, extra_optimizer, PROMPT);
    let text = std::fs::read_to_string(&path).unwrap();
    let model = format!(
        "{{ provider = \"openai\", model = \"gpt-4o-mini\", base_url = \"{base_url}\", api_key_env = \"{KEY_VAR}\" }}"
    );
    let mut text = text.replace(
        "[evaluator]\nkind = \"exact_match\"\nnormalize = true\n",
        &format!(
            "[evaluator]\nkind = \"judge\"\nrubric = \"Does the response name the reference label?\"\nmodel = {model}\n"
        ),
    );
    text = text.replace(
        "expected_response = \"label\"\n",
        "expected_response = \"label\"\ninput = \"text\"\n",
    );
    if headers {
        let h = format!(
            "headers = {{ \"X-Planted\" = \"{HEADER_LITERAL}\", \"X-From-Env\" = {{ env = \"{HEADER_VAR}\" }} }}\n"
        );
        text = text.replace("temperature = 0.0\n", &format!("temperature = 0.0\n{h}"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn run_env(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env(KEY_VAR, KEY)
        .env(HEADER_VAR, HEADER_SECRET)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

async fn blocking(args: Vec<String>, cwd: PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_env(&a, &cwd)
    })
    .await
    .unwrap()
}

fn optimize_args(cfg: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "optimize".to_string(),
        "--config".into(),
        cfg.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn result(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap()
}

fn marked() -> MockConfig {
    MockConfig {
        mark_student_answers: true,
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_calls_are_metered_and_a_finished_run_resumed_makes_no_call() {
    let server = MockServer::start(marked()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = judge_config(dir.path(), &server.base_url(), "", false);
    let out = dir.path().join("run");
    let o = blocking(optimize_args(&cfg, &out, &[]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = result(&out);
    let stats = server.stats();
    assert!(stats.judge > 0);
    assert_eq!(doc["usage"]["judge_calls"].as_u64().unwrap(), stats.judge);
    assert_eq!(
        doc["usage"]["student_calls"].as_u64().unwrap(),
        stats.student
    );
    assert_eq!(
        doc["usage"]["teacher_calls"].as_u64().unwrap(),
        stats.teacher
    );
    // Resumed when already finished: every call is answered by the cache.
    let o = blocking(optimize_args(&cfg, &out, &["--resume"]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        server.stats().requests,
        stats.requests,
        "a call was made again"
    );
    assert_eq!(result(&out)["best_prompt"], doc["best_prompt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_projects_each_role_and_the_run_makes_exactly_that() {
    // One round: its rewrite (the mock's first idea) wins the gate, so nothing is refused.
    let server = MockServer::start(marked()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = judge_config(
        dir.path(),
        &server.base_url(),
        "num_rounds = 1\nproposals_per_round = 1\nparents_per_round = 1\nmutations = [\"rewrite\"]\n",
        false,
    );
    let cfg_text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("num_rounds = 3\n", "");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = dir.path().join("run");
    let mut args = optimize_args(&cfg, &out, &["--dry-run", "--json"]);
    let o = blocking(args.clone(), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(server.stats().requests, 0, "a dry run makes no call");
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    args.truncate(5);
    let o = blocking(args, dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = result(&out);
    assert!(
        doc["rounds"][0]["val_score"].is_number(),
        "{}",
        doc["rounds"][0]
    );
    let stats = server.stats();
    assert_eq!(plan["student_calls"].as_u64().unwrap(), stats.student);
    assert_eq!(plan["teacher_calls"].as_u64().unwrap(), stats.teacher);
    assert_eq!(plan["judge_calls"].as_u64().unwrap(), stats.judge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_budget_counts_the_judge() {
    let server = MockServer::start(marked()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = judge_config(
        dir.path(),
        &server.base_url(),
        "max_llm_calls = 70\n",
        false,
    );
    let out = dir.path().join("run");
    let o = blocking(optimize_args(&cfg, &out, &[]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stats = server.stats();
    assert!(
        stats.student + stats.teacher + stats.judge <= 70,
        "{stats:?}"
    );
    assert_eq!(result(&out)["stop_reason"], "budget_calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_judge_scored_run_then_resume_repeats_no_answered_call() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(25),
        ..marked()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = judge_config(dir.path(), &server.base_url(), "", false);
    let out = dir.path().join("run");
    let mut child = spawn(optimize_args(&cfg, &out, &[]), dir.path());
    // About half of the run: the baseline and a round and a half.
    wait_until(&mut child, "half of the run", || server.stats().judge >= 40).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let before = server.stats();
    let o = blocking(optimize_args(&cfg, &out, &["--resume"]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = server.stats();
    assert!(
        after.requests > before.requests,
        "the resumed run did the rest"
    );
    // Only what was in flight at the kill (at most the concurrency of 4 per role) is asked
    // again; everything answered before it comes from the cache.
    assert!(after.repeated_student <= 4, "{after:?}");
    assert!(after.repeated_judge <= 4, "{after:?}");
    assert!(after.repeated_teacher <= 1, "{after:?}");
    assert_eq!(result(&out)["stop_reason"], "completed");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for secret in [KEY, HEADER_SECRET, HEADER_LITERAL] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found in {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_keys_and_header_values_appear_nowhere() {
    for echo in [false, true] {
        let server = MockServer::start(MockConfig {
            echo_auth_401: echo,
            ..marked()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = judge_config(dir.path(), &server.base_url(), "num_rounds = 1\n", true);
        let cfg_text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("num_rounds = 3\n", "");
        std::fs::write(&cfg, cfg_text).unwrap();
        let out = dir.path().join("run");
        let o = blocking(optimize_args(&cfg, &out, &[]), dir.path().into()).await;
        if echo {
            // The server refuses the key and echoes every header it got in its error body.
            assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
            let err = text(&o.stderr);
            assert!(err.contains("authentication failed"), "{err}");
            // The echo is there, with every credential scrubbed out of it.
            assert!(
                err.contains("you sent") && err.contains("[REDACTED]"),
                "{err}"
            );
            assert!(
                server.stats().requests <= 8,
                "a refused key must stop the run at once"
            );
        } else {
            assert!(o.status.success(), "{}", text(&o.stderr));
        }
        assert_no_secret("stdout", &o.stdout);
        assert_no_secret("stderr", &o.stderr);
        for f in files(&out) {
            assert_no_secret(&f.display().to_string(), &std::fs::read(&f).unwrap());
        }
        // The store's own tables, read back: cache, runs, checkpoints.
        let db = out.join("metaprompt.db");
        if db.exists() {
            let dump = Command::new(bin())
                .args(["runs", "--store", db.to_str().unwrap()])
                .output()
                .unwrap();
            assert_no_secret("runs", &dump.stdout);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_optimizer_concurrency_alone_reaches_the_endpoint() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(100),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 320 rows: val has 80, more than the 64 calls allowed at once.
    let rows: String = (0..320)
        .map(|i| {
            let (t, l) = if i % 4 == 0 {
                (format!("WIN a cash prize {i} now"), "spam")
            } else {
                (format!("see you at {i}"), "ham")
            };
            format!("{{\"text\": \"{t}\", \"label\": \"{l}\"}}\n")
        })
        .collect();
    let cfg = config(dir.path(), &server.base_url(), "num_rounds = 0\n", PROMPT);
    std::fs::write(dir.path().join("sms.jsonl"), rows).unwrap();
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("num_rounds = 3\n", "")
        .replace("concurrency = 4\n", "concurrency = 64\n");
    std::fs::write(&cfg, text_cfg).unwrap();
    let out = dir.path().join("run");
    let o = blocking(optimize_args(&cfg, &out, &[]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(server.stats().max_in_flight, 64, "{:?}", server.stats());
}
