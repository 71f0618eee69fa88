#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The embedded model on this machine: load time, prompt tokens/s, generation tokens/s for one
//! request, and aggregate generation tokens/s for 4 concurrent requests. `cargo xtask
//! llama-reference` measures the same model with llama.cpp's own `llama-bench` and
//! `llama-batched-bench` to compare with.
//!
//! Then the same generation constrained by a JSON-schema grammar (the shape of a teacher's
//! reply: three strings), single and 4 concurrent, against unconstrained generation of the same
//! requests: what the grammar costs per token, so a pathological grammar shows up as a number.
//!
//! `cargo bench -p metaprompt-llama` (the model must be in the cache: `cargo xtask fetch-model`)

use std::time::Instant;

use metaprompt_core::{ChatModel, ChatRequest, Message, ResponseSchema};
use metaprompt_llama::{LlamaChat, LlamaConfig, ModelLocator};

fn req(prompt: String, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(prompt)],
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        ..ChatRequest::default()
    }
}

const ONE: [&str; 1] = ["Write a long story about a lighthouse keeper."];
const FOUR: [&str; 4] = [
    "Write a long story about a lighthouse keeper.",
    "Write a long story about a baker.",
    "Write a long story about a sailor.",
    "Write a long story about a gardener.",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = ModelLocator::from_env(None)
        .find()
        .unwrap()
        .expect("fetch the model first: cargo xtask fetch-model");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // The default shape (one context on every core, batching 4 sequences), then the
    // throughput shape (one single-thread worker per core, one sequence each).
    for (name, config) in [
        (
            "default: 1 worker",
            LlamaConfig {
                ctx_per_seq: 2048,
                ..LlamaConfig::default()
            },
        ),
        (
            "pool: 1 worker per core",
            LlamaConfig {
                n_parallel: cores,
                workers: Some(cores),
                ctx_per_seq: 2048,
                ..LlamaConfig::default()
            },
        ),
    ] {
        let t = Instant::now();
        let m = LlamaChat::load(&path, config).unwrap();
        let info = m.info();
        println!(
            "== {name}: {} worker(s) x {} sequence(s), {} thread(s) each",
            info.workers, info.seqs_per_worker, info.threads_per_worker
        );
        println!("load: {:.2} s ({})", t.elapsed().as_secs_f64(), m.id());

        // Prompt processing: a long prompt, one generated token.
        let long = "The quick brown fox jumps over the lazy dog. ".repeat(120);
        m.complete(req("warm up".into(), 2)).await.unwrap();
        let t = Instant::now();
        let r = m.complete(req(long, 1)).await.unwrap();
        println!(
            "prompt: {:.0} tokens/s ({} tokens)",
            r.usage.input_tokens as f64 / t.elapsed().as_secs_f64(),
            r.usage.input_tokens
        );

        // Generation. Each figure is the median of three runs and excludes the prompt: the
        // time of the same requests with max_tokens = 1 (prompt + first token) is subtracted,
        // so the rate is that of the decode steps alone, as llama.cpp's own tg figures are.
        let single = generation(&m, &ONE).await;
        let batched = generation(&m, &FOUR).await;
        println!(
            "generation, 1 request: {:.1} tokens/s ({} tokens; {:.1} tokens/s end to end)",
            single.rate, single.tokens, single.end_to_end
        );
        println!(
            "generation, 4 concurrent: {:.1} tokens/s aggregate ({} tokens; {:.1} end to end), {:.2}x single ({:.2}x end to end)",
            batched.rate,
            batched.tokens,
            batched.end_to_end,
            batched.rate / single.rate,
            batched.end_to_end / single.end_to_end
        );
        if name.starts_with("default") {
            grammar(&m).await;
        }
    }
}

/// The teacher's reply shape: `{analysis, hypothesis, improved_prompt}`, each a bounded string.
fn reply_schema() -> ResponseSchema {
    let field = serde_json::json!({"type": "string", "maxLength": 400});
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"analysis": field, "hypothesis": field, "improved_prompt": field},
        "required": ["analysis", "hypothesis", "improved_prompt"],
        "additionalProperties": false
    });
    ResponseSchema {
        name: "teacher_rewrite".into(),
        schema: serde_json::from_value(schema).unwrap(),
    }
}

/// Tokens/s end to end of `prompts` sent at once, 128 tokens each, with and without the
/// grammar; the median of three runs each.
async fn grammar(m: &LlamaChat) {
    async fn run(m: &LlamaChat, prompts: &[&str], schema: Option<&ResponseSchema>) -> f64 {
        let mut rates = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let rs = futures::future::join_all(prompts.iter().map(|p| {
                let mut r = req(format!("{p} Reply in JSON."), 128);
                r.response_schema = schema.cloned();
                m.complete(r)
            }))
            .await;
            let tokens: u64 = rs
                .iter()
                .map(|r| r.as_ref().unwrap().usage.output_tokens)
                .sum();
            rates.push(tokens as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        rates[1]
    }
    let schema = reply_schema();
    for (label, prompts) in [("1 request", &ONE[..]), ("4 concurrent", &FOUR[..])] {
        let free = run(m, prompts, None).await;
        let constrained = run(m, prompts, Some(&schema)).await;
        println!(
            "JSON grammar, {label}: {constrained:.1} tokens/s end to end vs {free:.1} without ({:.2}x)",
            constrained / free
        );
    }
}

struct Rate {
    rate: f64,
    end_to_end: f64,
    tokens: u64,
}

/// Sends `prompts` at once, 128 tokens each; the median of three runs.
async fn generation(m: &LlamaChat, prompts: &[&str]) -> Rate {
    async fn run(m: &LlamaChat, prompts: &[&str], max_tokens: u32) -> (f64, u64) {
        let t = Instant::now();
        let rs = futures::future::join_all(
            prompts
                .iter()
                .map(|p| m.complete(req(p.to_string(), max_tokens))),
        )
        .await;
        let tokens = rs
            .iter()
            .map(|r| r.as_ref().unwrap().usage.output_tokens)
            .sum();
        (t.elapsed().as_secs_f64(), tokens)
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (first, first_tokens) = run(m, prompts, 1).await;
        let (all, tokens) = run(m, prompts, 128).await;
        runs.push(Rate {
            rate: (tokens - first_tokens) as f64 / (all - first),
            end_to_end: tokens as f64 / all,
            tokens,
        });
    }
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    runs.swap_remove(1)
}
