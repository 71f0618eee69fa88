//! The Messages API wire format: request bodies for each structured-output mode, and replies.

use metaprompt_core::{ChatRequest, ChatResponse, FinishReason, ModelError, Role, Usage};
use serde_json::{Value, json};

/// How structured output is asked for. Models or API versions that refuse one mode are asked
/// with the next; the client remembers the mode that worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StructuredMode {
    /// `output_config: {format: {type: "json_schema", schema}}`: constrained decoding.
    JsonSchema = 0,
    /// A single tool whose `input_schema` is the schema, forced with `tool_choice`.
    Tool = 1,
    /// The schema in the system prompt; the JSON is extracted from the text.
    Text = 2,
}

impl StructuredMode {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => StructuredMode::JsonSchema,
            1 => StructuredMode::Tool,
            _ => StructuredMode::Text,
        }
    }

    pub(crate) fn next(self) -> Option<Self> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::Tool),
            StructuredMode::Tool => Some(StructuredMode::Text),
            StructuredMode::Text => None,
        }
    }
}

/// The tool a forced-tool request names.
pub(crate) const TOOL: &str = "emit";

/// Tokens asked for when a request names no limit (the API requires one).
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Keywords the API's schemas refuse in some versions (length and count bounds). They stay in
/// the schema a local model's grammar is built from.
const UNSUPPORTED: [&str; 6] = [
    "maxLength",
    "minLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
];

fn strip_unsupported(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in UNSUPPORTED {
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

/// The schema a request asks for: its own, or `{"answer": one of the choices}`.
pub(crate) fn schema_of(req: &ChatRequest) -> Option<Value> {
    if let Some(rs) = &req.response_schema {
        return Some(rs.schema.as_value().clone());
    }
    (!req.choices.is_empty()).then(|| {
        json!({
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": req.choices}},
            "required": ["answer"],
            "additionalProperties": false
        })
    })
}

/// The request body. The system messages go in the top-level `system` field, never as a role.
pub(crate) fn body(
    model: &str,
    req: &ChatRequest,
    mode: StructuredMode,
    send_temperature: bool,
) -> Value {
    let mut system: Vec<&str> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System => system.push(&m.content),
            Role::User => messages.push(json!({"role": "user", "content": m.content})),
            Role::Assistant => messages.push(json!({"role": "assistant", "content": m.content})),
        }
    }
    // A label set comes back as JSON: room for it around the longest choice.
    let choice_room = req
        .choices
        .iter()
        .map(|c| c.len() as u32 + 16)
        .max()
        .unwrap_or(0);
    let mut b = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).max(choice_room),
        "messages": messages,
    });
    let mut system = system.join("\n\n");
    if let Some(mut schema) = schema_of(req) {
        strip_unsupported(&mut schema);
        match mode {
            StructuredMode::JsonSchema => {
                b["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
            }
            StructuredMode::Tool => {
                b["tools"] = json!([{
                    "name": TOOL,
                    "description": "Return the answer in the required structure.",
                    "input_schema": schema,
                }]);
                b["tool_choice"] = json!({"type": "tool", "name": TOOL});
            }
            StructuredMode::Text => {
                let extra = format!(
                    "Reply with one JSON object and nothing else. It must follow this JSON schema:\n{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                );
                system = if system.is_empty() {
                    extra
                } else {
                    format!("{system}\n\n{extra}")
                };
            }
        }
    }
    if !system.is_empty() {
        b["system"] = json!(system);
    }
    if send_temperature && let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    if send_temperature && let Some(p) = req.top_p {
        b["top_p"] = json!(p);
    }
    if !req.stop.is_empty() {
        b["stop_sequences"] = json!(req.stop);
    }
    b
}

/// A reply as a `ChatResponse`: the text blocks (or the forced tool's input, as JSON text), the
/// usage, the stop reason. With `choices`, the bare choice.
pub(crate) fn parse(
    v: &Value,
    requested: &str,
    req: &ChatRequest,
) -> Result<ChatResponse, ModelError> {
    let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| {
        ModelError::MalformedResponse(format!(
            "no content in the reply: {}",
            snippet(&v.to_string())
        ))
    })?;
    let tool = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .map(|b| b["input"].to_string());
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    let mut text = tool.unwrap_or(text);
    if req.response_schema.is_some()
        && let Ok(clean) = metaprompt_core::extract_json::<Value>(&text)
    {
        text = clean.to_string();
    }
    if req.response_schema.is_none() && !req.choices.is_empty() {
        text = match metaprompt_core::extract_json::<Value>(&text) {
            Ok(v) => v["answer"].as_str().map_or(text.clone(), str::to_string),
            Err(_) => text.trim().to_string(),
        };
    }
    let finish_reason = match v["stop_reason"].as_str().unwrap_or("") {
        "end_turn" | "stop_sequence" | "tool_use" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    };
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens: n("input_tokens")
                + n("cache_read_input_tokens")
                + n("cache_creation_input_tokens"),
            output_tokens: n("output_tokens"),
        },
        model: v["model"].as_str().unwrap_or(requested).to_string(),
        finish_reason,
    })
}

/// The first 500 bytes of a text, cut on a character boundary.
pub(crate) fn snippet(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The message of an error body (`{"type":"error","error":{"type","message"}}`).
pub(crate) fn error_message(body: &str) -> (String, String) {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => (
            v["error"]["type"].as_str().unwrap_or("").to_string(),
            v["error"]["message"]
                .as_str()
                .map_or_else(|| snippet(body), str::to_string),
        ),
        Err(_) => (String::new(), snippet(body)),
    }
}

/// Whether a 400 refused the sampling temperature (newer models and API versions do).
pub(crate) fn refuses_temperature(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("temperature")
        && (m.contains("deprecated")
            || m.contains("not permitted")
            || m.contains("not supported")
            || m.contains("extra inputs"))
}

/// Whether a 400 refused the structured-output mode.
pub(crate) fn refuses_mode(message: &str, mode: StructuredMode) -> bool {
    let m = message.to_ascii_lowercase();
    match mode {
        StructuredMode::JsonSchema => {
            m.contains("output_config") || m.contains("json_schema") || m.contains("format")
        }
        StructuredMode::Tool => m.contains("tool"),
        StructuredMode::Text => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaprompt_core::{Message, ResponseSchema};

    fn req() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            temperature: Some(0.2),
            max_tokens: Some(50),
            stop: vec!["END".into()],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn the_system_message_is_a_field_not_a_role() {
        let b = body("claude-x", &req(), StructuredMode::JsonSchema, true);
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["max_tokens"], 50);
        assert_eq!(b["stop_sequences"][0], "END");
        assert!((b["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
        assert!(
            body("claude-x", &req(), StructuredMode::JsonSchema, false)
                .get("temperature")
                .is_none()
        );
    }

    #[test]
    fn each_mode_asks_for_the_schema_its_own_way() {
        let mut r = req();
        r.response_schema = Some(ResponseSchema {
            name: "s".into(),
            schema: serde_json::from_value(json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}}, "required": ["a"], "additionalProperties": false})).unwrap(),
        });
        let js = body("m", &r, StructuredMode::JsonSchema, true);
        assert_eq!(js["output_config"]["format"]["type"], "json_schema");
        assert!(
            js["output_config"]["format"]["schema"]["properties"]["a"]
                .get("maxLength")
                .is_none()
        );
        let tool = body("m", &r, StructuredMode::Tool, true);
        assert_eq!(tool["tool_choice"]["name"], TOOL);
        assert_eq!(tool["tools"][0]["input_schema"]["required"][0], "a");
        let text = body("m", &r, StructuredMode::Text, true);
        assert!(text["system"].as_str().unwrap().contains("JSON schema"));
    }

    #[test]
    fn a_forced_tool_reply_becomes_json_text() {
        let mut r = req();
        r.response_schema = Some(ResponseSchema {
            name: "s".into(),
            schema: serde_json::from_value(json!({"type": "object"})).unwrap(),
        });
        let v = json!({"content": [{"type": "tool_use", "id": "t", "name": "emit", "input": {"a": "x"}}], "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}, "model": "m"});
        let p = parse(&v, "m", &r).unwrap();
        assert_eq!(p.text, "{\"a\":\"x\"}");
        assert_eq!(
            p.usage,
            Usage {
                input_tokens: 3,
                output_tokens: 4
            }
        );
        assert_eq!(p.finish_reason, FinishReason::Stop);
    }
}
