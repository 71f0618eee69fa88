#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Parallel proposals: `proposals_per_round = 1` against 4, against the local mock with 100 ms
//! latency and `concurrency = 64`: first for the same number of children, then for the same
//! budget of calls (`max_llm_calls`), where the run stops when the budget is spent. Prints wall
//! time, student calls, the children proposed and how many candidates reached val.
//!
//! `cargo bench -p metaprompt --bench search`

mod common;

use std::time::{Duration, Instant};

use common::{mock, model, request};
use metaprompt::engine::{MetaPromptOptimizer, MutationKind, OptimizeRequest};

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
            let (wall, res) = run(&base_url, req).await;
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
    // The same budget of metric calls: as many rounds as the budget allows.
    let budget = 1_200u64;
    println!();
    println!(
        "call budget {budget} (max_llm_calls: student and teacher calls; the run stops when it is spent)"
    );
    println!("proposals/round  rounds  wall s  student calls  children  val-scored  stopped");
    for per_round in [1u32, 4] {
        let mut req = request(&base_url);
        req.config.num_rounds = 64 / per_round;
        req.config.proposals_per_round = per_round as usize;
        req.config.max_llm_calls = Some(budget);
        let (wall, res) = run(&base_url, req).await;
        let scored = res.history.iter().filter(|r| r.val_score.is_some()).count();
        let rounds = res.history.iter().map(|r| r.round).max().unwrap_or(0);
        println!(
            "{per_round:>15}  {rounds:>6}  {wall:>6.2}  {:>13}  {:>8}  {scored:>10}  {}",
            res.usage.student_calls,
            res.history.len(),
            res.stop_reason
        );
    }
    // The old defaults (one rewrite per round, each paired test at the full level) against
    // today's (engine defaults), at the same budget of calls.
    println!();
    println!("old defaults vs defaults, call budget {budget}, concurrency 16 (the default)");
    println!("setting        rounds  wall s  student calls  children  val-scored  val");
    for old in [true, false] {
        let mut req = request(&base_url);
        req.config = metaprompt::engine::OptimizerConfig::default();
        req.config.num_rounds = 64;
        req.config.max_llm_calls = Some(budget);
        if old {
            req.config.proposals_per_round = 1;
            req.config.parents_per_round = 1;
            req.config.mutations = vec![MutationKind::Rewrite];
            req.config.acceptance = metaprompt::engine::Acceptance::PairedUncorrected;
        }
        let opt = MetaPromptOptimizer::builder()
            .teacher(model(&base_url, "teacher"))
            .build()
            .unwrap();
        let start = Instant::now();
        let res = opt.optimize(req).await.unwrap();
        let wall = start.elapsed().as_secs_f64();
        let scored = res.history.iter().filter(|r| r.val_score.is_some()).count();
        let rounds = res.history.iter().map(|r| r.round).max().unwrap_or(0);
        println!(
            "{:<13}  {rounds:>6}  {wall:>6.2}  {:>13}  {:>8}  {scored:>10}  {:.3} -> {:.3}",
            if old { "old defaults" } else { "defaults" },
            res.usage.student_calls,
            res.history.len(),
            res.initial_score,
            res.final_score
        );
    }
}

/// One run of `req` with rewrites only, a minibatch of 40 and 64 calls in flight.
async fn run(
    base_url: &str,
    mut req: OptimizeRequest,
) -> (f64, metaprompt::engine::OptimizeResult) {
    req.config.eval_subset_size = 40;
    req.config.concurrency = 64;
    req.config.mutations = vec![MutationKind::Rewrite];
    let opt = MetaPromptOptimizer::builder()
        .teacher(model(base_url, "teacher"))
        .build()
        .unwrap();
    let start = Instant::now();
    let res = opt.optimize(req).await.unwrap();
    (start.elapsed().as_secs_f64(), res)
}
