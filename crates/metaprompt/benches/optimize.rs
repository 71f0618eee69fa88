#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! A whole optimization (5 rounds × 40 minibatch rows, val 40, test 40) against a local
//! OpenAI-compatible mock with 100 ms latency, with only the optimizer's `concurrency = 64` set
//! (the provider has no limit of its own). Prints wall time, calls by
//! kind, the critical-path bound (sequential steps × ceil(calls / concurrency) × latency) and
//! the framework's CPU time (the mock runs on its own threads, whose CPU time is excluded).
//!
//! `cargo bench -p metaprompt --bench optimize`

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaprompt::core::Row;
use metaprompt::data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::openai::OpenAiChat;
use metaprompt_mock::{MockConfig, MockServer};

/// CPU seconds from `schedstat` (nanosecond resolution) summed over this process's threads:
/// (the framework's, the mock's). The mock's threads are those named `mock…`.
fn cpu_split() -> (f64, f64) {
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency = Duration::from_millis(100);
    let conc = 64usize;
    let base_url = MockServer::spawn(MockConfig {
        latency,
        ..MockConfig::default()
    })
    .unwrap()
    .base_url();
    let model = |name: &str| {
        Arc::new(
            OpenAiChat::builder(name)
                .base_url(base_url.clone())
                .api_key("k")
                .build()
                .unwrap(),
        )
    };
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
            .unwrap()
        })
        .collect();
    let ds = Dataset::new(rows).with_label_fields(["label"]).unwrap();
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &ds,
    )
    .unwrap();
    let mut req = OptimizeRequest::new(
        model("student"),
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
            metaprompt::core::Prompt::parse(
                "Is this message spam or ham? Answer with one word.\n\n{text}",
            )
            .expect("prompt"),
        ],
    );
    req.config.num_rounds = 5;
    req.config.eval_subset_size = 40;
    req.config.concurrency = conc;
    let opt = MetaPromptOptimizer::builder()
        .teacher(model("teacher"))
        .build()
        .unwrap();
    let (cpu0, mock0) = cpu_split();
    let start = Instant::now();
    let res = opt.optimize(req).await.unwrap();
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, mock1) = cpu_split();
    let (cpu, mock_used) = (cpu1 - cpu0, mock1 - mock0);
    let steps = |calls: usize| calls.div_ceil(conc) as f64;
    let (val, test) = (res.splits.1, res.splits.2);
    let mut bound_steps = steps(val); // baseline
    // Every teacher call is a sequential step (re-asks included).
    bound_steps += res.usage.teacher_calls as f64;
    for r in &res.history {
        bound_steps += steps(40); // the parent on the minibatch
        if r.minibatch_score.is_some() {
            bound_steps += steps(40);
        }
        if r.val_score.is_some() {
            bound_steps += steps(val);
        }
    }
    bound_steps += steps(test)
        * if res.best_prompt == res.initial_prompt {
            1.0
        } else {
            2.0
        };
    let bound = bound_steps * latency.as_secs_f64();
    println!(
        "5 rounds x 40 rows, val {val}, test {test}, concurrency {conc}, latency {} ms",
        latency.as_millis()
    );
    println!(
        "calls: student {} / teacher {}",
        res.usage.student_calls, res.usage.teacher_calls
    );
    println!(
        "wall {wall:.2} s, critical-path bound {bound:.2} s, ratio {:.3}",
        wall / bound
    );
    println!(
        "framework CPU {cpu:.3} s = {:.2}% of wall (the mock's own {mock_used:.3} s excluded)",
        cpu / wall * 100.0
    );
    println!("val {:.3} -> {:.3}", res.initial_score, res.final_score);
}
