#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The load scenario at a reduced size (the full size is `cargo bench -p metaprompt --bench
//! load`): a large val split at concurrency 64 through the SQLite cache completes with no
//! error, no deadlock and no SQLITE_BUSY, and the server sees exactly the configured
//! concurrency.

use std::sync::Arc;
use std::time::Duration;

use metaprompt::core::Row;
use metaprompt::data::{BasicDataMapper, Dataset, Splits};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::openai::OpenAiChat;
use metaprompt::store::SqliteStore;
use metaprompt_mock::{MockConfig, MockServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_val_split_at_concurrency_64_completes_cleanly() {
    let n = 1500;
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(10),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let student = Arc::new(
        OpenAiChat::builder("student")
            .base_url(server.base_url())
            .api_key("k")
            .max_concurrency(64)
            .build()
            .unwrap(),
    );
    let row = |i: usize| {
        Row::from_json(
            i.to_string(),
            serde_json::json!({"text": format!("message {i}"), "label": "ham"}),
        )
        .unwrap()
    };
    let splits = Splits {
        train: (0..40).map(row).collect(),
        val: (40..40 + n).map(row).collect(),
        test: Vec::new(),
        warnings: Vec::new(),
    };
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &Dataset::new(splits.val[..5].to_vec()),
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
    req.config.concurrency = 64;
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
        .build()
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(120), opt.optimize(req))
        .await
        .expect("no deadlock")
        .unwrap();
    assert_eq!(res.usage.student_calls, n as u64);
    assert_eq!(res.final_score, 1.0, "every item scored, none errored");
    assert_eq!(server.stats().max_in_flight, 64);
    assert_eq!(store.cache_stats().await.unwrap().entries, n as u64);
}
