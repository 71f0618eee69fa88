//! Where a template is wrong, and how.

use std::fmt;

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
    pub(super) fn locate(source: &str, offset: usize) -> Self {
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
