//! What the teacher is shown: the task, the prompt (with its roles), the variables to keep,
//! the forbidden fields, the ledger and annotated examples, fenced and truncated to a budget.

use metaprompt_core::run::RoundRecord;
use metaprompt_core::{Prompt, Role};

use crate::edit::Layout;
use crate::evaluate::{Evaluation, Outcome};
use system::Shape;

pub(crate) mod system;

fn fence(tag: &str, text: &str, budget: usize, truncated: &mut bool) -> String {
    fence_as(tag, tag, text, budget, truncated)
}

fn fence_as(open: &str, close: &str, text: &str, budget: usize, truncated: &mut bool) -> String {
    let body: String = if text.chars().count() > budget {
        *truncated = true;
        let mut t: String = text.chars().take(budget).collect();
        t.push_str(" …[truncated]");
        t
    } else {
        text.to_string()
    };
    // Row text cannot close our tags and pose as structure.
    let body = body.replace("</", "<\\/");
    format!("<{open}>\n{body}\n</{close}>")
}

fn reference_of(o: &Outcome, labels: &[String]) -> Option<String> {
    if let Some(expected) = o.expected.clone() {
        return Some(expected);
    }
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|l| o.row.text(l).map(|t| format!("{l}: {t}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

fn render_example(
    o: &Outcome,
    vars: &[&str],
    labels: &[String],
    field_budget: usize,
    truncated: &mut bool,
) -> String {
    let mut s = format!(
        "<example id=\"{}\" score=\"{:.2}\">\n",
        o.row.id(),
        o.result.score()
    );
    for v in vars {
        if let Some(t) = o.row.text(v) {
            s.push_str(&fence_as(
                &format!("input name=\"{v}\""),
                "input",
                &t,
                field_budget,
                truncated,
            ));
            s.push('\n');
        }
    }
    s.push_str(&fence("student_output", &o.output, field_budget, truncated));
    s.push('\n');
    if let Some(r) = reference_of(o, labels) {
        s.push_str(&fence("reference", &r, field_budget, truncated));
        s.push('\n');
    }
    s.push_str(&fence(
        "evaluator_reason",
        o.result.reason(),
        field_budget,
        truncated,
    ));
    s.push_str("\n</example>");
    s
}

/// How a prompt is shown: as is for a one-string prompt, each message in a tagged block with
/// its role (and whether it may be rewritten) for a chat prompt.
pub(crate) fn show_prompt(p: &Prompt, editable: &[Role]) -> String {
    if p.is_single() {
        return format!("<prompt>\n{}\n</prompt>", p.messages()[0].template.source());
    }
    p.messages()
        .iter()
        .map(|m| {
            let may = if editable.contains(&m.role) {
                "editable"
            } else {
                "fixed: return it unchanged"
            };
            format!(
                "<message role=\"{}\" {may}>\n{}\n</message>",
                m.role,
                m.template.source()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An instruction edit: the instruction to rewrite and the inputs the engine keeps.
fn show_instruction(l: &Layout) -> String {
    let inputs = if l.inputs.is_empty() {
        "(none)".to_string()
    } else {
        l.inputs.clone()
    };
    let place = if l.instruction_first {
        "after"
    } else {
        "before"
    };
    let instruction = if l.instruction.is_empty() {
        "(none yet: the prompt is only the inputs below; write the instruction that goes with them)"
    } else {
        &l.instruction
    };
    format!(
        "<instruction>\n{instruction}\n</instruction>\nInputs (the engine puts them {place} your instruction; do not write them):\n<inputs>\n{inputs}\n</inputs>"
    )
}

/// A second prompt to combine with the first (a merge), with how many val rows each wins.
pub(crate) struct MergeWith<'a> {
    pub(crate) other: &'a Prompt,
    pub(crate) wins: usize,
    pub(crate) other_wins: usize,
}

/// What goes into one teacher request.
pub(crate) struct Brief<'a> {
    pub(crate) task: &'a str,
    pub(crate) current: &'a Prompt,
    pub(crate) editable: Vec<Role>,
    pub(crate) required: Vec<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) ledger: &'a [RoundRecord],
    pub(crate) evaluation: &'a Evaluation,
    pub(crate) max_failures: usize,
    pub(crate) max_successes: usize,
    pub(crate) budget_chars: usize,
    pub(crate) proposal: (usize, usize),
    pub(crate) merge: Option<MergeWith<'a>>,
    /// Set when the teacher edits only the instruction of `current`.
    pub(crate) layout: Option<Layout>,
    /// Whether the system message shows the worked reply (see `TeacherContext`).
    pub(crate) worked_example: bool,
}

impl Brief<'_> {
    /// What the teacher returns for this prompt.
    pub(crate) fn shape(&self) -> Shape {
        match (&self.layout, self.current.is_single()) {
            (Some(_), _) => Shape::Instruction,
            (None, true) => Shape::Whole,
            (None, false) => Shape::Chat,
        }
    }

    /// A prompt as the teacher sees it: whole, or its instruction with the inputs kept.
    fn show(&self, p: &Prompt) -> String {
        match &self.layout {
            None => show_prompt(p, &self.editable),
            Some(_) => match Layout::of(p, &self.editable.iter().copied().collect()) {
                Some(l) => show_instruction(&l),
                None => show_prompt(p, &self.editable),
            },
        }
    }

    fn variables_line(&self) -> String {
        let vars = self
            .required
            .iter()
            .map(|v| format!("{{{v}}}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self.shape() {
            Shape::Instruction => {
                format!("The inputs ({vars}) are kept by the engine; refer to them in words.")
            }
            _ => format!("The prompt must keep: {vars}."),
        }
    }

    /// The user message.
    pub(crate) fn render(&self) -> String {
        let mut sorted: Vec<&Outcome> = self.evaluation.outcomes.iter().collect();
        sorted.sort_by(|a, b| a.result.score().total_cmp(&b.result.score()));
        let best = sorted.last().map_or(0.0, |o| o.result.score());
        let failures: Vec<&Outcome> = sorted
            .iter()
            .copied()
            .filter(|o| o.result.score() < best || o.result.score() < 1.0)
            .take(self.max_failures)
            .collect();
        let successes: Vec<&Outcome> = sorted
            .iter()
            .rev()
            .copied()
            .filter(|o| {
                o.result.score() >= 0.5 && !failures.iter().any(|f| f.row.id() == o.row.id())
            })
            .take(self.max_successes)
            .collect();
        let vars = self.current.variables();
        let prompt_section = match &self.merge {
            None => format!("## Current prompt\n{}", self.show(self.current)),
            Some(m) => format!(
                "## Two prompts to combine\nPrompt A scores higher than prompt B on {} validation examples, prompt B higher than A on {}. Write one prompt that keeps what makes each succeed.\n\n### Prompt A\n{}\n\n### Prompt B\n{}",
                m.wins,
                m.other_wins,
                self.show(self.current),
                self.show(m.other)
            ),
        };
        let head = format!(
            "## Task\n{}\n\n{prompt_section}\n\n## Variables\n{}\nForbidden fields (expected answers; never use or mention): {}.\n\n## Ledger of earlier attempts\n{}\n\n## Scores\nMean score of the {} on this minibatch: {:.3} over {} examples.\n",
            self.task,
            self.variables_line(),
            if self.labels.is_empty() {
                "none".to_string()
            } else {
                self.labels.join(", ")
            },
            render_ledger(self.ledger),
            if self.merge.is_some() {
                "prompt A"
            } else {
                "current prompt"
            },
            self.evaluation.mean,
            self.evaluation.outcomes.len()
        );
        let n_examples = (failures.len() + successes.len()).max(1);
        let fields_per_example = vars.len() + 3;
        let room = self.budget_chars.saturating_sub(head.len() + 600);
        let field_budget = (room / n_examples / fields_per_example).max(80);
        let mut truncated = false;
        let fail_text: Vec<String> = failures
            .iter()
            .map(|o| render_example(o, &vars, &self.labels, field_budget, &mut truncated))
            .collect();
        let ok_text: Vec<String> = successes
            .iter()
            .map(|o| render_example(o, &vars, &self.labels, field_budget, &mut truncated))
            .collect();
        let mut s = head;
        s.push_str(&format!(
            "\n## Low-scoring examples ({})\n{}\n",
            fail_text.len(),
            if fail_text.is_empty() {
                "None: every example scored at the top.".into()
            } else {
                fail_text.join("\n")
            }
        ));
        s.push_str(&format!(
            "\n## High-scoring examples ({})\n{}\n",
            ok_text.len(),
            if ok_text.is_empty() {
                "None.".into()
            } else {
                ok_text.join("\n")
            }
        ));
        if truncated {
            s.push_str("\nNote: some example fields were truncated (marked …[truncated]) to fit the length budget.\n");
        }
        if self.proposal.1 > 1 {
            s.push_str(&format!(
                "\nYou are proposal {} of {} this round; the others explore other hypotheses, so choose a distinct angle.\n",
                self.proposal.0 + 1,
                self.proposal.1
            ));
        }
        s.push_str(match self.shape() {
            Shape::Whole => {
                "\nReturn the JSON with your analysis, hypothesis and the full improved prompt."
            }
            Shape::Chat => {
                "\nReturn the JSON with your analysis, hypothesis and every message of the improved prompt."
            }
            Shape::Instruction => {
                "\nReturn the JSON with your analysis, hypothesis and the improved instruction (sentences, without the inputs)."
            }
        });
        s
    }
}

/// Renders the ledger for the teacher.
pub(crate) fn render_ledger(ledger: &[RoundRecord]) -> String {
    if ledger.is_empty() {
        return "No earlier attempts.".into();
    }
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    ledger
        .iter()
        .map(|r| {
            format!(
                "Round {}.{}: {} — hypothesis: {}\n  minibatch {} vs parent {}; val {}; {} — {}",
                r.round,
                r.child + 1,
                match r.mutation {
                    metaprompt_core::run::Mutation::Rewrite => "rewrite",
                    metaprompt_core::run::Mutation::Demos => "demonstrations",
                    metaprompt_core::run::Mutation::Merge => "merge",
                    _ => "change",
                },
                if r.hypothesis.is_empty() {
                    "(none)"
                } else {
                    &r.hypothesis
                },
                f(r.minibatch_score),
                f(r.parent_minibatch_score),
                f(r.val_score),
                if r.accepted {
                    "ACCEPTED"
                } else if r.failed {
                    "FAILED"
                } else if r.pooled {
                    "KEPT IN POOL"
                } else {
                    "REJECTED"
                },
                r.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
