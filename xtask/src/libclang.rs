//! Finding libclang the way clang-sys (bindgen's loader) finds it, so that the check and the
//! build agree.

use std::path::{Path, PathBuf};

use crate::probe::first_line;

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

/// Homebrew's llvm (Apple silicon, then Intel): `brew install llvm` puts libclang here. clang-sys
/// does not look in the first, so a libclang found only here is handed to the build in
/// `LIBCLANG_PATH`.
const HOMEBREW_DIRS: &[&str] = &["opt/homebrew/opt/llvm*/lib", "usr/local/opt/llvm*/lib"];

/// The directory the builds this process starts must get in `LIBCLANG_PATH`: set only when
/// libclang is where clang-sys does not look (Homebrew's llvm on Apple silicon).
pub(crate) fn build_hint() -> Option<&'static Path> {
    static HINT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    HINT.get_or_init(|| LibclangSearch::from_env().locate().and_then(|f| f.hint))
        .as_deref()
}

/// A libclang found, and whether clang-sys finds it by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    /// The directory to put in `LIBCLANG_PATH` for the build, when clang-sys's own search
    /// would miss it.
    pub(crate) hint: Option<PathBuf>,
}

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
        self.locate().map(|f| f.path)
    }

    /// The first libclang found where clang-sys looks, else in Homebrew's llvm (with the
    /// directory the build must be told).
    pub(crate) fn locate(&self) -> Option<Found> {
        if let Some(path) = self.clang_sys_find() {
            return Some(Found { path, hint: None });
        }
        if self.libclang_path.is_some() {
            return None;
        }
        HOMEBREW_DIRS
            .iter()
            .flat_map(|pattern| expand(&self.root, pattern))
            .find_map(|d| {
                libclang_in(&d).map(|path| Found {
                    hint: path.parent().map(Path::to_path_buf),
                    path,
                })
            })
    }

    /// clang-sys's own search.
    fn clang_sys_find(&self) -> Option<PathBuf> {
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
    fn homebrew_llvm_is_found_and_handed_to_the_build() {
        // Apple silicon: clang-sys does not look in /opt/homebrew, so the build is told.
        let dir = tempfile::tempdir().unwrap();
        let lib = touch(dir.path(), "opt/homebrew/opt/llvm/lib/libclang.so");
        let found = search(dir.path()).locate().unwrap();
        assert_eq!(found.path, lib);
        assert_eq!(found.hint.as_deref(), lib.parent());
        // Intel: /usr/local/opt/llvm/lib is one of clang-sys's own places.
        let dir = tempfile::tempdir().unwrap();
        let lib = touch(dir.path(), "usr/local/opt/llvm/lib/libclang.so");
        let found = search(dir.path()).locate().unwrap();
        assert_eq!((found.path, found.hint), (lib, None));
        // A versioned keg (`brew install llvm@18`) too.
        let dir = tempfile::tempdir().unwrap();
        let lib = touch(dir.path(), "opt/homebrew/opt/llvm@18/lib/libclang.so");
        assert_eq!(search(dir.path()).find(), Some(lib));
        // LIBCLANG_PATH set elsewhere: nothing else is searched, Homebrew included.
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "opt/homebrew/opt/llvm/lib/libclang.so");
        let mut s = search(dir.path());
        s.libclang_path = Some(dir.path().join("empty"));
        assert_eq!(s.locate(), None);
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
}
