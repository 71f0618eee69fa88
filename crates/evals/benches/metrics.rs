#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Items per second of the local metrics on 100k pairs of 50-word texts, one core.
//!
//! `cargo bench -p metaprompt-evals`

use std::time::Instant;

use metaprompt_core::{EvalInput, EvalResult};
use metaprompt_evals::{Bleu, ExactMatch, Normalize, RougeL, TokenF1};

const WORDS: [&str; 16] = [
    "the", "model", "prompt", "answer", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    "summary", "of", "text", "with", "data",
];

fn text(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            WORDS[(*seed >> 33) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(name: &str, inputs: &[EvalInput], f: impl Fn(&EvalInput) -> EvalResult) {
    let start = Instant::now();
    let mut sum = 0.0;
    for i in inputs {
        sum += f(i).score();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<12} {:>12.0} items/s  (mean score {:.3})",
        inputs.len() as f64 / secs,
        sum / inputs.len() as f64
    );
}

fn main() {
    let mut seed = 7u64;
    let inputs: Vec<EvalInput> = (0..100_000)
        .map(|_| {
            let a = text(&mut seed, 50);
            let b = text(&mut seed, 50);
            EvalInput::default()
                .with("response", a)
                .with("expected_response", b)
        })
        .collect();
    println!("100000 pairs of 50-word texts, one thread");
    let exact = ExactMatch::new(Normalize::default());
    run("exact_match", &inputs, |i| exact.score(i));
    let exact_norm = ExactMatch::new(Normalize::all());
    run("exact(norm)", &inputs, |i| exact_norm.score(i));
    run("token_f1", &inputs, |i| TokenF1.score(i));
    let rouge = RougeL::default();
    run("rouge_l", &inputs, |i| rouge.score(i));
    let bleu = Bleu::default();
    run("bleu", &inputs, |i| bleu.score(i));
}
