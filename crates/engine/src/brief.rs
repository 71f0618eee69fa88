//! What the teacher is shown: the task, the prompt (with its roles), the variables to keep,
//! the forbidden fields, the ledger and annotated examples, fenced and truncated to a budget.

use metaprompt_core::run::RoundRecord;
use metaprompt_core::{Prompt, Role};

use crate::evaluate::{Evaluation, Outcome};
use crate::teacher::{SYSTEM_PROMPT, render_ledger};

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
}

impl Brief<'_> {
    /// The system message: the method, and the reply's shape for this kind of prompt.
    pub(crate) fn system_prompt(&self) -> String {
        if self.current.is_single() {
            return SYSTEM_PROMPT.to_string();
        }
        let head = SYSTEM_PROMPT
            .rsplit_once("\n- Reply with JSON only")
            .map_or(SYSTEM_PROMPT, |(h, _)| h);
        format!(
            "{head}\n- The prompt is a chat prompt: rewrite only the messages marked editable; return every message, in order, with its role, the fixed ones unchanged. Input variables may move between editable messages.\n- Reply with JSON only: {{\"analysis\": ..., \"hypothesis\": ..., \"messages\": [{{\"role\": ..., \"content\": ...}}, ...]}}."
        )
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
            None => format!(
                "## Current prompt\n{}",
                show_prompt(self.current, &self.editable)
            ),
            Some(m) => format!(
                "## Two prompts to combine\nPrompt A scores higher than prompt B on {} validation examples, prompt B higher than A on {}. Write one prompt that keeps what makes each succeed.\n\n### Prompt A\n{}\n\n### Prompt B\n{}",
                m.wins,
                m.other_wins,
                show_prompt(self.current, &self.editable),
                show_prompt(m.other, &self.editable)
            ),
        };
        let head = format!(
            "## Task\n{}\n\n{prompt_section}\n\n## Variables\nThe prompt must keep: {}.\nForbidden fields (expected answers; never use or mention): {}.\n\n## Ledger of earlier attempts\n{}\n\n## Scores\nMean score of the {} on this minibatch: {:.3} over {} examples.\n",
            self.task,
            self.required
                .iter()
                .map(|v| format!("{{{v}}}"))
                .collect::<Vec<_>>()
                .join(", "),
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
        s.push_str(if self.current.is_single() {
            "\nReturn the JSON with your analysis, hypothesis and the full improved prompt."
        } else {
            "\nReturn the JSON with your analysis, hypothesis and every message of the improved prompt."
        });
        s
    }
}
