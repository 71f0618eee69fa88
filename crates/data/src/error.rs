//! Errors of loading, checking and splitting data.

use std::path::PathBuf;

/// Where in a file something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// Everything that can be wrong with a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's extension says nothing about its format.
    #[error(
        "cannot tell the format of {}: use a .jsonl, .json or .csv file, or set the format explicitly",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Bytes that are not UTF-8.
    #[error("{at}: the line is not valid UTF-8; save the file as UTF-8")]
    InvalidUtf8 {
        /// Where.
        at: Location,
    },
    /// A JSON syntax error.
    #[error("{at}: invalid JSON: {message}")]
    InvalidJson {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// A record that is not an object.
    #[error("{at}: expected a JSON object with named fields, found {found}")]
    NotAnObject {
        /// Where.
        at: Location,
        /// What was found.
        found: &'static str,
    },
    /// A CSV record with the wrong number of fields.
    #[error("{at}: expected {expected} fields like the header, found {found}")]
    RaggedCsv {
        /// Where.
        at: Location,
        /// Fields in the header.
        expected: u64,
        /// Fields in the record.
        found: u64,
    },
    /// Any other CSV error.
    #[error("{at}: invalid CSV: {message}")]
    Csv {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// The configured id field is missing or not a string/number.
    #[error("{at}: the id field `{field}` is missing or is not a string or number")]
    BadId {
        /// Where.
        at: Location,
        /// The id field.
        field: String,
    },
    /// Two rows share an id.
    #[error("{at}: duplicate id `{id}` (first seen on line {first_line})")]
    DuplicateId {
        /// Where the second one is.
        at: Location,
        /// The id.
        id: String,
        /// Where the first one is.
        first_line: u64,
    },
    /// The file has no rows.
    #[error("{}: the file has no rows", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Rows lack fields that prompts or the key map need.
    #[error("{}", missing_fields_message(.rows, .total, .needed_by))]
    MissingFields {
        /// Up to 10 offending rows with the fields each lacks.
        rows: Vec<(String, Vec<String>)>,
        /// How many rows lack something.
        total: usize,
        /// What needs the fields (`the prompt`, `the key map`).
        needed_by: String,
    },
    /// A field no row has at all.
    #[error("no row has the field `{field}`, but {needed_by} uses it; fields present: {present}")]
    UnknownField {
        /// The field.
        field: String,
        /// Who asked for it.
        needed_by: String,
        /// The fields the dataset has.
        present: String,
    },
    /// A bad split request.
    #[error("invalid split: {0}")]
    Split(String),
}

fn missing_fields_message(
    rows: &[(String, Vec<String>)],
    total: &usize,
    needed_by: &String,
) -> String {
    let mut msg = format!("{total} row(s) lack fields that {needed_by} uses:");
    for (id, fields) in rows {
        msg.push_str(&format!("\n  row `{id}`: missing {}", fields.join(", ")));
    }
    if *total > rows.len() {
        msg.push_str(&format!("\n  … and {} more", total - rows.len()));
    }
    msg
}
