//! Guards: checks every rewrite must pass before it costs a single student call.

use std::collections::BTreeSet;

use metaprompt_core::{PromptTemplate, TemplateError};

/// Why a rewrite was refused. The message is what the teacher is told when asked again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The rewrite is not a valid template even after healing braces.
    #[error("the prompt is not a valid template: {0}")]
    Parse(TemplateError),
    /// Required variables were dropped.
    #[error("the prompt must keep every input variable; it dropped {}", braces(.0))]
    MissingVariables(Vec<String>),
    /// Variables that the rows do not have.
    #[error("the prompt uses {} but the data has no such fields; use only {}", braces(.0), braces(.1))]
    UnknownVariables(Vec<String>, Vec<String>),
    /// Variables holding the expected answers.
    #[error("the prompt reads {}, which hold the expected answers; a prompt must never see them", braces(.0))]
    LabelVariables(Vec<String>),
    /// Too long.
    #[error("the prompt has {len} characters; the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Identical (up to whitespace) to an earlier candidate.
    #[error("the prompt is identical to one tried before; propose a different change")]
    Duplicate,
    /// Copies a reference answer.
    #[error(
        "the prompt copies text from a reference answer (\"{0}\"); describe patterns instead of quoting answers"
    )]
    CopiesReference(String),
}

fn braces(v: &[String]) -> String {
    v.iter()
        .map(|s| format!("{{{s}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

/// Escapes stray braces while keeping `{name}` placeholders and existing `{{`/`}}` escapes:
/// masks the variables, escapes what is left, unmasks. A teacher that writes literal JSON in
/// a prompt gets a prompt that renders that JSON, instead of a crash.
///
/// ```
/// let healed = metaprompt_engine::heal_braces(r#"Reply as {"label": "spam"} for {text}"#);
/// assert_eq!(healed, r#"Reply as {{"label": "spam"}} for {text}"#);
/// ```
pub fn heal_braces(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => {
                out.push_str("{{");
                i += 2;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                out.push_str("}}");
                i += 2;
            }
            b'{' => {
                let rest = &text[i + 1..];
                match rest.find(['{', '}']) {
                    Some(end) if rest.as_bytes()[end] == b'}' && is_name(rest[..end].trim()) => {
                        out.push('{');
                        out.push_str(rest[..end].trim());
                        out.push('}');
                        i += end + 2;
                    }
                    _ => {
                        out.push_str("{{");
                        i += 1;
                    }
                }
            }
            b'}' => {
                out.push_str("}}");
                i += 1;
            }
            _ => {
                let next = text[i..].find(['{', '}']).map_or(b.len(), |n| i + n);
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    out
}

/// Whitespace-normalised text, for duplicate detection.
pub(crate) fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the guards check against.
#[derive(Debug, Clone, Default)]
pub struct GuardContext {
    /// Variables every rewrite must keep (those of the initial prompt).
    pub required: BTreeSet<String>,
    /// Fields the rows have (a rewrite may use these).
    pub available: BTreeSet<String>,
    /// Fields a prompt must never read.
    pub labels: BTreeSet<String>,
    /// Longest allowed prompt.
    pub max_chars: usize,
    /// Whitespace-normalised texts of every earlier candidate.
    pub seen: BTreeSet<String>,
    /// Lowercased 8-word runs of train references, when reference copying is refused.
    pub reference_ngrams: BTreeSet<String>,
}

/// A rewrite that passed, possibly after repair.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The template.
    pub template: PromptTemplate,
    /// Whether missing inputs were appended.
    pub repaired: bool,
}

fn eight_grams(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(8).map(|w| w.join(" ")).collect()
}

impl GuardContext {
    /// Records the 8-word runs of a reference answer.
    pub fn add_reference(&mut self, reference: &str) {
        self.reference_ngrams.extend(eight_grams(reference));
    }

    /// Checks a rewrite; the only violation it can return together with a repairable template
    /// is [`Violation::MissingVariables`].
    pub fn check(&self, candidate: &str) -> Result<Checked, Violation> {
        let healed = heal_braces(candidate.trim());
        let template = PromptTemplate::parse(&healed).map_err(Violation::Parse)?;
        let used: BTreeSet<String> = template.variables().iter().map(|s| s.to_string()).collect();
        let labels: Vec<String> = used.intersection(&self.labels).cloned().collect();
        if !labels.is_empty() {
            return Err(Violation::LabelVariables(labels));
        }
        let unknown: Vec<String> = used
            .iter()
            .filter(|v| !self.available.contains(*v) && !self.required.contains(*v))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let allowed: Vec<String> = self.available.difference(&self.labels).cloned().collect();
            return Err(Violation::UnknownVariables(unknown, allowed));
        }
        if template.source().chars().count() > self.max_chars {
            return Err(Violation::TooLong {
                len: template.source().chars().count(),
                max: self.max_chars,
            });
        }
        if self.seen.contains(&normalised(template.source())) {
            return Err(Violation::Duplicate);
        }
        if !self.reference_ngrams.is_empty()
            && let Some(g) = eight_grams(template.source())
                .into_iter()
                .find(|g| self.reference_ngrams.contains(g))
        {
            return Err(Violation::CopiesReference(g));
        }
        let missing: Vec<String> = self.required.difference(&used).cloned().collect();
        if !missing.is_empty() {
            return Err(Violation::MissingVariables(missing));
        }
        Ok(Checked {
            template,
            repaired: false,
        })
    }

    /// The repair for dropped variables: appends a labelled input block holding them
    /// (`Text: {text}`), then checks again.
    pub fn repair(&self, candidate: &str, missing: &[String]) -> Result<Checked, Violation> {
        let mut text = heal_braces(candidate.trim());
        text.push('\n');
        for v in missing {
            let mut label: String = v.replace(['_', '.', '-'], " ");
            if let Some(first) = label.get(..1) {
                label = first.to_uppercase() + &label[1..];
            }
            text.push_str(&format!("\n{label}: {{{v}}}"));
        }
        self.check(&text).map(|c| Checked {
            template: c.template,
            repaired: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> GuardContext {
        GuardContext {
            required: ["text".to_string()].into(),
            available: ["text".to_string(), "context".into(), "label".into()].into(),
            labels: ["label".to_string()].into(),
            max_chars: 200,
            ..GuardContext::default()
        }
    }

    #[test]
    fn healing_keeps_variables_and_escapes() {
        assert_eq!(heal_braces("{text} {{x}} {"), "{text} {{x}} {{");
        assert_eq!(heal_braces("}{ {not a var}"), "}}{{ {{not a var}}");
        assert_eq!(heal_braces("{ text }"), "{text}");
    }

    #[test]
    fn each_violation_is_detected() {
        let c = ctx();
        assert!(
            matches!(c.check("Classify."), Err(Violation::MissingVariables(v)) if v == ["text"])
        );
        assert!(matches!(
            c.check("{text} answer is {label}"),
            Err(Violation::LabelVariables(_))
        ));
        assert!(matches!(
            c.check("{text} {topic}"),
            Err(Violation::UnknownVariables(..))
        ));
        assert!(matches!(
            c.check(&format!("{} {{text}}", "x".repeat(300))),
            Err(Violation::TooLong { .. })
        ));
        let mut seen = ctx();
        seen.seen.insert(normalised("Classify   {text}"));
        assert_eq!(seen.check("Classify\n{text}"), Err(Violation::Duplicate));
        let ok = c
            .check("Use {context} and {text}; reply {\"a\": 1}")
            .unwrap();
        assert_eq!(ok.template.variables(), vec!["context", "text"]);
    }

    #[test]
    fn repair_appends_missing_inputs() {
        let c = ctx();
        let r = c.repair("Classify the message.", &["text".into()]).unwrap();
        assert!(r.repaired);
        assert_eq!(r.template.source(), "Classify the message.\n\nText: {text}");
    }

    #[test]
    fn reference_copying_is_refused_when_enabled() {
        let mut c = ctx();
        c.add_reference("the quick brown fox jumps over the lazy dog today");
        let err = c
            .check("Answer like: The quick brown fox jumps over the lazy dog. {text}")
            .unwrap_err();
        assert!(matches!(err, Violation::CopiesReference(_)));
    }
}
