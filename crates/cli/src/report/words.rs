//! The words and numbers every report writes the same way: scores, intervals, the run's
//! claim, round labels and verdicts, and HTML escaping.

use serde_json::Value;

/// A score with three decimals (`-` when absent).
pub(super) fn f3(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

/// An interval `[lo, hi]` (`-` when absent).
pub(super) fn ci(v: &Value) -> String {
    match v.as_array() {
        Some(a) if a.len() == 2 => format!("[{}, {}]", f3(&a[0]), f3(&a[1])),
        _ => "-".into(),
    }
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

/// Text made safe inside HTML.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
