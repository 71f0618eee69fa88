//! How a request becomes llama.cpp input: the chat template that renders its messages and
//! the sampler (grammar, penalties, temperature) that decodes its answer.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use metaprompt_core::{ChatRequest, ModelError, Role};

/// How a request's tokens are chosen: an optional grammar (choices or a JSON schema), then the
/// chain of penalties and temperature.
///
/// The grammar is checked against the token the chain picks first, and filters every
/// candidate only when it refuses that token (then the chain picks again), as llama.cpp's own
/// sampler does. Checking all 49,152 candidates of the embedded model at each step took as
/// long as computing them. Greedy decoding picks exactly the token it would pick with every
/// candidate filtered first: the grammar only removes candidates, so the best candidate, when
/// the grammar allows it, is also the best allowed one.
pub(crate) struct Sampler {
    grammar: Option<LlamaSampler>,
    chain: LlamaSampler,
}

impl Sampler {
    /// Picks and accepts the next token from the logits of output `idx` of the last decode.
    pub(crate) fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else {
            return self.chain.sample(ctx, idx);
        };
        let mut candidates = ctx.token_data_array_ith(idx);
        self.chain.apply(&mut candidates);
        let first = candidates.selected_token();
        let allowed = first.is_some_and(|token| {
            let mut one =
                LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
            grammar.apply(&mut one);
            one.data.first().is_some_and(|d| d.logit().is_finite())
        });
        match first {
            Some(token) if allowed => self.accept(token),
            _ => self.sample_filtered(ctx, idx),
        }
    }

    /// Picks and accepts the next token with every candidate filtered by the grammar first.
    pub(crate) fn sample_filtered(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
        let mut candidates = ctx.token_data_array_ith(idx);
        if let Some(grammar) = self.grammar.as_mut() {
            grammar.apply(&mut candidates);
        }
        self.chain.apply(&mut candidates);
        let token = candidates
            .selected_token()
            .unwrap_or_else(|| candidates.data[0].id());
        self.accept(token)
    }

    /// Advances the grammar and the chain (penalties' history) past `token`.
    fn accept(&mut self, token: LlamaToken) -> LlamaToken {
        if let Some(grammar) = self.grammar.as_mut() {
            grammar.accept(token);
        }
        self.chain.accept(token);
        token
    }
}

/// A grammar whose only sentences are the choices (GBNF string literals, escaped).
fn choice_grammar(choices: &[String]) -> String {
    let alternatives: Vec<String> = choices
        .iter()
        .map(|c| {
            let mut lit = String::with_capacity(c.len() + 2);
            lit.push('"');
            for ch in c.chars() {
                match ch {
                    '"' => lit.push_str("\\\""),
                    '\\' => lit.push_str("\\\\"),
                    '\n' => lit.push_str("\\n"),
                    '\r' => lit.push_str("\\r"),
                    '\t' => lit.push_str("\\t"),
                    c => lit.push(c),
                }
            }
            lit.push('"');
            lit
        })
        .collect();
    format!("root ::= {}", alternatives.join(" | "))
}

/// The request's messages in the model's chat template (ChatML when the GGUF has none).
pub(crate) fn render(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    request: &ChatRequest,
) -> Result<String, ModelError> {
    let messages: Vec<LlamaChatMessage> = request
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            LlamaChatMessage::new(role.into(), m.content.clone())
                .map_err(|e| ModelError::BadRequest(format!("message contains a NUL byte: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let chatml;
    let template = match template {
        Some(t) => t,
        None => {
            chatml =
                LlamaChatTemplate::new("chatml").map_err(|e| ModelError::Other(e.to_string()))?;
            &chatml
        }
    };
    model
        .apply_chat_template(template, &messages, true)
        .map_err(|e| ModelError::BadRequest(format!("cannot apply the chat template: {e}")))
}

/// The sampler of a request: a grammar for choices or a JSON schema, repetition penalties,
/// then temperature (greedy at 0, so results are reproducible).
pub(crate) fn sampler(model: &LlamaModel, request: &ChatRequest) -> Result<Sampler, ModelError> {
    let mut grammar = None;
    if request.response_schema.is_none() && !request.choices.is_empty() {
        let g = LlamaSampler::grammar(model, &choice_grammar(&request.choices), "root").map_err(
            |e| ModelError::BadRequest(format!("llama.cpp refused the choices' grammar: {e}")),
        )?;
        grammar = Some(g);
    }
    if let Some(schema) = &request.response_schema {
        let text = serde_json::to_string(schema.schema.as_value())
            .map_err(|e| ModelError::BadRequest(e.to_string()))?;
        let gbnf = llama_cpp_2::json_schema_to_grammar(&text).map_err(|e| {
            ModelError::BadRequest(format!("cannot turn the JSON schema into a grammar: {e}"))
        })?;
        let g = LlamaSampler::grammar(model, &gbnf, "root").map_err(|e| {
            ModelError::BadRequest(format!("llama.cpp refused the schema's grammar: {e}"))
        })?;
        grammar = Some(g);
    }
    let mut chain = Vec::new();
    let (freq, present) = (
        request.frequency_penalty.unwrap_or(0.0),
        request.presence_penalty.unwrap_or(0.0),
    );
    if freq != 0.0 || present != 0.0 {
        // Over the last 256 tokens: long enough to see a sentence come round again.
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            256,
            1.0,
            freq,
            present,
        ));
    }
    match request.temperature {
        Some(t) if t > 0.0 => {
            if let Some(p) = request.top_p {
                chain.push(LlamaSampler::top_p(p, 1));
            }
            chain.push(LlamaSampler::temp(t));
            chain.push(LlamaSampler::dist(request.seed.unwrap_or(0) as u32));
        }
        // Temperature 0 (or unset) is greedy so that results are reproducible.
        _ => chain.push(LlamaSampler::greedy()),
    }
    Ok(Sampler {
        grammar,
        chain: LlamaSampler::chain_simple(chain),
    })
}
