//! The chat-completions wire format: request bodies for each structured-output mode, the
//! label-set (`choices`) form, and tolerant parsing of replies.

use metaprompt_core::{
    ChatRequest, ChatResponse, FinishReason, ModelError, Role, Usage, extract_json,
};
use serde_json::{Value, json};

use crate::settings::StructuredMode;

pub(crate) fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

pub(crate) fn schema_instructions(schema: &Value) -> String {
    format!(
        "Reply with one JSON object and nothing else. It must follow this JSON schema:\n{}",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    )
}

/// The request body for a mode.
pub(crate) fn body(model: &str, req: &ChatRequest, mode: StructuredMode) -> Value {
    let mut messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": role(m.role), "content": m.content}))
        .collect();
    let mut b = json!({"model": model, "stream": false});
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        b["top_p"] = json!(p);
    }
    if let Some(n) = req.max_tokens {
        b["max_tokens"] = json!(n);
    }
    if let Some(s) = req.seed {
        b["seed"] = json!(s);
    }
    if !req.stop.is_empty() {
        b["stop"] = json!(req.stop);
    }
    if let Some(p) = req.frequency_penalty {
        b["frequency_penalty"] = json!(p);
    }
    if let Some(p) = req.presence_penalty {
        b["presence_penalty"] = json!(p);
    }
    if let Some(rs) = &req.response_schema {
        let mut schema = rs.schema.as_value().clone();
        if mode == StructuredMode::JsonSchema {
            strip_unsupported(&mut schema);
        }
        match mode {
            StructuredMode::JsonSchema => {
                b["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": rs.name, "schema": schema, "strict": true}
                });
            }
            StructuredMode::JsonObject | StructuredMode::Text => {
                if mode == StructuredMode::JsonObject {
                    b["response_format"] = json!({"type": "json_object"});
                }
                let extra = schema_instructions(&schema);
                match messages.first_mut() {
                    Some(first) if first["role"] == "system" => {
                        let text = format!(
                            "{}\n\n{extra}",
                            first["content"].as_str().unwrap_or_default()
                        );
                        first["content"] = json!(text);
                    }
                    _ => messages.insert(0, json!({"role": "system", "content": extra})),
                }
            }
        }
    }
    b["messages"] = Value::Array(messages);
    b
}

/// Keywords strict structured output refuses (length and count bounds). They stay in the
/// schema a local model's grammar is built from; here the model is asked without them.
const UNSUPPORTED_IN_STRICT: [&str; 8] = [
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
];

pub(crate) fn strip_unsupported(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in UNSUPPORTED_IN_STRICT {
                map.remove(k);
            }
            for (_, child) in map.iter_mut() {
                strip_unsupported(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_unsupported),
        _ => {}
    }
}

/// A label-set request as structured output: `{"answer": one of the choices}`, with room for
/// the JSON around the longest choice (a token limit meant for a bare label would cut it).
pub(crate) fn with_choices(mut request: ChatRequest) -> ChatRequest {
    let longest = request.choices.iter().map(|c| c.len()).max().unwrap_or(0) as u32;
    request.max_tokens = request.max_tokens.map(|m| m.max(16 + longest));
    let schema = json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": request.choices}},
        "required": ["answer"],
        "additionalProperties": false
    });
    if let Ok(schema) = serde_json::from_value(schema) {
        request.response_schema = Some(metaprompt_core::ResponseSchema {
            name: "answer".into(),
            schema,
        });
    }
    request
}

/// The bare choice from a structured answer (the text as it came when it holds none).
pub(crate) fn choice_of(text: &str, choices: &[String]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        answer: String,
    }
    match extract_json::<Answer>(text) {
        Ok(a) => a.answer,
        Err(_) => choices
            .iter()
            .find(|c| text.trim() == c.as_str())
            .cloned()
            .unwrap_or_else(|| text.to_string()),
    }
}

pub(crate) fn snippet(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Reads a chat-completions response tolerantly: content may be a string, null or an array of
/// parts; `finish_reason` and `usage` may be missing.
pub(crate) fn parse_response(v: &Value, requested_model: &str) -> Result<ChatResponse, ModelError> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| {
            ModelError::MalformedResponse(format!(
                "no choices in the response: {}",
                snippet(&v.to_string())
            ))
        })?;
    let content = &choice["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => choice["message"]["refusal"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    };
    let finish_reason = match choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    };
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens: n("prompt_tokens"),
            output_tokens: n("completion_tokens"),
        },
        model: v["model"].as_str().unwrap_or(requested_model).to_string(),
        finish_reason,
    })
}

pub(crate) fn mentions_format(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("response_format")
        || m.contains("json_schema")
        || m.contains("json_object")
        || m.contains("structured")
}
