//! Data mappers: building evaluator inputs from a model output and its row.

use std::collections::BTreeMap;

use metaprompt_core::{DataMapper, EvalInput, MapError, Row};
use serde_json::Value;

use crate::dataset::Dataset;
use crate::error::DataError;

/// The source name that means "the model's output" in a key map.
pub const GENERATED_OUTPUT: &str = "generated_output";

/// A key map `{evaluator_field: source}`, as in the Python original: the source
/// `"generated_output"` is the model's output, anything else names a row field (dotted paths
/// into nested JSON allowed).
///
/// ```
/// use metaprompt_core::{DataMapper, Row};
/// use metaprompt_data::BasicDataMapper;
/// let mapper = BasicDataMapper::new([("response", "generated_output"), ("expected_response", "label")]);
/// let row = Row::from_json("1", serde_json::json!({"text": "win cash", "label": "spam"})).unwrap();
/// let input = mapper.map("spam", &row).unwrap();
/// assert_eq!(input.response().as_deref(), Some("spam"));
/// assert_eq!(input.expected().as_deref(), Some("spam"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicDataMapper {
    key_map: BTreeMap<String, String>,
}

impl BasicDataMapper {
    /// A mapper from a key map, unchecked.
    pub fn new<I, K, V>(key_map: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        BasicDataMapper {
            key_map: key_map
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A mapper checked against a dataset: every row field it names must exist in the rows.
    pub fn for_dataset<I, K, V>(key_map: I, dataset: &Dataset) -> Result<Self, DataError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mapper = BasicDataMapper::new(key_map);
        for (target, source) in &mapper.key_map {
            if source != GENERATED_OUTPUT {
                dataset.require_known_field(source, &format!("the key map (`{target}`)"))?;
            }
        }
        let fields = mapper.source_fields();
        dataset.require_fields(&fields, "the key map")?;
        Ok(mapper)
    }

    /// The key map.
    pub fn key_map(&self) -> &BTreeMap<String, String> {
        &self.key_map
    }
}

impl DataMapper for BasicDataMapper {
    fn map(&self, generated_output: &str, row: &Row) -> Result<EvalInput, MapError> {
        let mut input = EvalInput::for_row(row.id().clone());
        for (target, source) in &self.key_map {
            let value = if source == GENERATED_OUTPUT {
                Value::String(generated_output.to_string())
            } else {
                row.lookup(source)
                    .cloned()
                    .ok_or_else(|| MapError::MissingField {
                        row_id: row.id().to_string(),
                        field: source.clone(),
                        target: target.clone(),
                    })?
            };
            input.fields.insert(target.clone(), value);
        }
        Ok(input)
    }

    fn source_fields(&self) -> Vec<String> {
        self.key_map
            .values()
            .filter(|s| *s != GENERATED_OUTPUT)
            .cloned()
            .collect()
    }
}

/// A mapper written as a closure.
///
/// ```
/// use metaprompt_core::{DataMapper, EvalInput, Row};
/// use metaprompt_data::FnMapper;
/// let m = FnMapper::new(|out: &str, row: &Row| Ok(EvalInput::for_row(row.id().clone()).with("response", out.trim())));
/// let row = Row::from_json("1", serde_json::json!({})).unwrap();
/// assert_eq!(m.map(" x ", &row).unwrap().response().as_deref(), Some("x"));
/// ```
pub struct FnMapper<F> {
    f: F,
}

impl<F> FnMapper<F>
where
    F: Fn(&str, &Row) -> Result<EvalInput, MapError> + Send + Sync,
{
    /// Wraps a closure.
    pub fn new(f: F) -> Self {
        FnMapper { f }
    }
}

impl<F> DataMapper for FnMapper<F>
where
    F: Fn(&str, &Row) -> Result<EvalInput, MapError> + Send + Sync,
{
    fn map(&self, generated_output: &str, row: &Row) -> Result<EvalInput, MapError> {
        (self.f)(generated_output, row)
    }
}
