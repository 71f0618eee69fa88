//! Chat prompts: an ordered list of messages, each a role and a template.
//!
//! Most prompts people ship are chat prompts: a system message with the instructions and a
//! user message with the inputs (`{text}`), sometimes with fixed turns between them. A single
//! string is the one-user-message case, so a plain prompt is still written (and serialised) as
//! a plain string.

use std::fmt;

use crate::message::{Message, Role};
use crate::row::Row;
use crate::template::{PromptTemplate, TemplateError};

mod forms;

/// One message of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said, with `{name}` placeholders.
    pub template: PromptTemplate,
}

/// Why a chat prompt could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// A message's template does not parse.
    #[error("message {index} ({role}): {error}")]
    Template {
        /// Which message (0-based).
        index: usize,
        /// Its role.
        role: Role,
        /// Why.
        error: TemplateError,
    },
    /// No messages at all.
    #[error("a prompt needs at least one message")]
    Empty,
}

impl PromptError {
    /// The template error inside, if any.
    pub fn template_error(&self) -> Option<&TemplateError> {
        match self {
            PromptError::Template { error, .. } => Some(error),
            PromptError::Empty => None,
        }
    }
}

/// A chat prompt.
///
/// ```
/// use metaprompt_core::{Prompt, Role, Row};
/// use serde_json::json;
///
/// let p = Prompt::from_messages([
///     (Role::System, "Classify SMS messages as spam or ham."),
///     (Role::User, "{text}"),
/// ]).unwrap();
/// assert_eq!(p.variables(), vec!["text"]);
/// let row = Row::from_json("1", json!({"text": "WIN a prize"})).unwrap();
/// let messages = p.render(&row).unwrap();
/// assert_eq!(messages[1].content, "WIN a prize");
///
/// // A single string is one user message and serialises as that string.
/// let single = Prompt::parse("Is this spam? {text}").unwrap();
/// assert!(single.is_single());
/// assert_eq!(serde_json::to_value(&single).unwrap(), json!("Is this spam? {text}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    messages: Vec<PromptMessage>,
}

impl Prompt {
    /// A one-user-message prompt from template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Prompt::single(PromptTemplate::parse(text)?))
    }

    /// A one-user-message prompt.
    pub fn single(template: PromptTemplate) -> Self {
        Prompt {
            messages: vec![PromptMessage {
                role: Role::User,
                template,
            }],
        }
    }

    /// A prompt from roles and template texts.
    pub fn from_messages<I, S>(messages: I) -> Result<Self, PromptError>
    where
        I: IntoIterator<Item = (Role, S)>,
        S: AsRef<str>,
    {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(index, (role, text))| {
                PromptTemplate::parse(text.as_ref())
                    .map(|template| PromptMessage { role, template })
                    .map_err(|error| PromptError::Template { index, role, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Prompt::from_parts(messages)
    }

    /// A prompt from parsed messages.
    pub fn from_parts(messages: Vec<PromptMessage>) -> Result<Self, PromptError> {
        if messages.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(Prompt { messages })
    }

    /// The messages, in order.
    pub fn messages(&self) -> &[PromptMessage] {
        &self.messages
    }

    /// Whether this is the one-user-message case (a plain string prompt).
    pub fn is_single(&self) -> bool {
        self.messages.len() == 1 && self.messages[0].role == Role::User
    }

    /// The distinct variables over every message, in order of first use.
    pub fn variables(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.messages {
            for v in m.template.variables() {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Renders every message against a row.
    pub fn render(&self, row: &Row) -> Result<Vec<Message>, TemplateError> {
        self.messages
            .iter()
            .map(|m| {
                Ok(Message {
                    role: m.role,
                    content: m.template.render(row)?,
                })
            })
            .collect()
    }

    /// Total characters of every message's source.
    pub fn chars(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.template.source().chars().count())
            .sum()
    }

    /// The template text of a one-message prompt, or every message under a role header
    /// (`[system]`, `[user]`, …) otherwise: what people read.
    pub fn text(&self) -> String {
        if self.is_single() {
            return self.messages[0].template.source().to_string();
        }
        self.messages
            .iter()
            .map(|m| format!("[{}]\n{}", m.role, m.template.source()))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// A canonical key of the prompt's content (for duplicate detection and memo keys): the
    /// source for a one-message prompt, role-tagged sources otherwise.
    pub fn key(&self) -> String {
        if self.is_single() {
            return self.messages[0].template.source().to_string();
        }
        let mut k = String::new();
        for m in &self.messages {
            k.push('\u{1}');
            k.push_str(m.role.as_str());
            k.push('\u{2}');
            k.push_str(m.template.source());
        }
        k
    }

    /// `{"messages": [{"role", "content"}, …]}`, the form of `best_prompt.json`.
    pub fn to_messages_json(&self) -> serde_json::Value {
        serde_json::json!({ "messages": self.message_list() })
    }

    /// `[{"role", "content"}, …]` with template sources as content.
    pub fn message_list(&self) -> Vec<serde_json::Value> {
        self.messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.template.source()}))
            .collect()
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl From<PromptTemplate> for Prompt {
    fn from(t: PromptTemplate) -> Self {
        Prompt::single(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_written_form_parses() {
        let a: Prompt = serde_json::from_value(json!("Classify {text}")).unwrap();
        assert!(a.is_single());
        let b: Prompt =
            serde_json::from_value(json!({"system": "You classify.", "user": "{text}"})).unwrap();
        assert_eq!(b.messages().len(), 2);
        assert_eq!(b.messages()[0].role, Role::System);
        let c: Prompt = serde_json::from_value(json!({"messages": [
            {"role": "system", "content": "You classify."},
            {"role": "user", "content": "Example: hi"},
            {"role": "assistant", "content": "ham"},
            {"role": "user", "content": "{text}"}
        ]}))
        .unwrap();
        assert_eq!(c.messages().len(), 4);
        assert_eq!(c.variables(), vec!["text"]);
        assert_eq!(
            serde_json::to_value(&b).unwrap()["messages"][1]["content"],
            "{text}"
        );
        let back: Prompt = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_bad_template_names_its_message() {
        let err = Prompt::from_messages([(Role::System, "ok"), (Role::User, "{text")]).unwrap_err();
        assert!(err.to_string().starts_with("message 1 (user):"), "{err}");
        assert!(serde_json::from_value::<Prompt>(json!({"messages": []})).is_err());
        assert!(serde_json::from_value::<Prompt>(json!({"user": "x", "bogus": 1})).is_err());
    }

    #[test]
    fn variables_are_the_union_over_messages() {
        let p = Prompt::from_messages([
            (Role::System, "Use {context}."),
            (Role::User, "{text} and {context}"),
        ])
        .unwrap();
        assert_eq!(p.variables(), vec!["context", "text"]);
        assert_ne!(
            p.key(),
            Prompt::parse("Use {context}.{text} and {context}")
                .unwrap()
                .key()
        );
    }

    #[test]
    fn text_shows_roles_for_chat_prompts_only() {
        assert_eq!(Prompt::parse("hi {x}").unwrap().text(), "hi {x}");
        let p = Prompt::from_messages([(Role::System, "sys"), (Role::User, "{x}")]).unwrap();
        assert_eq!(p.text(), "[system]\nsys\n\n[user]\n{x}");
    }
}
