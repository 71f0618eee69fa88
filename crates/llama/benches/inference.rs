#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The embedded model on this machine: load time, prompt tokens/s, generation tokens/s for one
//! request, and aggregate generation tokens/s for 4 concurrent requests.
//!
//! `cargo bench -p metaprompt-llama` (the model must be in the cache: `cargo xtask fetch-model`)

use std::time::Instant;

use metaprompt_core::{ChatModel, ChatRequest, Message};
use metaprompt_llama::{LlamaChat, LlamaConfig, ModelLocator};

fn req(prompt: String, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(prompt)],
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        ..ChatRequest::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = ModelLocator::from_env(None)
        .find()
        .unwrap()
        .expect("fetch the model first: cargo xtask fetch-model");
    let t = Instant::now();
    let m = LlamaChat::load(
        &path,
        LlamaConfig {
            n_parallel: 4,
            ctx_per_seq: 2048,
            ..LlamaConfig::default()
        },
    )
    .unwrap();
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

    // Generation, one stream. Short prompt, so the time is mostly generation.
    let gen_prompt = "Write a long story about a lighthouse keeper.".to_string();
    let t = Instant::now();
    let r = m.complete(req(gen_prompt.clone(), 128)).await.unwrap();
    let single = r.usage.output_tokens as f64 / t.elapsed().as_secs_f64();
    println!(
        "generation, 1 request: {single:.1} tokens/s ({} tokens)",
        r.usage.output_tokens
    );

    // Four at once, batched into the same decodes.
    let prompts = [
        "Write a long story about a lighthouse keeper.",
        "Write a long story about a baker.",
        "Write a long story about a sailor.",
        "Write a long story about a gardener.",
    ];
    let t = Instant::now();
    let rs = futures::future::join_all(prompts.iter().map(|p| m.complete(req(p.to_string(), 128))))
        .await;
    let tokens: u64 = rs
        .iter()
        .map(|r| r.as_ref().unwrap().usage.output_tokens)
        .sum();
    let agg = tokens as f64 / t.elapsed().as_secs_f64();
    println!(
        "generation, 4 concurrent: {agg:.1} tokens/s aggregate ({tokens} tokens), {:.2}x single",
        agg / single
    );
}
