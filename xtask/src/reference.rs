//! `cargo xtask llama-reference`: llama.cpp's own benchmarks on the embedded model, built from
//! the very llama.cpp sources `metaprompt-llama` links, to compare its figures with.
//!
//! The `llama-cpp-sys-2` crate vendors llama.cpp's library sources but not its tools, so the
//! two tool front-ends (`tools/llama-bench` and `tools/batched-bench`, a few files each) are
//! taken from the llama-cpp-python source distribution, fetched with pip like the model, and
//! compiled against the vendored library with the same ggml options (`GGML_*` variables in the
//! environment are passed on, as `llama-cpp-sys-2` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, cores, root, sh, target_dir};

/// The source distribution the tool front-ends come from.
const TOOLS_PACKAGE: &str = "llama-cpp-python==0.3.36";
const TOOLS: [&str; 2] = ["llama-bench", "batched-bench"];

/// Where `llama-cpp-sys-2`'s vendored llama.cpp is, from `cargo metadata`.
fn vendored_llama_cpp() -> Result<PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1"])
        .current_dir(root()?)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "llama-cpp-sys-2")
        .and_then(|p| p["manifest_path"].as_str())
        .context("llama-cpp-sys-2 is not in the dependency graph")?;
    let dir = Path::new(manifest)
        .parent()
        .context("odd manifest path")?
        .join("llama.cpp");
    if !dir.join("CMakeLists.txt").is_file() {
        bail!("{} holds no llama.cpp sources", dir.display());
    }
    Ok(dir)
}

/// The machine's cores, as a command-line argument.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Builds the two tools (once; later calls reuse the build) and returns the bin directory.
fn build(work: &Path) -> Result<PathBuf> {
    let bin = work.join("build/bin");
    if ["llama-bench", "llama-batched-bench"]
        .iter()
        .all(|b| bin.join(b).is_file())
    {
        return Ok(bin);
    }
    let src = work.join("src");
    if !src.join("tools/llama-bench/llama-bench.cpp").is_file() {
        let vendored = vendored_llama_cpp()?;
        eprintln!("copying llama.cpp from {}", vendored.display());
        let _ = std::fs::remove_dir_all(&src);
        copy_tree(&vendored, &src)?;
        let sdist = work.join("sdist");
        std::fs::create_dir_all(&sdist)?;
        let sdist_str = sdist.to_string_lossy().into_owned();
        sh(
            "python3",
            &[
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                TOOLS_PACKAGE,
                "-d",
                &sdist_str,
            ],
        )
        .context("cannot fetch the llama.cpp tool sources with pip")?;
        let archive = std::fs::read_dir(&sdist)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .context("pip fetched no source archive")?;
        let archive_str = archive.to_string_lossy().into_owned();
        let patterns: Vec<String> = TOOLS
            .iter()
            .map(|t| format!("*/vendor/llama.cpp/tools/{t}/*"))
            .collect();
        let mut args = vec!["xzf", &archive_str, "-C", &sdist_str, "--wildcards"];
        args.extend(patterns.iter().map(String::as_str));
        sh("tar", &args)?;
        let unpacked = std::fs::read_dir(&sdist)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.is_dir())
            .context("the source archive unpacked nothing")?;
        for tool in TOOLS {
            copy_tree(
                &unpacked.join("vendor/llama.cpp/tools").join(tool),
                &src.join("tools").join(tool),
            )?;
        }
        // Only these two tools: the rest of tools/ is not vendored.
        std::fs::write(
            src.join("tools/CMakeLists.txt"),
            "find_package(Threads REQUIRED)\nllama_add_compile_flags()\nadd_subdirectory(batched-bench)\nadd_subdirectory(llama-bench)\n",
        )?;
    }
    let build = work.join("build");
    let (src_s, build_s) = (
        src.to_string_lossy().into_owned(),
        build.to_string_lossy().into_owned(),
    );
    let mut configure: Vec<String> = [
        "-S",
        &src_s,
        "-B",
        &build_s,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DGGML_NATIVE=OFF",
        "-DGGML_OPENMP=ON",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_APP=OFF",
        "-DLLAMA_BUILD_MTMD=OFF",
    ]
    .map(String::from)
    .to_vec();
    // The same ggml options as the crate's build.
    configure.extend(
        std::env::vars()
            .filter(|(k, _)| k.starts_with("GGML_") && k != "GGML_NATIVE")
            .map(|(k, v)| format!("-D{k}={v}")),
    );
    let configure: Vec<&str> = configure.iter().map(String::as_str).collect();
    sh("cmake", &configure)?;
    let jobs = cores().to_string();
    sh(
        "cmake",
        &[
            "--build",
            &build_s,
            "-j",
            &jobs,
            "--target",
            "llama-bench",
            "llama-batched-bench",
        ],
    )?;
    Ok(bin)
}

pub(crate) fn run() -> Result<()> {
    crate::prereqs::ensure(true)?;
    let model = crate::fetch_model()?.to_string_lossy().into_owned();
    let work = target_dir()?.join("llama-reference");
    let bin = build(&work)?;
    let cores = cores().to_string();
    let bench = bin.join("llama-bench").to_string_lossy().into_owned();
    let batched = bin
        .join("llama-batched-bench")
        .to_string_lossy()
        .into_owned();
    for threads in ["1", cores.as_str()] {
        eprintln!(
            "\nllama-bench, {threads} thread(s): pp512 = prompt tokens/s, tg128 = generation tokens/s"
        );
        sh(
            &bench,
            &[
                "-m", &model, "-p", "512", "-n", "128", "-t", threads, "-r", "3",
            ],
        )?;
        eprintln!(
            "\nllama-batched-bench, {threads} thread(s): S_TG = aggregate generation tokens/s of B sequences in one context"
        );
        sh(
            &batched,
            &[
                "-m", &model, "-c", "8192", "-b", "2048", "-ub", "512", "-npp", "16", "-ntg",
                "128", "-npl", "1,2,4", "-t", threads,
            ],
        )?;
    }
    Ok(())
}
