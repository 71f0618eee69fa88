//! JSON metrics and numeric tolerance.

use metaprompt_core::{EvalInput, EvalResult};
use serde_json::Value;

use crate::util::{clip, expected, local_evaluator, response};

/// 1 when the response is valid JSON.
#[derive(Debug, Clone, Default)]
pub struct JsonValid;

impl JsonValid {
    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        match serde_json::from_str::<Value>(got.trim()) {
            Ok(_) => EvalResult::pass_fail(true, "valid JSON"),
            Err(e) => {
                EvalResult::pass_fail(false, format!("invalid JSON ({e}): `{}`", clip(&got, 80)))
            }
        }
    }
}
local_evaluator!(JsonValid, "json_valid");

/// 1 when the response is JSON valid against a JSON schema.
pub struct JsonSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSchema")
    }
}

impl JsonSchema {
    /// A schema metric; fails when the schema itself is invalid.
    pub fn new(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(|validator| JsonSchema { validator })
            .map_err(|e| format!("invalid JSON schema: {e}"))
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let value: Value = match serde_json::from_str(got.trim()) {
            Ok(v) => v,
            Err(e) => {
                return EvalResult::pass_fail(
                    false,
                    format!("invalid JSON ({e}): `{}`", clip(&got, 80)),
                );
            }
        };
        let errors: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(3)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{} at `{}`", e, if path.is_empty() { "/" } else { &path })
            })
            .collect();
        if errors.is_empty() {
            EvalResult::pass_fail(true, "valid against the schema")
        } else {
            EvalResult::pass_fail(
                false,
                format!("schema violations: {}", clip(&errors.join("; "), 300)),
            )
        }
    }
}
local_evaluator!(JsonSchema, "json_schema");

/// The last number in a text (`-1,234.5e3` style; thousands separators allowed).
pub fn last_number(text: &str) -> Option<f64> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE
        .get_or_init(|| regex::Regex::new(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?").ok())
        .as_ref()?;
    re.find_iter(text)
        .last()
        .and_then(|m| m.as_str().replace(',', "").parse().ok())
}

/// 1 when the last number in the response is within tolerance of the expected number.
#[derive(Debug, Clone, Default)]
pub struct Numeric {
    abs_tol: f64,
    rel_tol: f64,
}

impl Numeric {
    /// Passes when `|got − want| ≤ abs_tol` or `≤ rel_tol × |want|`.
    pub fn new(abs_tol: f64, rel_tol: f64) -> Self {
        Numeric { abs_tol, rel_tol }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match (response(input), expected(input)) {
            (Ok(g), Ok(w)) => (g, w),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let Some(w) = last_number(&want) else {
            return EvalResult::error(format!(
                "the expected response `{}` holds no number",
                clip(&want, 80)
            ));
        };
        let Some(g) = last_number(&got) else {
            return EvalResult::pass_fail(
                false,
                format!("expected {w}, found no number in `{}`", clip(&got, 80)),
            );
        };
        let diff = (g - w).abs();
        let pass = diff <= self.abs_tol || diff <= self.rel_tol * w.abs();
        EvalResult::pass_fail(
            pass,
            format!(
                "expected {w}, got {g} (difference {diff}) → {}",
                if pass {
                    "within tolerance"
                } else {
                    "outside tolerance"
                }
            ),
        )
    }
}
local_evaluator!(Numeric, "numeric");
