//! Repository automation: `cargo xtask <command>`.
//!
//! - `test` (alias `ci`): checks prerequisites, fetches the embedded model, then runs exactly
//!   what CI runs: formatting, clippy, every test, examples and docs.
//! - `demo [ARGS…]`: checks prerequisites, fetches the model, builds in release and runs
//!   `metaprompt demo ARGS…`.
//! - `fetch-model`: fetches the embedded SmolLM2 model into the cache.
//! - `llama-reference`: builds llama.cpp's own `llama-bench` and `llama-batched-bench` from the
//!   vendored sources and runs them on the embedded model, to compare with
//!   `cargo bench -p metaprompt-llama`.
//! - `doctor`: prints each prerequisite (found, with its path, or missing, with the install
//!   command for apt, dnf, pacman and brew), the model cache and the target directory; fails
//!   when something is missing.
//! - `tidy`: no file of `crates/*/src` over 400 lines; no two files of one crate that import
//!   each other, directly or through others.
//! - `python`: the Python package alone (fmt, clippy, each wheel (plain and `embedded`) in a
//!   fresh virtualenv, pytest against the mock); `test` runs it too.
//! - `prereqs [--install]`: the same check; with `--install`, as root with apt-get, installs
//!   what is missing (`.ci/run` calls this).

mod codegen;
mod doctor;
mod imports;
mod libclang;
mod prereqs;
mod probe;
mod python;
mod reference;
mod release;
mod tidy;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

Commands:
  test          run everything CI runs (prerequisites, model, fmt, clippy, tests, docs)
  ci            the same as `test`
  demo [ARGS]   run `metaprompt demo` on the embedded model (set-up included)
  fetch-model   fetch the embedded SmolLM2 model into the cache
  llama-reference  llama.cpp's own llama-bench and batched-bench on the embedded model
  doctor        show each prerequisite (found or missing, with install commands), the model, the target dir
  prereqs [--install]  check the prerequisites (and install them as root with apt-get)
  codegen [--check]  regenerate (or check) docs/config.schema.json, docs/config-reference.md, docs/result.schema.json
  release --check  check that every publishable crate is ready
  python        build both Python wheels (plain, embedded), install each into a fresh virtualenv and run pytest
  tidy          check that no file of crates/*/src has over 400 lines and no two files of a crate import each other
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match cmd.as_str() {
        "test" | "ci" => test(),
        "demo" => demo(&rest),
        "fetch-model" => fetch_model().map(|_| ()),
        "llama-reference" => reference::run(),
        "doctor" => doctor::run(),
        "tidy" => tidy::run(&root()?),
        "python" => python::test(),
        "prereqs" => {
            prereqs::ensure(rest.iter().any(|a| a == "--install"))?;
            eprint!("{}", prereqs::Report::probe().render());
            Ok(())
        }
        "codegen" if rest.iter().any(|a| a == "--check") => {
            let stale = codegen::stale(&root()?, &codegen::generate()?);
            if stale.is_empty() {
                Ok(())
            } else {
                bail!(
                    "stale generated files: {}; run `cargo xtask codegen`",
                    stale.join(", ")
                )
            }
        }
        "codegen" => codegen::write(&root()?),
        "release" if rest.iter().any(|a| a == "--check") => release::check(&root()?),
        "release" => bail!("use `cargo xtask release --check`"),
        "" | "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

/// The repository root.
pub(crate) fn root() -> Result<std::path::PathBuf> {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(std::path::Path::to_path_buf)
        .context("xtask is not inside the repository")
}

/// Runs a command, echoing it, and fails if it fails.
pub(crate) fn sh(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command.args(args);
    // A libclang that only Homebrew's llvm has (clang-sys does not look there).
    if let Some(dir) = libclang::build_hint() {
        command.env("LIBCLANG_PATH", dir);
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

/// The number of cores this machine gives a build.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR`, a config file's
/// `build.target-dir`, else `target/` in the repository), as `cargo metadata` reports it.
pub(crate) fn target_dir() -> Result<std::path::PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root()?)
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = out
        && out.status.success()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        && let Some(dir) = v["target_directory"].as_str()
    {
        return Ok(dir.into());
    }
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => d.into(),
        None => root()?.join("target"),
    })
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo` arguments that run the `metaprompt` command (debug build); its own arguments follow.
pub(crate) const METAPROMPT: [&str; 5] = ["run", "--quiet", "-p", "metaprompt-cli", "--"];

/// The embedded model's path, fetched into the cache first if needed. Done here rather than by
/// the `metaprompt` binary so that no build of llama.cpp is needed to fetch it.
pub(crate) fn fetch_model() -> Result<std::path::PathBuf> {
    let locator = metaprompt_gguf::ModelLocator::from_env(None);
    if let Some(p) = locator.find()? {
        return Ok(p);
    }
    eprintln!(
        "fetching the embedded model ({} {} with pip, about 90 MB) into {}",
        locator.spec.package,
        locator.spec.version,
        locator.cache_dir.display()
    );
    let path = locator.resolve()?;
    eprintln!("model: {}", path.display());
    Ok(path)
}

fn test() -> Result<()> {
    prereqs::ensure(true)?;
    doctor::announce_build("debug")?;
    let cargo = cargo();
    sh(&cargo, &["fmt", "--all", "--check"])?;
    sh(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    fetch_model()?;
    // Every test, example and binary; benches are compiled here and run by `cargo bench`
    // (`--all-targets` would run their `main` as a test).
    sh(
        &cargo,
        &[
            "test",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
        ],
    )?;
    sh(&cargo, &["test", "--workspace", "--benches", "--no-run"])?;
    // The command without the embedded provider builds without cmake or libclang and says
    // which feature a `provider = "llama"` config needs.
    let slim = [
        "-p",
        "metaprompt-cli",
        "--no-default-features",
        "--features",
        "openai",
    ];
    sh(
        &cargo,
        &[&["clippy"][..], &slim, &["--bins", "--", "-D", "warnings"]].concat(),
    )?;
    sh(
        &cargo,
        &[&["test"][..], &slim, &["--bin", "metaprompt"]].concat(),
    )?;
    sh(&cargo, &["test", "--workspace", "--doc"])?;
    // Docs must build without warnings (broken links, missing docs).
    // SAFETY of intent: RUSTDOCFLAGS only affects this child process.
    eprintln!("$ RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps");
    let status = Command::new(&cargo)
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-Dwarnings")
        .status()
        .context("cannot run cargo doc")?;
    if !status.success() {
        bail!("cargo doc failed with {status}");
    }
    // The Python package: its own workspace, built by maturin into a fresh virtualenv.
    python::test()?;
    eprintln!("xtask test: all checks passed");
    Ok(())
}

/// The command the demo builds and runs: in release (the demo runs the model), with the
/// embedded provider only. The demo calls no endpoint, and leaving the HTTP providers out
/// (their TLS and HTTP stacks) saves about a minute of CPU time in a first build; a later
/// `cargo build --release` with every feature reuses llama.cpp's build.
const DEMO_BUILD: [&str; 6] = [
    "--release",
    "-p",
    "metaprompt-cli",
    "--no-default-features",
    "--features",
    "embedded",
];

fn demo(args: &[String]) -> Result<()> {
    // cmake and libclang, when they are all that is missing, install while the build compiles
    // the crates that need neither (llama.cpp's build script starts about a minute in; apt-get
    // took 10 s on a fresh machine). The model is fetched meanwhile too: the fetch and apt-get
    // wait on the network, the build on the CPU.
    let installing = prereqs::start(true, &prereqs::FOR_LLAMA_BUILD)?;
    doctor::announce_build("release")?;
    let model = std::thread::spawn(fetch_model);
    let build = [&["build"][..], &DEMO_BUILD].concat();
    let mut built = sh(&cargo(), &build);
    if let Some(pending) = installing {
        pending.wait()?;
        if built.is_err() {
            // Most likely the build reached llama.cpp before apt-get had finished: it goes on
            // from there, nothing compiled is lost.
            eprintln!(
                "the build failed (the error above) while apt-get was installing cmake and libclang; they are installed now: building once more"
            );
            built = sh(&cargo(), &build);
        }
    }
    let fetched = model
        .join()
        .map_err(|_| anyhow::anyhow!("fetching the model panicked"))?;
    built?;
    fetched?;
    let mut all = [&["run", "-q"][..], &DEMO_BUILD, &["--", "demo"]].concat();
    all.extend(args.iter().map(String::as_str));
    sh(&cargo(), &all)
}
