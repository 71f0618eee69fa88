//! The instruction of a prompt (its text less the inputs) and when it is degenerate.

use metaprompt_core::template::Segment;
use metaprompt_core::{Prompt, PromptTemplate};

use super::{GuardContext, Violation, words};

/// The words of a prompt's instruction: its text without variables, and without the short
/// labels of lines that only introduce an input (`Word: {word}`).
pub(super) fn instruction_words(prompt: &Prompt) -> Vec<String> {
    let mut out = Vec::new();
    for m in prompt.messages() {
        for line in m.template.source().lines() {
            let mut text = String::new();
            let mut depth = 0usize;
            for c in line.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => text.push(c),
                    _ => {}
                }
            }
            let has_var = line.contains('{') && text.len() < line.len();
            let label_only = has_var && {
                let t = text.trim().trim_end_matches([':', '-', '=']).trim();
                t.split_whitespace().count() <= 3 && text.trim_end().ends_with([':', '-', '='])
            };
            if !label_only {
                out.extend(words(&text));
            }
        }
    }
    out
}

impl GuardContext {
    /// Why a prompt's instruction is degenerate, if it is: its words, less the variables and
    /// the labels of input lines (`Word: {word}`), are none, only label values, or fewer than
    /// `min_instruction_words`.
    pub(super) fn degenerate(&self, prompt: &Prompt) -> Option<String> {
        let words = instruction_words(prompt);
        if words.is_empty() {
            return Some("is empty: the prompt holds only its inputs".into());
        }
        if !self.label_values.is_empty() && words.iter().all(|w| self.label_values.contains(w)) {
            return Some(format!("is only a label value (\"{}\")", words.join(" ")));
        }
        if words.len() < self.min_instruction_words {
            return Some(format!(
                "has {} word(s); the minimum is {}",
                words.len(),
                self.min_instruction_words
            ));
        }
        None
    }

    /// An instruction edit's own text, before the engine puts the inputs back: refused when
    /// degenerate, so the inputs' words never make a bare label pass.
    pub fn check_instruction(&self, instruction: &str) -> Result<(), Violation> {
        let literal = PromptTemplate::from_segments(vec![Segment::Literal(instruction.into())]);
        match self.degenerate(&Prompt::single(literal)) {
            Some(why) => Err(Violation::Degenerate(why)),
            None => Ok(()),
        }
    }
}
