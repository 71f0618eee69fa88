//! `report.md`.

use serde_json::Value;

use super::words::{REPAIRED_NOTE, ci, claim, f3, round_label, verdict};

/// The Markdown report of a result document.
pub(super) fn markdown(d: &Value) -> String {
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
