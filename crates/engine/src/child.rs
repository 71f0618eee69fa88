//! One child of a round, in named steps: [`mutate`](Run::mutate) (the teacher's rewrite, a
//! merge, or new demonstrations), [`prepare`](Run::prepare) (the whole prompt as the student
//! sees it, within the length budget and not seen before), [`gate`](Run::gate) (beat the
//! parent on the child's minibatch) and [`validate`](Run::validate) (scored on val, ready for
//! the commit).

use std::collections::BTreeSet;

use metaprompt_core::run::{Phase, RoundRecord};
use metaprompt_core::{Prompt, Row};

use crate::EngineError;
use crate::config::MutationKind;
use crate::demos::{self, Demo, DemoSource};
use crate::evaluate::{Evaluation, Interrupt};
use crate::guards::{Violation, normalised};
use crate::pool::Candidate;
use crate::round::{Child, ChildPlan, RoundCtx};
use crate::run::{Run, Stop};

/// What a mutation made: the instructions, their demonstrations, and whether the repair
/// appended inputs the teacher had dropped.
struct Mutated {
    instructions: Prompt,
    demos: Vec<Demo>,
    repaired: bool,
}

/// A child that passed [`Run::prepare`]: the prompt the student sees.
struct Prepared {
    instructions: Prompt,
    prompt: Prompt,
    demos: Vec<Demo>,
    repaired: bool,
}

/// How many train rows (outside the gate minibatch) the parent is scored on to find its own
/// correct answers, per demonstration wanted.
pub(crate) const BOOTSTRAP_ROWS_PER_DEMO: usize = 4;

impl Run<'_> {
    /// Computes one child from the round's shared state.
    pub(crate) async fn child(&self, ctx: RoundCtx<'_>, plan: ChildPlan) -> Result<Child, Stop> {
        let parent = &ctx.state.pool[plan.parent];
        let parent_prompt = self.effective(parent);
        let parent_eval = self
            .score(&parent_prompt, &plan.batch, Phase::Minibatch)
            .await?;
        let mut record = RoundRecord {
            round: ctx.round,
            child: plan.index as u32,
            candidate_id: None,
            parents: std::iter::once(parent.id)
                .chain(plan.merge_with.map(|m| ctx.state.pool[m].id))
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
        let mutated = match self
            .mutate(ctx, &plan, &parent_eval, &parent_prompt, &mut record)
            .await?
        {
            Ok(m) => m,
            Err(reason) => return Ok(Child::failed(record, reason, Vec::new())),
        };
        record.repaired = mutated.repaired;
        let (prepared, keys) = match self.prepare(ctx, mutated, &mut record) {
            (Ok(p), keys) => (p, keys),
            (Err(reason), keys) => return Ok(Child::failed(record, reason, keys)),
        };
        if !self
            .gate(&plan, &parent_prompt, &parent_eval, &prepared, &mut record)
            .await?
        {
            return Ok(Child {
                record,
                candidate: None,
                keys,
            });
        }
        let candidate = self.validate(ctx, &plan, prepared, &mut record).await?;
        Ok(Child {
            record,
            candidate: Some(candidate),
            keys,
        })
    }

    /// The child's instructions and demonstrations, or why there are none. Only a fatal
    /// teacher error stops the run.
    async fn mutate(
        &self,
        ctx: RoundCtx<'_>,
        plan: &ChildPlan,
        parent_eval: &Evaluation,
        parent_prompt: &Prompt,
        record: &mut RoundRecord,
    ) -> Result<Result<Mutated, String>, Stop> {
        let cfg = &self.checked.request.config;
        let parent = &ctx.state.pool[plan.parent];
        if plan.kind == MutationKind::Demos {
            let picked = self.new_demos(plan, parent_prompt).await?;
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
                return Ok(Err("no train row can serve as a demonstration".into()));
            }
            return Ok(Ok(Mutated {
                instructions: parent.prompt.clone(),
                demos: picked,
                repaired: false,
            }));
        }
        if !matches!(plan.kind, MutationKind::Rewrite | MutationKind::Merge) {
            return Ok(Err("unknown mutation kind".into()));
        }
        let other = plan.merge_with.map(|m| &ctx.state.pool[m]);
        let demos = match other {
            Some(o) => demos::union(&parent.demos, &o.demos, cfg.max_demos),
            None => parent.demos.clone(),
        };
        if other.is_some_and(|o| o.prompt == parent.prompt) {
            record.hypothesis =
                "the two candidates' demonstrations together cover more cases".into();
            return Ok(Ok(Mutated {
                instructions: parent.prompt.clone(),
                demos,
                repaired: false,
            }));
        }
        let p = self
            .ask_teacher(ctx, plan, parent_eval, parent, other)
            .await;
        record.analysis = p.analysis.clone();
        record.hypothesis = p.hypothesis.clone();
        if let Some(e) = p.fatal {
            return Err(match Interrupt::from_refusal(&e) {
                Some(i) => Stop::Interrupt(i),
                None => Stop::Error(EngineError::Teacher(e)),
            });
        }
        Ok(match p.outcome {
            Ok(c) => Ok(Mutated {
                instructions: c.prompt,
                demos,
                repaired: c.repaired,
            }),
            Err(reason) => Err(format!("no usable rewrite: {reason}")),
        })
    }

    /// New demonstrations for a `demos` child, never from its gate minibatch: the parent is
    /// scored on other train rows (a seeded sample) and its correct answers there are offered
    /// first, then labelled rows.
    async fn new_demos(&self, plan: &ChildPlan, parent_prompt: &Prompt) -> Result<Vec<Demo>, Stop> {
        let cfg = &self.checked.request.config;
        let k = cfg.max_demos.max(1);
        let gate: BTreeSet<&str> = plan.batch.iter().map(|r| r.id().as_str()).collect();
        let mut offered: Vec<Row> = self
            .checked
            .splits
            .train
            .iter()
            .filter(|r| !gate.contains(r.id().as_str()))
            .cloned()
            .collect();
        crate::seeded::shuffle(&mut offered, plan.seed);
        let sample = &offered[..offered.len().min(k * BOOTSTRAP_ROWS_PER_DEMO)];
        let on_sample = self.score(parent_prompt, sample, Phase::Minibatch).await?;
        Ok(demos::propose(
            &offered,
            &[&on_sample],
            self.checked.request.data_mapper.as_ref(),
            k,
            plan.seed,
        ))
    }

    /// The whole prompt as the student sees it: fits the length budget, not seen before.
    /// Returns the keys of the prompts tried either way, for duplicate detection.
    fn prepare(
        &self,
        ctx: RoundCtx<'_>,
        m: Mutated,
        record: &mut RoundRecord,
    ) -> (Result<Prepared, String>, Vec<String>) {
        let guards = ctx.guards;
        let (prompt, demos) = self.fit(&m.instructions, m.demos, guards.max_chars);
        record.candidate_prompt = m.instructions.text();
        record.demo_ids = demos.iter().map(|d| d.row_id.clone()).collect();
        let key = normalised(&prompt.key());
        let keys = vec![key.clone(), normalised(&m.instructions.key())];
        if prompt.chars() > guards.max_chars {
            let v = Violation::TooLong {
                len: prompt.chars(),
                max: guards.max_chars,
            };
            return (Err(v.to_string()), keys);
        }
        if guards.seen.contains(&key) {
            return (Err(Violation::Duplicate.to_string()), keys);
        }
        let prepared = Prepared {
            instructions: m.instructions,
            prompt,
            demos,
            repaired: m.repaired,
        };
        (Ok(prepared), keys)
    }

    /// The prompt with as many of the demonstrations as fit the length budget.
    pub(crate) fn fit(
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

    /// The gate: the child against its parent on the child's minibatch, without the rows the
    /// child shows as demonstrations (a row whose answer the prompt hands over proves
    /// nothing). Records the rows gated on and the two scores.
    async fn gate(
        &self,
        plan: &ChildPlan,
        parent_prompt: &Prompt,
        parent_eval: &Evaluation,
        p: &Prepared,
        record: &mut RoundRecord,
    ) -> Result<bool, Stop> {
        let cfg = &self.checked.request.config;
        let shown: BTreeSet<&str> = p.demos.iter().map(|d| d.row_id.as_str()).collect();
        let rows: Vec<Row> = plan
            .batch
            .iter()
            .filter(|r| !shown.contains(r.id().as_str()))
            .cloned()
            .collect();
        let parent_mean = if rows.len() == plan.batch.len() {
            parent_eval.mean
        } else {
            record.minibatch_ids = rows.iter().map(|r| r.id().to_string()).collect();
            self.score(parent_prompt, &rows, Phase::Minibatch)
                .await?
                .mean
        };
        record.parent_minibatch_score = Some(parent_mean);
        let child_eval = self.score(&p.prompt, &rows, Phase::Candidate).await?;
        record.minibatch_score = Some(child_eval.mean);
        if child_eval.mean <= parent_mean + cfg.min_delta {
            record.reason = format!(
                "minibatch {:.3} does not beat the parent's {parent_mean:.3}",
                child_eval.mean
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// Validation: the child scored on val, as a candidate for the pool. An empty val split
    /// accepts on the minibatch alone (the data crate warned).
    async fn validate(
        &self,
        ctx: RoundCtx<'_>,
        plan: &ChildPlan,
        p: Prepared,
        record: &mut RoundRecord,
    ) -> Result<Candidate, Stop> {
        let (val, val_mean) = if self.checked.splits.val.is_empty() {
            (Vec::new(), record.minibatch_score.unwrap_or(0.0))
        } else {
            let e = self
                .score(&p.prompt, &self.checked.splits.val, Phase::Validation)
                .await?;
            (e.scores(), e.mean)
        };
        record.val_score = Some(val_mean);
        record.pooled = true;
        Ok(Candidate {
            id: 0,
            prompt: p.instructions,
            demos: p.demos,
            parents: std::iter::once(plan.parent)
                .chain(plan.merge_with)
                .map(|i| ctx.state.pool[i].id)
                .collect(),
            mutation: Some(plan.kind),
            round: ctx.round,
            val,
            val_mean,
            repaired: p.repaired,
        })
    }
}
