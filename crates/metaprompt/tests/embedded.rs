#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end with the real SmolLM2 model as student and teacher: a small bundled dataset,
//! two rounds. Proof the whole chain runs for real (the model is fetched by CI).

use std::sync::Arc;

use metaprompt::core::ChatModel;
use metaprompt::core::run::StopReason;
use metaprompt::data::{BasicDataMapper, Dataset, LoadOptions, SplitConfig, load};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};
use metaprompt::llama::{LlamaChat, LlamaConfig, ModelLocator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_optimizes_a_small_task_end_to_end() {
    let path = ModelLocator::from_env(None)
        .find()
        .unwrap()
        .expect("run `cargo xtask fetch-model` first");
    let model: Arc<dyn ChatModel> = Arc::new(
        LlamaChat::load(
            path,
            LlamaConfig {
                n_parallel: 4,
                ctx_per_seq: 2048,
                ..LlamaConfig::default()
            },
        )
        .unwrap(),
    );
    let all = load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/sms.jsonl"),
        &LoadOptions::default(),
    )
    .unwrap();
    let rows = all.rows()[..12].to_vec();
    let dataset = Dataset::new(rows).with_label_fields(["label"]).unwrap();
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &dataset,
    )
    .unwrap();
    let mut req = OptimizeRequest::new(
        model.clone(),
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Dataset(
            dataset,
            SplitConfig {
                train: 0.5,
                val: 0.25,
                test: 0.25,
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
    req.task_description = "Decide whether an SMS message is spam.".into();
    req.config.num_rounds = 2;
    // One rewrite per round keeps the real inference short; the wide search is the engine
    // tests' business.
    req.config.proposals_per_round = 1;
    req.config.parents_per_round = 1;
    req.config.mutations = vec![metaprompt::engine::MutationKind::Rewrite];
    req.config.eval_subset_size = 6;
    req.student_params.max_tokens = Some(4);
    req.teacher_params.max_tokens = 320;
    req.config.teacher_input_budget = 3000;
    req.config.max_error_rate = 1.0;
    let res = MetaPromptOptimizer::builder()
        .teacher(model)
        .build()
        .unwrap()
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(res.stop_reason, StopReason::Completed);
    assert_eq!(res.history.len(), 2);
    for (i, r) in res.history.iter().enumerate() {
        assert_eq!(r.round, i as u32 + 1);
        assert!(r.failed || !r.candidate_prompt.is_empty());
        assert!(
            r.failed || r.candidate_prompt.contains("{text}"),
            "every kept rewrite has the input: {}",
            r.candidate_prompt
        );
    }
    assert!(res.final_score >= res.initial_score);
    assert!(res.usage.teacher_calls >= 2 && res.usage.student_calls >= 3);
    assert!(res.test_score.is_some());
    assert!(res.best_prompt.variables().contains(&"text"));
}
