//! `cargo xtask release --check`: what must hold before publishing.

use std::path::Path;

use anyhow::{Context, Result, bail};

const PUBLISHED: [&str; 9] = [
    "core",
    "data",
    "evals",
    "openai",
    "llama",
    "store",
    "engine",
    "metaprompt",
    "cli",
];

/// Every problem found, one line each.
pub(crate) fn problems(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let ws: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml"))?)?;
    let version = ws["workspace"]["package"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).unwrap_or_default();
    if !changelog
        .lines()
        .any(|l| l.starts_with("## ") && l.contains(&version))
    {
        out.push(format!("CHANGELOG.md has no `## {version}` section"));
    }
    for (name, dep) in ws["workspace"]["dependencies"]
        .as_table()
        .into_iter()
        .flatten()
    {
        if dep.get("path").is_some() && dep.get("version").is_none() {
            out.push(format!(
                "workspace dependency `{name}` has a path but no version"
            ));
        }
    }
    for c in PUBLISHED {
        let dir = root.join("crates").join(c);
        let manifest: toml::Table = toml::from_str(
            &std::fs::read_to_string(dir.join("Cargo.toml"))
                .with_context(|| format!("crates/{c}"))?,
        )?;
        let pkg = &manifest["package"];
        let name = pkg["name"].as_str().unwrap_or(c);
        if pkg
            .get("version")
            .and_then(|v| v.get("workspace"))
            .is_none()
        {
            out.push(format!("{name}: version is not the workspace version"));
        }
        for field in ["description", "license", "repository", "readme", "keywords"] {
            if pkg.get(field).is_none() {
                out.push(format!("{name}: no `{field}`"));
            }
        }
        if !dir.join("README.md").is_file() {
            out.push(format!("{name}: no README.md"));
        }
        // Nothing over 1 MB ships in a package: the packaged files are those under the crate.
        for entry in walk(&dir) {
            if entry.metadata().map(|m| m.len()).unwrap_or(0) > 1_000_000 {
                out.push(format!("{name}: {} is over 1 MB", entry.display()));
            }
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub(crate) fn check(root: &Path) -> Result<()> {
    let p = problems(root)?;
    if p.is_empty() {
        eprintln!("release check: all publishable crates are ready");
        return Ok(());
    }
    for line in &p {
        eprintln!("- {line}");
    }
    bail!("{} release problem(s)", p.len())
}
