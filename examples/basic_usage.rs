//! The Python original's basic usage, line by line:
//!
//! ```python
//! teacher = LiteLLMGenerator(model="gpt-4o", prompt_template="{prompt}")
//! optimizer = MetaPromptOptimizer(teacher_generator=teacher)
//! result = optimizer.optimize(
//!     evaluator=evaluator,
//!     data_mapper=BasicDataMapper(key_map={"response": "generated_output", "expected_response": "label"}),
//!     dataset=dataset,
//!     initial_prompts=["Is this message spam or ham? Answer with one word.\n\n{text}"],
//!     task_description="Decide whether an SMS message is spam.",
//!     num_rounds=5,
//!     eval_subset_size=40,
//! )
//! print(result.final_score)
//! print(result.best_generator.get_prompt_template())
//! ```
//!
//! With `OPENAI_BASE_URL` and `OPENAI_API_KEY` set (and optionally `OPENAI_MODEL`), the teacher
//! and student are that endpoint's model; otherwise both are the embedded SmolLM2 model
//! (fetched on first use), so this runs anywhere:
//!
//! `cargo run --release -p metaprompt --features llama --example basic_usage`

use std::sync::Arc;

use metaprompt::core::ChatModel;
use metaprompt::data::{BasicDataMapper, LoadOptions, SplitConfig, load};
use metaprompt::engine::{DataSource, MetaPromptOptimizer, OptimizeRequest};
use metaprompt::evals::{ExactMatch, Normalize};

/// The teacher and the student.
type Models = (Arc<dyn ChatModel>, Arc<dyn ChatModel>);

fn models() -> Result<Models, Box<dyn std::error::Error>> {
    if std::env::var("OPENAI_BASE_URL").is_ok() && std::env::var("OPENAI_API_KEY").is_ok() {
        let name = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
        let m = metaprompt::openai::OpenAiChat::builder(name)
            .api_key_env("OPENAI_API_KEY")?
            .build()?;
        let m: Arc<dyn ChatModel> = Arc::new(m);
        return Ok((m.clone(), m));
    }
    let path = metaprompt::llama::ModelLocator::from_env(None).resolve()?;
    let m: Arc<dyn ChatModel> = Arc::new(metaprompt::llama::LlamaChat::load(
        path,
        Default::default(),
    )?);
    Ok((m.clone(), m))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (teacher, student) = models()?;
    let dataset = load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/sms.jsonl"),
        &LoadOptions::default(),
    )?
    .with_label_fields(["label"])?;
    let evaluator = Arc::new(ExactMatch::new(Normalize::all()));

    let optimizer = MetaPromptOptimizer::builder().teacher(teacher).build()?;
    let data_mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &dataset,
    )?;
    let mut request = OptimizeRequest::new(
        student,
        evaluator,
        Arc::new(data_mapper),
        DataSource::Dataset(
            dataset,
            SplitConfig {
                seed: 7,
                ..SplitConfig::default()
            },
        ),
        vec![metaprompt::core::Prompt::parse(
            "Is this message spam or ham? Answer with one word.\n\n{text}",
        )?],
    );
    request.task_description = "Decide whether an SMS message is spam.".into();
    request.config.num_rounds = 5;
    request.config.eval_subset_size = 40;
    request.student_params.max_tokens = Some(8);
    let result = optimizer.optimize(request).await?;

    println!("{}", result.final_score);
    println!("{}", result.best_generator.prompt_template());
    Ok(())
}
