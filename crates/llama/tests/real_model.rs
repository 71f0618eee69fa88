#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real inference with the embedded SmolLM2 model (fetched by `cargo xtask test` / CI through
//! `metaprompt model fetch`). Small and bounded: short prompts, few tokens.

use std::sync::OnceLock;

use metaprompt_core::{
    ChatModel, ChatRequest, FinishReason, Message, ModelError, ResponseSchema, schema_for,
};
use metaprompt_llama::{LlamaChat, LlamaConfig, ModelLocator};
use serde::Deserialize;

fn model() -> &'static LlamaChat {
    static MODEL: OnceLock<LlamaChat> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = ModelLocator::from_env(None)
            .find()
            .unwrap()
            .expect("the embedded model is not in the cache: run `cargo xtask fetch-model`");
        LlamaChat::load(
            path,
            LlamaConfig {
                n_parallel: 4,
                ctx_per_seq: 1024,
                ..LlamaConfig::default()
            },
        )
        .unwrap()
    })
}

fn greedy(prompt: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(prompt)],
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn greedy_completion_is_deterministic() {
    let m = model();
    let a = m.complete(greedy("Name three colors.", 24)).await.unwrap();
    let b = m.complete(greedy("Name three colors.", 24)).await.unwrap();
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    assert!(a.usage.input_tokens > 3);
    assert!(a.usage.output_tokens > 0 && a.usage.output_tokens <= 24);
    assert!(
        m.id().starts_with("SmolLM2-135M-Instruct.Q4_1.gguf@"),
        "{}",
        m.id()
    );
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Verdict {
    // Bounded so that a degenerate repetition cannot run past max_tokens.
    #[schemars(length(max = 40))]
    label: String,
    confidence: u8,
}

#[tokio::test]
async fn structured_output_always_parses() {
    let m = model();
    let schema = ResponseSchema {
        name: "verdict".into(),
        schema: schema_for::<Verdict>(),
    };
    let prompts = [
        "Is 'free money now' spam? Reply in JSON.",
        "Classify the sentiment of 'I love it'.",
        "Is the sky green?",
        "Label this: 'meeting at 3pm'.",
        "What language is 'bonjour'?",
        "Is 7 a prime number?",
        "Rate the review 'terrible food, slow service'.",
        "Is 'WIN A PRIZE, CALL NOW' spam?",
        "Which is bigger, 3 or 9?",
        "Label the topic of 'the match ended 2-1'.",
    ];
    let calls = prompts.iter().map(|p| {
        let mut req = greedy(p, 96);
        req.response_schema = Some(schema.clone());
        m.complete(req)
    });
    for (p, r) in prompts.iter().zip(futures::future::join_all(calls).await) {
        let r = r.unwrap();
        let v: Verdict =
            serde_json::from_str(&r.text).unwrap_or_else(|e| panic!("{p}: {e}: {:?}", r.text));
        assert!(!v.label.is_empty() || r.text.contains("\"label\""));
    }
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_are_honoured() {
    let m = model();
    let r = m
        .complete(greedy("Count from 1 to 50, separated by commas.", 5))
        .await
        .unwrap();
    assert_eq!(r.usage.output_tokens, 5);
    assert_eq!(r.finish_reason, FinishReason::Length);

    let full = m
        .complete(greedy("Count from 1 to 20, separated by commas.", 40))
        .await
        .unwrap();
    let mut req = greedy("Count from 1 to 20, separated by commas.", 40);
    req.stop = vec!["5".into()];
    let stopped = m.complete(req).await.unwrap();
    assert!(!stopped.text.contains('5'), "{:?}", stopped.text);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    let cut = full.text.find('5').expect("the full answer counts past 5");
    assert_eq!(stopped.text, full.text[..cut]);
}

#[tokio::test]
async fn over_long_prompt_is_a_typed_error() {
    let m = model();
    let long = "word ".repeat(3000);
    let err = m.complete(greedy(&long, 4)).await.unwrap_err();
    assert!(
        matches!(err, ModelError::ContextOverflow { context_tokens: 1024, prompt_tokens } if prompt_tokens > 1024),
        "{err:?}"
    );
    // The worker is still serving.
    assert!(m.complete(greedy("Hi", 2)).await.is_ok());
}

#[tokio::test]
async fn four_concurrent_requests_all_succeed() {
    let m = model();
    let prompts = [
        "What is 2+2?",
        "Say hello.",
        "Name a fruit.",
        "Name an animal.",
    ];
    let sequential: Vec<String> = {
        let mut v = Vec::new();
        for p in prompts {
            v.push(m.complete(greedy(p, 16)).await.unwrap().text);
        }
        v
    };
    let together =
        futures::future::join_all(prompts.iter().map(|p| m.complete(greedy(p, 16)))).await;
    for (s, t) in sequential.iter().zip(together) {
        let t = t.unwrap();
        assert!(!t.text.is_empty());
        // Batched decoding gives the same greedy answer as decoding alone, or at worst
        // starts the same way (floating-point order differs in a batch).
        let prefix: String = s.chars().take(4).collect();
        assert!(t.text.starts_with(&prefix), "{s:?} vs {:?}", t.text);
    }
}

/// Two workers of one sequence and one thread each, on their own load of the model.
fn two_single_sequence_workers() -> LlamaChat {
    let path = ModelLocator::from_env(None).find().unwrap().unwrap();
    LlamaChat::load(
        path,
        LlamaConfig {
            n_parallel: 2,
            workers: Some(2),
            n_threads: Some(1),
            ctx_per_seq: 512,
            ..LlamaConfig::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn workers_share_the_model_and_answer_alike() {
    let m = two_single_sequence_workers();
    let info = m.info();
    assert_eq!(
        (info.workers, info.seqs_per_worker, info.threads_per_worker),
        (2, 1, 1)
    );
    // Two at once: one per worker, each alone in its context, so the greedy answers are
    // bit-for-bit the same, and the same as a later call on its own.
    let prompt = "Name three colors.";
    let (a, b) = tokio::join!(
        m.complete(greedy(prompt, 20)),
        m.complete(greedy(prompt, 20))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    assert_eq!(m.complete(greedy(prompt, 20)).await.unwrap().text, a.text);
    // Four at once on two one-sequence workers: two wait in the queues, all are answered.
    let four =
        futures::future::join_all((0..4).map(|i| m.complete(greedy(&format!("Count to {i}."), 8))))
            .await;
    assert!(four.iter().all(Result::is_ok), "{four:?}");
    assert_eq!(m.usage().0, 7);
}

#[tokio::test]
async fn a_dropped_request_frees_its_worker() {
    let path = ModelLocator::from_env(None).find().unwrap().unwrap();
    let m = LlamaChat::load(
        path,
        LlamaConfig {
            n_parallel: 1,
            ctx_per_seq: 512,
            ..LlamaConfig::default()
        },
    )
    .unwrap();
    // A long generation (2,000 tokens: seconds of decoding) abandoned after a moment, as a
    // cancelled run or a timeout does…
    let long = m.complete(greedy("Write a very long story about the sea.", 2000));
    let abandoned = tokio::time::timeout(std::time::Duration::from_millis(300), long).await;
    assert!(
        abandoned.is_err(),
        "the long request finished within 300 ms"
    );
    // …is dropped by the worker at its next decode step, not after 2,000 tokens.
    let mut waited = 0;
    while m.in_flight() > 0 {
        assert!(
            waited < 100,
            "the worker still holds the abandoned request after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    // The only sequence serves the next request; the abandoned one never counts as a call.
    let next = m.complete(greedy("Say hello.", 4)).await.unwrap();
    assert!(next.usage.output_tokens > 0);
    assert_eq!(m.usage().0, 1);
}

#[tokio::test]
async fn other_workers_on_the_same_weights_answer_alike() {
    let students = two_single_sequence_workers();
    // A teacher's shape: one sequence on every core, beside the students, with one load.
    let teacher = students
        .with_config(LlamaConfig {
            n_parallel: 1,
            workers: Some(1),
            n_threads: Some(2),
            ctx_per_seq: 1024,
            ..LlamaConfig::default()
        })
        .unwrap();
    let (s, t) = (students.info(), teacher.info());
    assert_eq!(s.id, t.id);
    assert_eq!(
        (
            t.workers,
            t.seqs_per_worker,
            t.threads_per_worker,
            t.ctx_per_seq
        ),
        (1, 1, 2, 1024)
    );
    // Greedy answers do not depend on the thread count or the context: the same tokens.
    let prompt = "Explain in two sentences why the sky is blue.";
    let a = students.complete(greedy(prompt, 40)).await.unwrap();
    let b = teacher.complete(greedy(prompt, 40)).await.unwrap();
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    // Each set of workers counts its own calls.
    assert_eq!((students.usage().0, teacher.usage().0), (1, 1));
}
