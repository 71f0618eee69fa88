#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Load: a val split of 10,000 rows at concurrency 64 against the mock with 50 ms latency,
//! through the SQLite cache. Prints wall time against the ideal, and peak RSS.
//!
//! `cargo bench -p metaprompt --bench load` (`METAPROMPT_LOAD_ROWS` for another size)

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaprompt::core::Row;
use metaprompt::data::{BasicDataMapper, Dataset, Splits};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::openai::OpenAiChat;
use metaprompt::store::SqliteStore;
use metaprompt_mock::{MockConfig, MockServer, peak_rss_mb};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("METAPROMPT_LOAD_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (conc, latency) = (64usize, Duration::from_millis(50));
    let server = MockServer::start(MockConfig {
        latency,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let student = Arc::new(
        OpenAiChat::builder("student")
            .base_url(server.base_url())
            .api_key("k")
            .max_concurrency(conc)
            .build()
            .unwrap(),
    );
    let row = |i: usize| {
        Row::from_json(i.to_string(), serde_json::json!({"text": format!("claim your free prize number {i}"), "label": "spam"})).unwrap()
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
        vec![metaprompt::core::Prompt::parse("Spam or ham?\n\n{text}").expect("prompt")],
    );
    req.config.num_rounds = 0;
    req.config.concurrency = conc;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("load.db")).unwrap();
    let teacher = Arc::new(
        OpenAiChat::builder("teacher")
            .base_url(server.base_url())
            .api_key("k")
            .build()
            .unwrap(),
    );
    let opt = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .cache(Arc::new(store.clone()))
        .checkpointer(Arc::new(store))
        .build()
        .unwrap();
    let start = Instant::now();
    let res = opt.optimize(req).await.unwrap();
    let wall = start.elapsed().as_secs_f64();
    let ideal = n.div_ceil(conc) as f64 * latency.as_secs_f64();
    println!(
        "val {n} rows, concurrency {conc}, latency {} ms",
        latency.as_millis()
    );
    println!(
        "wall {wall:.2} s, ideal {ideal:.2} s, ratio {:.3}; max in flight at the server {}",
        wall / ideal,
        server.stats().max_in_flight
    );
    println!(
        "student calls {}, val score {:.3}",
        res.usage.student_calls, res.final_score
    );
    println!("peak RSS {:.1} MB", peak_rss_mb());
}
