//! The grammar checked on the sampled token first picks, under greedy decoding, exactly the
//! tokens that filtering every candidate first picks: real decoding with the embedded model.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use metaprompt_core::{ChatRequest, Message, ResponseSchema};
use serde_json::json;

use crate::sampling::{Sampler, render, sampler};
use crate::worker::backend;

/// Decodes `request` greedily to the end of its grammar (or `max` tokens) with one of the two
/// ways of sampling; returns the answer's bytes.
fn decode(
    model: &LlamaModel,
    request: &ChatRequest,
    pick: fn(
        &mut Sampler,
        &llama_cpp_2::context::LlamaContext<'_>,
        i32,
    ) -> llama_cpp_2::token::LlamaToken,
    max: usize,
) -> Vec<u8> {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(1024))
        .with_n_threads(1)
        .with_n_threads_batch(1);
    let mut ctx = model.new_context(backend().unwrap(), params).unwrap();
    let template = model.chat_template(None).ok();
    let text = render(model, template.as_ref(), request).unwrap();
    let prompt = model.vocab().tokenize(text.as_bytes(), true, true);
    let mut sampler = sampler(model, request).unwrap();
    let mut batch = LlamaBatch::new(1024, 1);
    for (i, t) in prompt.iter().enumerate() {
        batch
            .add(*t, i as i32, &[0], i == prompt.len() - 1)
            .unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let mut out = Vec::new();
    for pos in (prompt.len() as i32..).take(max) {
        let token = pick(&mut sampler, &ctx, batch.n_tokens() - 1);
        if model.vocab().is_eog(token) {
            break;
        }
        out.extend_from_slice(&model.vocab().token_to_piece(token, false, None));
        batch.clear();
        batch.add(token, pos, &[0], true).unwrap();
        ctx.decode(&mut batch).unwrap();
    }
    out
}

#[test]
fn checking_the_sampled_token_first_picks_what_filtering_every_candidate_picks() {
    let Ok(Some(path)) = crate::ModelLocator::from_env(None).find() else {
        panic!("the embedded model is not in the cache: run `cargo xtask fetch-model`");
    };
    let model =
        LlamaModel::load_from_file(backend().unwrap(), path, &LlamaModelParams::default()).unwrap();
    let schema = ResponseSchema {
        name: "reply".into(),
        schema: serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "analysis": {"type": "string", "maxLength": 60},
                "label": {"type": "string", "enum": ["spam", "ham"]},
            },
            "required": ["analysis", "label"],
        }))
        .unwrap(),
    };
    let mut checked = 0;
    for prompt in [
        "Is 'WIN A PRIZE, CALL NOW' spam? Reply in JSON.",
        "Is 'meeting at 3pm' spam? Explain, then label it.",
        "Write a short poem about the sea.",
    ] {
        let mut structured = ChatRequest {
            messages: vec![Message::user(prompt)],
            temperature: Some(0.0),
            ..ChatRequest::default()
        };
        let mut choices = structured.clone();
        structured.response_schema = Some(schema.clone());
        choices.choices = vec!["positive".into(), "negative".into(), "neutral".into()];
        for request in [structured, choices] {
            let fast = decode(&model, &request, Sampler::sample, 80);
            let filtered = decode(&model, &request, Sampler::sample_filtered, 80);
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&filtered),
                "{prompt}"
            );
            assert!(!fast.is_empty());
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
