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

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as is (escapes already resolved: `{{` is stored as `{`).
    Literal(String),
    /// A placeholder naming a row field.
    Variable(String),
}

/// Where something sits in a template's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start of the template.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    fn locate(source: &str, offset: usize) -> Self {
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..offset].chars().count() + 1;
        Position {
            offset,
            line,
            column,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` with no matching `}`.
    #[error(
        "unclosed `{{` at {at}: write `{{{{` for a literal brace or close the placeholder with `}}`"
    )]
    UnclosedBrace {
        /// Where the brace is.
        at: Position,
    },
    /// A `}` that closes nothing.
    #[error("unmatched `}}` at {at}: write `}}}}` for a literal brace")]
    UnmatchedClose {
        /// Where the brace is.
        at: Position,
    },
    /// `{}` with nothing inside.
    #[error("empty placeholder `{{}}` at {at}: name the field to insert, e.g. `{{text}}`")]
    EmptyPlaceholder {
        /// Where the placeholder starts.
        at: Position,
    },
    /// A placeholder whose name is not an identifier (letters, digits, `_`, `.`, `-`).
    #[error(
        "invalid placeholder `{{{name}}}` at {at}: names are letters, digits, `_`, `.` and `-`, not starting with a digit; write `{{{{` and `}}}}` for literal braces"
    )]
    InvalidName {
        /// The text between the braces.
        name: String,
        /// Where the placeholder starts.
        at: Position,
    },
    /// Rendering needed a field the row does not have.
    #[error("row `{row_id}` has no field `{name}`, but the prompt uses {{{name}}}")]
    MissingVariable {
        /// The placeholder name.
        name: String,
        /// The row that lacked it.
        row_id: String,
    },
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
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        Row::from_json("r1", v).unwrap()
    }

    #[test]
    fn lists_variables_in_order_without_duplicates() {
        let t = PromptTemplate::parse("{b} {a} {b} {c}").unwrap();
        assert_eq!(t.variables(), vec!["b", "a", "c"]);
    }

    #[test]
    fn escapes_render_as_single_braces() {
        let t = PromptTemplate::parse("{{x}} and }}{{").unwrap();
        assert!(t.variables().is_empty());
        assert_eq!(t.render(&row(json!({}))).unwrap(), "{x} and }{");
    }

    #[test]
    fn literal_json_in_a_prompt_renders() {
        let src = "Reply as {{\"label\": \"spam\" | \"ham\", \"why\": {{\"k\": [1, 2]}}}}\n{text}";
        let t = PromptTemplate::parse(src).unwrap();
        assert_eq!(
            t.render(&row(json!({"text": "hi {there}"}))).unwrap(),
            "Reply as {\"label\": \"spam\" | \"ham\", \"why\": {\"k\": [1, 2]}}\nhi {there}"
        );
    }

    #[test]
    fn unclosed_brace_says_where() {
        let err = PromptTemplate::parse("line one\nab {text").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnclosedBrace {
                at: Position {
                    offset: 12,
                    line: 2,
                    column: 4
                }
            }
        );
        assert!(err.to_string().contains("line 2, column 4"));
    }

    #[test]
    fn brace_opened_twice_is_unclosed() {
        let err = PromptTemplate::parse("{a {b}").unwrap_err();
        assert!(matches!(err, TemplateError::UnclosedBrace { at } if at.offset == 0));
    }

    #[test]
    fn unmatched_close_says_where() {
        let err = PromptTemplate::parse("héllo }").unwrap_err();
        assert!(matches!(err, TemplateError::UnmatchedClose { at } if at.column == 7));
    }

    #[test]
    fn empty_placeholder_is_rejected() {
        assert!(matches!(
            PromptTemplate::parse("x {} y"),
            Err(TemplateError::EmptyPlaceholder { .. })
        ));
        assert!(matches!(
            PromptTemplate::parse("x {  } y"),
            Err(TemplateError::EmptyPlaceholder { .. })
        ));
    }

    #[test]
    fn invalid_name_is_rejected() {
        let err = PromptTemplate::parse("{\"a\": 1}").unwrap_err();
        assert!(matches!(err, TemplateError::InvalidName { ref name, .. } if name == "\"a\": 1"));
        assert!(matches!(
            PromptTemplate::parse("{1abc}"),
            Err(TemplateError::InvalidName { .. })
        ));
    }

    #[test]
    fn missing_variable_names_field_and_row() {
        let t = PromptTemplate::parse("{text} {context}").unwrap();
        let err = t.render(&row(json!({"text": "a"}))).unwrap_err();
        assert_eq!(
            err,
            TemplateError::MissingVariable {
                name: "context".into(),
                row_id: "r1".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "row `r1` has no field `context`, but the prompt uses {context}"
        );
    }

    #[test]
    fn non_string_values_render_as_json_and_dotted_names_read_nested_fields() {
        let t = PromptTemplate::parse("{n} {tags} {meta.title}").unwrap();
        let r = row(json!({"n": 3, "tags": ["a", "b"], "meta": {"title": "T"}}));
        assert_eq!(t.render(&r).unwrap(), "3 [\"a\",\"b\"] T");
    }

    #[test]
    fn whitespace_inside_placeholder_is_trimmed() {
        let t = PromptTemplate::parse("{ text }").unwrap();
        assert_eq!(t.variables(), vec!["text"]);
    }

    #[test]
    fn serde_round_trips_through_source_text() {
        let t = PromptTemplate::parse("Q: {q} {{}}").unwrap();
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"Q: {q} {{}}\"");
        let back: PromptTemplate = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<PromptTemplate>("\"{oops\"").is_err());
    }

    #[test]
    fn from_segments_escapes_literals() {
        let t = PromptTemplate::from_segments(vec![
            Segment::Literal("a{".into()),
            Segment::Literal("}".into()),
            Segment::Variable("x".into()),
        ]);
        assert_eq!(t.source(), "a{{}}{x}");
        assert_eq!(PromptTemplate::parse(t.source()).unwrap(), t);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = Segment> {
            prop_oneof![
                "[a-zA-Z0-9 {}\"\\n:,\\[\\]é]{1,12}".prop_map(Segment::Literal),
                "[a-z_][a-z0-9_]{0,6}".prop_map(Segment::Variable),
            ]
        }

        proptest! {
            #[test]
            fn parse_never_panics(s in "\\PC{0,64}") {
                let _ = PromptTemplate::parse(&s);
            }

            #[test]
            fn parse_never_panics_on_brace_heavy_input(s in "[{}a ]{0,40}") {
                let _ = PromptTemplate::parse(&s);
            }

            #[test]
            fn render_of_parse_round_trips(segs in proptest::collection::vec(segment(), 0..8)) {
                let built = PromptTemplate::from_segments(segs.clone());
                let parsed = PromptTemplate::parse(built.source()).unwrap();
                prop_assert_eq!(&parsed, &built);
                // Render with every variable bound to `<name>` and compare with the segments.
                let mut fields = serde_json::Map::new();
                let mut expected = String::new();
                for s in &segs {
                    match s {
                        Segment::Literal(t) => expected.push_str(t),
                        Segment::Variable(v) => {
                            fields.insert(v.clone(), Value::String(format!("<{v}>")));
                            expected.push_str(&format!("<{v}>"));
                        }
                    }
                }
                let r = Row::new("p", fields);
                prop_assert_eq!(parsed.render(&r).unwrap(), expected);
            }
        }
    }
}
