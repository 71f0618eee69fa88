//! Arguments several commands read the same way: a prompt file and a split name.

use std::io::Read;

use anyhow::{Context, anyhow};
use metaprompt::core::Prompt;

use crate::{Failure, UsageExt};

/// Reads a prompt file: a chat prompt as JSON (`{"messages": [...]}`, as `best_prompt.json`
/// holds), else the file's text as one user message.
pub(crate) fn read_prompt(source: &str) -> Result<Prompt, Failure> {
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the prompt from stdin")
            .usage()?;
        s
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("cannot read the prompt file {source}"))
            .usage()?
    };
    let trimmed = text.trim_start();
    if source.ends_with(".json") || trimmed.starts_with("{\"messages\"") {
        return serde_json::from_str::<Prompt>(&text)
            .with_context(|| format!("{source} is not a chat prompt ({{\"messages\": [{{\"role\", \"content\"}}, …]}})"))
            .usage();
    }
    let text = text.trim_end_matches('\n');
    Prompt::parse(text)
        .with_context(|| format!("the prompt in {source}"))
        .usage()
}

/// A split name as the commands take it.
pub(crate) fn check_split(split: &str) -> Result<(), Failure> {
    if ["train", "val", "test", "all"].contains(&split) {
        Ok(())
    } else {
        Err(Failure::Usage(anyhow!(
            "--split must be train, val, test or all, not `{split}`"
        )))
    }
}
