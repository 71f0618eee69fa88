//! Structured output helpers: strict-mode schemas and tolerant JSON extraction.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Generates the JSON schema of `T` in the form OpenAI's strict structured output accepts:
/// every object has `additionalProperties: false` and lists all its properties as required
/// (optional fields stay nullable), `$ref`s are inlined, and keywords strict mode refuses
/// (`format` on numbers, `default`, `$schema`) are removed.
///
/// ```
/// #[derive(schemars::JsonSchema)]
/// struct Reply { answer: String, confidence: Option<f32> }
///
/// let s = metaprompt_core::schema_for::<Reply>();
/// let v = s.as_value();
/// assert_eq!(v["additionalProperties"], false);
/// assert_eq!(v["required"], serde_json::json!(["answer", "confidence"]));
/// ```
pub fn schema_for<T: JsonSchema>() -> schemars::Schema {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    sanitize(&mut value);
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
        map.remove("$defs");
        map.remove("definitions");
    }
    schemars::Schema::try_from(value).unwrap_or_else(|_| schemars::Schema::default())
}

/// Applies the strict-mode rules of [`schema_for`] to any schema value in place.
pub fn sanitize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("default");
            let is_string = map.get("type").is_some_and(|t| {
                t == "string"
                    || t.as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "string"))
            });
            if !is_string {
                map.remove("format");
            }
            let has_props = map.contains_key("properties");
            let is_object = has_props || map.get("type").is_some_and(|t| t == "object");
            if is_object {
                let keys: Vec<Value> = map
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().map(Value::String).collect())
                    .unwrap_or_default();
                if !map.contains_key("properties") {
                    map.insert("properties".into(), Value::Object(Map::new()));
                }
                map.insert("required".into(), Value::Array(keys));
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (_, v) in map.iter_mut() {
                sanitize(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sanitize),
        _ => {}
    }
}

/// Why [`extract_json`] found nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// No JSON value was found in the text.
    #[error("no JSON object found in the reply (it begins: {snippet:?})")]
    NoJson {
        /// The first characters of the text.
        snippet: String,
    },
    /// JSON was found but did not have the expected shape.
    #[error(
        "the reply's JSON does not have the expected shape: {message} (JSON begins: {snippet:?})"
    )]
    WrongShape {
        /// What serde reported.
        message: String,
        /// The first characters of the JSON.
        snippet: String,
    },
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    s
}

/// Finds the end (exclusive byte index) of the JSON object or array starting at `start`,
/// minding strings and escapes.
fn balanced_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The contents of Markdown code fences in `text`, in order.
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // Skip the info string (`json`) up to the end of the line.
        let body_start = after.find('\n').map_or(after.len(), |n| n + 1);
        let body = &after[body_start..];
        match body.find("```") {
            Some(close) => {
                out.push(&body[..close]);
                rest = &body[close + 3..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// Parses a `T` out of a model's reply, tolerating code fences, leading or trailing prose and
/// several candidate objects (the first that fits `T` wins).
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct A { x: u32 }
/// let text = "Sure! Here it is:\n```json\n{\"x\": 7}\n```\nAnything else?";
/// assert_eq!(metaprompt_core::extract_json::<A>(text).unwrap(), A { x: 7 });
/// ```
pub fn extract_json<T: DeserializeOwned>(text: &str) -> Result<T, ExtractError> {
    let mut first_error: Option<(String, String)> = None;
    let mut attempt = |candidate: &str| -> Option<T> {
        match serde_json::from_str::<T>(candidate) {
            Ok(v) => Some(v),
            Err(e) => {
                // Only a candidate that is valid JSON tells us about the shape.
                if first_error.is_none() && serde_json::from_str::<Value>(candidate).is_ok() {
                    first_error = Some((e.to_string(), snippet(candidate)));
                }
                None
            }
        }
    };
    let trimmed = text.trim();
    if let Some(v) = attempt(trimmed) {
        return Ok(v);
    }
    let fences = fenced_blocks(trimmed);
    let sources = fences.iter().copied().chain(std::iter::once(trimmed));
    for source in sources {
        let source = source.trim();
        if let Some(v) = attempt(source) {
            return Ok(v);
        }
        for (start, _) in source.match_indices(['{', '[']) {
            if let Some(end) = balanced_end(source, start)
                && let Some(v) = attempt(&source[start..end])
            {
                return Ok(v);
            }
        }
    }
    Err(match first_error {
        Some((message, snippet)) => ExtractError::WrongShape { message, snippet },
        None => ExtractError::NoJson {
            snippet: snippet(trimmed),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize, JsonSchema)]
    struct Rewrite {
        analysis: String,
        improved_prompt: String,
    }

    #[test]
    fn parses_plain_json() {
        let r: Rewrite = extract_json(r#"{"analysis":"a","improved_prompt":"p"}"#).unwrap();
        assert_eq!(r.improved_prompt, "p");
    }

    #[test]
    fn parses_fenced_json_with_prose_around() {
        let text = "Here is my answer:\n```json\n{\"analysis\": \"a\", \"improved_prompt\": \"use {text}\"}\n```\nThanks";
        let r: Rewrite = extract_json(text).unwrap();
        assert_eq!(r.improved_prompt, "use {text}");
    }

    #[test]
    fn parses_json_after_leading_prose_with_braces_in_strings() {
        let text = "I think {this} matters. {\"analysis\": \"x } y\", \"improved_prompt\": \"{\\\"q\\\"}\"} done";
        let r: Rewrite = extract_json(text).unwrap();
        assert_eq!(r.analysis, "x } y");
        assert_eq!(r.improved_prompt, "{\"q\"}");
    }

    #[test]
    fn skips_objects_of_the_wrong_shape() {
        let text = r#"{"note": 1} then {"analysis": "a", "improved_prompt": "b"}"#;
        let r: Rewrite = extract_json(text).unwrap();
        assert_eq!(r.analysis, "a");
    }

    #[test]
    fn reports_missing_json() {
        let err = extract_json::<Rewrite>("I cannot help with that.").unwrap_err();
        assert!(
            matches!(err, ExtractError::NoJson { ref snippet } if snippet.starts_with("I cannot"))
        );
    }

    #[test]
    fn reports_wrong_shape_with_serde_message() {
        let err = extract_json::<Rewrite>(r#"{"analysis": "a"}"#).unwrap_err();
        match err {
            ExtractError::WrongShape { message, .. } => {
                assert!(message.contains("improved_prompt"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_broken_json_as_missing() {
        let err = extract_json::<Rewrite>(r#"{"analysis": "a", "improved_prompt": "#).unwrap_err();
        assert!(matches!(err, ExtractError::NoJson { .. }));
    }

    #[test]
    fn parses_unterminated_fence() {
        let r: Rewrite =
            extract_json("```json\n{\"analysis\":\"a\",\"improved_prompt\":\"b\"}").unwrap();
        assert_eq!(r.analysis, "a");
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        label: String,
        weight: Option<f64>,
        count: u32,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
        maybe: Option<Inner>,
        items: Vec<Inner>,
    }

    fn assert_strict(v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(props) = m.get("properties").and_then(Value::as_object) {
                    assert_eq!(m["additionalProperties"], false, "{v}");
                    let req: Vec<&str> = m["required"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap())
                        .collect();
                    let keys: Vec<&str> = props.keys().map(String::as_str).collect();
                    assert_eq!(req, keys);
                }
                assert!(!m.contains_key("$ref"), "unexpected $ref in {v}");
                assert!(!m.contains_key("format") || m["type"] == "string");
                m.values().for_each(assert_strict);
            }
            Value::Array(a) => a.iter().for_each(assert_strict),
            _ => {}
        }
    }

    #[test]
    fn schema_for_nested_struct_with_option_is_strict() {
        let s = schema_for::<Outer>();
        let v = s.as_value();
        assert_strict(v);
        assert!(v.get("$defs").is_none());
        assert!(v.get("$schema").is_none());
        // The optional nested struct stays required but nullable.
        let maybe = &v["properties"]["maybe"];
        let text = maybe.to_string();
        assert!(text.contains("null"), "{text}");
        assert_eq!(
            v["properties"]["inner"]["properties"]["label"],
            json!({"type": "string"})
        );
        let weight = &v["properties"]["inner"]["properties"]["weight"];
        assert_eq!(weight["type"], json!(["number", "null"]));
    }
}
