//! Load a dataset, check it against a prompt, split it and map a row for an evaluator.
//!
//! `cargo run -p metaprompt --example load_dataset [path.jsonl]`

use metaprompt::data::{BasicDataMapper, LoadOptions, SplitConfig, load};
use metaprompt::{DataMapper, PromptTemplate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/sms.jsonl").to_string()
    });
    let dataset = load(&path, &LoadOptions::default())?.with_label_fields(["label"])?;
    println!(
        "{} rows; fields: {}",
        dataset.len(),
        dataset.schema().field_list()
    );

    // Check, before any model call, that every row has what the prompt reads.
    let prompt =
        PromptTemplate::parse("Is this message spam or ham? Answer with one word.\n\n{text}")?;
    dataset.require_fields(&prompt.variables(), "the prompt")?;

    let splits = dataset.split(&SplitConfig {
        train: 0.34,
        val: 0.33,
        test: 0.33,
        seed: 7,
        stratify_by: None,
    })?;
    for w in &splits.warnings {
        println!("warning: {w}");
    }
    println!(
        "train {} / val {} / test {}",
        splits.train.len(),
        splits.val.len(),
        splits.test.len()
    );

    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &dataset,
    )?;
    let input = mapper.map("spam", &splits.train[0])?;
    println!(
        "evaluator input for row {}: {}",
        splits.train[0].id(),
        serde_json::to_string(&input.fields)?
    );
    Ok(())
}
