//! Asking the teacher for a child's rewrite: the brief (the task, the parent, its failures,
//! the ledger, the merge partner) and the sampling of this child's proposal.

use metaprompt_core::Role;
use metaprompt_core::run::RunEvent;

use crate::brief::{Brief, MergeWith};
use crate::edit::{Layout, TeacherContext};
use crate::evaluate::Evaluation;
use crate::pool::Candidate;
use crate::round::{ChildPlan, RoundCtx};
use crate::run::Run;
use crate::teacher::{Proposal, TeacherCall};

impl Run<'_> {
    pub(crate) async fn ask_teacher(
        &self,
        ctx: RoundCtx<'_>,
        plan: &ChildPlan,
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
        let (max_failures, max_successes, ledger_size, budget_chars) = cfg.teacher_context.limits(
            cfg.max_failures,
            cfg.max_successes,
            cfg.ledger_size,
            cfg.teacher_input_budget,
        );
        let ledger_start = state.history.len().saturating_sub(ledger_size);
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
            max_failures,
            max_successes,
            budget_chars,
            proposal: (plan.index, n),
            merge: other.map(|o| MergeWith {
                other: &o.prompt,
                wins: wins(parent, o),
                other_wins: wins(o, parent),
            }),
            layout: Layout::chosen(cfg.edit, &parent.prompt, &guards.editable),
            worked_example: cfg.teacher_context == TeacherContext::Full,
        };
        let teacher = &self.checked.request.teacher_params;
        let call = TeacherCall {
            teacher: &self.models.teacher,
            temperature: teacher.temperature_of(plan.index),
            max_tokens: teacher.max_tokens,
            frequency_penalty: teacher.frequency_penalty,
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
}
