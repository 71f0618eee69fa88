//! `metaprompt eval`: one prompt scored on a split, with every row's answer on request.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use metaprompt::engine::{ExampleReport, MetaPromptOptimizer, PromptScore};
use metaprompt::store::SqliteStore;

use crate::args::{check_split, read_prompt};
use crate::{Failure, UsageExt, build, config, engine_failure};

/// Options of `eval`.
pub(crate) struct EvalArgs {
    pub(crate) config: PathBuf,
    pub(crate) prompt: String,
    pub(crate) split: String,
    pub(crate) json: bool,
    pub(crate) batch: bool,
    pub(crate) outputs: Option<PathBuf>,
    pub(crate) show: Option<usize>,
}

pub(crate) async fn eval(a: EvalArgs) -> Result<u8, Failure> {
    check_split(&a.split)?;
    let loaded = config::load(&a.config).usage()?;
    let prompt = read_prompt(&a.prompt)?;
    // Checked before any call: a run that cannot write its outputs is not paid for.
    if let Some(path) = &a.outputs {
        std::fs::File::create(path)
            .with_context(|| format!("cannot write --outputs {}", path.display()))
            .usage()?;
    }
    let mut built = build::request(&loaded, None)?;
    if a.batch {
        if built.checked.request().batch.is_empty() {
            return Err(Failure::Usage(anyhow!(
                "--batch needs a model with a Batch API: add `batch = true` to [student] (provider \"openai\")"
            )));
        }
        built
            .checked
            .set_batch_mode(metaprompt::engine::BatchMode::Always);
    }
    built.hosted.check().await?;
    let mut optimizer = MetaPromptOptimizer::builder().teacher(built.teacher.clone());
    // With a shared store, answers already paid for (by a run, or imported) are reused.
    if let Some(store) = &loaded.config.output.store {
        let s = SqliteStore::open_with_secrets(loaded.resolve(store), built.pool.secrets())
            .map_err(|e| Failure::Runtime(anyhow!(e)))?;
        optimizer = optimizer.cache(Arc::new(s));
    }
    let optimizer = optimizer.build().map_err(engine_failure)?;
    let score = optimizer
        .evaluate_prompt(&built.checked, &prompt, &a.split)
        .await
        .map_err(engine_failure)?;
    if let Some(path) = &a.outputs {
        write_outputs(path, &score.rows).map_err(Failure::Runtime)?;
    }
    if a.json {
        let doc = serde_json::json!({
            "split": score.split, "score": score.score, "ci95": score.ci95.map(|(a, b)| vec![a, b]),
            "n": score.n, "errors": score.errors, "usage": score.usage,
        });
        println!("{doc}");
    } else {
        let ci = score
            .ci95
            .map_or(String::new(), |(a, b)| format!(" (95% CI {a:.3}–{b:.3})"));
        println!(
            "{}: {:.3}{ci} on {} rows, {} errors",
            score.split, score.score, score.n, score.errors
        );
    }
    if let Some(n) = a.show {
        // On stderr with --json, so stdout stays one JSON document.
        let table = worst_table(&score, n);
        if a.json {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    if let Some(path) = &a.outputs {
        eprintln!(
            "{} rows' outputs written to {}",
            score.rows.len(),
            path.display()
        );
    }
    Ok(0)
}

/// One JSON object per row: `row_id`, `inputs`, `expected`, `output`, `score`, `reason`,
/// `error`.
fn write_outputs(path: &std::path::Path, rows: &[ExampleReport]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write --outputs {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for r in rows {
        let line = serde_json::json!({
            "row_id": r.row_id, "inputs": r.inputs, "expected": r.expected,
            "output": r.output, "score": r.score, "reason": r.reason, "error": r.error,
        });
        writeln!(w, "{line}")?;
    }
    w.flush()
        .with_context(|| format!("cannot write --outputs {}", path.display()))
}

/// Cuts `s` to `n` characters on one line.
fn cell(s: &str, n: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= n {
        flat
    } else {
        let mut t: String = flat.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The `n` lowest-scoring rows (ties in the split's order) as a small table.
fn worst_table(score: &PromptScore, n: usize) -> String {
    let mut rows: Vec<&ExampleReport> = score.rows.iter().collect();
    rows.sort_by(|a, b| a.score.total_cmp(&b.score));
    rows.truncate(n);
    let mut out = format!(
        "\nthe {} lowest-scoring rows:\n{:<12} {:>5}  {:<28} {:<16} {}\n",
        rows.len(),
        "row",
        "score",
        "output",
        "expected",
        "reason"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<12} {:>5.3}  {:<28} {:<16} {}\n",
            cell(&r.row_id, 12),
            r.score,
            cell(&r.output, 28),
            cell(r.expected.as_deref().unwrap_or("-"), 16),
            cell(&r.reason, 60),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_one_short_line() {
        assert_eq!(cell("a\nb  c", 10), "a b c");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
    }
}
