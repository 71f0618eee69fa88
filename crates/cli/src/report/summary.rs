//! The end-of-run summary on the terminal.

use std::io::IsTerminal;
use std::path::Path;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::words::{ci, claim, f3};

/// The end-of-run summary on stderr: scores with intervals, spending, and the prompt diff.
pub(crate) fn print_summary(d: &Value, dir: &Path) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (g, r, b, x) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let u = &d["usage"];
    eprintln!();
    // The "initial" column is as wide as its widest cell ("0.604 [0.463, 0.730]"), so the
    // best column starts at the same place on every line.
    let initial_val = f3(&d["initial_score"]);
    let initial_test = format!(
        "{} {}",
        f3(&d["initial_test_score"]),
        ci(&d["initial_test_ci95"])
    );
    let w = initial_test
        .len()
        .max(initial_val.len())
        .max("initial".len())
        + 2;
    eprintln!("{b}              {:<w$}best{x}", "initial");
    eprintln!(
        "val           {initial_val:<w$}{b}{}{x}",
        f3(&d["final_score"])
    );
    eprintln!(
        "test          {initial_test:<w$}{b}{}{x} {}",
        f3(&d["test_score"]),
        ci(&d["test_ci95"])
    );
    eprintln!(
        "calls         student {} · teacher {} · judge {} · cache hits {}",
        u["student_calls"], u["teacher_calls"], u["judge_calls"], u["cache_hits"]
    );
    eprintln!(
        "cost          ${:.4} ({} in / {} out tokens) · {:.1} s · stopped: {}",
        u["cost_usd"].as_f64().unwrap_or(0.0),
        u["input_tokens"],
        u["output_tokens"],
        d["wall_seconds"].as_f64().unwrap_or(0.0),
        d["stop_reason"].as_str().unwrap_or("")
    );
    eprintln!("\n{b}{}{x}", claim(d));
    let old = d["initial_prompt"].as_str().unwrap_or("");
    let new = d["best_prompt"].as_str().unwrap_or("");
    if old != new {
        eprintln!("\n{b}initial → best prompt{x}");
        for change in TextDiff::from_lines(old, new).iter_all_changes() {
            let line = change.value().trim_end_matches('\n');
            match change.tag() {
                ChangeTag::Delete => eprintln!("{r}- {line}{x}"),
                ChangeTag::Insert => eprintln!("{g}+ {line}{x}"),
                ChangeTag::Equal => eprintln!("  {line}"),
            }
        }
    } else {
        eprintln!("\nThe initial prompt stayed the best.");
    }
    eprintln!("\nreport: {}", dir.join("report.html").display());
}
