//! Every URL, header and field of FutureAGI's eval API, in one place (the hosted API may
//! differ in details from the open-source backend these were read from; change them here).

use serde_json::{Value, json};

/// The API root used when neither the configuration nor `FI_BASE_URL` names one: the
/// FutureAGI API.
pub const DEFAULT_BASE_URL: &str = "https://api.futureagi.com";
/// The environment variable that may name the API root.
pub const BASE_URL_ENV: &str = "FI_BASE_URL";
/// The environment variable holding the API key, by default.
pub const API_KEY_ENV: &str = "FI_API_KEY";
/// The environment variable holding the secret key, by default.
pub const SECRET_KEY_ENV: &str = "FI_SECRET_KEY";
/// The evaluation model when none is configured.
pub const DEFAULT_MODEL: &str = "turing_flash";

pub(crate) const API_KEY_HEADER: &str = "X-Api-Key";
pub(crate) const SECRET_KEY_HEADER: &str = "X-Secret-Key";

/// Runs an evaluation (and, with `?eval_id=`, polls an async one). The trailing slash is part
/// of the path.
pub(crate) const EVAL_PATH: &str = "/sdk/api/v1/new-eval/";
/// Lists the templates with their input keys.
pub(crate) const CATALOGUE_PATH: &str = "/sdk/api/v1/get-evals/";

/// The body of one evaluation.
pub(crate) fn eval_body(template: &str, inputs: &Value, model: &str, is_async: bool) -> Value {
    json!({"eval_name": template, "inputs": inputs, "model": model, "is_async": is_async})
}

/// What one evaluation returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// `output` (sync) or `value` (polled): a number, "Passed"/"Failed", `{score, choice}`.
    pub(crate) output: Value,
    pub(crate) reason: String,
    /// Set when an async evaluation was only submitted.
    pub(crate) eval_id: Option<String>,
}

/// The first evaluation of a sync reply: `{"status": true, "result": [{"evaluations": [...]}]}`.
pub(crate) fn parse_eval(v: &Value) -> Result<Outcome, String> {
    if v["status"] == false {
        return Err(message(v));
    }
    let e = v["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["evaluations"].as_array())
        .and_then(|e| e.first())
        .ok_or_else(|| format!("no evaluation in the reply: {}", snippet(&v.to_string())))?;
    Ok(Outcome {
        output: e.get("output").cloned().unwrap_or(Value::Null),
        reason: e["reason"].as_str().unwrap_or("").to_string(),
        eval_id: e["eval_id"]
            .as_str()
            .or_else(|| e["evalId"].as_str())
            .map(str::to_string),
    })
}

/// A poll's answer: still running, or done with its outcome.
pub(crate) enum Poll {
    Pending,
    Done(Result<Outcome, String>),
}

/// `{"status": true, "result": {"eval_status": "...", "result": {..., "value"}}}`.
pub(crate) fn parse_poll(v: &Value) -> Poll {
    if v["status"] == false {
        return Poll::Done(Err(message(v)));
    }
    match v["result"]["eval_status"].as_str().unwrap_or("") {
        "pending" | "processing" | "running" | "" => Poll::Pending,
        "completed" => {
            let r = &v["result"]["result"];
            Poll::Done(Ok(Outcome {
                output: r.get("value").cloned().unwrap_or(Value::Null),
                reason: r["reason"].as_str().unwrap_or("").to_string(),
                eval_id: None,
            }))
        }
        other => Poll::Done(Err(format!(
            "the evaluation {other}: {}",
            v["result"]["result"]["error_message"]
                .as_str()
                .unwrap_or("no reason given")
        ))),
    }
}

/// The message of an error envelope (`{"status": false, "message": ...}`).
pub(crate) fn message(v: &Value) -> String {
    for k in ["message", "detail", "error", "result"] {
        if let Some(m) = v[k].as_str() {
            return m.to_string();
        }
    }
    snippet(&v.to_string())
}

/// A score in [0, 1] from an output: a number is clamped, "Passed"/"Failed" are 1 and 0,
/// `{score, choice}` gives its score. `None` when there is none (an error).
pub(crate) fn score(output: &Value) -> Option<f64> {
    match output {
        Value::Number(n) => n.as_f64().map(|x| x.clamp(0.0, 1.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "passed" | "pass" | "true" => Some(1.0),
            "failed" | "fail" | "false" => Some(0.0),
            other => other.parse::<f64>().ok().map(|x| x.clamp(0.0, 1.0)),
        },
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Object(o) => o.get("score").and_then(score),
        _ => None,
    }
}

/// A template in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateKeys {
    pub(crate) required: Vec<String>,
    pub(crate) optional: Vec<String>,
}

/// The catalogue: `{"status": true, "result": [{"name", "config": {"required_keys", ...}}]}`
/// (read tolerantly: a bare list, or the keys at the top of each entry).
pub(crate) fn parse_catalogue(v: &Value) -> Vec<(String, TemplateKeys)> {
    let list = v["result"]
        .as_array()
        .or_else(|| v["result"]["evals"].as_array())
        .or_else(|| v.as_array());
    let keys = |t: &Value, k: &str| -> Vec<String> {
        t["config"][k]
            .as_array()
            .or_else(|| t[k].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    list.into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t["name"].as_str()?.to_string();
            Some((
                name,
                TemplateKeys {
                    required: keys(t, "required_keys"),
                    optional: keys(t, "optional_keys"),
                },
            ))
        })
        .collect()
}

/// The first 300 bytes of a text, cut on a character boundary.
pub(crate) fn snippet(text: &str) -> String {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_become_scores() {
        assert_eq!(score(&json!(0.5)), Some(0.5));
        assert_eq!(score(&json!(7)), Some(1.0));
        assert_eq!(score(&json!("Passed")), Some(1.0));
        assert_eq!(score(&json!("Failed")), Some(0.0));
        assert_eq!(score(&json!({"score": 0.25, "choice": "ok"})), Some(0.25));
        assert_eq!(score(&Value::Null), None);
    }

    #[test]
    fn the_catalogue_is_read_in_its_forms() {
        let v = json!({"status": true, "result": [
            {"name": "summary_quality", "config": {"required_keys": ["input", "output"], "output": "score"}},
            {"name": "groundedness", "required_keys": ["output", "context", "input"], "optional_keys": ["input"]}
        ]});
        let c = parse_catalogue(&v);
        assert_eq!(c[0].1.required, ["input", "output"]);
        assert_eq!(c[1].1.optional, ["input"]);
    }
}
