//! One round: N children from up to P parents, each gated on its own minibatch, all screened
//! concurrently (the one concurrency limit applies to all of them together); then the
//! commit, in child order, so that the outcome never depends on which child finished first.

use metaprompt_core::run::{Phase, RoundRecord, RunEvent};
use metaprompt_core::{Prompt, Role, Row};
use metaprompt_data::{MinibatchState, Minibatches};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::EngineError;
use crate::brief::{Brief, MergeWith};
use crate::config::{Acceptance, MutationKind};
use crate::demos::{self, Demo, DemoSource};
use crate::evaluate::{Evaluation, Interrupt};
use crate::guards::{GuardContext, Violation, normalised};
use crate::pool::{self, Candidate};
use crate::run::{Run, Stop};
use crate::state::RunState;
use crate::stats::paired_test;
use crate::teacher::{Proposal, TeacherCall};

/// What one child is to be.
struct Plan {
    index: usize,
    parent: usize,
    kind: MutationKind,
    merge_with: Option<usize>,
    batch: Vec<Row>,
    seed: u64,
}

/// What every child of a round shares.
#[derive(Clone, Copy)]
struct RoundCtx<'a> {
    state: &'a RunState,
    round: u32,
    guards: &'a GuardContext,
    /// The number of children in the round.
    n: usize,
}

/// What a child came to.
pub(crate) struct Child {
    record: RoundRecord,
    /// The candidate, when it passed its gate and was scored on val (its id is given at
    /// commit).
    candidate: Option<Candidate>,
    /// Keys of the prompts it tried, for duplicate detection.
    keys: Vec<String>,
}

/// A round's children and where the minibatch walker ends.
pub(crate) struct Outcome {
    children: Vec<Child>,
    minibatch: MinibatchState,
}

fn seed_for(seed: u64, round: u32, child: usize, salt: u64) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(u64::from(round) * 101 + child as u64)
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Run<'_> {
    /// Computes a round's children from `state` without changing it.
    pub(crate) async fn round(&self, state: &RunState, round: u32) -> Result<Outcome, Stop> {
        let cfg = &self.checked.request.config;
        let n = cfg.proposals_per_round.max(1);
        let mut mb = Minibatches::resume(
            self.checked.splits.train.clone(),
            cfg.eval_subset_size,
            cfg.seed,
            state.minibatch,
        );
        let batches: Vec<Vec<Row>> = (0..n).map(|_| mb.next_batch()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed_for(cfg.seed, round, 0, 7));
        let parents = pool::parents(
            &state.pool,
            cfg.parent_selection,
            state.current,
            cfg.parents_per_round,
            n,
            &mut rng,
        );
        let plans: Vec<Plan> = batches
            .into_iter()
            .enumerate()
            .map(|(i, batch)| {
                let turn = (round as usize - 1) * n + i;
                let mut kind = cfg.mutations[turn % cfg.mutations.len()];
                let mut merge_with = None;
                let mut parent = parents[i];
                if kind == MutationKind::Merge {
                    match pool::merge_pair(&state.pool, &mut rng) {
                        Some((a, b)) => {
                            parent = a;
                            merge_with = Some(b);
                        }
                        None => {
                            kind = cfg
                                .mutations
                                .iter()
                                .copied()
                                .find(|k| *k != MutationKind::Merge)
                                .unwrap_or(MutationKind::Rewrite);
                        }
                    }
                }
                Plan {
                    index: i,
                    parent,
                    kind,
                    merge_with,
                    batch,
                    seed: seed_for(cfg.seed, round, i, 0),
                }
            })
            .collect();
        let mut guards = self.checked.guards.clone();
        guards.seen.extend(state.seen.iter().cloned());
        let ctx = RoundCtx {
            state,
            round,
            guards: &guards,
            n,
        };
        let children =
            futures::future::join_all(plans.into_iter().map(|plan| self.child(ctx, plan))).await;
        let mut out = Vec::with_capacity(children.len());
        for c in children {
            out.push(c?);
        }
        Ok(Outcome {
            children: out,
            minibatch: mb.state(),
        })
    }

    async fn child(&self, ctx: RoundCtx<'_>, plan: Plan) -> Result<Child, Stop> {
        let RoundCtx {
            state,
            round,
            guards,
            ..
        } = ctx;
        let cfg = &self.checked.request.config;
        let parent = &state.pool[plan.parent];
        let parent_prompt = self.effective(parent);
        let parent_eval = self
            .score(&parent_prompt, &plan.batch, Phase::Minibatch)
            .await?;
        let mut record = RoundRecord {
            round,
            child: plan.index as u32,
            candidate_id: None,
            parents: std::iter::once(parent.id)
                .chain(plan.merge_with.map(|m| state.pool[m].id))
                .collect(),
            mutation: plan.kind,
            analysis: String::new(),
            hypothesis: String::new(),
            candidate_prompt: String::new(),
            demo_ids: Vec::new(),
            minibatch_ids: plan.batch.iter().map(|r| r.id().to_string()).collect(),
            minibatch_score: None,
            parent_minibatch_score: Some(parent_eval.mean),
            val_score: None,
            accepted: false,
            pooled: false,
            reason: String::new(),
            repaired: false,
            failed: false,
        };
        let failed = |mut record: RoundRecord, reason: String, keys: Vec<String>| {
            record.failed = true;
            record.reason = reason;
            Ok(Child {
                record,
                candidate: None,
                keys,
            })
        };

        // The child's instructions and demonstrations.
        let (instructions, demos) = match plan.kind {
            MutationKind::Demos => {
                let picked = demos::propose(
                    &self.checked.splits.train,
                    &[&parent_eval],
                    self.checked.request.data_mapper.as_ref(),
                    cfg.max_demos.max(1),
                    plan.seed,
                );
                let boot = picked
                    .iter()
                    .filter(|d| d.source == DemoSource::Bootstrapped)
                    .count();
                record.hypothesis = format!(
                    "{} worked examples from train ({boot} of the student's own correct answers, {} reference answers) show the expected answers",
                    picked.len(),
                    picked.len() - boot
                );
                if picked.is_empty() {
                    return failed(
                        record,
                        "no train row can serve as a demonstration".into(),
                        Vec::new(),
                    );
                }
                (parent.prompt.clone(), picked)
            }
            MutationKind::Rewrite | MutationKind::Merge => {
                let other = plan.merge_with.map(|m| &state.pool[m]);
                let demos = match other {
                    Some(o) => demos::union(&parent.demos, &o.demos, cfg.max_demos),
                    None => parent.demos.clone(),
                };
                match other {
                    Some(o) if o.prompt == parent.prompt => {
                        record.hypothesis =
                            "the two candidates' demonstrations together cover more cases".into();
                        (parent.prompt.clone(), demos)
                    }
                    _ => {
                        let p = self
                            .ask_teacher(ctx, &plan, &parent_eval, parent, other)
                            .await;
                        record.analysis = p.analysis.clone();
                        record.hypothesis = p.hypothesis.clone();
                        if let Some(e) = p.fatal {
                            return Err(match Interrupt::from_refusal(&e) {
                                Some(i) => Stop::Interrupt(i),
                                None => Stop::Error(EngineError::Teacher(e)),
                            });
                        }
                        match p.outcome {
                            Ok(c) => {
                                record.repaired = c.repaired;
                                (c.prompt, demos)
                            }
                            Err(reason) => {
                                return failed(
                                    record,
                                    format!("no usable rewrite: {reason}"),
                                    Vec::new(),
                                );
                            }
                        }
                    }
                }
            }
            _ => return failed(record, "unknown mutation kind".into(), Vec::new()),
        };

        // The whole prompt as the student sees it: fits the length budget, not seen before.
        let (prompt, demos) = self.fit(&instructions, demos, guards.max_chars);
        record.candidate_prompt = instructions.text();
        record.demo_ids = demos.iter().map(|d| d.row_id.clone()).collect();
        let key = normalised(&prompt.key());
        let keys = vec![key.clone(), normalised(&instructions.key())];
        if prompt.chars() > guards.max_chars {
            let v = Violation::TooLong {
                len: prompt.chars(),
                max: guards.max_chars,
            };
            return failed(record, v.to_string(), keys);
        }
        if guards.seen.contains(&key) {
            return failed(record, Violation::Duplicate.to_string(), keys);
        }

        // The gate: the same minibatch as the parent.
        let child_eval = self.score(&prompt, &plan.batch, Phase::Candidate).await?;
        record.minibatch_score = Some(child_eval.mean);
        if child_eval.mean <= parent_eval.mean + cfg.min_delta {
            record.reason = format!(
                "minibatch {:.3} does not beat the parent's {:.3}",
                child_eval.mean, parent_eval.mean
            );
            return Ok(Child {
                record,
                candidate: None,
                keys,
            });
        }
        // Validation: an empty val split accepts on the minibatch alone (the data crate warned).
        let (val, val_mean) = if self.checked.splits.val.is_empty() {
            (Vec::new(), child_eval.mean)
        } else {
            let e = self
                .score(&prompt, &self.checked.splits.val, Phase::Validation)
                .await?;
            (e.scores(), e.mean)
        };
        record.val_score = Some(val_mean);
        record.pooled = true;
        Ok(Child {
            record,
            candidate: Some(Candidate {
                id: 0,
                prompt: instructions,
                demos,
                parents: std::iter::once(plan.parent)
                    .chain(plan.merge_with)
                    .map(|i| state.pool[i].id)
                    .collect(),
                mutation: Some(plan.kind),
                round,
                val,
                val_mean,
            }),
            keys,
        })
    }

    /// The prompt with as many of the demonstrations as fit the length budget.
    fn fit(
        &self,
        instructions: &Prompt,
        mut demos: Vec<Demo>,
        max_chars: usize,
    ) -> (Prompt, Vec<Demo>) {
        let train = &self.checked.splits.train;
        loop {
            let p = self
                .checked
                .demo_template
                .apply(instructions, &demos, train);
            if p.chars() <= max_chars || demos.is_empty() {
                return (p, demos);
            }
            demos.pop();
        }
    }

    async fn ask_teacher(
        &self,
        ctx: RoundCtx<'_>,
        plan: &Plan,
        parent_eval: &Evaluation,
        parent: &Candidate,
        other: Option<&Candidate>,
    ) -> Proposal {
        let RoundCtx {
            state,
            round,
            guards,
            n,
        } = ctx;
        let cfg = &self.checked.request.config;
        let ledger_start = state.history.len().saturating_sub(cfg.ledger_size);
        let wins =
            |a: &Candidate, b: &Candidate| a.val.iter().zip(&b.val).filter(|(x, y)| x > y).count();
        let editable: Vec<Role> = guards.editable.iter().copied().collect();
        let brief = Brief {
            task: &self.checked.request.task_description,
            current: &parent.prompt,
            editable,
            required: guards.required.iter().cloned().collect(),
            labels: self.checked.labels.clone(),
            ledger: &state.history[ledger_start..],
            evaluation: parent_eval,
            max_failures: cfg.max_failures,
            max_successes: cfg.max_successes,
            budget_chars: cfg.teacher_input_budget,
            proposal: (plan.index, n),
            merge: other.map(|o| MergeWith {
                other: &o.prompt,
                wins: wins(parent, o),
                other_wins: wins(o, parent),
            }),
        };
        let call = TeacherCall {
            teacher: &self.models.teacher,
            temperature: cfg.teacher_temperature + 0.1 * plan.index as f32,
            max_tokens: cfg.teacher_max_tokens,
            frequency_penalty: cfg.teacher_frequency_penalty,
            seed: plan.seed,
            retries: cfg.teacher_retries,
            append_inputs: cfg.append_inputs,
        };
        let p = call.propose(&brief, &parent.prompt, guards).await;
        for v in &p.rejections {
            self.events.emit(&RunEvent::GuardRejected {
                round,
                violation: v.clone(),
            });
        }
        if !p.hypothesis.is_empty() {
            self.events.emit(&RunEvent::TeacherProposed {
                round,
                hypothesis: p.hypothesis.clone(),
            });
        }
        p
    }

    /// Applies a round's children to the state, in child order.
    pub(crate) fn commit(&self, state: &mut RunState, round: u32, outcome: Outcome) {
        let mut improved = false;
        for child in outcome.children {
            let Child {
                mut record,
                candidate,
                keys,
            } = child;
            let duplicate = keys.first().is_some_and(|k| state.seen.contains(k));
            for k in keys {
                if !state.seen.contains(&k) {
                    state.seen.push(k);
                }
            }
            if let Some(mut cand) = candidate {
                if duplicate {
                    record.pooled = false;
                    record.reason = "the same prompt as an earlier child of this round".into();
                } else {
                    let id = state.pool.len();
                    cand.id = id as u32;
                    record.candidate_id = Some(cand.id);
                    let best = &state.pool[state.best];
                    let (wins, why) = self.beats(&cand, best);
                    if cand.val_mean >= state.pool[state.current].val_mean {
                        state.current = id;
                    }
                    if wins {
                        record.accepted = true;
                        record.reason = format!(
                            "val {:.3} beats the best {:.3} ({why}); new best",
                            cand.val_mean, best.val_mean
                        );
                        state.best = id;
                        improved = true;
                        self.events.emit(&RunEvent::BestImproved {
                            round,
                            val_score: cand.val_mean,
                        });
                    } else {
                        record.reason = format!(
                            "val {:.3} vs the best {:.3}: {why}; kept in the pool",
                            cand.val_mean, best.val_mean
                        );
                    }
                    self.events.emit(&RunEvent::CandidateAccepted {
                        round,
                        val_score: cand.val_mean,
                    });
                    if record.repaired {
                        record
                            .reason
                            .push_str(" (missing inputs appended by repair)");
                    }
                    state.pool.push(cand);
                }
            }
            self.events.emit(&RunEvent::RoundFinished {
                record: Box::new(record.clone()),
            });
            state.history.push(record);
        }
        state.minibatch = outcome.minibatch;
        state.round_done = round;
        if improved {
            state.rounds_since_improvement = 0;
        } else {
            state.rounds_since_improvement += 1;
        }
    }

    /// Whether a candidate replaces the best, and why (or why not).
    fn beats(&self, cand: &Candidate, best: &Candidate) -> (bool, String) {
        let cfg = &self.checked.request.config;
        if cand.val.is_empty() || cfg.acceptance == Acceptance::Mean {
            let wins = cand.val_mean > best.val_mean;
            return (
                wins,
                if wins {
                    "higher mean".into()
                } else {
                    "not a higher mean".into()
                },
            );
        }
        let t = paired_test(&cand.val, &best.val, cfg.confidence);
        let why = format!(
            "paired test p = {:.3}, {} at {:.0}% confidence",
            t.p_value,
            if t.significant {
                "significant"
            } else {
                "not significant"
            },
            cfg.confidence * 100.0
        );
        (t.significant, why)
    }
}
