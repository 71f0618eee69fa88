#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The measurement behind the search's defaults (docs/concepts.md, "Choosing the defaults").
//!
//! Two tasks where the truth is known, over many seeds:
//! - the simulated task: a teacher that adds helpful or harmful features, at an equal budget
//!   of calls (`max_llm_calls`): how often the run reaches the best reachable candidate;
//! - the null task: student answers hashed from the request (no prompt is better than
//!   another), 10 rounds: how often the best prompt is not the initial one, and how often the
//!   run claims a significant gain on test.
//!
//! `cargo bench -p metaprompt-engine --bench defaults` (`-- --seeds N` for fewer seeds).

#[path = "../tests/common/mod.rs"]
mod common;

use common::sim::{
    kept_the_initial, null_task, reached_the_best, simulated_task, simulated_teacher,
};
use metaprompt_engine::{
    Acceptance, EditMode, MetaPromptOptimizer, MutationKind, OptimizeRequest, OptimizeResult,
    OptimizerConfig,
};

use MutationKind::{Demos, Merge, Rewrite};

/// One setting of the search knobs; `None` keeps the default.
#[derive(Clone)]
struct Setting {
    name: &'static str,
    proposals: Option<usize>,
    parents: Option<usize>,
    mutations: Option<Vec<MutationKind>>,
    confidence: Option<f64>,
    acceptance: Option<Acceptance>,
    edit: Option<EditMode>,
}

impl Setting {
    fn new(name: &'static str) -> Self {
        Setting {
            name,
            proposals: None,
            parents: None,
            mutations: None,
            confidence: None,
            acceptance: None,
            edit: None,
        }
    }
    fn wide(mut self, proposals: usize, parents: usize, mutations: &[MutationKind]) -> Self {
        self.proposals = Some(proposals);
        self.parents = Some(parents);
        self.mutations = Some(mutations.to_vec());
        // The level the search rows are compared at (`accept` changes it).
        self.acceptance = Some(Acceptance::Paired);
        self.confidence = Some(0.9);
        self
    }
    fn edit(mut self, edit: EditMode) -> Self {
        self.edit = Some(edit);
        self
    }
    fn accept(mut self, acceptance: Acceptance, confidence: f64) -> Self {
        self.acceptance = Some(acceptance);
        self.confidence = Some(confidence);
        self
    }
    fn apply(&self, r: &mut OptimizeRequest) {
        let c = &mut r.config;
        c.proposals_per_round = self.proposals.unwrap_or(c.proposals_per_round);
        c.parents_per_round = self.parents.unwrap_or(c.parents_per_round);
        if let Some(m) = &self.mutations {
            c.mutations = m.clone();
        }
        c.confidence = self.confidence.unwrap_or(c.confidence);
        c.acceptance = self.acceptance.unwrap_or(c.acceptance);
        c.edit = self.edit.unwrap_or(c.edit);
    }
    fn describe(&self) -> String {
        let mut r = simulated_task(0);
        r.config = OptimizerConfig::default();
        self.apply(&mut r);
        let c = r.config;
        format!(
            "{} × {} parents, {}, {} at {}, {} edits",
            c.proposals_per_round,
            c.parents_per_round,
            c.mutations
                .iter()
                .map(|m| format!("{m:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join("+"),
            match c.acceptance {
                Acceptance::Paired => "paired",
                Acceptance::PairedUncorrected => "paired_uncorrected",
                Acceptance::Mean => "mean",
            },
            c.confidence,
            format!("{:?}", c.edit).to_lowercase()
        )
    }
}

fn settings() -> Vec<Setting> {
    let old = Setting::new("old defaults")
        .wide(1, 1, &[Rewrite])
        .accept(Acceptance::PairedUncorrected, 0.9)
        .edit(EditMode::Whole);
    vec![
        Setting::new("defaults"),
        Setting::new("").edit(EditMode::Whole),
        old,
        Setting::new("").wide(1, 1, &[Rewrite]),
        Setting::new("").wide(2, 1, &[Rewrite, Demos, Merge]),
        Setting::new("").wide(2, 2, &[Rewrite, Demos, Merge]),
        Setting::new("").wide(4, 1, &[Rewrite, Demos, Merge]),
        Setting::new("").wide(4, 2, &[Rewrite, Demos, Merge]),
        Setting::new("").wide(4, 4, &[Rewrite, Demos, Merge]),
        Setting::new("").wide(2, 2, &[Rewrite, Demos]),
        Setting::new("").wide(2, 2, &[Rewrite, Rewrite, Demos, Merge]),
        Setting::new("").wide(2, 2, &[Rewrite]),
        Setting::new("")
            .wide(2, 2, &[Rewrite, Demos, Merge])
            .accept(Acceptance::Paired, 0.95),
        Setting::new("")
            .wide(2, 2, &[Rewrite, Demos, Merge])
            .accept(Acceptance::Paired, 0.8),
        Setting::new("")
            .wide(2, 2, &[Rewrite, Demos, Merge])
            .accept(Acceptance::PairedUncorrected, 0.9),
        Setting::new("")
            .wide(4, 2, &[Rewrite, Demos, Merge])
            .accept(Acceptance::PairedUncorrected, 0.9),
    ]
}

async fn run(seed: u64, req: OptimizeRequest) -> OptimizeResult {
    MetaPromptOptimizer::builder()
        .teacher(simulated_teacher(seed))
        .build()
        .unwrap()
        .optimize(req)
        .await
        .unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let budget = 1_500u64;
    let sim_seeds = seeds.clamp(1, 40);
    println!(
        "simulated task: {sim_seeds} seeds, budget {budget} calls (max_llm_calls); null task: {seeds} seeds, 10 rounds"
    );
    println!(
        "| setting | search | simulated: best reached | simulated: calls | null: best ≠ initial | null: improved on test | null: student calls |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in settings() {
        let (mut reached, mut calls) = (0, 0u64);
        for seed in 1..=sim_seeds {
            let mut r = simulated_task(seed);
            s.apply(&mut r);
            r.config.num_rounds = 200;
            r.config.max_llm_calls = Some(budget);
            let res = run(seed, r).await;
            reached += usize::from(reached_the_best(&res));
            calls += res.usage.student_calls + res.usage.teacher_calls;
        }
        let (mut promoted, mut claimed, mut null_calls) = (0, 0, 0u64);
        for seed in 1..=seeds {
            let mut r = null_task(seed);
            s.apply(&mut r);
            r.config.num_rounds = 10;
            let res = run(seed, r).await;
            promoted += usize::from(!kept_the_initial(&res));
            claimed += usize::from(res.test_delta.is_some_and(|d| d.significant));
            null_calls += res.usage.student_calls;
        }
        println!(
            "| {} | {} | {reached}/{sim_seeds} | {} | {promoted}/{seeds} ({:.1}%) | {claimed}/{seeds} ({:.1}%) | {} |",
            s.name,
            s.describe(),
            calls / sim_seeds,
            100.0 * promoted as f64 / seeds as f64,
            100.0 * claimed as f64 / seeds as f64,
            null_calls / seeds,
        );
    }
}
