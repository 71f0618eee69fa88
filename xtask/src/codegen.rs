//! Generated documentation: the config and result JSON schemas and the config reference.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs `metaprompt schema [FLAG]` and returns what it prints.
fn schema(flag: Option<&str>) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(crate::METAPROMPT).arg("schema");
    if let Some(f) = flag {
        cmd.arg(f);
    }
    let out = cmd.output().context("cannot run `metaprompt schema`")?;
    if !out.status.success() {
        bail!(
            "`metaprompt schema` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The generated files and their contents.
/// The same three files are checked by the command's own tests (`crates/cli/tests/docs.rs`)
/// against the binary those tests build, so CI never runs a second build for this.
pub(crate) fn generate() -> Result<Vec<(PathBuf, String)>> {
    Ok(vec![
        (PathBuf::from("docs/config.schema.json"), schema(None)?),
        (
            PathBuf::from("docs/config-reference.md"),
            schema(Some("--reference"))?,
        ),
        (
            PathBuf::from("docs/result.schema.json"),
            schema(Some("--result"))?,
        ),
    ])
}

/// Writes the generated files under `root`.
pub(crate) fn write(root: &Path) -> Result<()> {
    for (path, text) in generate()? {
        std::fs::write(root.join(&path), text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The generated files under `root` that differ from what codegen produces now.
pub(crate) fn stale(root: &Path, generated: &[(PathBuf, String)]) -> Vec<String> {
    generated
        .iter()
        .filter(|(p, text)| {
            std::fs::read_to_string(root.join(p)).ok().as_deref() != Some(text.as_str())
        })
        .map(|(p, _)| p.display().to_string())
        .collect()
}
