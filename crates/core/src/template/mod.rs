//! Prompt templates with `{name}` placeholders.
//!
//! The syntax is deliberately the small, familiar subset of Python's `str.format`: `{name}`
//! inserts the row field `name`, `{{` and `}}` are literal braces. A template is parsed once;
//! rendering never re-parses and never interprets braces that come from row values.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::row::Row;

mod error;

pub use error::{Position, TemplateError};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as is (escapes already resolved: `{{` is stored as `{`).
    Literal(String),
    /// A placeholder naming a row field.
    Variable(String),
}

/// A parsed prompt template.
///
/// ```
/// use metaprompt_core::{PromptTemplate, Row};
/// use serde_json::json;
///
/// let t = PromptTemplate::parse("Classify: {text}\nAnswer as {{\"label\": ...}}").unwrap();
/// assert_eq!(t.variables(), vec!["text"]);
/// let row = Row::from_json("1", json!({"text": "great film"})).unwrap();
/// assert_eq!(t.render(&row).unwrap(), "Classify: great film\nAnswer as {\"label\": ...}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    source: String,
    segments: Vec<Segment>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl PromptTemplate {
    /// Parses a template, reporting the first syntax error with its position.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    literal.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    literal.push('}');
                    i += 2;
                }
                b'{' => {
                    let rest = &source[i + 1..];
                    let end = rest.find(['}', '{']);
                    let at = Position::locate(source, i);
                    let Some(end) = end.filter(|&e| rest.as_bytes()[e] == b'}') else {
                        return Err(TemplateError::UnclosedBrace { at });
                    };
                    let name = rest[..end].trim();
                    if name.is_empty() {
                        return Err(TemplateError::EmptyPlaceholder { at });
                    }
                    if !valid_name(name) {
                        return Err(TemplateError::InvalidName {
                            name: rest[..end].to_string(),
                            at,
                        });
                    }
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Variable(name.to_string()));
                    i += end + 2;
                }
                b'}' => {
                    return Err(TemplateError::UnmatchedClose {
                        at: Position::locate(source, i),
                    });
                }
                _ => {
                    // Copy the whole run up to the next brace at once; braces are ASCII so the
                    // slice boundaries are always character boundaries.
                    let next = source[i..].find(['{', '}']).map_or(bytes.len(), |n| i + n);
                    literal.push_str(&source[i..next]);
                    i = next;
                }
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(PromptTemplate {
            source: source.to_string(),
            segments,
        })
    }

    /// Builds a template from segments, producing canonical source text.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        let mut source = String::new();
        for s in &segments {
            match s {
                Segment::Literal(t) => source.push_str(&escape_literal(t)),
                Segment::Variable(v) => {
                    source.push('{');
                    source.push_str(v);
                    source.push('}');
                }
            }
        }
        // Merge adjacent literals so that `segments()` is canonical.
        let mut merged: Vec<Segment> = Vec::new();
        for s in segments {
            match (merged.last_mut(), s) {
                (_, Segment::Literal(t)) if t.is_empty() => {}
                (Some(Segment::Literal(prev)), Segment::Literal(t)) => prev.push_str(&t),
                (_, s) => merged.push(s),
            }
        }
        PromptTemplate {
            source,
            segments: merged,
        }
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The distinct variable names, in order of first use.
    pub fn variables(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Variable(v) if seen.insert(v.as_str()) => Some(v.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Renders against a row. String fields are inserted as is; other JSON values as compact
    /// JSON. A dotted name (`meta.title`) reads a nested field when no top-level field has
    /// that exact name.
    pub fn render(&self, row: &Row) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len() + 64);
        for s in &self.segments {
            match s {
                Segment::Literal(t) => out.push_str(t),
                Segment::Variable(v) => match row.lookup(v) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {
                        return Err(TemplateError::MissingVariable {
                            name: v.clone(),
                            row_id: row.id().to_string(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }
}

/// Escapes `{` and `}` so that `text` renders literally inside a template.
///
/// ```
/// assert_eq!(metaprompt_core::template::escape_literal("{\"a\": 1}"), "{{\"a\": 1}}");
/// ```
pub fn escape_literal(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

impl fmt::Display for PromptTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for PromptTemplate {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromptTemplate::parse(s)
    }
}

impl Serialize for PromptTemplate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for PromptTemplate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        PromptTemplate::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
