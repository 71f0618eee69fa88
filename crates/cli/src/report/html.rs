//! `report.html`: self-contained (inline SVG, no external assets).

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::words::{REPAIRED_NOTE, ci, claim, esc, f3, round_label, verdict};

fn diff_html(old: &str, new: &str) -> String {
    let mut out = String::new();
    for change in TextDiff::from_lines(old, new).iter_all_changes() {
        let (class, sign) = match change.tag() {
            ChangeTag::Delete => ("del", "-"),
            ChangeTag::Insert => ("ins", "+"),
            ChangeTag::Equal => ("eq", " "),
        };
        out.push_str(&format!(
            "<span class=\"{class}\">{sign} {}</span>",
            esc(change.value())
        ));
    }
    out
}

fn chart(d: &Value) -> String {
    let rounds: Vec<&Value> = d["rounds"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let (w, h, pad) = (640.0, 240.0, 40.0);
    let n = rounds.len().max(1) as f64;
    let x = |i: f64| pad + i * (w - 2.0 * pad) / n;
    let y = |v: f64| h - pad - v.clamp(0.0, 1.0) * (h - 2.0 * pad);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"val score per round\">"
    );
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>"
    ));
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y0 = y(t);
        s.push_str(&format!("<line x1=\"{pad}\" x2=\"{}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#ddd\"/><text x=\"4\" y=\"{}\" font-size=\"10\">{t:.2}</text>", w - pad, y0 + 3.0));
    }
    let init = d["initial_score"].as_f64().unwrap_or(0.0);
    s.push_str(&format!("<line x1=\"{pad}\" x2=\"{}\" y1=\"{yi}\" y2=\"{yi}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">initial {init:.3}</text>", w - pad, w - pad - 70.0, y(init) - 4.0, yi = y(init)));
    let mut best = init;
    let mut path = format!("M {} {}", x(0.0), y(init));
    for (i, r) in rounds.iter().enumerate() {
        if r["accepted"] == true {
            best = best.max(r["val_score"].as_f64().unwrap_or(best));
        }
        path.push_str(&format!(" L {} {}", x(i as f64 + 1.0), y(best)));
    }
    s.push_str(&format!(
        "<path d=\"{path}\" fill=\"none\" stroke=\"#2a6\" stroke-width=\"2\"/>"
    ));
    for (i, r) in rounds.iter().enumerate() {
        let cx = x(i as f64 + 1.0);
        let v = r["val_score"]
            .as_f64()
            .or_else(|| r["minibatch_score"].as_f64())
            .unwrap_or(0.0);
        if r["accepted"] == true {
            s.push_str(&format!("<circle cx=\"{cx}\" cy=\"{}\" r=\"5\" fill=\"#2a6\"><title>round {} accepted</title></circle>", y(v), r["round"]));
        } else {
            let cy = y(v);
            s.push_str(&format!("<path d=\"M {} {} L {} {} M {} {} L {} {}\" stroke=\"#c33\" stroke-width=\"2\"><title>round {} rejected</title></path>", cx - 4.0, cy - 4.0, cx + 4.0, cy + 4.0, cx - 4.0, cy + 4.0, cx + 4.0, cy - 4.0, r["round"]));
        }
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            cx - 3.0,
            h - pad + 14.0,
            r["round"]
        ));
    }
    s.push_str("</svg>");
    s
}

/// The per-message diff between the initial and the best prompt.
fn prompt_diff(d: &Value) -> String {
    let old = metaprompt::engine::doc::prompt_messages(d, "initial");
    let new = metaprompt::engine::doc::prompt_messages(d, "best");
    let mut out = String::new();
    for i in 0..old.len().max(new.len()) {
        let (role, before) = old
            .get(i)
            .map_or(("", ""), |(r, c)| (r.as_str(), c.as_str()));
        let (role_new, after) = new
            .get(i)
            .map_or(("", ""), |(r, c)| (r.as_str(), c.as_str()));
        let role = if role.is_empty() { role_new } else { role };
        let title = if before == after {
            format!("{} (unchanged)", esc(role))
        } else {
            esc(role)
        };
        out.push_str(&format!(
            "<h3>{title}</h3><pre class=\"diff\">{}</pre>",
            diff_html(before, after)
        ));
    }
    out
}

/// The pool: every candidate, with the path from an initial prompt to the best highlighted.
fn lineage(d: &Value) -> String {
    let Some(nodes) = d["lineage"].as_array().filter(|a| !a.is_empty()) else {
        return "<p>No lineage recorded.</p>".into();
    };
    let mut rows = String::new();
    for n in nodes {
        let class = if n["best"] == true {
            "best"
        } else if n["on_best_path"] == true {
            "path"
        } else {
            "other"
        };
        let parents: Vec<String> = n["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("#{p}"))
            .collect();
        let demos: Vec<&str> = n["demo_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        rows.push_str(&format!(
            "<tr class=\"{class}\"><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n["id"],
            if parents.is_empty() { "—".into() } else { parents.join(", ") },
            esc(&format!(
                "{}{}",
                n["mutation"].as_str().unwrap_or(""),
                if n["repaired"] == true { " (repaired)" } else { "" }
            )),
            n["round"],
            f3(&n["val_score"]),
            esc(&demos.join(", ")),
        ));
    }
    format!(
        "<table class=\"lineage\"><tr><th>candidate</th><th>parents</th><th>made by</th><th>round</th><th>val</th><th>demonstrations</th></tr>{rows}</table><p>Highlighted: the path from an initial prompt to the best (bold).</p>"
    )
}

pub(super) fn html(d: &Value) -> String {
    let mut rows = String::new();
    for r in d["rounds"].as_array().into_iter().flatten() {
        rows.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            if r["accepted"] == true { "acc" } else { "rej" },
            esc(&round_label(r)),
            esc(r["mutation"].as_str().unwrap_or("rewrite")),
            esc(r["hypothesis"].as_str().unwrap_or("")),
            f3(&r["minibatch_score"]),
            f3(&r["parent_minibatch_score"]),
            f3(&r["val_score"]),
            esc(&verdict(r)),
        ));
    }
    let delta = match d["test_delta"].as_object() {
        Some(t) => format!(
            "<p>Best − initial on test, row by row: <strong>{:+.3}</strong> [{:+.3}, {:+.3}], {} better, {} worse, {} tied.</p>",
            t["difference"].as_f64().unwrap_or(0.0),
            t["ci95"][0].as_f64().unwrap_or(0.0),
            t["ci95"][1].as_f64().unwrap_or(0.0),
            t["wins"],
            t["losses"],
            t["ties"],
        ),
        None => String::new(),
    };
    let gap = d["val_test_gap"].as_f64().map_or(String::new(), |g| {
        format!("<p>Val − test gap of the best prompt: {g:+.3}.</p>")
    });
    let mut worst = String::new();
    for e in d["worst_examples"].as_array().into_iter().flatten() {
        worst.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(e["row_id"].as_str().unwrap_or("")),
            esc(e["output"].as_str().unwrap_or("")),
            esc(e["expected"].as_str().unwrap_or("")),
            f3(&e["score"]),
            esc(e["reason"].as_str().unwrap_or("")),
        ));
    }
    let u = &d["usage"];
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>metaprompt run {run}</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}}
tr.acc td:first-child{{border-left:4px solid #2a6}}tr.rej td:first-child{{border-left:4px solid #c33}}
.lineage tr.best td{{background:#cfc;font-weight:bold}}.lineage tr.path td{{background:#efe;font-weight:bold}}.lineage tr.other td{{color:#666}}
pre{{background:#f6f6f6;padding:.8rem;white-space:pre-wrap}}.diff .ins{{background:#dfd;display:block}}.diff .del{{background:#fdd;display:block}}.diff .eq{{display:block;color:#555}}
.examples tr.better td:last-child{{background:#dfd}}.examples tr.worse td:last-child{{background:#fdd}}.examples small{{color:#555}}
.big{{font-size:1.4rem}}.claim{{font-size:1.2rem;padding:.6rem;border-left:4px solid #888;background:#fafafa}}
</style></head><body>
<h1>metaprompt run <code>{run}</code></h1>
<p class=\"claim\">{claim}</p>
<p class=\"big\">val {init} → <strong>{fin}</strong>; test {itest} {ici} → <strong>{test}</strong> {tci}</p>
{delta}{gap}
<p>Stopped: {stop}. Wall time {wall:.1} s.</p>
<h2>Val score per round</h2>{chart}
<h2>Best prompt</h2>{repaired}<pre id=\"best\">{best}</pre>
<h2>Initial → best, message by message</h2>{diffs}
<h2>Lineage of the pool</h2>{lineage}
<h2>Ledger</h2><table><tr><th>round</th><th>kind</th><th>hypothesis</th><th>minibatch (parent)</th><th>val</th><th>verdict</th></tr>{rows}</table>
<h2>Initial → best on test, row by row</h2>{examples}
<h2>Worst remaining examples of the best prompt (val)</h2><table><tr><th>row</th><th>output</th><th>expected</th><th>score</th><th>reason</th></tr>{worst}</table>
<h2>Usage and cost</h2><p>Student calls {sc}, teacher calls {tc}, judge calls {jc}, cache hits {ch}; tokens {it} in / {ot} out; cost ${cost:.4}.</p>
</body></html>\n",
        run = esc(d["run_id"].as_str().unwrap_or("")),
        claim = esc(&claim(d)),
        init = f3(&d["initial_score"]),
        fin = f3(&d["final_score"]),
        itest = f3(&d["initial_test_score"]),
        ici = ci(&d["initial_test_ci95"]),
        test = f3(&d["test_score"]),
        tci = ci(&d["test_ci95"]),
        stop = esc(d["stop_reason"].as_str().unwrap_or("")),
        wall = d["wall_seconds"].as_f64().unwrap_or(0.0),
        chart = chart(d),
        best = esc(d["best_prompt"].as_str().unwrap_or("")),
        repaired = if d["best_repaired"] == true {
            format!("<p class=\"claim\">{}</p>", esc(REPAIRED_NOTE))
        } else {
            String::new()
        },
        diffs = prompt_diff(d),
        lineage = lineage(d),
        examples = super::examples::html(d),
        sc = u["student_calls"],
        tc = u["teacher_calls"],
        jc = u["judge_calls"],
        ch = u["cache_hits"],
        it = u["input_tokens"],
        ot = u["output_tokens"],
        cost = u["cost_usd"].as_f64().unwrap_or(0.0),
    )
}
