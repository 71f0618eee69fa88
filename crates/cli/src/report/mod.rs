//! Outputs of a run: result.json (the contract), best_prompt.txt and best_prompt.json,
//! history.jsonl, test_outputs.jsonl, report.md, report.html, and the terminal summary.
//!
//! Everything is written from the result document alone, so `metaprompt report` rebuilds the
//! same files from a store, also for documents written by earlier versions.

mod examples;
mod html;
mod summary;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

pub(crate) use metaprompt::engine::doc::{prompt_messages, result_json, result_schema};
pub(crate) use summary::print_summary;

pub(super) fn f3(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

pub(super) fn ci(v: &Value) -> String {
    match v.as_array() {
        Some(a) if a.len() == 2 => format!("[{}, {}]", f3(&a[0]), f3(&a[1])),
        _ => "-".into(),
    }
}

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
    w("report.md", markdown(doc))?;
    w("report.html", html::html(doc))?;
    Ok(())
}

fn markdown(d: &Value) -> String {
    let mut s = format!(
        "# metaprompt run `{}`\n\n**{}**\n\nStopped: {}. Wall time: {:.1} s.\n\n| | initial | best |\n|---|---|---|\n| val | {} | {} |\n| test | {} {} | {} {} |\n\n",
        d["run_id"].as_str().unwrap_or(""),
        claim(d),
        d["stop_reason"].as_str().unwrap_or(""),
        d["wall_seconds"].as_f64().unwrap_or(0.0),
        f3(&d["initial_score"]),
        f3(&d["final_score"]),
        f3(&d["initial_test_score"]),
        ci(&d["initial_test_ci95"]),
        f3(&d["test_score"]),
        ci(&d["test_ci95"]),
    );
    s.push_str("## Best prompt\n\n");
    if d["best_repaired"] == true {
        s.push_str(REPAIRED_NOTE);
        s.push_str("\n\n");
    }
    s.push_str("```text\n");
    s.push_str(d["best_prompt"].as_str().unwrap_or(""));
    s.push_str("\n```\n\n## Ledger\n\n| round | kind | hypothesis | minibatch (parent) | val | verdict |\n|---|---|---|---|---|---|\n");
    for r in d["rounds"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} | {} |\n",
            round_label(r),
            r["mutation"].as_str().unwrap_or("rewrite"),
            r["hypothesis"]
                .as_str()
                .unwrap_or("")
                .replace('|', "\\|")
                .replace('\n', " "),
            f3(&r["minibatch_score"]),
            f3(&r["parent_minibatch_score"]),
            f3(&r["val_score"]),
            verdict(r),
        ));
    }
    let u = &d["usage"];
    s.push_str(&format!(
        "\n## Usage\n\nStudent calls {}, teacher calls {}, judge calls {}, cache hits {}; tokens {} in / {} out; cost ${:.4}.\n",
        u["student_calls"], u["teacher_calls"], u["judge_calls"], u["cache_hits"], u["input_tokens"], u["output_tokens"], u["cost_usd"].as_f64().unwrap_or(0.0)
    ));
    s
}

/// What a report says above a best prompt that the repair made.
pub(super) const REPAIRED_NOTE: &str = "Repaired: the teacher's rewrite dropped inputs and the engine appended them at the end; read it before adopting it.";

/// The run's claim about test, as the result states it (older documents: the scores).
pub(super) fn claim(d: &Value) -> String {
    match d["verdict"].as_str() {
        Some(v) => v.to_string(),
        None => format!(
            "test {} → {} (no paired comparison recorded)",
            f3(&d["initial_test_score"]),
            f3(&d["test_score"])
        ),
    }
}

/// `3` for a round's only child, `3.2` for its second of several.
pub(super) fn round_label(r: &Value) -> String {
    match r["child"].as_u64() {
        Some(c) if c > 0 => format!("{}.{}", r["round"], c + 1),
        _ => r["round"].to_string(),
    }
}

pub(super) fn verdict(r: &Value) -> String {
    let v = if r["accepted"] == true {
        "best"
    } else if r["failed"] == true {
        "failed"
    } else if r["pooled"] == true {
        "pooled"
    } else {
        "rejected"
    };
    format!(
        "{v}: {}",
        r["reason"].as_str().unwrap_or("").replace('|', "\\|")
    )
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
        assert!(html.contains(&html::esc(best.lines().next().unwrap())));
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
