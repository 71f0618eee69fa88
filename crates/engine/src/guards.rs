//! Guards: checks every rewrite must pass before it costs a single student call.

mod instruction;

use std::collections::BTreeSet;

use metaprompt_core::{Prompt, PromptMessage, PromptTemplate, Role, TemplateError};

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
    /// The same sentence or phrase over and over.
    #[error(
        "the prompt repeats \"{0}\" over and over; say each thing once and use the room for distinct instructions"
    )]
    Repetitive(String),
    /// A message the teacher may not edit was changed.
    #[error(
        "the {0} message may not be changed; return it exactly as it was and rewrite only the {1} message(s)"
    )]
    NotEditable(Role, String),
    /// An instruction that is empty, only label values or too short to instruct.
    #[error(
        "the prompt's instruction {0}; write instructions in full sentences that tell the model how to decide, and keep the input variables"
    )]
    Degenerate(String),
    /// Words of the worked example's task (another task than this one).
    #[error(
        "the prompt is about the worked example's task (it says \"{0}\"), not this one; write the instruction for the task described above"
    )]
    CopiesExample(String),
    /// The messages do not match the prompt's roles in order.
    #[error("return every message of the prompt, in order, with roles {0}; got {1}")]
    Structure(String, String),
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
    /// Longest allowed prompt, over every message, demonstrations included.
    pub max_chars: usize,
    /// Whitespace-normalised keys of every earlier candidate.
    pub seen: BTreeSet<String>,
    /// Lowercased 8-word runs of train references, when reference copying is refused.
    pub reference_ngrams: BTreeSet<String>,
    /// The roles the teacher may rewrite.
    pub editable: BTreeSet<Role>,
    /// The answers a label field takes (lowercased), when there are few of them: an
    /// instruction made only of these is a label, not an instruction.
    pub label_values: BTreeSet<String>,
    /// The fewest words an instruction may have (0: no minimum).
    pub min_instruction_words: usize,
    /// The words of the teacher's worked example's task that the user's task does not use:
    /// a rewrite that says them copied the example.
    pub foreign_words: BTreeSet<String>,
}

/// A rewrite that passed, possibly after repair.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRewrite {
    /// The prompt.
    pub prompt: Prompt,
    /// Whether missing inputs were appended.
    pub repaired: bool,
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn eight_grams(text: &str) -> Vec<String> {
    words(text).windows(8).map(|w| w.join(" ")).collect()
}

/// A sentence said three times or more, or a run of six words said four times or more: the
/// signature of a model repeating itself until its token limit.
pub(crate) fn repetition(text: &str) -> Option<String> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for s in text.split(['.', '!', '?', '\n']) {
        let n = normalised(s).to_lowercase();
        if n.split_whitespace().count() >= 3 {
            *counts.entry(n).or_default() += 1;
        }
    }
    if let Some((s, _)) = counts.into_iter().find(|(_, c)| *c >= 3) {
        return Some(s);
    }
    let w = words(text);
    let mut grams: std::collections::BTreeMap<String, usize> = Default::default();
    for g in w.windows(6) {
        let k = g.join(" ");
        let c = grams.entry(k.clone()).or_default();
        *c += 1;
        if *c >= 4 {
            return Some(k);
        }
    }
    None
}

impl GuardContext {
    /// Records the 8-word runs of a reference answer.
    pub fn add_reference(&mut self, reference: &str) {
        self.reference_ngrams.extend(eight_grams(reference));
    }

    /// The editable roles, for messages to the teacher.
    fn editable_names(&self) -> String {
        self.editable
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// Checks a one-string rewrite of a one-message prompt.
    pub fn check(&self, candidate: &str) -> Result<CheckedRewrite, Violation> {
        let original = Prompt::parse("").map_err(Violation::Parse)?;
        self.check_messages(&original, &[(Role::User, candidate.to_string())])
    }

    /// Checks a rewrite of `original` given as its messages in order. The only violation
    /// returned together with a repairable prompt is [`Violation::MissingVariables`].
    pub fn check_messages(
        &self,
        original: &Prompt,
        candidate: &[(Role, String)],
    ) -> Result<CheckedRewrite, Violation> {
        let roles = |it: &mut dyn Iterator<Item = Role>| {
            it.map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        };
        let expected = roles(&mut original.messages().iter().map(|m| m.role));
        let got = roles(&mut candidate.iter().map(|(r, _)| *r));
        // A one-string prompt's rewrite is a single user message; its original may be the
        // placeholder empty prompt of `check`.
        let single = original.is_single() && candidate.len() == 1;
        if !single && expected != got {
            return Err(Violation::Structure(expected, got));
        }
        let mut messages = Vec::with_capacity(candidate.len());
        for (i, (role, text)) in candidate.iter().enumerate() {
            let healed = heal_braces(text.trim());
            let template = PromptTemplate::parse(&healed).map_err(Violation::Parse)?;
            if !single {
                let before = &original.messages()[i];
                let same = normalised(before.template.source()) == normalised(template.source());
                if !self.editable.contains(role) && !same {
                    return Err(Violation::NotEditable(*role, self.editable_names()));
                }
                if same {
                    // Kept byte for byte: whitespace differences are not edits.
                    messages.push(before.clone());
                    continue;
                }
            }
            messages.push(PromptMessage {
                role: *role,
                template,
            });
        }
        let prompt = Prompt::from_parts(messages)
            .map_err(|_| Violation::Structure(expected.clone(), got.clone()))?;
        self.check_prompt(prompt)
    }

    /// Checks a whole prompt (also a demonstration child's, whose instructions are unchanged).
    pub fn check_prompt(&self, prompt: Prompt) -> Result<CheckedRewrite, Violation> {
        let used: BTreeSet<String> = prompt.variables().iter().map(|s| s.to_string()).collect();
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
        let len = prompt.chars();
        if len > self.max_chars {
            return Err(Violation::TooLong {
                len,
                max: self.max_chars,
            });
        }
        if self.seen.contains(&normalised(&prompt.key())) {
            return Err(Violation::Duplicate);
        }
        let text: String = prompt
            .messages()
            .iter()
            .map(|m| m.template.source())
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(r) = repetition(&text) {
            return Err(Violation::Repetitive(r));
        }
        if !self.reference_ngrams.is_empty()
            && let Some(g) = eight_grams(&text)
                .into_iter()
                .find(|g| self.reference_ngrams.contains(g))
        {
            return Err(Violation::CopiesReference(g));
        }
        if let Some(w) = words(&text)
            .into_iter()
            .find(|w| self.foreign_words.contains(w))
        {
            return Err(Violation::CopiesExample(w));
        }
        if let Some(why) = self.degenerate(&prompt) {
            return Err(Violation::Degenerate(why));
        }
        let missing: Vec<String> = self.required.difference(&used).cloned().collect();
        if !missing.is_empty() {
            return Err(Violation::MissingVariables(missing));
        }
        Ok(CheckedRewrite {
            prompt,
            repaired: false,
        })
    }

    /// The repair for dropped variables: appends a labelled input block holding them
    /// (`Text: {text}`) to the last editable user message (else the last editable one), then
    /// checks again.
    pub fn repair(
        &self,
        candidate: &Prompt,
        missing: &[String],
    ) -> Result<CheckedRewrite, Violation> {
        let messages = candidate.messages();
        let target = messages
            .iter()
            .rposition(|m| m.role == Role::User && self.may_edit(candidate, m.role))
            .or_else(|| {
                messages
                    .iter()
                    .rposition(|m| self.may_edit(candidate, m.role))
            })
            .unwrap_or(messages.len() - 1);
        let mut parts = messages.to_vec();
        let mut text = parts[target].template.source().trim_end().to_string();
        text.push('\n');
        for v in missing {
            let label = crate::seeded::title(v);
            text.push_str(&format!("\n{label}: {{{v}}}"));
        }
        parts[target].template = PromptTemplate::parse(&text).map_err(Violation::Parse)?;
        let prompt = Prompt::from_parts(parts)
            .map_err(|_| Violation::Structure(String::new(), String::new()))?;
        self.check_prompt(prompt).map(|c| CheckedRewrite {
            prompt: c.prompt,
            repaired: true,
        })
    }

    fn may_edit(&self, prompt: &Prompt, role: Role) -> bool {
        prompt.is_single() || self.editable.contains(&role)
    }
}

#[cfg(test)]
mod tests;
