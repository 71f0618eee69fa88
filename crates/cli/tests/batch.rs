#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scale-out, driven through the binary: whole-split scoring on the mock's Files + Batches
//! API (the same scores as live calls; failed lines live; SIGKILL and resume re-attach; cancel),
//! batch files for vLLM's `run-batch` (export, answer, import, eval with no live call), and an
//! endpoint pool of three replicas with one killed mid-run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

const WORDS: [&str; 4] = [
    "win a free prize now",
    "see you at dinner",
    "claim your cash today",
    "running late, sorry",
];

/// `n` SMS-like rows: spam and ham in turn.
fn rows(dir: &Path, n: usize) -> PathBuf {
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
fn batch_config(
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

fn prompt_file(dir: &Path) -> PathBuf {
    let p = dir.join("prompt.txt");
    std::fs::write(
        &p,
        "Is this message spam or ham? Answer with one word.\n\n{text}",
    )
    .unwrap();
    p
}

async fn run_async(args: Vec<String>, cwd: PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, &cwd)
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `metaprompt eval --json` of the prompt file in `dir` (the config's directory), parsed.
async fn eval(cfg: &Path, extra: &[&str]) -> Value {
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
fn student_at(url: &str, batch: bool) -> String {
    format!(
        "base_url = \"{url}\"{}",
        if batch { "\nbatch = true" } else { "" }
    )
}

fn json_out(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_str(text(&o.stdout).trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_row_val_on_a_batch_scores_as_the_live_path_and_failed_lines_go_live() {
    let live = MockServer::start(MockConfig::default()).await.unwrap();
    let batch = MockServer::start(MockConfig {
        batch_step: Duration::from_millis(150),
        batch_fail_every: 50,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let live_cfg = batch_config(
        d1.path(),
        &live.base_url(),
        2500,
        &student_at(&live.base_url(), false),
        "",
    );
    let batch_cfg = batch_config(
        d2.path(),
        &batch.base_url(),
        2500,
        &student_at(&batch.base_url(), true),
        "",
    );
    let a = eval(&live_cfg, &[]).await;
    let b = eval(&batch_cfg, &["--batch"]).await;
    assert_eq!(a["n"], 2000);
    assert_eq!(a["score"], b["score"], "batch and live agree");
    assert_eq!(a["ci95"], b["ci95"]);
    let s = batch.stats();
    assert_eq!(s.batches_created, 1);
    assert_eq!(s.files_uploaded, 1);
    assert_eq!(s.batch_lines, 2000);
    // Every 50th line failed in the batch and was asked live: 40 live student calls.
    assert_eq!(s.requests, 40, "{s:?}");
    assert_eq!(s.student, 2000, "each row answered once");
    assert_eq!(s.repeated_student, 0);
    let usage = &b["usage"]["by_role"]["student"];
    assert_eq!(usage["calls"], 2000);
    assert_eq!(usage["batched"], 1960);
    // gpt-4o-mini's list price, halved for the 1,960 batch lines.
    let live_cost = a["usage"]["by_role"]["student"]["cost_usd"]
        .as_f64()
        .unwrap();
    let batch_cost = usage["cost_usd"].as_f64().unwrap();
    assert!(
        batch_cost < 0.6 * live_cost && batch_cost > 0.4 * live_cost,
        "{batch_cost} vs {live_cost}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_the_batch_runs_then_resume_re_attaches_to_the_same_batch() {
    let server = MockServer::start(MockConfig {
        batch_step: Duration::from_millis(1500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(
        dir.path(),
        &server.base_url(),
        2500,
        &student_at(&server.base_url(), true),
        "",
    );
    let out = dir.path().join("run");
    let optimize = |extra: &[&str]| {
        let mut a = args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--json",
        ]);
        a.extend(args(extra));
        a
    };
    let mut child = Command::new(bin())
        .args(optimize(&[]))
        .current_dir(dir.path())
        .env(KEY_VAR, KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // The baseline's batch is in progress: lines are being answered.
    while server.stats().batch_lines == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no batch started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(server.stats().batches_created, 1);
    let runs = run(&["runs", "--store", "shared.db"], dir.path());
    assert!(
        text(&runs.stdout).contains("waiting on batch batch_"),
        "{}",
        text(&runs.stdout)
    );
    let o = run_async(optimize(&["--resume"]), dir.path().into()).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = server.stats();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "completed");
    // The baseline's batch was re-attached to, not made again: one batch for it, one more for
    // each child scored on val.
    let children_on_val = r["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["val_score"].is_null())
        .count() as u64;
    assert_eq!(s.batches_created, 1 + children_on_val, "{s:?}");
    assert_eq!(s.repeated_student, 0, "{s:?}");
    let runs = run(&["runs", "--store", "shared.db"], dir.path());
    assert!(
        !text(&runs.stdout).contains("waiting on"),
        "{}",
        text(&runs.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_the_batch_running_and_batch_cancel_cancels_it() {
    let server = MockServer::start(MockConfig {
        batch_step: Duration::from_secs(20),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(
        dir.path(),
        &server.base_url(),
        1000,
        &student_at(&server.base_url(), true),
        "",
    );
    let out = dir.path().join("run");
    let child = Command::new(bin())
        .args(args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]))
        .current_dir(dir.path())
        .env(KEY_VAR, KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.stats().batches_created == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no batch created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("is still running at the provider"), "{err}");
    assert!(err.contains("left running"), "{err}");
    assert_eq!(server.stats().batches_cancelled, 0);
    let c = run(
        &[
            "batch",
            "cancel",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
    );
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(
        text(&c.stderr).contains("cancelled batch batch_"),
        "{}",
        text(&c.stderr)
    );
    assert_eq!(server.stats().batches_cancelled, 1);
    let again = run(
        &[
            "batch",
            "cancel",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
    );
    assert!(
        text(&again.stdout).contains("no batch waiting"),
        "{}",
        text(&again.stdout)
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_pool_survives_a_replica_killed_mid_run() {
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            MockServer::spawn(MockConfig {
                latency: Duration::from_millis(15),
                ..MockConfig::default()
            })
            .unwrap()
        })
        .collect();
    let teacher = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("\"{}\"", r.base_url()))
        .collect();
    let cfg = batch_config(
        dir.path(),
        &teacher.base_url(),
        600,
        &format!("base_urls = [{}]\nmax_concurrency = 4", urls.join(", ")),
        "",
    );
    let out = dir.path().join("run");
    let mut child = Command::new(bin())
        .args(args(&[
            "optimize",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--json",
        ]))
        .current_dir(dir.path())
        .env(KEY_VAR, KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while replicas[1].stats().student < 60 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the run ended ({status}) before the kill: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress: {:?} / teacher {:?}",
            replicas.iter().map(|r| r.stats()).collect::<Vec<_>>(),
            teacher.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replicas[1].kill();
    let killed_at = replicas[1].stats().student;
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "completed");
    let counts: Vec<u64> = replicas.iter().map(|r| r.stats().student).collect();
    assert_eq!(counts[1], killed_at, "nothing answered after the kill");
    assert!(
        counts[0] > 100 && counts[2] > 100,
        "the live replicas share the load: {counts:?}"
    );
    // Nothing paid twice: no request body was answered by two replicas (or twice by one).
    let mut all: Vec<u64> = replicas
        .iter()
        .flat_map(|r| r.answered_students())
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a request was answered twice");
    assert_eq!(
        r["usage"]["by_role"]["student"]["calls"].as_u64().unwrap(),
        n as u64 + r["usage"]["by_role"]["student"]["errors"].as_u64().unwrap()
    );
}
