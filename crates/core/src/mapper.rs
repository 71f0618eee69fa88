//! Turning a model output and its row into evaluator inputs.

use crate::row::{EvalInput, Row};

/// Why a row could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The key map names a field the row lacks.
    #[error("row `{row_id}` has no field `{field}` (mapped to evaluator field `{target}`)")]
    MissingField {
        /// The row.
        row_id: String,
        /// The source field.
        field: String,
        /// The evaluator field it was meant to fill.
        target: String,
    },
    /// Anything a custom mapper reports.
    #[error("{0}")]
    Other(String),
}

/// Maps `(generated output, row)` to the named inputs an [`Evaluator`](crate::Evaluator) reads.
pub trait DataMapper: Send + Sync {
    /// Builds the evaluator input for one output.
    fn map(&self, generated_output: &str, row: &Row) -> Result<EvalInput, MapError>;

    /// The row fields this mapper reads (for checking a dataset before any call).
    fn source_fields(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<T: DataMapper + ?Sized> DataMapper for std::sync::Arc<T> {
    fn map(&self, generated_output: &str, row: &Row) -> Result<EvalInput, MapError> {
        (**self).map(generated_output, row)
    }
    fn source_fields(&self) -> Vec<String> {
        (**self).source_fields()
    }
}
