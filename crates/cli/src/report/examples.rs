//! The per-example view of a run: `test_outputs.jsonl` and report.html's "initial → best on
//! test, row by row" section, both from the result document's `test_outputs`.

use serde_json::Value;

use super::words::{esc, f3};

/// Rows shown in report.html's per-example table (the rest are in `test_outputs.jsonl`).
const SHOWN: usize = 200;

/// `test_outputs.jsonl`: one line per test row with both prompts' answers.
pub(super) fn jsonl(d: &Value) -> String {
    d["test_outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{r}\n"))
        .collect()
}

fn change(r: &Value) -> f64 {
    r["best"]["score"].as_f64().unwrap_or(0.0) - r["initial"]["score"].as_f64().unwrap_or(0.0)
}

fn inputs(r: &Value) -> String {
    r["inputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            format!("<b>{}</b>: {}", esc(k), esc(&v))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn answer(a: &Value) -> String {
    let flag = if a["error"] == true { " (error)" } else { "" };
    format!(
        "{}<br><small>{}{flag} — {}</small>",
        esc(a["output"].as_str().unwrap_or("")),
        f3(&a["score"]),
        esc(a["reason"].as_str().unwrap_or("")),
    )
}

/// The section: the rows whose score changed first (gains, then losses, largest first), then
/// the unchanged ones, at most [`SHOWN`] in all.
pub(super) fn html(d: &Value) -> String {
    let rows: Vec<&Value> = d["test_outputs"].as_array().into_iter().flatten().collect();
    if rows.is_empty() {
        return "<p>Not scored on test.</p>".into();
    }
    let better = rows.iter().filter(|r| change(r) > 0.0).count();
    let worse = rows.iter().filter(|r| change(r) < 0.0).count();
    let mut order: Vec<&&Value> = rows.iter().collect();
    // Gains first, then losses, each largest first; unchanged rows keep the split's order.
    order.sort_by(|a, b| {
        let key = |r: &Value| {
            let c = change(r);
            (
                if c > 0.0 {
                    0
                } else if c < 0.0 {
                    1
                } else {
                    2
                },
                -c.abs(),
            )
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let mut table = String::new();
    for r in order.iter().take(SHOWN) {
        let c = change(r);
        let class = if c > 0.0 {
            "better"
        } else if c < 0.0 {
            "worse"
        } else {
            "same"
        };
        table.push_str(&format!(
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.3}</td></tr>",
            esc(r["row_id"].as_str().unwrap_or("")),
            inputs(r),
            esc(r["expected"].as_str().unwrap_or("")),
            answer(&r["initial"]),
            answer(&r["best"]),
            c,
        ));
    }
    let more = if rows.len() > SHOWN {
        format!(
            "<p>The first {SHOWN} of {} rows; every row is in <code>test_outputs.jsonl</code>.</p>",
            rows.len()
        )
    } else {
        String::new()
    };
    format!(
        "<p id=\"per-example-summary\">{better} rows better, {worse} worse, {} the same (of {}).</p><table class=\"examples\" id=\"per-example\"><tr><th>row</th><th>inputs</th><th>expected</th><th>initial prompt</th><th>best prompt</th><th>change</th></tr>{table}</table>{more}",
        rows.len() - better - worse,
        rows.len(),
    )
}
