//! Score a few model outputs with three evaluators and print the reasons.
//!
//! `cargo run -p metaprompt --example score_outputs`

use metaprompt::evals::{ExactMatch, Normalize, RougeL, TokenF1};
use metaprompt::{EvalInput, Evaluator};

#[tokio::main]
async fn main() {
    let outputs = [
        ("Spam.", "spam"),
        (
            "The meeting moved to Friday at noon.",
            "The meeting is now on Friday at 12.",
        ),
        ("ham", "spam"),
    ];
    let inputs: Vec<EvalInput> = outputs
        .iter()
        .map(|(got, want)| {
            EvalInput::default()
                .with("response", *got)
                .with("expected_response", *want)
        })
        .collect();
    let evaluators: Vec<Box<dyn Evaluator>> = vec![
        Box::new(ExactMatch::new(Normalize::all())),
        Box::new(TokenF1),
        Box::new(RougeL::default()),
    ];
    for ev in &evaluators {
        println!("== {}", ev.name());
        for r in ev.evaluate(&inputs).await {
            println!("  {:.2}  {}", r.score(), r.reason());
        }
    }
}
