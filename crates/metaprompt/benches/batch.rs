#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Whole-split scoring: a val split of 1,000, 10,000 and 30,000 rows on the live path (concurrency 64,
//! mock latency 50 ms) against the mock's Batch API, through the SQLite cache. Each case runs
//! in its own process, and the mock in another, so peak RSS is the client's alone. Prints
//! wall time, calls (live and batched) and peak RSS.
//!
//! The mock's batch takes three 300 ms steps whatever its size; a real provider's takes
//! minutes to hours. What this measures on the batch side is the client's cost: writing,
//! uploading, downloading and reading the lines, and its memory, which must not grow with the
//! number of rows.
//!
//! `cargo bench -p metaprompt --bench batch`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaprompt::core::{BatchExecutor, Prompt, Row};
use metaprompt::data::{BasicDataMapper, Dataset, Splits};
use metaprompt::engine::{BatchMode, DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::openai::OpenAiChat;
use metaprompt::store::SqliteStore;
use metaprompt_mock::{MockConfig, MockServer, peak_rss_mb};

const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 64;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The mock, as its own process: prints its base URL, serves until killed.
async fn serve() {
    let server = MockServer::start(MockConfig {
        latency: LATENCY,
        batch_step: Duration::from_millis(300),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    println!("{}", server.base_url());
    std::future::pending::<()>().await;
}

/// One case: scores a val of `n` rows, live or by batch; prints `wall calls batched rss`.
async fn case(base_url: &str, n: usize, batch: bool) {
    let student = OpenAiChat::builder("student")
        .base_url(base_url)
        .api_key("k");
    let executor: Arc<dyn BatchExecutor> = Arc::new(student.clone().build_batch(None).unwrap());
    let student = Arc::new(student.build().unwrap());
    let row = |i: usize| {
        let text = if i.is_multiple_of(2) {
            "claim your free prize"
        } else {
            "see you at dinner"
        };
        let label = if i.is_multiple_of(2) { "spam" } else { "ham" };
        Row::from_json(
            i.to_string(),
            serde_json::json!({"text": format!("{text} number {i}"), "label": label}),
        )
        .unwrap()
    };
    let splits = Splits {
        train: (0..40).map(row).collect(),
        val: (40..40 + n).map(row).collect(),
        test: Vec::new(),
        warnings: Vec::new(),
    };
    let all = Dataset::new(splits.val[..10].to_vec());
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &all,
    )
    .unwrap();
    let mut req = OptimizeRequest::new(
        student,
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Splits(splits),
        vec![Prompt::parse("Spam or ham?\n\n{text}").unwrap()],
    );
    req.config.concurrency = CONCURRENCY;
    req.config.batch = if batch {
        BatchMode::Always
    } else {
        BatchMode::Off
    };
    req.config.batch_poll_secs = 0.5;
    req.batch = vec![executor];
    let checked = req.check().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    let teacher = Arc::new(
        OpenAiChat::builder("teacher")
            .base_url(base_url)
            .api_key("k")
            .build()
            .unwrap(),
    );
    let opt = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .cache(Arc::new(store.clone()))
        .build()
        .unwrap();
    let prompt = Prompt::parse("Spam or ham?\n\n{text}").unwrap();
    let start = Instant::now();
    let score = opt.evaluate_prompt(&checked, &prompt, "val").await.unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(score.n, n);
    let s = &score.usage.by_role.student;
    println!(
        "{wall:.3} {} {} {:.1} {:.3}",
        s.calls,
        s.batched,
        peak_rss_mb(),
        score.score
    );
}

fn spawn_self(args: &[&str]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--serve-mock") {
        rt.block_on(serve());
        return;
    }
    if let Some(url) = arg("--case-url") {
        let n: usize = arg("--rows").unwrap().parse().unwrap();
        let batch = arg("--mode").as_deref() == Some("batch");
        rt.block_on(case(&url, n, batch));
        return;
    }
    println!(
        "val scoring through the SQLite cache; live: concurrency {CONCURRENCY}, mock latency {} ms; batch: the mock's Batch API (3 × 300 ms steps)",
        LATENCY.as_millis()
    );
    println!("rows    path   wall s  calls  batched  peak RSS MB  score");
    for n in [1_000usize, 10_000, 30_000] {
        for mode in ["live", "batch"] {
            let mut mock = spawn_self(&["--serve-mock"]);
            let mut url = String::new();
            BufReader::new(mock.stdout.take().unwrap())
                .read_line(&mut url)
                .unwrap();
            let out = spawn_self(&[
                "--case-url",
                url.trim(),
                "--rows",
                &n.to_string(),
                "--mode",
                mode,
            ])
            .wait_with_output()
            .unwrap();
            let _ = mock.kill();
            let _ = mock.wait();
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                println!("{n:>6}  {mode:<5}  failed: {line}");
                continue;
            }
            println!(
                "{n:>6}  {mode:<5}  {:>6}  {:>5}  {:>7}  {:>11}  {}",
                f[0], f[1], f[2], f[3], f[4]
            );
        }
    }
}
