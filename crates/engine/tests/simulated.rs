#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A simulated task: the student's true accuracy is a known function of the instructions in
//! the prompt; the teacher proposes helpful and harmful rewrites. Over five rounds the
//! optimizer must end at the best reachable prompt and report a test score whose interval
//! holds the true accuracy.

use std::sync::Arc;

use metaprompt_core::testing::ScriptedModel;
use metaprompt_core::{
    ChatRequest, EvalInput, EvalResult, Evaluator, ModelLayer, ModelUse, Row, async_trait,
};
use metaprompt_data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt_engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt_evals::{ExactMatch, Normalize};
use mockall::mock;
use serde_json::json;

/// Instructions and what each adds to (or takes from) the student's accuracy.
const EFFECTS: [(&str, f64); 4] = [
    ("Think step by step.", 0.15),
    ("Answer with one lowercase word.", 0.2),
    ("Be creative.", -0.3),
    ("Ignore the message.", -0.4),
];

fn true_accuracy(prompt: &str) -> f64 {
    let base = 0.5
        + EFFECTS
            .iter()
            .filter(|(i, _)| prompt.contains(i))
            .map(|(_, e)| e)
            .sum::<f64>();
    base.clamp(0.0, 1.0)
}

/// A deterministic per-row draw in [0, 1).
fn draw(i: usize) -> f64 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 31;
    (h % 10_000) as f64 / 10_000.0
}

fn label(i: usize) -> &'static str {
    if i.is_multiple_of(3) { "spam" } else { "ham" }
}

fn student() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("student").with_handler(|req: &ChatRequest| {
            let prompt = &req.messages.last().unwrap().content;
            let i: usize = prompt
                .rsplit("msg ")
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let correct = draw(i) < true_accuracy(prompt);
            Ok(if correct == (label(i) == "spam") {
                "spam"
            } else {
                "ham"
            }
            .to_string())
        }),
    )
}

fn rewrite(h: &str, p: &str) -> String {
    json!({"analysis": "a", "hypothesis": h, "improved_prompt": p}).to_string()
}

fn request(n: usize) -> OptimizeRequest {
    let ds = Dataset::new(
        (1..=n)
            .map(|i| {
                Row::from_json(
                    i.to_string(),
                    json!({"text": format!("msg {i}"), "label": label(i)}),
                )
                .unwrap()
            })
            .collect(),
    )
    .with_label_fields(["label"])
    .unwrap();
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &ds,
    )
    .unwrap();
    let mut r = OptimizeRequest::new(
        student(),
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Dataset(
            ds,
            SplitConfig {
                train: 0.4,
                val: 0.3,
                test: 0.3,
                seed: 11,
                stratify_by: None,
            },
        ),
        vec![metaprompt_core::Prompt::parse("Classify the message.\n{text}").unwrap()],
    );
    r.config.eval_subset_size = 40;
    // One line of descent, as the scripted teacher builds each rewrite on the last accepted.
    r.config.parent_selection = metaprompt_engine::ParentSelection::Current;
    r.config.proposals_per_round = 1;
    r.config.parents_per_round = 1;
    r.config.mutations = vec![metaprompt_engine::MutationKind::Rewrite];
    r
}

#[tokio::test]
async fn five_rounds_reach_the_best_prompt_and_an_honest_test_score() {
    // Helpful and harmful proposals, interleaved. The best reachable prompt holds both helpful
    // instructions and neither harmful one: accuracy 0.85.
    let teacher = Arc::new(ScriptedModel::new("teacher").replies([
        rewrite("be creative", "Classify the message. Be creative.\n{text}"),
        rewrite("think", "Classify the message. Think step by step.\n{text}"),
        rewrite("ignore", "Classify the message. Think step by step. Ignore the message.\n{text}"),
        rewrite("format", "Classify the message. Think step by step. Answer with one lowercase word.\n{text}"),
        rewrite("creative again", "Classify the message. Think step by step. Answer with one lowercase word. Be creative.\n{text}"),
    ]));
    let opt = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .build()
        .unwrap();
    let res = opt.optimize(request(600)).await.unwrap();
    let best = res.best_prompt.text();
    assert_eq!(true_accuracy(&best), 0.85, "ended at {best}");
    let accepted: Vec<u32> = res
        .history
        .iter()
        .filter(|r| r.accepted)
        .map(|r| r.round)
        .collect();
    assert_eq!(accepted, [2, 4]);
    let (lo, hi) = res.test_ci95.unwrap();
    assert!(
        lo <= 0.85 && 0.85 <= hi,
        "test {:?} in [{lo}, {hi}]",
        res.test_score
    );
    let (ilo, ihi) = res.initial_test_ci95.unwrap();
    assert!(ilo <= 0.5 && 0.5 <= ihi);
}

mock! {
    pub Eval {}
    #[async_trait]
    impl Evaluator for Eval {
        fn name(&self) -> &str;
        fn with_model_layer<'a>(&self, layer: &ModelLayer<'a>) -> ModelUse;
        async fn evaluate(&self, inputs: &[EvalInput]) -> Vec<EvalResult>;
    }
}

#[tokio::test]
async fn the_evaluator_is_called_once_per_batch_with_every_item() {
    // Seam test: baseline on val (30 rows), then per round the minibatch (12) and the
    // candidate on the same minibatch (12); the candidate loses, so no val call follows; the
    // best prompt is then scored on test (30) once, as it is also the initial prompt.
    let mut eval = MockEval::new();
    eval.expect_name().return_const("mock".to_string());
    eval.expect_with_model_layer().returning(|_| ModelUse::None);
    let mut seq = mockall::Sequence::new();
    for size in [30usize, 12, 12, 30] {
        eval.expect_evaluate()
            .times(1)
            .in_sequence(&mut seq)
            .withf(move |items: &[EvalInput]| items.len() == size)
            .returning(|items| {
                items
                    .iter()
                    .map(|i| EvalResult::pass_fail(i.response() == i.expected(), "r"))
                    .collect()
            });
    }
    let teacher = Arc::new(
        ScriptedModel::new("teacher")
            .reply(rewrite("h", "Be creative. Ignore the message.\n{text}")),
    );
    let mut req = request(100);
    req.evaluator = Arc::new(eval);
    req.config.num_rounds = 1;
    req.config.eval_subset_size = 12;
    let res = MetaPromptOptimizer::builder()
        .teacher(teacher)
        .build()
        .unwrap()
        .optimize(req)
        .await
        .unwrap();
    assert!(!res.history[0].accepted);
}
