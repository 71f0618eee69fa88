//! The `metaprompt` command.
#![deny(missing_docs)]

mod args;
mod batch_cmd;
mod build;
mod commands;
mod config;
mod eval_cmd;
mod hosted;
mod model_cmd;
mod models;
mod progress;
mod reference;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reflective prompt optimization: a teacher model studies where your prompt fails, rewrites
/// it, and keeps only rewrites that win on held-out data.
///
/// Start with `metaprompt demo` (offline, on a small embedded model), then write a config
/// (`metaprompt schema` prints its JSON schema; examples/configs/ has commented ones) and run
/// `metaprompt optimize --config FILE`.
///
/// Exit codes: 0 success, 1 runtime failure, 2 bad usage, config or data, 130 interrupted
/// (a checkpoint is written; `--resume` continues).
#[derive(Debug, Parser)]
#[command(name = "metaprompt", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Optimize the prompts of a TOML config and write a run directory.
    Optimize {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The run directory (default: [output] dir, else runs/<timestamp>-<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the interrupted run in the run directory; repeats no paid call.
        #[arg(long)]
        resume: bool,
        /// Print the result JSON on stdout (and nothing else there).
        #[arg(long)]
        json: bool,
        /// Print the projected calls and cost bound, then exit without calling any model.
        #[arg(long)]
        dry_run: bool,
        /// Override [optimizer] seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Score one prompt on a split of the config's data.
    Eval {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// A file holding the prompt, or - for stdin.
        #[arg(long)]
        prompt: String,
        /// train, val, test or all.
        #[arg(long, default_value = "val")]
        split: String,
        /// Print {"split","score","ci95","n","errors","usage"} on stdout.
        #[arg(long)]
        json: bool,
        /// Score through the provider's Batch API (half price; minutes to hours): needs
        /// `batch = true` in [student].
        #[arg(long)]
        batch: bool,
        /// Write every row's answer to FILE as JSON lines: row_id, inputs, expected, output,
        /// score, reason, error.
        #[arg(long, value_name = "FILE")]
        outputs: Option<PathBuf>,
        /// Print the N lowest-scoring rows (output, expected, reason) after the score.
        #[arg(long, value_name = "N")]
        show: Option<usize>,
    },
    /// Batch files for an offline engine (vLLM's run-batch), and provider batches of runs.
    Batch {
        #[command(subcommand)]
        action: batch_cmd::BatchAction,
    },
    /// Run a whole optimization offline on the embedded model and a bundled labelled task.
    Demo {
        /// The run directory (default runs/<timestamp>-demo).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rounds (default: the bundled config's).
        #[arg(long)]
        rounds: Option<u32>,
        /// Use this GGUF file instead of the embedded model.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Manage the embedded model (SmolLM2-135M-Instruct, GGUF).
    Model {
        #[command(subcommand)]
        action: model_cmd::ModelAction,
    },
    /// Print the JSON schema of the config file (or of result.json, or the config reference).
    Schema {
        /// The schema of result.json instead.
        #[arg(long, conflicts_with = "reference")]
        result: bool,
        /// The config reference in Markdown (every key, its type and meaning) instead.
        #[arg(long)]
        reference: bool,
    },
    /// List or show runs recorded in a store.
    Runs {
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// The store (a run directory's metaprompt.db).
        #[arg(long, global = true, default_value = "metaprompt.db")]
        store: PathBuf,
    },
    /// Rebuild report.md and report.html of a run directory from its store.
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// Inspect or clear the response cache of a store.
    Cache {
        /// `stats` or `clear`.
        #[arg(value_parser = ["stats", "clear"])]
        action: String,
        /// The store.
        #[arg(long)]
        store: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RunsAction {
    /// Every run, newest first.
    List,
    /// One run with its ledger, as JSON.
    Show {
        /// The run id.
        id: String,
    },
}

/// How a command failed: bad input (exit 2) or a runtime failure (exit 1).
pub(crate) enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// The exit-code class of an engine error, decided in one place.
pub(crate) fn engine_failure(e: metaprompt::engine::EngineError) -> Failure {
    if e.is_usage() {
        Failure::Usage(anyhow::Error::new(e))
    } else {
        Failure::Runtime(anyhow::Error::new(e))
    }
}

/// Marks an error as the user's input being wrong.
pub(crate) trait UsageExt<T> {
    fn usage(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> UsageExt<T> for Result<T, E> {
    fn usage(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Usage(e.into()))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                // The split warnings are printed by the commands themselves.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,llama_cpp_2=off,metaprompt_data::split=error",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Optimize {
                config,
                out,
                resume,
                json,
                dry_run,
                seed,
            } => {
                commands::optimize(commands::OptimizeArgs {
                    config,
                    out,
                    resume,
                    json,
                    dry_run,
                    seed,
                })
                .await
            }
            Command::Eval {
                config,
                prompt,
                split,
                json,
                batch,
                outputs,
                show,
            } => {
                eval_cmd::eval(eval_cmd::EvalArgs {
                    config,
                    prompt,
                    split,
                    json,
                    batch,
                    outputs,
                    show,
                })
                .await
            }
            Command::Batch { action } => batch_cmd::run(action).await,
            Command::Demo { out, rounds, model } => commands::demo(out, rounds, model).await,
            Command::Model { action } => model_cmd::run(action).map(|()| 0).map_err(Failure::Usage),
            Command::Schema { result, reference } => {
                if reference {
                    print!("{}", reference::reference(&config::schema()));
                } else {
                    let schema = if result {
                        report::result_schema()
                    } else {
                        config::schema()
                    };
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&schema).unwrap_or_default()
                    );
                }
                Ok(0)
            }
            Command::Runs { action, store } => match action.unwrap_or(RunsAction::List) {
                RunsAction::List => commands::runs_list(store).await,
                RunsAction::Show { id } => commands::runs_show(store, id).await,
            },
            Command::Report { run_dir } => commands::report_cmd(run_dir).await,
            Command::Cache { action, store } => commands::cache(store, action == "clear").await,
        }
    });
    // Do not wait for model workers or blocked reads on the way out.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(e)) => {
            eprintln!("error: {}", render(&e));
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {}", render(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, each cause once: many errors already quote their
/// cause in their own message (`cannot read x: No such file`), and printing the chain again
/// would say it twice.
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn each_cause_is_printed_once() {
        // A loader error quotes its OS error and also carries it as its source.
        let missing = std::env::temp_dir().join("metaprompt-no-such-file.jsonl");
        let e = metaprompt::data::load(&missing, &metaprompt::data::LoadOptions::default())
            .map(|_| ())
            .map_err(anyhow::Error::new)
            .unwrap_err()
            .context("[dataset]");
        let text = render(&e);
        assert!(text.starts_with("[dataset]: cannot read "), "{text}");
        assert_eq!(text.matches("(os error 2)").count(), 1, "{text}");
        // Distinct causes are all kept, in order.
        let e = anyhow::anyhow!("connection refused")
            .context("teacher call failed")
            .context("round 2");
        assert_eq!(
            render(&e),
            "round 2: teacher call failed: connection refused"
        );
    }
}
