//! Outputs of a run: result.json (the contract), best_prompt.txt, history.jsonl, report.md,
//! report.html, and the terminal summary.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use metaprompt::engine::OptimizeResult;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// One round in `result.json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RoundDoc {
    /// 1-based round.
    round: u32,
    /// The teacher's hypothesis.
    hypothesis: String,
    /// The rewrite that was tested (empty when the round failed).
    candidate_prompt: String,
    /// The candidate's mean score on the round's minibatch.
    minibatch_score: Option<f64>,
    /// The current prompt's mean score on the same minibatch.
    parent_minibatch_score: Option<f64>,
    /// The candidate's val score, when it passed the minibatch gate.
    val_score: Option<f64>,
    /// Whether it became the current prompt.
    accepted: bool,
    /// Why.
    reason: String,
    /// The teacher's analysis.
    analysis: String,
    /// Whether dropped inputs were appended by repair.
    repaired: bool,
    /// Whether the round produced no usable rewrite.
    failed: bool,
}

/// Spending in `result.json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UsageDoc {
    /// Student calls made (cache hits excluded).
    student_calls: u64,
    /// Teacher calls made.
    teacher_calls: u64,
    /// Judge calls made.
    judge_calls: u64,
    /// Student calls answered by the cache.
    cache_hits: u64,
    /// Input tokens of paid calls.
    input_tokens: u64,
    /// Output tokens of paid calls.
    output_tokens: u64,
    /// Cost in USD at the configured prices.
    cost_usd: f64,
}

/// `result.json`. The fields up to `wall_seconds` are a contract.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ResultDoc {
    /// The best prompt (by val score).
    best_prompt: String,
    /// The best prompt's val score.
    final_score: f64,
    /// The best initial prompt's val score.
    initial_score: f64,
    /// The best prompt's test score; null without a test split.
    test_score: Option<f64>,
    /// Its 95% interval [lo, hi]; null without a test split.
    test_ci95: Option<[f64; 2]>,
    /// One entry per round.
    rounds: Vec<RoundDoc>,
    /// Spending.
    usage: UsageDoc,
    /// completed, target_reached, no_improvement, budget_calls|tokens|cost|duration, interrupted.
    stop_reason: String,
    /// Wall time in seconds, including time before a resume.
    wall_seconds: f64,
    /// The run's id.
    run_id: String,
    /// The best initial prompt.
    initial_prompt: String,
    /// Val score of every initial prompt.
    initial_scores: Vec<f64>,
    /// The best initial prompt's test score.
    initial_test_score: Option<f64>,
    /// Its 95% interval.
    initial_test_ci95: Option<[f64; 2]>,
    /// Rows per split.
    splits: SplitsDoc,
    /// The best prompt's lowest-scoring val examples.
    worst_examples: Vec<ExampleDoc>,
}

/// Rows per split.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SplitsDoc {
    train: usize,
    val: usize,
    test: usize,
}

/// A low-scoring example.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExampleDoc {
    row_id: String,
    output: String,
    expected: Option<String>,
    score: f64,
    reason: String,
}

/// The JSON schema of `result.json`.
pub(crate) fn result_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(ResultDoc)).unwrap_or_default()
}

/// The result document (see [`ResultDoc`]).
pub(crate) fn result_json(r: &OptimizeResult) -> Value {
    let pair = |c: Option<(f64, f64)>| c.map(|(a, b)| [a, b]);
    let doc = ResultDoc {
        best_prompt: r.best_prompt.source().to_string(),
        final_score: r.final_score,
        initial_score: r.initial_score,
        test_score: r.test_score,
        test_ci95: pair(r.test_ci95),
        rounds: r
            .history
            .iter()
            .map(|h| RoundDoc {
                round: h.round,
                hypothesis: h.hypothesis.clone(),
                candidate_prompt: h.candidate_prompt.clone(),
                minibatch_score: h.minibatch_score,
                parent_minibatch_score: h.parent_minibatch_score,
                val_score: h.val_score,
                accepted: h.accepted,
                reason: h.reason.clone(),
                analysis: h.analysis.clone(),
                repaired: h.repaired,
                failed: h.failed,
            })
            .collect(),
        usage: UsageDoc {
            student_calls: r.usage.student_calls,
            teacher_calls: r.usage.teacher_calls,
            judge_calls: r.usage.judge_calls,
            cache_hits: r.usage.cache_hits,
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            cost_usd: r.usage.cost_usd,
        },
        stop_reason: r.stop_reason.to_string(),
        wall_seconds: r.wall_seconds,
        run_id: r.run_id.clone(),
        initial_prompt: r.initial_prompt.clone(),
        initial_scores: r.initial_scores.clone(),
        initial_test_score: r.initial_test_score,
        initial_test_ci95: pair(r.initial_test_ci95),
        splits: SplitsDoc {
            train: r.splits.0,
            val: r.splits.1,
            test: r.splits.2,
        },
        worst_examples: r
            .worst_examples
            .iter()
            .map(|e| ExampleDoc {
                row_id: e.row_id.clone(),
                output: e.output.clone(),
                expected: e.expected.clone(),
                score: e.score,
                reason: e.reason.clone(),
            })
            .collect(),
    };
    serde_json::to_value(doc).unwrap_or_default()
}

fn f3(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

fn ci(v: &Value) -> String {
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
    let history: String = doc["rounds"]
        .as_array()
        .map(|a| a.iter().map(|r| format!("{r}\n")).collect())
        .unwrap_or_default();
    w("history.jsonl", history)?;
    w("report.md", markdown(doc))?;
    w("report.html", html(doc))?;
    Ok(())
}

fn markdown(d: &Value) -> String {
    let mut s = format!(
        "# metaprompt run `{}`\n\nStopped: {}. Wall time: {:.1} s.\n\n| | initial | best |\n|---|---|---|\n| val | {} | {} |\n| test | {} {} | {} {} |\n\n",
        d["run_id"].as_str().unwrap_or(""),
        d["stop_reason"].as_str().unwrap_or(""),
        d["wall_seconds"].as_f64().unwrap_or(0.0),
        f3(&d["initial_score"]),
        f3(&d["final_score"]),
        f3(&d["initial_test_score"]),
        ci(&d["initial_test_ci95"]),
        f3(&d["test_score"]),
        ci(&d["test_ci95"]),
    );
    s.push_str("## Best prompt\n\n```text\n");
    s.push_str(d["best_prompt"].as_str().unwrap_or(""));
    s.push_str("\n```\n\n## Ledger\n\n| round | hypothesis | minibatch (parent) | val | verdict |\n|---|---|---|---|---|\n");
    for r in d["rounds"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {} |\n",
            r["round"],
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

fn verdict(r: &Value) -> String {
    let v = if r["accepted"] == true {
        "accepted"
    } else if r["failed"] == true {
        "failed"
    } else {
        "rejected"
    };
    format!(
        "{v}: {}",
        r["reason"].as_str().unwrap_or("").replace('|', "\\|")
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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

fn html(d: &Value) -> String {
    let mut rows = String::new();
    let mut diffs = String::new();
    let mut parent = d["initial_prompt"].as_str().unwrap_or("").to_string();
    for r in d["rounds"].as_array().into_iter().flatten() {
        rows.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            if r["accepted"] == true { "acc" } else { "rej" },
            r["round"],
            esc(r["hypothesis"].as_str().unwrap_or("")),
            f3(&r["minibatch_score"]),
            f3(&r["parent_minibatch_score"]),
            f3(&r["val_score"]),
            esc(&verdict(r)),
        ));
        let cand = r["candidate_prompt"].as_str().unwrap_or("");
        if !cand.is_empty() {
            diffs.push_str(&format!(
                "<h3>Round {}</h3><pre class=\"diff\">{}</pre>",
                r["round"],
                diff_html(&parent, cand)
            ));
        }
        if r["accepted"] == true {
            parent = cand.to_string();
        }
    }
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
pre{{background:#f6f6f6;padding:.8rem;white-space:pre-wrap}}.diff .ins{{background:#dfd;display:block}}.diff .del{{background:#fdd;display:block}}.diff .eq{{display:block;color:#555}}
.big{{font-size:1.4rem}}
</style></head><body>
<h1>metaprompt run <code>{run}</code></h1>
<p class=\"big\">val {init} → <strong>{fin}</strong>; test {itest} {ici} → <strong>{test}</strong> {tci}</p>
<p>Stopped: {stop}. Wall time {wall:.1} s.</p>
<h2>Val score per round</h2>{chart}
<h2>Best prompt</h2><pre id=\"best\">{best}</pre>
<h2>Ledger</h2><table><tr><th>round</th><th>hypothesis</th><th>minibatch (parent)</th><th>val</th><th>verdict</th></tr>{rows}</table>
<h2>Prompt changes</h2>{diffs}
<h2>Worst remaining examples of the best prompt (val)</h2><table><tr><th>row</th><th>output</th><th>expected</th><th>score</th><th>reason</th></tr>{worst}</table>
<h2>Usage and cost</h2><p>Student calls {sc}, teacher calls {tc}, judge calls {jc}, cache hits {ch}; tokens {it} in / {ot} out; cost ${cost:.4}.</p>
</body></html>\n",
        run = esc(d["run_id"].as_str().unwrap_or("")),
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
        sc = u["student_calls"],
        tc = u["teacher_calls"],
        jc = u["judge_calls"],
        ch = u["cache_hits"],
        it = u["input_tokens"],
        ot = u["output_tokens"],
        cost = u["cost_usd"].as_f64().unwrap_or(0.0),
    )
}

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
    eprintln!("{b}              initial           best{x}");
    eprintln!(
        "val           {:<17} {b}{}{x}",
        f3(&d["initial_score"]),
        f3(&d["final_score"])
    );
    eprintln!(
        "test          {:<17} {b}{}{x} {}",
        format!(
            "{} {}",
            f3(&d["initial_test_score"]),
            ci(&d["initial_test_ci95"])
        ),
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
