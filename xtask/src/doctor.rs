//! `cargo xtask doctor`: what a build of this repository needs and what is already there.

use std::path::Path;

use anyhow::{Result, bail};

use crate::prereqs::Report;
use crate::{cores, target_dir};

/// Core-minutes of a first release build with llama.cpp (measured: the demo's build, 3 min
/// 50 s of wall time on 2 cores from an empty target dir), so the estimate printed scales with
/// the machine.
const LLAMA_CORE_MINUTES: f64 = 7.7;

/// Whether llama.cpp has been built into `target/<profile>` already.
pub(crate) fn llama_built(target: &Path, profile: &str) -> bool {
    let build = target.join(profile).join("build");
    let Ok(entries) = std::fs::read_dir(&build) else {
        return false;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("llama-cpp-sys-2-")
        })
        .any(|e| has_libllama(&e.path().join("out"), 3))
}

fn has_libllama(dir: &Path, depth: u32) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            depth > 0 && has_libllama(&p, depth - 1)
        } else {
            name == "libllama.a" || name.starts_with("libllama.so")
        }
    })
}

fn estimate() -> String {
    let n = cores();
    let minutes = (LLAMA_CORE_MINUTES / n as f64).max(1.0).round();
    format!("about {minutes:.0} minutes on {n} cores")
}

/// Before a build: says that llama.cpp is compiled once and roughly how long it takes, when it
/// is not built in `profile` yet. Cargo's own progress bar shows the rest.
pub(crate) fn announce_build(profile: &str) -> Result<()> {
    let target = target_dir()?;
    if !llama_built(&target, profile) {
        eprintln!(
            "llama.cpp is compiled once into {} ({}); later builds reuse it. Cargo's progress follows.",
            target.join(profile).display(),
            estimate()
        );
    }
    Ok(())
}

fn model_state() -> String {
    let locator = metaprompt_gguf::ModelLocator::from_env(None);
    match locator.find() {
        Ok(Some(p)) => {
            let mb = std::fs::metadata(&p).map_or(0.0, |m| m.len() as f64 / 1e6);
            format!("  ok       {:<16} {} ({mb:.0} MB)", "model", p.display())
        }
        Ok(None) => format!(
            "  -        {:<16} not fetched yet; `cargo xtask demo` or `cargo xtask fetch-model` fetches it into {}",
            "model",
            locator.cached_path().display()
        ),
        Err(e) => format!("  MISSING  {:<16} {e}", "model"),
    }
}

fn target_state(target: &Path) -> String {
    let built: Vec<&str> = ["debug", "release"]
        .into_iter()
        .filter(|p| llama_built(target, p))
        .collect();
    let llama = if built.is_empty() {
        format!("llama.cpp not built yet ({} the first time)", estimate())
    } else {
        format!("llama.cpp built ({})", built.join(", "))
    };
    let from = if std::env::var_os("CARGO_TARGET_DIR").is_some() {
        " (CARGO_TARGET_DIR)"
    } else {
        ""
    };
    format!(
        "  target   {:<16} {}{from}: {llama}",
        "directory",
        target.display()
    )
}

pub(crate) fn run() -> Result<()> {
    let report = Report::probe();
    println!("prerequisites (to build llama.cpp and fetch the embedded model):");
    print!("{}", report.render());
    println!();
    println!("{}", model_state());
    match target_dir() {
        Ok(t) => println!("{}", target_state(&t)),
        Err(e) => println!("  target   unknown: {e}"),
    }
    if !report.complete() {
        if crate::prereqs::can_install() {
            bail!(
                "something is missing (see above); `cargo xtask demo` and `cargo xtask test` install it with apt-get before they need it"
            );
        }
        bail!(
            "something is missing (see above); `cargo xtask demo` and `cargo xtask test` would stop before building"
        );
    }
    println!("\neverything needed is there.");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_build_is_seen_only_with_its_library() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir
            .path()
            .join("release/build/llama-cpp-sys-2-0123abcd/out");
        std::fs::create_dir_all(out.join("lib")).unwrap();
        assert!(!llama_built(dir.path(), "release"));
        std::fs::write(out.join("lib/libllama.a"), b"!<arch>").unwrap();
        assert!(llama_built(dir.path(), "release"));
        assert!(!llama_built(dir.path(), "debug"));
    }
}
