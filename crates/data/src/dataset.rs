//! A loaded dataset and the checks made on it before any model call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use metaprompt_core::Row;

use crate::error::DataError;

/// Which fields the rows have, and how many rows have each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaSummary {
    /// Rows in the dataset.
    pub rows: usize,
    /// Field name → number of rows that have it.
    pub fields: BTreeMap<String, usize>,
}

impl SchemaSummary {
    /// Field names, comma separated, for messages.
    pub fn field_list(&self) -> String {
        self.fields.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Rows, where they came from, and which fields hold the answers.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    rows: Vec<Row>,
    source: Option<PathBuf>,
    label_fields: Vec<String>,
}

impl Dataset {
    /// A dataset of in-memory rows.
    pub fn new(rows: Vec<Row>) -> Self {
        Dataset {
            rows,
            source: None,
            label_fields: Vec::new(),
        }
    }

    /// Records the file the rows came from.
    pub fn with_source(mut self, path: &Path) -> Self {
        self.source = Some(path.to_path_buf());
        self
    }

    /// Declares the fields a prompt must never read (expected answers).
    ///
    /// Each must exist in at least one row: a misspelt label field would otherwise let a
    /// prompt read the real answer column unnoticed.
    pub fn with_label_fields<I, S>(mut self, fields: I) -> Result<Self, DataError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let summary = self.schema();
        for f in fields {
            let f = f.into();
            if !summary.fields.contains_key(&f) {
                return Err(DataError::UnknownField {
                    field: f,
                    needed_by: "`label_fields`".into(),
                    present: summary.field_list(),
                });
            }
            self.label_fields.push(f);
        }
        Ok(self)
    }

    /// The fields a prompt must never read.
    pub fn label_fields(&self) -> &[String] {
        &self.label_fields
    }

    /// The file the rows came from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Takes the rows.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Field names and their counts.
    pub fn schema(&self) -> SchemaSummary {
        let mut fields = BTreeMap::new();
        for row in &self.rows {
            for k in row.fields().keys() {
                *fields.entry(k.clone()).or_insert(0) += 1;
            }
        }
        SchemaSummary {
            rows: self.rows.len(),
            fields,
        }
    }

    /// Checks that every row has every field in `fields` (dotted paths allowed), reporting
    /// all offending rows (the first 10 and a count), not just the first.
    ///
    /// ```
    /// use metaprompt_core::Row;
    /// use metaprompt_data::Dataset;
    /// let ds = Dataset::new(vec![
    ///     Row::from_json("1", serde_json::json!({"text": "a"})).unwrap(),
    ///     Row::from_json("2", serde_json::json!({"body": "b"})).unwrap(),
    /// ]);
    /// let err = ds.require_fields(&["text"], "the prompt").unwrap_err();
    /// assert!(err.to_string().contains("row `2`: missing text"));
    /// ```
    pub fn require_fields<S: AsRef<str>>(
        &self,
        fields: &[S],
        needed_by: &str,
    ) -> Result<(), DataError> {
        let mut offending = Vec::new();
        let mut total = 0;
        for row in &self.rows {
            let missing: Vec<String> = fields
                .iter()
                .map(AsRef::as_ref)
                .filter(|f| row.lookup(f).is_none())
                .map(str::to_string)
                .collect();
            if !missing.is_empty() {
                total += 1;
                if offending.len() < 10 {
                    offending.push((row.id().to_string(), missing));
                }
            }
        }
        if total == 0 {
            Ok(())
        } else {
            Err(DataError::MissingFields {
                rows: offending,
                total,
                needed_by: needed_by.to_string(),
            })
        }
    }

    /// Checks that at least one row has `field` (dotted paths allowed).
    pub fn require_known_field(&self, field: &str, needed_by: &str) -> Result<(), DataError> {
        if self.rows.iter().any(|r| r.lookup(field).is_some()) {
            Ok(())
        } else {
            Err(DataError::UnknownField {
                field: field.to_string(),
                needed_by: needed_by.to_string(),
                present: self.schema().field_list(),
            })
        }
    }
}
