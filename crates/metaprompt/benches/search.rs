#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Parallel proposals: `proposals_per_round = 1` against 4 for the same number of children
//! (so about the same number of metric calls), against the local mock with 100 ms latency and
//! `concurrency = 64`. Prints wall time, student calls and how many candidates reached val.
//!
//! `cargo bench -p metaprompt --bench search`

mod common;

use std::time::{Duration, Instant};

use common::{mock, model, request};
use metaprompt::engine::{MetaPromptOptimizer, MutationKind};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency = Duration::from_millis(100);
    let base_url = mock(latency);
    println!(
        "mock latency {} ms, concurrency 64, 120 train / 40 val / 40 test rows, minibatch 40",
        latency.as_millis()
    );
    println!("children  proposals/round  rounds  wall s  student calls  val-scored  val");
    for children in [8u32, 16] {
        for per_round in [1u32, 4] {
            let mut req = request(&base_url);
            req.config.num_rounds = children / per_round;
            req.config.proposals_per_round = per_round as usize;
            req.config.eval_subset_size = 40;
            req.config.concurrency = 64;
            req.config.mutations = vec![MutationKind::Rewrite];
            let opt = MetaPromptOptimizer::builder()
                .teacher(model(&base_url, "teacher"))
                .build()
                .unwrap();
            let start = Instant::now();
            let res = opt.optimize(req).await.unwrap();
            let wall = start.elapsed().as_secs_f64();
            let scored = res.history.iter().filter(|r| r.val_score.is_some()).count();
            println!(
                "{children:>8}  {per_round:>15}  {:>6}  {wall:>6.2}  {:>13}  {scored:>10}  {:.3} -> {:.3}",
                children / per_round,
                res.usage.student_calls,
                res.initial_score,
                res.final_score
            );
        }
    }
}
