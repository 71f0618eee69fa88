//! Outputs of a run: result.json (the contract), best_prompt.txt and best_prompt.json,
//! history.jsonl, test_outputs.jsonl, report.md, report.html, and the terminal summary.
//!
//! Everything is written from the result document alone, so `metaprompt report` rebuilds the
//! same files from a store, also for documents written by earlier versions.

mod examples;
mod html;
mod markdown;
mod summary;
mod words;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

pub(crate) use metaprompt::engine::doc::{prompt_messages, result_json, result_schema};
pub(crate) use summary::print_summary;

/// Writes every output file of a run from its result document.
pub(crate) fn write_all(dir: &Path, doc: &Value) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let w = |name: &str, text: String| -> Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    };
    w("result.json", serde_json::to_string_pretty(doc)?)?;
    w(
        "best_prompt.txt",
        format!("{}\n", doc["best_prompt"].as_str().unwrap_or_default()),
    )?;
    let messages: Vec<Value> = prompt_messages(doc, "best")
        .into_iter()
        .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
        .collect();
    w(
        "best_prompt.json",
        format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({ "messages": messages }))?
        ),
    )?;
    let history: String = doc["rounds"]
        .as_array()
        .map(|a| a.iter().map(|r| format!("{r}\n")).collect())
        .unwrap_or_default();
    w("history.jsonl", history)?;
    w("test_outputs.jsonl", examples::jsonl(doc))?;
    w("report.md", markdown::markdown(doc))?;
    w("report.html", html::html(doc))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A `result.json` written by metaprompt 0.1 before chat prompts, the pool and the test
    /// delta existed: the reports are still written from it.
    #[test]
    fn a_result_written_by_the_previous_version_still_reports() {
        let text = include_str!("../../tests/fixtures/result-v0.1.json");
        let doc: Value = serde_json::from_str(text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &doc).unwrap();
        let best = doc["best_prompt"].as_str().unwrap();
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("best_prompt.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["messages"][0]["role"], "user");
        assert_eq!(json["messages"][0]["content"], best);
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("no paired comparison recorded"));
        assert!(html.contains(&words::esc(best.lines().next().unwrap())));
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(
            md.contains("## Ledger") && md.contains("| 3 | rewrite |"),
            "{md}"
        );
        let history = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        assert_eq!(
            history.lines().count(),
            doc["rounds"].as_array().unwrap().len()
        );
    }
}
