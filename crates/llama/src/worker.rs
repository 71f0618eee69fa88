//! The worker threads: each owns one llama.cpp context and decodes its sequences together, in
//! sequence order, and applies the stop rules (the prompt and sampler come from `sampling`).

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use metaprompt_core::{ChatRequest, ChatResponse, FinishReason, ModelError, Usage};
use tokio::sync::oneshot;

use crate::sampling::{Sampler, render, sampler};

/// A request on its way to a worker, with where its answer goes.
pub(crate) struct Job {
    pub(crate) request: ChatRequest,
    pub(crate) reply: oneshot::Sender<Result<ChatResponse, ModelError>>,
}

/// llama.cpp's backend, initialised once per process.
pub(crate) fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor at load time; keep that out of the user's terminal
            // (RUST_LOG=llama_cpp_2=debug shows it through tracing).
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
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
    sampler: Sampler,
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
            let text = render(self.model, self.template.as_ref(), &request)?;
            let prompt = self.model.vocab().tokenize(text.as_bytes(), true, true);
            let limit = self.shape.ctx_per_seq as usize;
            if prompt.len() + 1 >= limit {
                return Err(ModelError::ContextOverflow {
                    prompt_tokens: prompt.len(),
                    context_tokens: limit,
                });
            }
            let sampler = sampler(self.model, &request)?;
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
