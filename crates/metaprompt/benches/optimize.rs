#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! A whole optimization (5 rounds × 40 minibatch rows, val 40, test 40) against a local
//! OpenAI-compatible mock with 100 ms latency, with only the optimizer's `concurrency = 64` set
//! (the provider has no limit of its own). Prints wall time, calls by
//! kind, the critical-path bound (sequential steps × ceil(calls / concurrency) × latency) and
//! the framework's CPU time (the mock runs on its own threads, whose CPU time is excluded).
//!
//! `cargo bench -p metaprompt --bench optimize`

mod common;

use std::time::{Duration, Instant};

use common::{cpu_split, mock, model, request};
use metaprompt::engine::MetaPromptOptimizer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency = Duration::from_millis(100);
    let conc = 64usize;
    let base_url = mock(latency);
    let mut req = request(&base_url);
    req.config.num_rounds = 5;
    req.config.eval_subset_size = 40;
    req.config.concurrency = conc;
    let opt = MetaPromptOptimizer::builder()
        .teacher(model(&base_url, "teacher"))
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
