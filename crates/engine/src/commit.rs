//! The commit: a round's children applied to the state in child order, and the acceptance
//! rule that decides whether a candidate replaces the best.

use metaprompt_core::run::RunEvent;

use crate::config::Acceptance;
use crate::pool::Candidate;
use crate::round::{Child, RoundOutcome};
use crate::run::Run;
use crate::state::RunState;
use crate::stats::paired_test;

impl Run<'_> {
    /// Applies a round's children to the state, in child order.
    pub(crate) fn commit(&self, state: &mut RunState, round: u32, outcome: RoundOutcome) {
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
                    let (wins, why) = self.beats(&cand, best, &mut state.tests_made);
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
                    if cand.repaired {
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

    /// Whether a candidate replaces the best, and why (or why not). `tests_made` counts the
    /// run's paired tests on val; under `acceptance = "paired"` the k-th is made at level
    /// α / (k(k+1)) (α = 1 − confidence), so all the run's tests together promote a candidate
    /// that is no better with probability at most α, however many are made.
    fn beats(&self, cand: &Candidate, best: &Candidate, tests_made: &mut u32) -> (bool, String) {
        let cfg = &self.checked.request.config;
        if cand.val.is_empty() || cfg.acceptance == Acceptance::Mean {
            let wins = cand.val_mean > best.val_mean;
            let why = if wins {
                "higher mean"
            } else {
                "not a higher mean"
            };
            return (wins, why.into());
        }
        *tests_made += 1;
        let alpha = 1.0 - cfg.confidence;
        let level = match cfg.acceptance {
            Acceptance::PairedUncorrected => alpha,
            _ => spent_level(alpha, *tests_made),
        };
        let t = paired_test(&cand.val, &best.val, 1.0 - level);
        let why = format!(
            "paired test {} of the run: p = {:.4}, {} at level {level:.4}",
            tests_made,
            t.p_value,
            if t.significant {
                "significant"
            } else {
                "not significant"
            },
        );
        (t.significant, why)
    }
}

/// The level of a run's k-th test (k ≥ 1) when `alpha` is spent over all of them: α/(k(k+1)),
/// which sums to α over any number of tests.
pub(crate) fn spent_level(alpha: f64, k: u32) -> f64 {
    let k = f64::from(k.max(1));
    alpha / (k * (k + 1.0))
}

#[cfg(test)]
mod tests {
    use super::spent_level;

    #[test]
    fn the_levels_spend_at_most_alpha() {
        assert!((spent_level(0.1, 1) - 0.05).abs() < 1e-12);
        assert!((spent_level(0.1, 4) - 0.005).abs() < 1e-12);
        let total: f64 = (1..=10_000).map(|k| spent_level(0.1, k)).sum();
        assert!(total < 0.1 && total > 0.0999, "{total}");
    }
}
