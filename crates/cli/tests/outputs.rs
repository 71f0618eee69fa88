#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What the model answered: `eval --outputs` and `--show`, and a run's `test_outputs.jsonl`
//! and report.html's per-example section, through the real binary against the mock.

use metaprompt_mock::{MockConfig, MockServer};
use serde_json::Value;

mod common;
use common::*;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_outputs_writes_every_row_and_show_prints_the_lowest() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let prompt = dir.path().join("p.txt");
    std::fs::write(&prompt, format!("{PROMPT}\n")).unwrap();
    let outputs = dir.path().join("out.jsonl");
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking({
        let outputs = outputs.clone();
        move || {
            run(
                &[
                    "eval",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--prompt",
                    prompt.to_str().unwrap(),
                    "--split",
                    "all",
                    "--outputs",
                    outputs.to_str().unwrap(),
                    "--show",
                    "3",
                ],
                &cwd,
            )
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = lines(&outputs);
    assert_eq!(rows.len(), 48);
    for r in &rows {
        for k in [
            "row_id", "inputs", "expected", "output", "score", "reason", "error",
        ] {
            assert!(r.get(k).is_some(), "a line lacks {k}: {r}");
        }
        assert!(r["inputs"]["text"].is_string(), "{r}");
        assert!(
            r["inputs"].get("label").is_none(),
            "the label is not an input: {r}"
        );
    }
    // The lines average to the printed score.
    let mean = rows
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .sum::<f64>()
        / 48.0;
    let stdout = text(&o.stdout);
    let printed: f64 = stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((mean - printed).abs() < 5e-4, "{mean} vs {stdout}");
    assert!(mean < 1.0, "the first prompt gets some rows wrong: {mean}");
    // --show 3: the three lowest rows, by id, after the score line.
    let mut sorted: Vec<&Value> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        a["score"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["score"].as_f64().unwrap())
    });
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("the 3 lowest-scoring rows"))
        .skip(2)
        .collect();
    assert_eq!(table.len(), 3, "{stdout}");
    for (line, r) in table.iter().zip(&sorted) {
        assert!(
            line.starts_with(r["row_id"].as_str().unwrap()),
            "{line} vs {r}"
        );
        assert!(
            line.contains(&format!("{:.3}", r["score"].as_f64().unwrap())),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_outputs_to_an_unwritable_path_fails_before_any_call() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let prompt = dir.path().join("p.txt");
    std::fs::write(&prompt, PROMPT).unwrap();
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &[
                "eval",
                "--config",
                cfg.to_str().unwrap(),
                "--prompt",
                prompt.to_str().unwrap(),
                "--outputs",
                "no/such/dir/out.jsonl",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot write --outputs"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(server.stats().student, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_both_prompts_answers_on_test_and_the_report_shows_them() {
    let server = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.base_url(), "", PROMPT);
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &["optimize", "--config", cfg.to_str().unwrap(), "--out", "r"],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = dir.path().join("r");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let rows = lines(&out.join("test_outputs.jsonl"));
    let test = doc["splits"]["test"].as_u64().unwrap() as usize;
    assert!(test > 0);
    assert_eq!(rows.len(), test);
    assert_eq!(doc["test_outputs"].as_array().unwrap().len(), test);
    let mean = |which: &str| {
        rows.iter()
            .map(|r| r[which]["score"].as_f64().unwrap())
            .sum::<f64>()
            / test as f64
    };
    assert!((mean("best") - doc["test_score"].as_f64().unwrap()).abs() < 1e-9);
    assert!((mean("initial") - doc["initial_test_score"].as_f64().unwrap()).abs() < 1e-9);
    // Wins and losses row by row are the test delta's.
    let change =
        |r: &Value| r["best"]["score"].as_f64().unwrap() - r["initial"]["score"].as_f64().unwrap();
    let wins = rows.iter().filter(|r| change(r) > 0.0).count();
    let losses = rows.iter().filter(|r| change(r) < 0.0).count();
    assert_eq!(wins as u64, doc["test_delta"]["wins"].as_u64().unwrap());
    assert_eq!(losses as u64, doc["test_delta"]["losses"].as_u64().unwrap());
    assert!(wins > 0, "the mock's better prompt wins rows on test");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(&format!(
        "{wins} rows better, {losses} worse, {} the same (of {test})",
        test - wins - losses
    )));
    let table = &html[html.find("id=\"per-example\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr class=").count(), test);
    // Gains come first.
    assert!(
        table.find("class=\"better\"").unwrap()
            < table.find("class=\"same\"").unwrap_or(usize::MAX)
    );
    // Self-contained, and rendered where a headless browser is installed.
    html_renders(&out.join("report.html"));
    // `metaprompt report` rebuilds the same file from the store.
    std::fs::remove_file(out.join("test_outputs.jsonl")).unwrap();
    let cwd = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || run(&["report", "r"], &cwd))
        .await
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(lines(&out.join("test_outputs.jsonl")), rows);
}
