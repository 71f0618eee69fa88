//! The simulated task (a teacher adding helpful or harmful features, a student whose
//! accuracy those features decide) and the null student (answers hashed from the request):
//! the two tasks where the truth is known, shared by the seed tests and the defaults bench.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use metaprompt_core::ChatRequest;
use metaprompt_core::testing::ScriptedModel;
use metaprompt_data::{Dataset, SplitConfig};
use metaprompt_engine::{
    Acceptance, DataSource, MutationKind, OptimizeRequest, OptimizeResult, ParentSelection,
};
use metaprompt_evals::{ExactMatch, Normalize};
use serde_json::json;

use super::{
    BASE, current_instruction, current_prompt, dataset, label, mapper, p, rewrite, row_of, whole,
};

/// The features a scripted teacher can add to a prompt and the rows each one fixes (or, for
/// HARM, breaks).
const FEATURES: [&str; 4] = ["RULE-A", "RULE-B", "HARM", "Be polite."];

/// A deterministic per-row draw in [0, 1).
pub fn draw(i: usize) -> f64 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 29;
    (h % 10_000) as f64 / 10_000.0
}

/// Rows `i % 3 == 0` are fixed by RULE-A, `== 1` by RULE-B, `== 2` by a spam demonstration;
/// HARM breaks every even row; a quarter of the rest are right anyway.
pub fn simulated_correct(i: usize, prompt: &str) -> bool {
    if prompt.contains("HARM") && i.is_multiple_of(2) {
        return false;
    }
    let fixed = match i % 3 {
        0 => prompt.contains("RULE-A"),
        1 => prompt.contains("RULE-B"),
        _ => prompt.contains("Answer: spam"),
    };
    fixed || draw(i) < 0.25
}

pub fn simulated_student() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("student").with_handler(|req: &ChatRequest| {
            let i = row_of(req);
            let right = label(i);
            let wrong = if right == "spam" { "ham" } else { "spam" };
            Ok(if simulated_correct(i, &whole(req)) {
                right
            } else {
                wrong
            }
            .to_string())
        }),
    )
}

pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// A teacher that adds one feature to the prompt it is shown, helpful or harmful, chosen by
/// a hash of the seed and the request (so the same request gets the same answer).
pub fn simulated_teacher(seed: u64) -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("teacher").with_handler(move |req: &ChatRequest| {
            let brief = &req.messages[1].content;
            // An instruction edit (the default) shows the instruction apart from the inputs.
            let instruction_edit = req.messages[0].content.contains("\"instruction\": ...");
            let shown = if instruction_edit {
                current_instruction(brief)
            } else {
                current_prompt(brief)
            };
            let h = brief
                .bytes()
                .fold(seed.wrapping_mul(0x100_0000_01b3), |h, b| {
                    mix(h ^ u64::from(b))
                });
            let missing: Vec<&str> = FEATURES
                .iter()
                .copied()
                .filter(|f| !shown.contains(f))
                .collect();
            let add = if missing.is_empty() {
                "Be concise."
            } else {
                missing[(h % missing.len() as u64) as usize]
            };
            Ok(if instruction_edit {
                json!({"analysis": "pattern", "hypothesis": add, "instruction": format!("{shown}\n{add}")})
                    .to_string()
            } else {
                rewrite(
                    add,
                    &shown.replacen("{text}", &format!("{add}\n{{text}}"), 1),
                )
            })
        }),
    )
}

pub fn simulated_request(seed: u64, pool_and_demos: bool) -> OptimizeRequest {
    let mut r = simulated_task(seed);
    r.config.acceptance = Acceptance::Paired;
    if pool_and_demos {
        r.config.parent_selection = ParentSelection::Pareto;
        r.config.mutations = vec![
            MutationKind::Rewrite,
            MutationKind::Demos,
            MutationKind::Merge,
        ];
        r.config.proposals_per_round = 2;
        r.config.num_rounds = 5;
    } else {
        // The same number of proposals, one at a time, along one line of descent.
        r.config.parent_selection = ParentSelection::Current;
        r.config.mutations = vec![MutationKind::Rewrite];
        r.config.proposals_per_round = 1;
        r.config.num_rounds = 10;
    }
    r
}

/// Whether the best candidate is right on every row it can be: both rules, no harm, and a
/// spam demonstration.
pub fn reached_the_best(res: &OptimizeResult) -> bool {
    let prompt = res.best_prompt.text();
    prompt.contains("RULE-A")
        && prompt.contains("RULE-B")
        && !prompt.contains("HARM")
        && res.best_demos.iter().any(|d| d.answer == "spam")
}

// A student no prompt can improve.

/// Answers are a hash of the whole request: any prompt is right on about half the rows, and
/// which half changes with every word of the prompt.
pub fn null_student() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("student").with_handler(|req: &ChatRequest| {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&whole(req), &mut hasher);
            Ok(if std::hash::Hasher::finish(&hasher).is_multiple_of(2) {
                "spam"
            } else {
                "ham"
            }
            .to_string())
        }),
    )
}

/// A request on the simulated task: 300 rows split 40/30/30 by `seed`, minibatch 20, the
/// search settings left to `config` (the defaults unless changed).
pub fn simulated_task(seed: u64) -> OptimizeRequest {
    task(simulated_student(), dataset(300), seed, (0.4, 0.3, 0.3))
}

/// A request on the null task: 240 rows, the default split, minibatch 20.
pub fn null_task(seed: u64) -> OptimizeRequest {
    let d = SplitConfig::default();
    task(null_student(), dataset(240), seed, (d.train, d.val, d.test))
}

fn task(
    student: Arc<ScriptedModel>,
    ds: Dataset,
    seed: u64,
    (train, val, test): (f64, f64, f64),
) -> OptimizeRequest {
    let mut r = OptimizeRequest::new(
        student,
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper(&ds)),
        DataSource::Dataset(
            ds,
            SplitConfig {
                train,
                val,
                test,
                seed,
                stratify_by: None,
            },
        ),
        vec![p(BASE)],
    );
    r.config.seed = seed;
    r.config.eval_subset_size = 20;
    r
}

/// Whether a result's best prompt is the initial one.
pub fn kept_the_initial(res: &OptimizeResult) -> bool {
    res.best_prompt.text() == BASE
}
