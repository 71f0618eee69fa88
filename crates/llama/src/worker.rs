//! The worker threads: each owns one llama.cpp context and decodes its sequences together, in
//! sequence order; the chat template, the sampler chain (grammar, penalties, temperature) and
//! the stop rules.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use metaprompt_core::{ChatRequest, ChatResponse, FinishReason, ModelError, Role, Usage};
use tokio::sync::oneshot;

use crate::chat::{Job, backend};

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

/// One request being decoded.
pub(crate) struct Slot {
    seq: i32,
    reply: oneshot::Sender<Result<ChatResponse, ModelError>>,
    prompt: Vec<LlamaToken>,
    prefilled: bool,
    n_past: i32,
    last: Option<LlamaToken>,
    logits_index: i32,
    sampler: LlamaSampler,
    bytes: Vec<u8>,
    generated: u32,
    max_tokens: u32,
    stop: Vec<String>,
}

/// How every worker is set up.
#[derive(Clone)]
pub(crate) struct Shape {
    pub(crate) seqs: usize,
    pub(crate) threads: i32,
    pub(crate) ctx_per_seq: u32,
    pub(crate) default_max_tokens: u32,
}

/// What a worker thread is given.
pub(crate) struct Seat {
    pub(crate) model: Arc<LlamaModel>,
    pub(crate) template: Option<LlamaChatTemplate>,
    pub(crate) id: String,
    pub(crate) shape: Shape,
    pub(crate) load: Arc<AtomicUsize>,
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: Option<LlamaChatTemplate>,
    shape: Shape,
    id: String,
    load: Arc<AtomicUsize>,
}

pub(crate) fn worker(seat: Seat, jobs: Receiver<Job>, ready: Sender<Result<(), String>>) {
    let Seat {
        model,
        template,
        id,
        shape,
        load,
    } = seat;
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = shape.ctx_per_seq * shape.seqs as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(shape.ctx_per_seq)
        .with_n_ubatch(512)
        .with_n_seq_max(shape.seqs as u32)
        // One KV stream per sequence: with a unified cache every token attends over the
        // whole (sequences × ctx) cache, which made batching slower than one stream.
        .with_kv_unified(false)
        .with_n_threads(shape.threads)
        .with_n_threads_batch(shape.threads);
    let ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut w = Worker {
        model: &model,
        ctx,
        template,
        shape,
        id,
        load,
    };
    w.run(jobs);
}

impl Worker<'_> {
    fn run(&mut self, jobs: Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        let mut active: Vec<Slot> = Vec::new();
        let mut free: Vec<i32> = (0..self.shape.seqs as i32).rev().collect();
        let mut batch = LlamaBatch::new(self.shape.ctx_per_seq as usize, self.shape.seqs as i32);
        loop {
            if active.is_empty() && pending.is_empty() {
                match jobs.recv() {
                    Ok(job) => pending.push_back(job),
                    Err(_) => return,
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => pending.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) if active.is_empty() && pending.is_empty() => {
                        return;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            }
            while let Some(seq) = free.pop() {
                let Some(job) = pending.pop_front() else {
                    free.push(seq);
                    break;
                };
                match self.prepare(seq, job) {
                    Ok(slot) => active.push(slot),
                    Err((reply, e)) => {
                        self.done();
                        let _ = reply.send(Err(e));
                        free.push(seq);
                    }
                }
            }
            if active.is_empty() {
                continue;
            }
            if let Err(e) = self.step(&mut batch, &mut active) {
                // A failed decode poisons every sequence in the batch: fail them all and
                // start clean.
                for slot in active.drain(..) {
                    self.done();
                    let _ = slot.reply.send(Err(e.clone()));
                    free.push(slot.seq);
                }
                self.ctx.clear_kv_cache();
                continue;
            }
            let mut i = 0;
            while i < active.len() {
                // A caller that went away (a cancelled run, a timeout) frees its sequence now
                // rather than after max_tokens more decode steps.
                let outcome = if active[i].reply.is_closed() {
                    Some(None)
                } else {
                    self.advance(&mut active[i]).map(Some)
                };
                if let Some(reason) = outcome {
                    let slot = active.swap_remove(i);
                    let _ = self
                        .ctx
                        .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                    free.push(slot.seq);
                    // Counted as done before the reply, so a caller's next request sees the
                    // worker free again.
                    self.done();
                    if let Some(reason) = reason {
                        self.finish(slot, reason);
                    }
                } else {
                    i += 1;
                }
            }
        }
    }

    /// One request finished (answered, failed or abandoned): called before its reply is sent.
    fn done(&self) {
        self.load.fetch_sub(1, Ordering::SeqCst);
    }

    fn render(&self, request: &ChatRequest) -> Result<String, ModelError> {
        let messages: Vec<LlamaChatMessage> = request
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                LlamaChatMessage::new(role.into(), m.content.clone()).map_err(|e| {
                    ModelError::BadRequest(format!("message contains a NUL byte: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let chatml;
        let template = match &self.template {
            Some(t) => t,
            None => {
                chatml = LlamaChatTemplate::new("chatml")
                    .map_err(|e| ModelError::Other(e.to_string()))?;
                &chatml
            }
        };
        self.model
            .apply_chat_template(template, &messages, true)
            .map_err(|e| ModelError::BadRequest(format!("cannot apply the chat template: {e}")))
    }

    fn sampler(&self, request: &ChatRequest) -> Result<LlamaSampler, ModelError> {
        let mut chain = Vec::new();
        if request.response_schema.is_none() && !request.choices.is_empty() {
            let g = LlamaSampler::grammar(self.model, &choice_grammar(&request.choices), "root")
                .map_err(|e| {
                    ModelError::BadRequest(format!("llama.cpp refused the choices' grammar: {e}"))
                })?;
            chain.push(g);
        }
        if let Some(schema) = &request.response_schema {
            let text = serde_json::to_string(schema.schema.as_value())
                .map_err(|e| ModelError::BadRequest(e.to_string()))?;
            let grammar = llama_cpp_2::json_schema_to_grammar(&text).map_err(|e| {
                ModelError::BadRequest(format!("cannot turn the JSON schema into a grammar: {e}"))
            })?;
            let g = LlamaSampler::grammar(self.model, &grammar, "root").map_err(|e| {
                ModelError::BadRequest(format!("llama.cpp refused the schema's grammar: {e}"))
            })?;
            chain.push(g);
        }
        let (freq, present) = (
            request.frequency_penalty.unwrap_or(0.0),
            request.presence_penalty.unwrap_or(0.0),
        );
        if freq != 0.0 || present != 0.0 {
            // Over the last 256 tokens: long enough to see a sentence come round again.
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
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
        Ok(LlamaSampler::chain_simple(chain))
    }

    fn prepare(
        &self,
        seq: i32,
        job: Job,
    ) -> Result<
        Slot,
        (
            oneshot::Sender<Result<ChatResponse, ModelError>>,
            ModelError,
        ),
    > {
        let Job { request, reply } = job;
        let built = (|| {
            let text = self.render(&request)?;
            let prompt = self.model.vocab().tokenize(text.as_bytes(), true, true);
            let limit = self.shape.ctx_per_seq as usize;
            if prompt.len() + 1 >= limit {
                return Err(ModelError::ContextOverflow {
                    prompt_tokens: prompt.len(),
                    context_tokens: limit,
                });
            }
            let sampler = self.sampler(&request)?;
            // A label-set answer is never cut short: room for the longest choice and the end.
            // Under a grammar the model may spell a choice in short pieces, so its canonical
            // tokenization is not a bound: one token per byte is.
            let longest_choice = request
                .choices
                .iter()
                .map(|c| c.len() as u32 + 1)
                .max()
                .unwrap_or(0);
            let max_tokens = request
                .max_tokens
                .unwrap_or(self.shape.default_max_tokens)
                .max(longest_choice);
            Ok((prompt, sampler, max_tokens))
        })();
        match built {
            Ok((prompt, sampler, max_tokens)) => Ok(Slot {
                seq,
                reply,
                prompt,
                prefilled: false,
                n_past: 0,
                last: None,
                logits_index: -1,
                sampler,
                bytes: Vec::new(),
                generated: 0,
                max_tokens,
                stop: request.stop.clone(),
            }),
            Err(e) => Err((reply, e)),
        }
    }

    /// Builds one batch (new prompts that fit, plus one token per running sequence) and
    /// decodes it.
    fn step(&mut self, batch: &mut LlamaBatch, active: &mut [Slot]) -> Result<(), ModelError> {
        // Sequences in ascending order: llama.cpp splits a batch whose sequences are out of
        // order into more micro-batches, which made a 4-sequence step up to 1.8x slower.
        active.sort_unstable_by_key(|s| s.seq);
        batch.clear();
        let capacity = self.shape.ctx_per_seq as usize;
        let add_err = |e: llama_cpp_2::llama_batch::BatchAddError| ModelError::Other(e.to_string());
        for slot in active.iter_mut() {
            slot.logits_index = -1;
            if slot.prefilled {
                if let Some(tok) = slot.last {
                    batch
                        .add(tok, slot.n_past, &[slot.seq], true)
                        .map_err(add_err)?;
                    slot.logits_index = batch.n_tokens() - 1;
                }
            } else if batch.n_tokens() as usize + slot.prompt.len() <= capacity {
                let last = slot.prompt.len() - 1;
                for (i, tok) in slot.prompt.iter().enumerate() {
                    batch
                        .add(*tok, i as i32, &[slot.seq], i == last)
                        .map_err(add_err)?;
                }
                slot.logits_index = batch.n_tokens() - 1;
            }
        }
        if batch.n_tokens() == 0 {
            return Ok(());
        }
        self.ctx
            .decode(batch)
            .map_err(|e| ModelError::Other(format!("llama.cpp decode failed: {e}")))
    }

    /// Samples the next token of a slot that took part in the last decode; returns why it
    /// finished, if it did.
    fn advance(&mut self, slot: &mut Slot) -> Option<FinishReason> {
        if slot.logits_index < 0 {
            return None;
        }
        if !slot.prefilled {
            slot.prefilled = true;
            slot.n_past = slot.prompt.len() as i32;
        } else {
            slot.n_past += 1;
        }
        let token = slot.sampler.sample(&self.ctx, slot.logits_index);
        let vocab = self.model.vocab();
        if vocab.is_eog(token) {
            return Some(FinishReason::Stop);
        }
        slot.generated += 1;
        slot.bytes
            .extend_from_slice(&vocab.token_to_piece(token, false, None));
        slot.last = Some(token);
        if !slot.stop.is_empty() {
            let text = String::from_utf8_lossy(&slot.bytes);
            if let Some(cut) = slot.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                let keep = text[..cut].len();
                slot.bytes.truncate(keep);
                return Some(FinishReason::Stop);
            }
        }
        if slot.generated >= slot.max_tokens || slot.n_past + 1 >= self.shape.ctx_per_seq as i32 {
            return Some(FinishReason::Length);
        }
        None
    }

    fn finish(&self, slot: Slot, reason: FinishReason) {
        let text = String::from_utf8_lossy(&slot.bytes).into_owned();
        let response = ChatResponse {
            text,
            usage: Usage {
                input_tokens: slot.prompt.len() as u64,
                output_tokens: u64::from(slot.generated),
            },
            model: self.id.clone(),
            finish_reason: reason,
        };
        let _ = slot.reply.send(Ok(response));
    }
}
