//! Demonstrations: worked train examples written into a prompt, and how the engine picks them.
//!
//! A candidate is an instruction prompt plus an ordered set of demonstrations (train row ids
//! with their answers). The demonstrations are rendered by one demo template and inserted as
//! a literal block just before the line of the prompt that holds the first input variable, so
//! the student reads the instructions, then the examples, then its input. Demonstrations only
//! ever come from train: the engine never offers a val or test row.

use std::collections::BTreeMap;

use metaprompt_core::template::Segment;
use metaprompt_core::{DataMapper, Prompt, PromptMessage, PromptTemplate, Row};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::evaluate::Evaluation;
use crate::seeded::{shuffle_with as shuffle, title};

/// The variable the demo template writes the answer with.
pub(crate) const ANSWER: &str = "answer";

/// One demonstration: a train row and the answer shown for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demo {
    /// The train row.
    pub row_id: String,
    /// The answer written after it.
    pub answer: String,
    /// Where the answer came from: the student's own correct output (`bootstrapped`) or the
    /// row's reference (`labelled`).
    pub source: DemoSource,
}

/// Where a demonstration's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoSource {
    /// The student's own output on a row it got right (DSPy's BootstrapFewShot idea).
    Bootstrapped,
    /// The row's reference answer.
    Labelled,
}

/// How one demonstration is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DemoTemplate {
    template: PromptTemplate,
}

impl DemoTemplate {
    /// The configured template, or one `Name: {variable}` line per prompt variable followed by
    /// `Answer: {answer}`.
    pub(crate) fn new(
        configured: Option<&str>,
        variables: &[&str],
        labels: &[String],
    ) -> Result<Self, EngineError> {
        if variables.contains(&ANSWER) {
            return Err(EngineError::Config(
                "the prompt reads a field called `answer`, which demonstrations use for their answers; rename the field".into(),
            ));
        }
        let text = match configured {
            Some(t) => t.to_string(),
            None => {
                let mut lines: Vec<String> = variables
                    .iter()
                    .map(|v| format!("{}: {{{v}}}", title(v)))
                    .collect();
                lines.push("Answer: {answer}".into());
                lines.join("\n")
            }
        };
        let template = PromptTemplate::parse(&text)
            .map_err(|e| EngineError::Config(format!("`demo_template`: {e}")))?;
        let used = template.variables();
        if !used.contains(&ANSWER) {
            return Err(EngineError::Config(
                "`demo_template` must write the answer with {answer}".into(),
            ));
        }
        if let Some(bad) = used
            .iter()
            .find(|v| **v != ANSWER && (labels.iter().any(|l| l == *v) || !variables.contains(v)))
        {
            return Err(EngineError::Config(format!(
                "`demo_template` uses {{{bad}}}; it may use only the prompt's own variables and {{answer}}"
            )));
        }
        Ok(DemoTemplate { template })
    }

    /// One demonstration as text.
    fn render(&self, row: &Row, answer: &str) -> Option<String> {
        let mut fields = row.fields().clone();
        fields.insert(ANSWER.into(), serde_json::Value::String(answer.into()));
        self.template
            .render(&Row::new(row.id().clone(), fields))
            .ok()
    }

    /// The prompt with its demonstrations written in (the prompt itself when there are none).
    pub(crate) fn apply(&self, prompt: &Prompt, demos: &[Demo], train: &[Row]) -> Prompt {
        if demos.is_empty() {
            return prompt.clone();
        }
        let by_id: BTreeMap<&str, &Row> = train.iter().map(|r| (r.id().as_str(), r)).collect();
        let rendered: Vec<String> = demos
            .iter()
            .filter_map(|d| self.render(by_id.get(d.row_id.as_str())?, &d.answer))
            .collect();
        if rendered.is_empty() {
            return prompt.clone();
        }
        let block = format!("Examples:\n\n{}\n\n", rendered.join("\n\n"));
        let messages = prompt.messages();
        // The message holding the first input variable, else the last user message.
        let target = messages
            .iter()
            .position(|m| !m.template.variables().is_empty())
            .or_else(|| {
                messages
                    .iter()
                    .rposition(|m| m.role == metaprompt_core::Role::User)
            })
            .unwrap_or(messages.len() - 1);
        let parts: Vec<PromptMessage> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == target {
                    PromptMessage {
                        role: m.role,
                        template: insert_block(&m.template, &block),
                    }
                } else {
                    m.clone()
                }
            })
            .collect();
        Prompt::from_parts(parts).unwrap_or_else(|_| prompt.clone())
    }
}

/// Inserts literal text at the start of the line holding the template's first variable (or
/// at its end when it has none).
fn insert_block(t: &PromptTemplate, block: &str) -> PromptTemplate {
    let segments = t.segments();
    let first_var = segments
        .iter()
        .position(|s| matches!(s, Segment::Variable(_)));
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len() + 2);
    match first_var {
        None => {
            out.extend(segments.iter().cloned());
            let sep = if t.source().ends_with('\n') || t.source().is_empty() {
                ""
            } else {
                "\n\n"
            };
            out.push(Segment::Literal(format!("{sep}{}", block.trim_end())));
        }
        Some(v) => {
            out.extend(segments[..v.saturating_sub(1)].iter().cloned());
            match v.checked_sub(1).map(|p| &segments[p]) {
                Some(Segment::Literal(before)) => {
                    let cut = before.rfind('\n').map_or(0, |i| i + 1);
                    out.push(Segment::Literal(before[..cut].to_string()));
                    out.push(Segment::Literal(block.to_string()));
                    out.push(Segment::Literal(before[cut..].to_string()));
                }
                Some(other) => {
                    out.push(other.clone());
                    out.push(Segment::Literal(block.to_string()));
                }
                None => out.push(Segment::Literal(block.to_string())),
            }
            out.extend(segments[v..].iter().cloned());
        }
    }
    // Literal segments hold unescaped text; `from_segments` escapes them in the source.
    PromptTemplate::from_segments(out)
}

/// Candidates for one demonstration.
struct Offer {
    row_id: String,
    answer: String,
    source: DemoSource,
    /// The reference label, for stratifying.
    stratum: String,
}

/// Picks up to `k` demonstrations: the parent's own correct outputs on train rows first
/// (bootstrapped), then labelled train rows, spread over the reference labels in turn. Only
/// rows of `train` are ever offered. Seeded.
pub(crate) fn propose(
    train: &[Row],
    parent_on_train: &[&Evaluation],
    mapper: &dyn DataMapper,
    k: usize,
    seed: u64,
) -> Vec<Demo> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let train_ids: std::collections::BTreeSet<&str> =
        train.iter().map(|r| r.id().as_str()).collect();
    let reference = |row: &Row| {
        mapper
            .map("", row)
            .ok()
            .and_then(|i| i.expected())
            .filter(|e| !e.trim().is_empty())
    };
    let mut offers: Vec<Offer> = Vec::new();
    let mut taken = std::collections::BTreeSet::new();
    for e in parent_on_train {
        let best = e
            .outcomes
            .iter()
            .map(|o| o.result.score())
            .fold(0.0, f64::max);
        for o in &e.outcomes {
            let id = o.row.id().as_str();
            if !train_ids.contains(id)
                || o.result.is_error()
                || o.result.score() < best.max(0.5)
                || o.output.trim().is_empty()
                || !taken.insert(id.to_string())
            {
                continue;
            }
            offers.push(Offer {
                row_id: id.to_string(),
                answer: o.output.trim().to_string(),
                source: DemoSource::Bootstrapped,
                stratum: reference(&o.row).unwrap_or_default(),
            });
        }
    }
    shuffle(&mut offers, &mut rng);
    let mut labelled: Vec<Offer> = train
        .iter()
        .filter(|r| !taken.contains(r.id().as_str()))
        .filter_map(|r| {
            let answer = reference(r)?;
            Some(Offer {
                row_id: r.id().to_string(),
                stratum: answer.clone(),
                answer,
                source: DemoSource::Labelled,
            })
        })
        .collect();
    shuffle(&mut labelled, &mut rng);
    offers.extend(labelled);
    // Round-robin over strata, in order of first appearance, so every label is shown.
    let mut strata: Vec<String> = Vec::new();
    let mut queues: BTreeMap<String, std::collections::VecDeque<Offer>> = BTreeMap::new();
    for o in offers {
        if !queues.contains_key(&o.stratum) {
            strata.push(o.stratum.clone());
        }
        queues.entry(o.stratum.clone()).or_default().push_back(o);
    }
    let mut picked = Vec::new();
    'fill: while picked.len() < k {
        let mut any = false;
        for s in &strata {
            if let Some(o) = queues.get_mut(s).and_then(|q| q.pop_front()) {
                any = true;
                picked.push(Demo {
                    row_id: o.row_id,
                    answer: o.answer,
                    source: o.source,
                });
                if picked.len() == k {
                    break 'fill;
                }
            }
        }
        if !any {
            break;
        }
    }
    // Shown in a seeded order, not grouped by label.
    shuffle(&mut picked, &mut rng);
    picked
}

/// The union of two demonstration sets, alternating between them, at most `k`.
pub(crate) fn union(a: &[Demo], b: &[Demo], k: usize) -> Vec<Demo> {
    let mut out: Vec<Demo> = Vec::new();
    let mut i = 0;
    while out.len() < k && (i < a.len() || i < b.len()) {
        for d in [a.get(i), b.get(i)].into_iter().flatten() {
            if out.len() < k && !out.iter().any(|o| o.row_id == d.row_id) {
                out.push(d.clone());
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: &str, text: &str) -> Row {
        Row::from_json(id, json!({"text": text, "label": "spam"})).unwrap()
    }

    #[test]
    fn demos_go_before_the_input_line_and_braces_stay_literal() {
        let t = DemoTemplate::new(None, &["text"], &["label".into()]).unwrap();
        let p = Prompt::parse("Classify the message.\nReply in one word.\n\n{text}").unwrap();
        let demos = [Demo {
            row_id: "1".into(),
            answer: "spam".into(),
            source: DemoSource::Labelled,
        }];
        let out = t.apply(&p, &demos, &[row("1", "WIN {cash}")]);
        let rendered = out.render(&row("9", "hello")).unwrap();
        assert_eq!(
            rendered[0].content,
            "Classify the message.\nReply in one word.\n\nExamples:\n\nText: WIN {cash}\nAnswer: spam\n\nhello"
        );
        assert_eq!(out.variables(), vec!["text"]);
    }

    #[test]
    fn a_demo_template_may_not_read_labels_or_unknown_fields() {
        assert!(
            DemoTemplate::new(Some("{text} -> {label}"), &["text"], &["label".into()]).is_err()
        );
        assert!(DemoTemplate::new(Some("{text}"), &["text"], &[]).is_err());
        assert!(DemoTemplate::new(Some("{text} => {answer}"), &["text"], &[]).is_ok());
    }

    #[test]
    fn union_alternates_and_drops_repeats() {
        let d = |id: &str| Demo {
            row_id: id.into(),
            answer: "a".into(),
            source: DemoSource::Labelled,
        };
        let u = union(&[d("1"), d("2")], &[d("2"), d("3")], 3);
        let ids: Vec<&str> = u.iter().map(|d| d.row_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
    }
}
