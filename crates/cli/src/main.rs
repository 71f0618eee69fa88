//! The `metaprompt` command.
#![deny(missing_docs)]

mod model_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reflective prompt optimization: a teacher model studies where your prompt fails, rewrites
/// it, and keeps only rewrites that win on held-out data.
#[derive(Debug, Parser)]
#[command(name = "metaprompt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the embedded model (SmolLM2-135M-Instruct, GGUF).
    Model {
        #[command(subcommand)]
        action: model_cmd::ModelAction,
    },
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad usage/config/data, 130 interrupted.
pub(crate) mod exit {
    /// A runtime failure.
    pub(crate) const FAILURE: u8 = 1;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Model { action } => model_cmd::run(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
