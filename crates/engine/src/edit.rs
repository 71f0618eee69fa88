//! What the teacher edits: the whole prompt, or only its instruction while the engine keeps the
//! lines that carry the inputs (so a rewrite can never drop a variable).

use std::collections::BTreeSet;

use metaprompt_core::{Prompt, PromptTemplate, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the teacher rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditMode {
    /// The whole prompt: the teacher returns it with every variable.
    Whole,
    /// Only the instruction: the teacher returns the instruction text and the engine puts the
    /// prompt's input block (its lines with variables) back around it.
    Instruction,
    /// `instruction` when the edited message has an input block to keep, else `whole`.
    #[default]
    Auto,
}

/// How much the teacher is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeacherContext {
    /// Everything the knobs allow: `max_failures`, `max_successes`, `ledger_size` and
    /// `teacher_input_budget`.
    #[default]
    Full,
    /// For small teachers (a few thousand tokens of context): at most 3 failures, 1 success,
    /// the last 2 ledger entries and 3,000 characters, and no worked reply in the system
    /// message (SmolLM2-135M copied it in 19 of 29 replies; docs/concepts.md).
    Compact,
}

impl TeacherContext {
    /// (failures, successes, ledger entries, characters) shown, given the knobs.
    pub(crate) fn limits(
        self,
        failures: usize,
        successes: usize,
        ledger: usize,
        chars: usize,
    ) -> (usize, usize, usize, usize) {
        match self {
            TeacherContext::Full => (failures, successes, ledger, chars),
            TeacherContext::Compact => (
                failures.min(3),
                successes.min(1),
                ledger.min(2),
                chars.min(3_000),
            ),
        }
    }
}

/// A prompt read as the instruction the teacher rewrites and the input block the engine keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The message whose instruction is edited.
    pub(crate) message: usize,
    /// The instruction: the message's text less its input block.
    pub(crate) instruction: String,
    /// The lines from the first that carries a variable (or the leading lines up to the last
    /// one, when the inputs come first); empty when the message has no variables.
    pub(crate) inputs: String,
    /// Whether the instruction comes before the input block.
    pub(crate) instruction_first: bool,
}

fn has_variable(line: &str) -> bool {
    PromptTemplate::parse(line).is_ok_and(|t| !t.variables().is_empty())
}

/// Splits a template's source into (instruction, input block, instruction first).
fn split(text: &str) -> (String, String, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(first) = lines.iter().position(|l| has_variable(l)) else {
        return (text.trim().to_string(), String::new(), true);
    };
    let before = lines[..first].join("\n");
    if !before.trim().is_empty() {
        return (
            before.trim().to_string(),
            lines[first..].join("\n").trim().to_string(),
            true,
        );
    }
    let last = lines.iter().rposition(|l| has_variable(l)).unwrap_or(first);
    let after = lines[last + 1..].join("\n").trim().to_string();
    let inputs = lines[..=last].join("\n").trim().to_string();
    // A prompt that is only its inputs gets its new instruction in front.
    let first_ = after.is_empty();
    (after, inputs, first_)
}

impl Layout {
    /// The layout of `prompt` for an instruction edit: the first editable system message, else
    /// the first editable message with variables, else the first editable one.
    pub(crate) fn of(prompt: &Prompt, editable: &BTreeSet<Role>) -> Option<Layout> {
        let msgs = prompt.messages();
        let may = |r: Role| prompt.is_single() || editable.contains(&r);
        let index = msgs
            .iter()
            .position(|m| m.role == Role::System && may(m.role))
            .or_else(|| {
                msgs.iter()
                    .position(|m| may(m.role) && !m.template.variables().is_empty())
            })
            .or_else(|| msgs.iter().position(|m| may(m.role)))?;
        let (instruction, inputs, instruction_first) = split(msgs[index].template.source());
        Some(Layout {
            message: index,
            instruction,
            inputs,
            instruction_first,
        })
    }

    /// Whether `mode` edits this prompt's instruction (`auto`: when it has inputs to keep).
    pub(crate) fn chosen(
        mode: EditMode,
        prompt: &Prompt,
        editable: &BTreeSet<Role>,
    ) -> Option<Self> {
        match mode {
            EditMode::Whole => None,
            EditMode::Instruction => Layout::of(prompt, editable),
            EditMode::Auto => Layout::of(prompt, editable).filter(|l| !l.inputs.is_empty()),
        }
    }

    /// The text of the edited message with `instruction` in place of the old one.
    pub(crate) fn assemble(&self, instruction: &str) -> String {
        let instruction = instruction.trim();
        match (instruction.is_empty(), self.inputs.is_empty()) {
            (_, true) => instruction.to_string(),
            (true, false) => self.inputs.clone(),
            (false, false) if self.instruction_first => {
                format!("{instruction}\n\n{}", self.inputs)
            }
            (false, false) => format!("{}\n\n{instruction}", self.inputs),
        }
    }

    /// Every message of `parent`, the edited one rebuilt around `instruction`.
    pub(crate) fn messages(&self, parent: &Prompt, instruction: &str) -> Vec<(Role, String)> {
        parent
            .messages()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let text = if i == self.message {
                    self.assemble(instruction)
                } else {
                    m.template.source().to_string()
                };
                (m.role, text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> Layout {
        Layout::of(&Prompt::parse(text).unwrap(), &BTreeSet::new()).unwrap()
    }

    #[test]
    fn instruction_before_the_inputs() {
        let l =
            layout("Classify the word.\nBe brief.\n\nWord: {word}\nMeaning: {meaning}\nAnswer:");
        assert_eq!(l.instruction, "Classify the word.\nBe brief.");
        assert_eq!(l.inputs, "Word: {word}\nMeaning: {meaning}\nAnswer:");
        assert_eq!(
            l.assemble("Say positive or negative."),
            "Say positive or negative.\n\nWord: {word}\nMeaning: {meaning}\nAnswer:"
        );
    }

    #[test]
    fn inputs_first_then_the_instruction() {
        let l = layout("Text: {text}\n\nIs this spam? Answer spam or ham.");
        assert_eq!(l.inputs, "Text: {text}");
        assert_eq!(l.instruction, "Is this spam? Answer spam or ham.");
        assert!(!l.instruction_first);
        assert_eq!(l.assemble("New rule."), "Text: {text}\n\nNew rule.");
    }

    #[test]
    fn a_prompt_of_only_inputs_gets_its_instruction_in_front() {
        let l = layout("{text}");
        assert_eq!(l.instruction, "");
        assert_eq!(l.assemble("Classify it."), "Classify it.\n\n{text}");
        // An empty instruction keeps the inputs (the guards then refuse it as degenerate).
        assert_eq!(l.assemble("  "), "{text}");
    }

    #[test]
    fn literal_braces_are_not_inputs() {
        let l = layout("Reply as {{\"label\": ...}}.\n\n{text}");
        assert_eq!(l.instruction, "Reply as {{\"label\": ...}}.");
        assert_eq!(l.inputs, "{text}");
    }

    #[test]
    fn chat_edits_the_system_message_and_keeps_the_rest() {
        let p = Prompt::from_messages([
            (Role::System, "You classify words."),
            (Role::User, "Word: {word}"),
        ])
        .unwrap();
        let l = Layout::of(&p, &[Role::System, Role::User].into()).unwrap();
        assert_eq!(l.message, 0);
        assert_eq!(l.inputs, "");
        assert_eq!(
            l.messages(&p, "You label words by sentiment."),
            vec![
                (Role::System, "You label words by sentiment.".to_string()),
                (Role::User, "Word: {word}".to_string())
            ]
        );
        // Only the user message editable: its instruction, its inputs kept.
        let p = Prompt::from_messages([
            (Role::System, "You classify words."),
            (Role::User, "Label it.\nWord: {word}"),
        ])
        .unwrap();
        let l = Layout::chosen(EditMode::Auto, &p, &[Role::User].into()).unwrap();
        assert_eq!((l.message, l.inputs.as_str()), (1, "Word: {word}"));
    }

    #[test]
    fn auto_is_whole_without_inputs_to_keep() {
        let p = Prompt::parse("Tell a joke.").unwrap();
        assert!(Layout::chosen(EditMode::Auto, &p, &BTreeSet::new()).is_none());
        assert!(Layout::chosen(EditMode::Instruction, &p, &BTreeSet::new()).is_some());
        let p = Prompt::parse("Classify.\n{text}").unwrap();
        assert!(Layout::chosen(EditMode::Whole, &p, &BTreeSet::new()).is_none());
    }
}
