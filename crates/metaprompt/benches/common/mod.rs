//! Set-up shared by the benches that run a whole optimization against the local mock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use metaprompt::core::{Prompt, Row};
use metaprompt::data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt::engine::{DataSource, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::openai::OpenAiChat;
use metaprompt_mock::{MockConfig, MockServer};

/// CPU seconds from `schedstat` (nanosecond resolution) summed over this process's threads:
/// (the framework's, the mock's). The mock's threads are those named `mock…`.
pub(crate) fn cpu_split() -> (f64, f64) {
    let mut split = (0.0, 0.0);
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let cpu = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9;
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.starts_with("mock") {
            split.1 += cpu;
        } else {
            split.0 += cpu;
        }
    }
    split
}

/// A mock on its own threads answering after `latency`; returns its base URL.
pub(crate) fn mock(latency: Duration) -> String {
    MockServer::spawn(MockConfig {
        latency,
        ..MockConfig::default()
    })
    .expect("mock server")
    .base_url()
}

/// A client of the mock, with no concurrency limit of its own.
pub(crate) fn model(base_url: &str, name: &str) -> Arc<OpenAiChat> {
    Arc::new(
        OpenAiChat::builder(name)
            .base_url(base_url)
            .api_key("k")
            .build()
            .expect("client"),
    )
}

/// 200 SMS-like rows split 60/20/20, the mock's student, exact match, a plain first prompt.
pub(crate) fn request(base_url: &str) -> OptimizeRequest {
    let words = [
        "win a free prize now",
        "see you at dinner",
        "claim your cash",
        "running late, sorry",
    ];
    let rows: Vec<Row> = (0..200)
        .map(|i| {
            let w = words[i % 4];
            let label = if i % 2 == 0 { "spam" } else { "ham" };
            Row::from_json(
                i.to_string(),
                serde_json::json!({"text": format!("{w} #{i}"), "label": label}),
            )
            .expect("row")
        })
        .collect();
    let ds = Dataset::new(rows)
        .with_label_fields(["label"])
        .expect("labels");
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &ds,
    )
    .expect("mapper");
    OptimizeRequest::new(
        model(base_url, "student"),
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Dataset(
            ds,
            SplitConfig {
                train: 0.6,
                val: 0.2,
                test: 0.2,
                seed: 1,
                stratify_by: None,
            },
        ),
        vec![
            Prompt::parse("Is this message spam or ham? Answer with one word.\n\n{text}")
                .expect("prompt"),
        ],
    )
}
