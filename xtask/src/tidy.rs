//! Repository rules: `cargo xtask tidy` checks the ones about source files (line limits,
//! import cycles); `cargo test -p xtask` enforces those and the rest.

use std::path::Path;

use anyhow::{Result, bail};

use crate::imports::{cycles, rust_files};

/// Longest source file of a library or binary (`crates/*/src`): a file a newcomer can hold in
/// mind.
pub(crate) const MAX_SRC_LINES: usize = 400;

/// Files of `crates/*/src` over [`MAX_SRC_LINES`].
pub(crate) fn long_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for src in crate_sources(root) {
        for f in rust_files(&src) {
            let lines = std::fs::read_to_string(&f).map_or(0, |t| t.lines().count());
            if lines > MAX_SRC_LINES {
                out.push(format!(
                    "{} has {lines} lines (limit {MAX_SRC_LINES}); split it along its concepts",
                    f.strip_prefix(root).unwrap_or(&f).display()
                ));
            }
        }
    }
    out
}

/// Files of one crate that import each other, directly or through others.
pub(crate) fn import_cycles(root: &Path) -> Vec<String> {
    crate_sources(root)
        .iter()
        .flat_map(|src| cycles(src, root))
        .map(|c| format!("import cycle: {c}; the lower file must not import the upper"))
        .collect()
}

/// The `src` directory of every crate and of xtask.
fn crate_sources(root: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(root.join("xtask/src"));
    dirs.sort();
    dirs
}

/// `cargo xtask tidy`.
pub(crate) fn run(root: &Path) -> Result<()> {
    let problems: Vec<String> = long_files(root)
        .into_iter()
        .chain(import_cycles(root))
        .collect();
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() {
        bail!("{} tidy problem(s)", problems.len());
    }
    eprintln!("tidy: no file over {MAX_SRC_LINES} lines, no import cycle");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::codegen;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p, ext));
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn staleness_of_generated_files_is_detected() {
        // Whether the files are up to date is checked by `crates/cli/tests/docs.rs` against
        // the binary the tests build; here, only that a changed file is reported.
        let generated = vec![(PathBuf::from("docs/config.schema.json"), "{}\n".to_string())];
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("docs")).unwrap();
        std::fs::write(tmp.path().join("docs/config.schema.json"), "{}\n").unwrap();
        assert!(codegen::stale(tmp.path(), &generated).is_empty());
        std::fs::write(tmp.path().join("docs/config.schema.json"), "{ }").unwrap();
        assert_eq!(
            codegen::stale(tmp.path(), &generated),
            ["docs/config.schema.json"]
        );
    }

    #[test]
    fn every_crate_has_a_readme_and_denies_missing_docs() {
        for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
            let dir = e.path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                dir.join("README.md").is_file(),
                "crates/{name} has no README.md"
            );
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("[lints]\nworkspace = true"),
                "crates/{name} does not use the workspace lints"
            );
        }
    }

    #[test]
    fn no_stubs_in_library_code() {
        for f in files(&root().join("crates"), "rs") {
            if f.components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
            {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Spelled in pieces so that this file does not trip its own rule.
            for stub in [
                concat!("todo", "!("),
                concat!("unimplemented", "!("),
                concat!("dbg", "!("),
            ] {
                assert!(!text.contains(stub), "{} contains {stub}", f.display());
            }
        }
    }

    #[test]
    fn every_example_is_built_in_ci() {
        let facade = std::fs::read_to_string(root().join("crates/metaprompt/Cargo.toml")).unwrap();
        for f in std::fs::read_dir(root().join("examples"))
            .unwrap()
            .flatten()
        {
            let p = f.path();
            if p.extension().is_some_and(|x| x == "rs") {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    facade.contains(&format!("path = \"../../examples/{name}\"")),
                    "examples/{name} is not an [[example]] of the facade"
                );
            }
        }
    }

    #[test]
    fn markdown_links_inside_docs_resolve() {
        let mut docs = files(&root().join("docs"), "md");
        docs.push(root().join("README.md"));
        for f in docs {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("](") {
                let rest = &text[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = rest[..end].split('#').next().unwrap();
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let path = f.parent().unwrap().join(target);
                assert!(path.exists(), "{}: broken link to {target}", f.display());
            }
        }
    }

    #[test]
    fn release_check_passes() {
        let p = crate::release::problems(&root()).unwrap();
        assert!(p.is_empty(), "{p:?}");
    }

    /// The `[dependencies]` of a workspace member, by name.
    fn dependencies(member: &str) -> Vec<String> {
        let text = std::fs::read_to_string(root().join(member).join("Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn core_depends_on_no_io_crate() {
        let allowed = [
            "async-trait",
            "futures",
            "hex",
            "schemars",
            "serde",
            "serde_json",
            "sha2",
            "thiserror",
            "tracing",
        ];
        for dep in dependencies("crates/core") {
            assert!(
                allowed.contains(&dep.as_str()),
                "metaprompt-core depends on `{dep}`: the core crate holds contracts only (no I/O)"
            );
        }
    }

    #[test]
    fn the_engine_names_no_vendor() {
        let vendors = [
            "async-openai",
            "async_openai",
            "reqwest",
            "llama-cpp",
            "llama_cpp",
            "rusqlite",
            "metaprompt-openai",
            "metaprompt_openai",
            "metaprompt-llama",
            "metaprompt_llama",
            "metaprompt-store",
            "metaprompt_store",
            "metaprompt-anthropic",
            "metaprompt_anthropic",
            "metaprompt-futureagi",
            "metaprompt_futureagi",
        ];
        for dep in dependencies("crates/engine") {
            assert!(
                !vendors.contains(&dep.as_str()),
                "the engine depends on `{dep}`"
            );
        }
        for f in files(&root().join("crates/engine/src"), "rs") {
            let text = std::fs::read_to_string(&f).unwrap();
            for v in vendors {
                assert!(!text.contains(v), "{} names `{v}`", f.display());
            }
        }
    }

    #[test]
    fn no_source_file_is_over_500_lines() {
        for dir in ["crates", "xtask", "examples"] {
            for f in files(&root().join(dir), "rs") {
                let lines = std::fs::read_to_string(&f).unwrap().lines().count();
                assert!(
                    lines <= 500,
                    "{} has {lines} lines; split it along its concepts",
                    f.display()
                );
            }
        }
    }

    /// `cargo xtask tidy` on this repository: what `cargo test` enforces.
    #[test]
    fn crate_sources_are_short_and_free_of_import_cycles() {
        let problems: Vec<String> = super::long_files(&root())
            .into_iter()
            .chain(super::import_cycles(&root()))
            .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
