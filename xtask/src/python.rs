//! The Python package (`crates/python`, its own workspace, built by maturin): formatting and
//! clippy, then the wheel built, installed into a fresh virtualenv and tested with pytest
//! against the project's mock server.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, root, target_dir};

/// Runs `program args` with `envs`, echoing it; fails if it fails.
fn run(program: &Path, args: &[&str], envs: &[(&str, &Path)], cwd: &Path) -> Result<()> {
    eprintln!("$ {} {}", program.display(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v.as_os_str())))
        .current_dir(cwd)
        .status()
        .with_context(|| format!("cannot run `{}`", program.display()))?;
    if !status.success() {
        bail!(
            "`{} {}` failed with {status}",
            program.display(),
            args.join(" ")
        );
    }
    Ok(())
}

/// Checks, builds, installs and tests the wheel.
pub(crate) fn test() -> Result<()> {
    let root = root()?;
    let krate = root.join("crates/python");
    let target = target_dir()?;
    let cargo = Path::new(&cargo()).to_path_buf();
    let manifest = krate.join("Cargo.toml");
    let manifest = manifest
        .to_str()
        .context("the repository path is not UTF-8")?;
    let shared = [("CARGO_TARGET_DIR", target.as_path())];
    run(
        &cargo,
        &["fmt", "--manifest-path", manifest, "--check"],
        &shared,
        &root,
    )?;
    run(
        &cargo,
        &[
            "clippy",
            "--manifest-path",
            manifest,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &shared,
        &root,
    )?;
    run(&cargo, &["build", "-p", "metaprompt-mock"], &shared, &root)?;

    // maturin and pytest in a tools virtualenv; the wheel in a fresh one that has nothing else.
    let tools = target.join("python-tools");
    let python3 = Path::new("python3");
    if !tools.join("bin/maturin").exists() {
        let t = tools.to_str().context("target dir is not UTF-8")?;
        run(python3, &["-m", "venv", "--clear", t], &[], &root)?;
        run(
            &tools.join("bin/pip"),
            &["install", "-q", "maturin>=1.7,<2"],
            &[],
            &root,
        )?;
    }
    let wheels = target.join("wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    let w = wheels.to_str().context("target dir is not UTF-8")?;
    run(
        &tools.join("bin/maturin"),
        &["build", "-q", "-o", w],
        &shared,
        &krate,
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("maturin built no wheel")?;
    let fresh = target.join("python-wheel-venv");
    let f = fresh.to_str().context("target dir is not UTF-8")?;
    run(python3, &["-m", "venv", "--clear", f], &[], &root)?;
    let wheel = wheel.to_str().context("wheel path is not UTF-8")?;
    run(
        &fresh.join("bin/pip"),
        &["install", "-q", wheel],
        &[],
        &root,
    )?;
    let py = fresh.join("bin/python");
    run(
        &py,
        &[
            "-c",
            "import metaprompt; print('metaprompt', metaprompt.__version__)",
        ],
        &[],
        &root,
    )?;
    run(
        &fresh.join("bin/pip"),
        &["install", "-q", "pytest>=7"],
        &[],
        &root,
    )?;
    let mock = target.join("debug/metaprompt-mock");
    run(
        &py,
        &["-m", "pytest", "-q", "crates/python/tests"],
        &[("METAPROMPT_MOCK", mock.as_path())],
        &root,
    )
}
