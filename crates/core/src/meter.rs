//! The meter: calls, tokens and cost of a run per role, checked against one budget; and the
//! cancellation flag it obeys. Shared by every layer of a run (see [`crate::layer`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::budget::{Budget, BudgetKind, Spend};
use crate::message::ChatResponse;
use crate::model::ModelError;
use crate::usage::Price;
use crate::usage::Usage;

/// A flag the caller trips (on Ctrl-C, say): no new call is admitted, the calls in flight
/// finish, and the run returns what it has with `stop_reason = interrupted`.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not tripped.
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// Trips the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is tripped.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The role a model plays in a run; spending is counted per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallRole {
    /// The model the prompt is optimized for.
    Student,
    /// The model that rewrites prompts.
    Teacher,
    /// A model (or hosted evaluator) that scores outputs.
    Judge,
}

impl CallRole {
    /// Every role.
    pub const ALL: [CallRole; 3] = [CallRole::Student, CallRole::Teacher, CallRole::Judge];

    fn index(self) -> usize {
        match self {
            CallRole::Student => 0,
            CallRole::Teacher => 1,
            CallRole::Judge => 2,
        }
    }
}

impl std::fmt::Display for CallRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallRole::Student => "student",
            CallRole::Teacher => "teacher",
            CallRole::Judge => "judge",
        })
    }
}

/// What one role has spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleSpend {
    /// Calls made (admitted, whether they succeeded or not). Cache hits are not calls.
    pub calls: u64,
    /// Requests answered by the cache.
    pub cache_hits: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Tokens of successful calls.
    pub usage: Usage,
    /// Money, at the model's price.
    pub cost_usd: f64,
    /// Of `calls`, those answered through a provider batch (at the batch price).
    #[serde(default)]
    pub batched: u64,
}

/// Everything spent so far, per role: what a checkpoint keeps so that a resumed run reports
/// (and budgets) the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterSnapshot {
    /// The student's calls.
    pub student: RoleSpend,
    /// The teacher's calls.
    pub teacher: RoleSpend,
    /// The judges' calls.
    #[serde(default)]
    pub judge: RoleSpend,
    /// Wall time, in seconds, including time before a resume.
    pub elapsed_secs: f64,
}

impl MeterSnapshot {
    /// One role's spending.
    pub fn role(&self, role: CallRole) -> &RoleSpend {
        match role {
            CallRole::Student => &self.student,
            CallRole::Teacher => &self.teacher,
            CallRole::Judge => &self.judge,
        }
    }

    /// Calls of every role.
    pub fn calls(&self) -> u64 {
        CallRole::ALL.iter().map(|r| self.role(*r).calls).sum()
    }

    /// Cache hits of every role.
    pub fn cache_hits(&self) -> u64 {
        CallRole::ALL.iter().map(|r| self.role(*r).cache_hits).sum()
    }

    /// Tokens of every role.
    pub fn usage(&self) -> Usage {
        CallRole::ALL
            .iter()
            .fold(Usage::default(), |u, r| u + self.role(*r).usage)
    }

    /// Cost of every role.
    pub fn cost_usd(&self) -> f64 {
        CallRole::ALL.iter().map(|r| self.role(*r).cost_usd).sum()
    }
}

struct MeterState {
    roles: [RoleSpend; 3],
    /// The first call refused (budget or cancellation), if any.
    refused: Option<ModelError>,
}

/// Calls, tokens and cost of a run per role, checked against one [`Budget`].
///
/// Shared by every layer of a run (`Arc<Meter>`); never locked across an `.await`.
pub struct Meter {
    state: Mutex<MeterState>,
    budget: Budget,
    cancel: CancelFlag,
    started: Instant,
    prior: Duration,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("budget", &self.budget)
            .field("spend", &self.snapshot())
            .finish()
    }
}

impl Meter {
    /// A meter with nothing spent.
    pub fn new(budget: Budget) -> Self {
        Meter::resume(budget, CancelFlag::new(), MeterSnapshot::default())
    }

    /// A meter that goes on from what a checkpoint recorded and refuses calls once `cancel`
    /// is tripped.
    pub fn resume(budget: Budget, cancel: CancelFlag, spent: MeterSnapshot) -> Self {
        Meter {
            state: Mutex::new(MeterState {
                roles: [spent.student, spent.teacher, spent.judge],
                refused: None,
            }),
            budget,
            cancel,
            started: Instant::now(),
            prior: Duration::from_secs_f64(spent.elapsed_secs.max(0.0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The budget this meter enforces.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Wall time so far, including time before a resume.
    pub fn elapsed(&self) -> Duration {
        self.prior + self.started.elapsed()
    }

    /// What has been spent, per role.
    pub fn snapshot(&self) -> MeterSnapshot {
        let s = self.lock();
        MeterSnapshot {
            student: s.roles[0],
            teacher: s.roles[1],
            judge: s.roles[2],
            elapsed_secs: self.elapsed().as_secs_f64(),
        }
    }

    /// What has been spent over every role, in the form budgets are written in.
    pub fn spend(&self) -> Spend {
        let snap = self.snapshot();
        Spend {
            calls: snap.calls(),
            usage: snap.usage(),
            cost_usd: snap.cost_usd(),
            elapsed: self.elapsed(),
        }
    }

    /// The budget already reached, if any.
    pub fn exhausted(&self) -> Option<BudgetKind> {
        self.budget.exhausted(&self.spend())
    }

    /// Whether `calls` more calls would pass a budget (calls already admitted count).
    pub fn would_exceed(&self, calls: u64) -> Option<BudgetKind> {
        self.budget.would_exceed(&self.spend(), calls)
    }

    /// The first call this meter refused (a budget ran out or the run was cancelled): work
    /// that needed that call is incomplete and must not be used.
    pub fn refusal(&self) -> Option<ModelError> {
        self.lock().refused.clone()
    }

    /// Admits one call of `role`, counting it at once, or refuses it. Calls admitted
    /// concurrently are counted before any of them finishes, so the call budget is never
    /// passed; tokens, cost and time are known only afterwards, so those budgets can be
    /// passed by at most the calls in flight.
    pub fn admit(&self, role: CallRole) -> Result<(), ModelError> {
        let elapsed = self.elapsed();
        let mut s = self.lock();
        let refusal = if self.cancel.is_cancelled() {
            Some(ModelError::Cancelled)
        } else {
            let spend = Spend {
                calls: s.roles.iter().map(|r| r.calls).sum(),
                usage: s.roles.iter().fold(Usage::default(), |u, r| u + r.usage),
                cost_usd: s.roles.iter().map(|r| r.cost_usd).sum(),
                elapsed,
            };
            self.budget.would_exceed(&spend, 1).map(ModelError::Budget)
        };
        if let Some(e) = refusal {
            if s.refused.is_none() {
                s.refused = Some(e.clone());
            }
            return Err(e);
        }
        s.roles[role.index()].calls += 1;
        Ok(())
    }

    /// Records how an admitted call ended.
    pub fn settle(
        &self,
        role: CallRole,
        price: Option<Price>,
        outcome: Result<&ChatResponse, &ModelError>,
    ) {
        let mut s = self.lock();
        let r = &mut s.roles[role.index()];
        match outcome {
            Ok(resp) => {
                r.usage += resp.usage;
                r.cost_usd += price.map_or(0.0, |p| p.call_cost(resp.usage));
            }
            Err(_) => r.errors += 1,
        }
    }

    /// Records one call answered through a provider batch at the batch `price`: a call like
    /// any other for budgets and reports, counted in `batched` too.
    pub fn record_batch(&self, role: CallRole, price: Option<Price>, response: &ChatResponse) {
        let mut s = self.lock();
        let r = &mut s.roles[role.index()];
        r.calls += 1;
        r.batched += 1;
        r.usage += response.usage;
        r.cost_usd += price.map_or(0.0, |p| p.call_cost(response.usage));
    }

    /// Whether the run was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Counts a request answered by the cache.
    pub fn record_hit(&self, role: CallRole) {
        self.lock().roles[role.index()].cache_hits += 1;
    }
}
