//! One round: N children from up to P parents, each gated on its own minibatch, all screened
//! concurrently (the one concurrency limit applies to all of them together); then the
//! commit, in child order, so that the outcome never depends on which child finished first.

use metaprompt_core::Row;
use metaprompt_core::run::RoundRecord;
use metaprompt_data::{MinibatchState, Minibatches};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::config::MutationKind;
use crate::guards::GuardContext;
use crate::pool::{self, Candidate};
use crate::run::{Run, Stop};
use crate::state::RunState;

/// What one child is to be.
pub(crate) struct ChildPlan {
    pub(crate) index: usize,
    pub(crate) parent: usize,
    pub(crate) kind: MutationKind,
    pub(crate) merge_with: Option<usize>,
    pub(crate) batch: Vec<Row>,
    pub(crate) seed: u64,
}

/// What every child of a round shares.
#[derive(Clone, Copy)]
pub(crate) struct RoundCtx<'a> {
    pub(crate) state: &'a RunState,
    pub(crate) round: u32,
    pub(crate) guards: &'a GuardContext,
    /// The number of children in the round.
    pub(crate) n: usize,
}

/// What a child came to.
pub(crate) struct Child {
    pub(crate) record: RoundRecord,
    /// The candidate, when it passed its gate and was scored on val (its id is given at
    /// commit).
    pub(crate) candidate: Option<Candidate>,
    /// Keys of the prompts it tried, for duplicate detection.
    pub(crate) keys: Vec<String>,
}

impl Child {
    /// A child that came to nothing, and why.
    pub(crate) fn failed(mut record: RoundRecord, reason: String, keys: Vec<String>) -> Child {
        record.failed = true;
        record.reason = reason;
        Child {
            record,
            candidate: None,
            keys,
        }
    }
}

/// A round's children and where the minibatch walker ends.
pub(crate) struct RoundOutcome {
    pub(crate) children: Vec<Child>,
    pub(crate) minibatch: MinibatchState,
}

fn seed_for(seed: u64, round: u32, child: usize, salt: u64) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(u64::from(round) * 101 + child as u64)
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Run<'_> {
    /// Computes a round's children from `state` without changing it.
    pub(crate) async fn round(&self, state: &RunState, round: u32) -> Result<RoundOutcome, Stop> {
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
        let plans: Vec<ChildPlan> = batches
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
                ChildPlan {
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
        Ok(RoundOutcome {
            children: out,
            minibatch: mb.state(),
        })
    }
}
