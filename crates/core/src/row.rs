//! Rows of a dataset and the named inputs an evaluator receives.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A row's stable identity: an explicit id field or the 1-based record number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowId(Arc<str>);

impl RowId {
    /// Wraps a string as an id.
    pub fn new(id: impl AsRef<str>) -> Self {
        RowId(Arc::from(id.as_ref()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RowId {
    fn from(s: &str) -> Self {
        RowId::new(s)
    }
}

/// One example: named JSON fields and a stable id.
///
/// Rows are cheap to clone: fields sit behind an `Arc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    id: RowId,
    fields: Arc<Map<String, Value>>,
}

/// Returned by [`Row::from_json`] when the value is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a row must be a JSON object, got {kind}")]
pub struct NotAnObject {
    /// The JSON type that was found instead (`array`, `string`, …).
    pub kind: &'static str,
}

/// The JSON type name of a value, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Row {
    /// Creates a row from its id and fields.
    pub fn new(id: impl Into<RowId>, fields: Map<String, Value>) -> Self {
        Row {
            id: id.into(),
            fields: Arc::new(fields),
        }
    }

    /// Creates a row from a JSON object.
    pub fn from_json(id: impl Into<RowId>, value: Value) -> Result<Self, NotAnObject> {
        match value {
            Value::Object(map) => Ok(Row::new(id, map)),
            other => Err(NotAnObject {
                kind: json_kind(&other),
            }),
        }
    }

    /// The row's id.
    pub fn id(&self) -> &RowId {
        &self.id
    }

    /// All fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// A top-level field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A field by exact name, or else by a dotted path into nested objects
    /// (`meta.title`) and arrays (`answers.0`).
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.fields.get(path) {
            return Some(v);
        }
        let mut parts = path.split('.');
        let mut cur = self.fields.get(parts.next()?)?;
        for p in parts {
            cur = match cur {
                Value::Object(m) => m.get(p)?,
                Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// A field as display text: strings as they are, other values as compact JSON.
    pub fn text(&self, path: &str) -> Option<String> {
        self.lookup(path).map(value_text)
    }
}

impl From<String> for RowId {
    fn from(s: String) -> Self {
        RowId(Arc::from(s))
    }
}

/// Display text of a JSON value: strings unquoted, everything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Named inputs for an evaluator: `response`, `expected_response`, `input`, `context`, …
///
/// Built by a [`DataMapper`](crate::DataMapper) from the model's output and the row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalInput {
    /// The row this input was built from.
    pub row_id: Option<RowId>,
    /// The named fields.
    pub fields: Map<String, Value>,
}

impl EvalInput {
    /// An empty input for a row.
    pub fn for_row(row_id: RowId) -> Self {
        EvalInput {
            row_id: Some(row_id),
            fields: Map::new(),
        }
    }

    /// Adds a field (builder style).
    ///
    /// ```
    /// use metaprompt_core::EvalInput;
    /// let input = EvalInput::default().with("response", "spam").with("expected_response", "spam");
    /// assert_eq!(input.text("response").as_deref(), Some("spam"));
    /// ```
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// A field as a JSON value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A field as display text (strings unquoted, other values as JSON).
    pub fn text(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(value_text)
    }

    /// The model's output, by the conventional field name `response`.
    pub fn response(&self) -> Option<String> {
        self.text("response")
    }

    /// The reference answer, by the conventional field name `expected_response`.
    pub fn expected(&self) -> Option<String> {
        self.text("expected_response")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_json_rejects_non_objects() {
        let err = Row::from_json("1", json!([1, 2])).unwrap_err();
        assert_eq!(err.to_string(), "a row must be a JSON object, got an array");
    }

    #[test]
    fn lookup_prefers_exact_names_then_follows_paths() {
        let r = Row::from_json(
            "x",
            json!({"a.b": 1, "a": {"b": 2, "c": [10, 20]}, "s": "t"}),
        )
        .unwrap();
        assert_eq!(r.lookup("a.b"), Some(&json!(1)));
        assert_eq!(r.lookup("a.c.1"), Some(&json!(20)));
        assert_eq!(r.lookup("a.c.9"), None);
        assert_eq!(r.lookup("s.x"), None);
        assert_eq!(r.text("s").as_deref(), Some("t"));
        assert_eq!(r.text("a.c").as_deref(), Some("[10,20]"));
    }
}
