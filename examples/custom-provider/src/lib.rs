//! A provider for an Anthropic-Messages-style API, written against `metaprompt-core` only.
//!
//! Everything a provider needs: map a `ChatRequest` to the wire format, map the reply and its
//! usage back, and map failures to `ModelError` kinds (so the optimizer knows a bad key from a
//! passing hiccup) without ever putting the key in a message.

use metaprompt_core::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, ModelError, Role, Usage, async_trait,
};
use serde_json::{Value, json};

/// A chat model behind a Messages-style endpoint.
pub struct MessagesChat {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
}

impl MessagesChat {
    /// A client for `model` at `base_url` (e.g. `http://127.0.0.1:9000`).
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        // This workspace builds reqwest without a bundled crypto provider; install ring once.
        // Newer rustls releases deprecate ring's provider (it lacks post-quantum key exchange);
        // it stays the one that needs no C toolchain.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        MessagesChat {
            http: reqwest::Client::new(),
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
        }
    }

    /// The request body.
    pub fn body(&self, req: &ChatRequest) -> Value {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut system = system.join("\n\n");
        if let Some(schema) = &req.response_schema {
            // No native structured output here: ask for JSON in the system prompt; the caller
            // parses with `extract_json`.
            system.push_str(&format!(
                "\n\nReply with one JSON object following this schema:\n{}",
                schema.schema.as_value()
            ));
        }
        let messages: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({"role": if m.role == Role::User { "user" } else { "assistant" }, "content": [{"type": "text", "text": m.content}]}))
            .collect();
        let mut b = json!({"model": self.model, "max_tokens": req.max_tokens.unwrap_or(1024), "messages": messages});
        if !system.trim().is_empty() {
            b["system"] = json!(system.trim());
        }
        if let Some(t) = req.temperature {
            b["temperature"] = json!(t);
        }
        if !req.stop.is_empty() {
            b["stop_sequences"] = json!(req.stop);
        }
        b
    }
}

#[async_trait]
impl ChatModel for MessagesChat {
    fn id(&self) -> &str {
        &self.model
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let resp = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", "2023-06-01")
            .json(&self.body(&request))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ModelError::Timeout(std::time::Duration::from_secs(0))
                } else {
                    ModelError::Server(e.without_url().to_string())
                }
            })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ModelError::Server(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            ModelError::MalformedResponse(format!("{e}: {}", &text[..text.len().min(200)]))
        })?;
        let message = v["error"]["message"].as_str().unwrap_or("").to_string();
        match status {
            200 => {}
            401 | 403 => return Err(ModelError::Auth(message)),
            429 => {
                return Err(ModelError::RateLimited {
                    attempts: 1,
                    message,
                });
            }
            400..=499 => return Err(ModelError::BadRequest(message)),
            _ => return Err(ModelError::Server(format!("{status}: {message}"))),
        }
        let text: String = v["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        Ok(ChatResponse {
            text,
            usage: Usage {
                input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
            },
            model: v["model"].as_str().unwrap_or(&self.model).to_string(),
            finish_reason: match v["stop_reason"].as_str() {
                Some("end_turn" | "stop_sequence") => FinishReason::Stop,
                Some("max_tokens") => FinishReason::Length,
                other => FinishReason::Other(other.unwrap_or("").to_string()),
            },
        })
    }
}
