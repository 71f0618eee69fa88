//! How a prompt is written in files: a plain string (one user message), `{messages = [...]}`
//! or `{system = "...", user = "..."}`; and its JSON schema for config references.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Prompt;
use crate::message::Role;

/// The serialised form of one message.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    role: Role,
    content: String,
}

/// `{messages = [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesForm {
    messages: Vec<RawMessage>,
}

/// `{system = "...", user = "..."}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesForm {
    #[serde(default)]
    system: Option<String>,
    user: String,
}

/// Every accepted form.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    Text(String),
    Messages(MessagesForm),
    Roles(RolesForm),
}

impl Serialize for Prompt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_single() {
            return serializer.serialize_str(self.messages[0].template.source());
        }
        #[derive(Serialize)]
        struct Out<'a> {
            messages: Vec<OutMessage<'a>>,
        }
        #[derive(Serialize)]
        struct OutMessage<'a> {
            role: Role,
            content: &'a str,
        }
        Out {
            messages: self
                .messages
                .iter()
                .map(|m| OutMessage {
                    role: m.role,
                    content: m.template.source(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPrompt::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "a prompt is a string, a table { system = \"...\", user = \"...\" } or { messages = [{ role = \"system\", content = \"...\" }, ...] }",
            )
        })?;
        let pairs: Vec<(Role, String)> = match raw {
            RawPrompt::Text(t) => vec![(Role::User, t)],
            RawPrompt::Messages(MessagesForm { messages }) => {
                messages.into_iter().map(|m| (m.role, m.content)).collect()
            }
            RawPrompt::Roles(RolesForm { system, user }) => system
                .map(|s| (Role::System, s))
                .into_iter()
                .chain([(Role::User, user)])
                .collect(),
        };
        Prompt::from_messages(pairs).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Prompt {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Prompt".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A prompt: a string (one user message), { system, user } or { messages = [{ role, content }, ...] }.",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {
                        "system": {"type": "string"},
                        "user": {"type": "string"}
                    },
                    "required": ["user"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": {
                        "messages": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "role": {"enum": ["system", "user", "assistant"]},
                                    "content": {"type": "string"}
                                },
                                "required": ["role", "content"],
                                "additionalProperties": false
                            }
                        }
                    },
                    "required": ["messages"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
