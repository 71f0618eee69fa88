//! The teacher protocol: what the teacher is shown, what it must return, and how refused
//! rewrites are asked for again.

use std::sync::Arc;

use metaprompt_core::{
    ChatModel, ChatRequest, Message, ModelError, Prompt, ResponseSchema, Role, extract_json,
    schema_for,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::brief::Brief;
use crate::brief::system::{Shape, system_prompt};
use crate::edit::Layout;
use crate::guards::{CheckedRewrite, GuardContext, Violation};

/// What the teacher returns for a one-string prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeacherReply {
    /// Patterns in the failures, compared with the successes.
    pub analysis: String,
    /// One testable hypothesis about why the prompt fails.
    pub hypothesis: String,
    /// The whole rewritten prompt.
    pub improved_prompt: String,
}

/// One message of a rewritten chat prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReplyMessage {
    /// `system`, `user` or `assistant`.
    pub role: Role,
    /// The message's template.
    pub content: String,
}

/// What the teacher returns for a chat prompt: every message, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatTeacherReply {
    /// Patterns in the failures, compared with the successes.
    pub analysis: String,
    /// One testable hypothesis about why the prompt fails.
    pub hypothesis: String,
    /// The whole prompt, every message in order; messages that may not be edited unchanged.
    pub messages: Vec<ReplyMessage>,
}

/// What the teacher returns when it edits only the instruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionReply {
    /// Patterns in the failures, compared with the successes.
    pub analysis: String,
    /// One testable hypothesis about why the prompt fails.
    pub hypothesis: String,
    /// The rewritten instruction; the engine puts the prompt's inputs back with it.
    pub instruction: String,
}

/// The longest analysis and hypothesis asked for: bounds a weak teacher's runaway replies (a
/// grammar built from the schema stops it there).
const ANALYSIS_CHARS: u64 = 800;
const HYPOTHESIS_CHARS: u64 = 300;

fn bound(schema: &mut serde_json::Value, field: &str, max: u64) {
    if let Some(p) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(field))
        .and_then(serde_json::Value::as_object_mut)
    {
        p.insert("maxLength".into(), max.into());
    }
}

/// The reply schema for `shape`, with every string field's length bounded.
pub(crate) fn reply_schema(
    shape: Shape,
    max_prompt_chars: usize,
    messages: usize,
) -> ResponseSchema {
    let schema = match shape {
        Shape::Whole => schema_for::<TeacherReply>(),
        Shape::Chat => schema_for::<ChatTeacherReply>(),
        Shape::Instruction => schema_for::<InstructionReply>(),
    };
    let mut v = schema.as_value().clone();
    bound(&mut v, "analysis", ANALYSIS_CHARS);
    bound(&mut v, "hypothesis", HYPOTHESIS_CHARS);
    match shape {
        Shape::Chat => {
            if let Some(items) = v
                .get_mut("properties")
                .and_then(|p| p.get_mut("messages"))
                .and_then(serde_json::Value::as_object_mut)
            {
                items.insert("minItems".into(), (messages as u64).into());
                items.insert("maxItems".into(), (messages as u64).into());
                if let Some(item) = items.get_mut("items") {
                    bound(item, "content", max_prompt_chars as u64);
                }
            }
        }
        Shape::Whole => bound(&mut v, "improved_prompt", max_prompt_chars as u64),
        Shape::Instruction => bound(&mut v, "instruction", max_prompt_chars as u64),
    }
    ResponseSchema {
        name: "prompt_rewrite".into(),
        schema: serde_json::from_value(v).unwrap_or(schema),
    }
}

/// A proposal after guards (and perhaps repair).
pub(crate) struct Proposal {
    pub(crate) analysis: String,
    pub(crate) hypothesis: String,
    pub(crate) outcome: Result<CheckedRewrite, String>,
    pub(crate) rejections: Vec<String>,
    /// A teacher error that should end the run (bad credentials, no quota) or a refused call.
    pub(crate) fatal: Option<ModelError>,
}

/// One teacher conversation.
pub(crate) struct TeacherCall<'a> {
    pub(crate) teacher: &'a Arc<dyn ChatModel>,
    pub(crate) temperature: f32,
    pub(crate) max_tokens: u32,
    pub(crate) frequency_penalty: Option<f32>,
    pub(crate) seed: u64,
    pub(crate) retries: u32,
    pub(crate) append_inputs: bool,
}

/// A teacher's reply as the messages of the rewritten prompt.
struct Rewrite {
    analysis: String,
    hypothesis: String,
    messages: Vec<(Role, String)>,
    /// The instruction of an instruction edit, as the teacher wrote it.
    instruction: Option<String>,
}

fn whole(text: &str, chat: bool) -> Result<Rewrite, String> {
    if chat {
        extract_json::<ChatTeacherReply>(text)
            .map(|r| Rewrite {
                analysis: r.analysis,
                hypothesis: r.hypothesis,
                messages: r
                    .messages
                    .into_iter()
                    .map(|m| (m.role, m.content))
                    .collect(),
                instruction: None,
            })
            .map_err(|e| e.to_string())
    } else {
        extract_json::<TeacherReply>(text)
            .map(|r| Rewrite {
                analysis: r.analysis,
                hypothesis: r.hypothesis,
                messages: vec![(Role::User, r.improved_prompt)],
                instruction: None,
            })
            .map_err(|e| e.to_string())
    }
}

/// Reads a reply. With a layout the instruction is put back with the parent's inputs; a
/// teacher that returns a whole prompt anyway is read as a whole rewrite (the guards then
/// check its variables as in whole mode).
fn parse(text: &str, parent: &Prompt, layout: Option<&Layout>) -> Result<Rewrite, String> {
    let chat = !parent.is_single();
    let Some(layout) = layout else {
        return whole(text, chat);
    };
    match extract_json::<InstructionReply>(text) {
        Ok(r) => Ok(Rewrite {
            analysis: r.analysis,
            hypothesis: r.hypothesis,
            messages: layout.messages(parent, &r.instruction),
            instruction: Some(r.instruction),
        }),
        Err(e) => whole(text, chat).map_err(|_| e.to_string()),
    }
}

impl TeacherCall<'_> {
    /// Asks for a rewrite of `parent`, re-asking on malformed JSON or a guard violation.
    pub(crate) async fn propose(
        &self,
        brief: &Brief<'_>,
        parent: &Prompt,
        guards: &GuardContext,
    ) -> Proposal {
        let chat = !parent.is_single();
        let mut messages = vec![
            Message::system(system_prompt(brief.shape(), brief.worked_example)),
            Message::user(brief.render()),
        ];
        let mut p = Proposal {
            analysis: String::new(),
            hypothesis: String::new(),
            outcome: Err(String::new()),
            rejections: Vec::new(),
            fatal: None,
        };
        let schema = reply_schema(brief.shape(), guards.max_chars, parent.messages().len());
        let mut last_missing: Option<(Prompt, Vec<String>)> = None;
        for attempt in 0..=self.retries {
            let request = ChatRequest {
                messages: messages.clone(),
                temperature: Some(self.temperature),
                max_tokens: Some(self.max_tokens),
                seed: Some(self.seed.wrapping_add(u64::from(attempt))),
                frequency_penalty: self.frequency_penalty,
                response_schema: Some(schema.clone()),
                ..ChatRequest::default()
            };
            let resp = match self.teacher.complete(request).await {
                Ok(r) => r,
                Err(
                    e @ (ModelError::Auth(_)
                    | ModelError::Quota(_)
                    | ModelError::Budget(_)
                    | ModelError::Cancelled),
                ) => {
                    p.outcome = Err(format!("teacher call failed: {e}"));
                    p.fatal = Some(e);
                    return p;
                }
                Err(e) => {
                    p.outcome = Err(format!("teacher call failed: {e}"));
                    continue;
                }
            };
            let problem = match parse(&resp.text, parent, brief.layout.as_ref()) {
                Err(e) => format!("your reply was not the required JSON ({e})"),
                Ok(reply) => {
                    p.analysis = reply.analysis.clone();
                    p.hypothesis = reply.hypothesis.clone();
                    let checked = if let Some(i) = &reply.instruction
                        && let Err(v) = guards.check_instruction(i)
                    {
                        Err(v)
                    } else if chat {
                        guards.check_messages(parent, &reply.messages)
                    } else {
                        guards.check(&reply.messages[0].1)
                    };
                    match checked {
                        Ok(c) => {
                            p.outcome = Ok(c);
                            return p;
                        }
                        Err(v) => {
                            last_missing = match &v {
                                Violation::MissingVariables(m) => {
                                    partial(parent, &reply.messages, chat).map(|pr| (pr, m.clone()))
                                }
                                _ => None,
                            };
                            p.rejections.push(v.to_string());
                            format!("your rewrite was refused: {v}")
                        }
                    }
                }
            };
            p.outcome = Err(problem.clone());
            messages.push(Message::assistant(resp.text));
            messages.push(Message::user(format!(
                "{problem}. Reply again with the full JSON, fixing this."
            )));
        }
        if self.append_inputs
            && let Some((prompt, missing)) = last_missing
        {
            match guards.repair(&prompt, &missing) {
                Ok(c) => p.outcome = Ok(c),
                Err(v) => p.outcome = Err(format!("repair failed: {v}")),
            }
        }
        p
    }
}

/// The rewrite as a prompt even though it lacks variables (for the repair).
fn partial(parent: &Prompt, messages: &[(Role, String)], chat: bool) -> Option<Prompt> {
    let healed: Vec<(Role, String)> = messages
        .iter()
        .map(|(r, t)| (*r, crate::guards::heal_braces(t.trim())))
        .collect();
    if chat && healed.len() != parent.messages().len() {
        return None;
    }
    Prompt::from_messages(healed).ok()
}
