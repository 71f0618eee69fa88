#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Helpers shared by the command-line tests.

pub(crate) mod scale;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub(crate) const KEY_VAR: &str = "MP_TEST_KEY";
pub(crate) const KEY: &str = "sk-cli-test-planted-secret-123456";

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_metaprompt"))
}

pub(crate) fn sms() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/sms.jsonl")
}

pub(crate) fn config(dir: &Path, base_url: &str, extra_optimizer: &str, prompt: &str) -> PathBuf {
    config_with(dir, base_url, extra_optimizer, prompt, "")
}

/// A config whose student and teacher sections get `extra_model` lines too.
pub(crate) fn config_with(
    dir: &Path,
    base_url: &str,
    extra_optimizer: &str,
    prompt: &str,
    extra_model: &str,
) -> PathBuf {
    let extra_model = if extra_model.is_empty() {
        String::new()
    } else {
        format!("\n{extra_model}")
    };
    std::fs::copy(sms(), dir.join("sms.jsonl")).unwrap();
    let text = format!(
        r#"task_description = "Decide whether an SMS message is spam."
initial_prompts = [{prompt:?}]

[dataset]
path = "sms.jsonl"
split = {{ train = 0.5, val = 0.25, test = 0.25 }}
seed = 7
label_fields = ["label"]

[student]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{base_url}"
api_key_env = "{KEY_VAR}"
temperature = 0.0
max_tokens = 16{extra_model}

[teacher]
provider = "openai"
model = "gpt-4o"
base_url = "{base_url}"
api_key_env = "{KEY_VAR}"{extra_model}

[evaluator]
kind = "exact_match"
normalize = true

[mapping]
response = "generated_output"
expected_response = "label"

[optimizer]
num_rounds = 3
eval_subset_size = 12
concurrency = 4
seed = 7
{extra_optimizer}
"#
    );
    let path = dir.join("sms.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) const PROMPT: &str = "Is this message spam or ham? Answer with one word.\n\n{text}";

pub(crate) fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env(KEY_VAR, KEY)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts the binary with the test key set: stdout dropped, stderr kept for [`wait_until`]'s
/// message or the caller's `wait_with_output`.
pub(crate) fn spawn<I, S>(args: I, cwd: &Path) -> Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env(KEY_VAR, KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits, while the run in `child` goes on, until `ready` holds (checked every 5 ms). Panics
/// naming `what` when the run ends first (with its stderr, if piped) or after 60 s.
pub(crate) async fn wait_until(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(e, &mut err);
            }
            panic!("the run ended ({status}) before {what}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {what} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The report is self-contained and renders in a headless browser when one is installed.
pub(crate) fn html_renders(path: &Path) {
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    for external in ["<script src", "<link ", "http://", "https://"] {
        let body_refs = html.matches(external).count();
        let svg_ns = if external == "http://" {
            html.matches("http://www.w3.org/2000/svg").count()
        } else {
            0
        };
        assert_eq!(
            body_refs, svg_ns,
            "external reference {external:?} in the report"
        );
    }
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if let Some(browser) = chromium {
        let shot = path.with_file_name("report.png");
        let profile = tempfile::tempdir().unwrap();
        let st = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--window-size=1200,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", path.display()))
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", text(&st.stderr));
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "the screenshot is empty"
        );
    }
}
