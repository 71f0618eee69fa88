//! Loading JSONL, JSON and CSV files into rows.
//!
//! Ids: the configured id field when there is one; otherwise the 1-based line number for
//! JSONL, the 1-based element index for JSON arrays and the 1-based record number (header
//! excluded) for CSV.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use metaprompt_core::row::json_kind;
use metaprompt_core::{Row, RowId};
use serde_json::{Map, Value};

use crate::dataset::Dataset;
use crate::error::{DataError, Location};

/// A dataset file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A JSON array of objects.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format a file's extension names (`.jsonl`/`.ndjson`, `.json`, `.csv`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// How to load a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The format; by default taken from the extension.
    pub format: Option<Format>,
    /// A field holding each row's id; by default the line or record number.
    pub id_field: Option<String>,
}

/// Loads a dataset file.
///
/// ```no_run
/// let ds = metaprompt_data::load("data/sms.jsonl", &Default::default()).unwrap();
/// println!("{} rows", ds.len());
/// ```
pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let format = match options.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
            });
        }
    };
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut ids = IdAssigner::new(path, options.id_field.clone());
    let rows = match format {
        Format::Jsonl => load_jsonl(path, file, &mut ids)?,
        Format::Json => load_json(path, file, &mut ids)?,
        Format::Csv => load_csv(path, file, &mut ids)?,
    };
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Dataset::new(rows).with_source(path))
}

struct IdAssigner {
    path: PathBuf,
    field: Option<String>,
    seen: HashMap<String, u64>,
}

impl IdAssigner {
    fn new(path: &Path, field: Option<String>) -> Self {
        IdAssigner {
            path: path.to_path_buf(),
            field,
            seen: HashMap::new(),
        }
    }

    fn at(&self, line: u64) -> Location {
        Location {
            path: self.path.clone(),
            line,
        }
    }

    fn row(
        &mut self,
        fields: Map<String, Value>,
        number: u64,
        line: u64,
    ) -> Result<Row, DataError> {
        let Some(field) = &self.field else {
            return Ok(Row::new(RowId::new(number.to_string()), fields));
        };
        let id = match fields.get(field) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(DataError::BadId {
                    at: self.at(line),
                    field: field.clone(),
                });
            }
        };
        if let Some(first_line) = self.seen.insert(id.clone(), line) {
            return Err(DataError::DuplicateId {
                at: self.at(line),
                id,
                first_line,
            });
        }
        Ok(Row::new(RowId::from(id), fields))
    }
}

fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn load_jsonl(path: &Path, file: File, ids: &mut IdAssigner) -> Result<Vec<Row>, DataError> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(4096);
    let mut rows = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let mut line: &[u8] = &buf;
        if line_no == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if std::str::from_utf8(line).is_err() {
            return Err(DataError::InvalidUtf8 {
                at: ids.at(line_no),
            });
        }
        // Objects (the normal case) parse straight into a map; anything else is parsed again
        // as a value only to say what it was.
        let map: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(m) => m,
            Err(e) => {
                return Err(match serde_json::from_slice::<Value>(line) {
                    Ok(other) => DataError::NotAnObject {
                        at: ids.at(line_no),
                        found: json_kind(&other),
                    },
                    Err(_) => DataError::InvalidJson {
                        at: ids.at(line_no),
                        message: e.to_string(),
                    },
                });
            }
        };
        rows.push(ids.row(map, line_no, line_no)?);
    }
    Ok(rows)
}

fn load_json(path: &Path, mut file: File, ids: &mut IdAssigner) -> Result<Vec<Row>, DataError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if let Err(e) = std::str::from_utf8(text) {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        return Err(DataError::InvalidUtf8 { at: ids.at(line) });
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| DataError::InvalidJson {
        at: ids.at(e.line() as u64),
        message: e.to_string(),
    })?;
    let Value::Array(items) = value else {
        return Err(DataError::NotAnObject {
            at: ids.at(1),
            found: "a single JSON value where an array of objects was expected",
        });
    };
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let number = i as u64 + 1;
        let Value::Object(map) = item else {
            return Err(DataError::NotAnObject {
                // JSON arrays have no useful line per element once parsed; the element index
                // is reported as the "line" and named in the message.
                at: ids.at(number),
                found: json_kind(&item),
            });
        };
        rows.push(ids.row(map, number, number)?);
    }
    Ok(rows)
}

fn load_csv(path: &Path, file: File, ids: &mut IdAssigner) -> Result<Vec<Row>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let header_err = |e: csv::Error| csv_error(path, e, 1);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(header_err)?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = if i == 0 {
                h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
            } else {
                h
            };
            std::str::from_utf8(h)
                .map(|s| s.trim().to_string())
                .map_err(|_| DataError::InvalidUtf8 { at: ids.at(1) })
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut number = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, e, number + 2)),
        }
        number += 1;
        let line = record.position().map_or(number + 1, |p| p.line());
        let mut map = Map::new();
        for (name, field) in headers.iter().zip(record.iter()) {
            let text = std::str::from_utf8(field)
                .map_err(|_| DataError::InvalidUtf8 { at: ids.at(line) })?;
            map.insert(name.clone(), Value::String(text.to_string()));
        }
        rows.push(ids.row(map, number, line)?);
    }
    Ok(rows)
}

fn csv_error(path: &Path, e: csv::Error, fallback_line: u64) -> DataError {
    let at = |line: u64| Location {
        path: path.to_path_buf(),
        line,
    };
    let line = e.position().map_or(fallback_line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DataError::RaggedCsv {
            at: at(line),
            expected: *expected_len,
            found: *len,
        },
        csv::ErrorKind::Io(_) => DataError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        },
        _ => DataError::Csv {
            at: at(line),
            message: e.to_string(),
        },
    }
}
