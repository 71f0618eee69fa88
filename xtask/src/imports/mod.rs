//! The import graph of a crate's source files, and its cycles.
//!
//! A file imports another when it names one of its items: `use crate::a::b::X`, a path
//! `crate::a::b::f(…)` in code, `super::…` at the top level of a file, or a child module's
//! name (`use layer::Batched` in `batch/mod.rs`). The crate root (`lib.rs`, `main.rs`) is the
//! crate's table of contents (it declares every module and re-exports the public ones), so it
//! is left out: a cycle through it says nothing. Comments and `#[cfg(test)]` modules (at the
//! end of a file) are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod read;

use read::{children, code_of, outside_inline_modules, paths_after};

/// One source file of a crate: its module path (`["batch", "layer"]`) and the text read.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    code: String,
}

/// The Rust files under `dir`, recursively, sorted.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src` (`None` for a crate root or a binary of `src/bin`).
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.trim_end_matches(".rs");
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// The import graph of the crate whose sources are in `src`: file → files it imports.
fn graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files: Vec<SourceFile> = rust_files(src)
        .into_iter()
        .filter_map(|path| {
            let module = module_of(src, &path)?;
            let code = code_of(&std::fs::read_to_string(&path).ok()?);
            Some(SourceFile { path, module, code })
        })
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let by_module: BTreeMap<&Vec<String>, &PathBuf> =
        files.iter().map(|f| (&f.module, &f.path)).collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for f in &files {
        let mut targets: Vec<Vec<String>> = paths_after(&f.code, "crate::");
        let parent: Vec<String> = f.module[..f.module.len() - 1].to_vec();
        // `super::` names the parent module, except inside an inline module (`mod x { … }`),
        // where it names this file, which is no edge.
        for p in paths_after(&outside_inline_modules(&f.code), "super::") {
            targets.push(parent.iter().cloned().chain(p).collect());
        }
        for child in children(&f.code) {
            for p in paths_after(&f.code, &format!("{child}::")) {
                let mut full = f.module.clone();
                full.push(child.clone());
                full.extend(p);
                targets.push(full);
            }
        }
        let out = edges.entry(f.path.clone()).or_default();
        for t in targets {
            if let Some(m) = resolve(&t, &modules)
                && m != f.module
                && let Some(p) = by_module.get(&m)
            {
                out.insert((*p).clone());
            }
        }
    }
    edges
}

/// One cycle through `start` in `edges`, as a path that returns to `start`.
fn cycle_through(
    start: &PathBuf,
    edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    within: &BTreeSet<PathBuf>,
) -> Vec<PathBuf> {
    // Breadth-first from start's successors back to start, inside its component.
    let mut prev: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut queue: std::collections::VecDeque<PathBuf> = std::collections::VecDeque::new();
    for n in edges.get(start).into_iter().flatten() {
        if within.contains(n) && !prev.contains_key(n) {
            prev.insert(n.clone(), start.clone());
            queue.push_back(n.clone());
        }
    }
    while let Some(n) = queue.pop_front() {
        if &n == start {
            break;
        }
        for m in edges.get(&n).into_iter().flatten() {
            if within.contains(m) && !prev.contains_key(m) {
                prev.insert(m.clone(), n.clone());
                queue.push_back(m.clone());
            }
        }
    }
    let mut path = vec![start.clone()];
    let mut at = prev.get(start).cloned();
    while let Some(p) = at {
        if &p == start {
            break;
        }
        path.push(p.clone());
        at = prev.get(&p).cloned();
    }
    path.push(start.clone());
    path.reverse();
    path
}

/// The strongly connected components with more than one file (Tarjan).
fn components(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<BTreeSet<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on: BTreeSet<&'a PathBuf>,
        out: Vec<BTreeSet<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                if let Some(l) = s.low.get_mut(v) {
                    *l = (*l).min(lw);
                }
            } else if s.on.contains(w) {
                let iw = s.index[w];
                if let Some(l) = s.low.get_mut(v) {
                    *l = (*l).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.insert(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Every import cycle among the files of the crate whose sources are in `src`, each written
/// as `a.rs → b.rs → a.rs` with paths relative to `base`.
pub(crate) fn cycles(src: &Path, base: &Path) -> Vec<String> {
    let edges = graph(src);
    let show = |p: &PathBuf| {
        p.strip_prefix(base)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    components(&edges)
        .into_iter()
        .map(|comp| {
            let first = comp.iter().next().cloned().unwrap_or_default();
            cycle_through(&first, &edges, &comp)
                .iter()
                .map(show)
                .collect::<Vec<_>>()
                .join(" → ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_cycle_through_a_third_file_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src, "lib.rs", "mod a;\nmod b;\nmod c;\npub use a::A;\n");
        write(&src, "a.rs", "use crate::b::B;\npub struct A;\n");
        write(&src, "b.rs", "pub struct B(crate::c::C);\n");
        write(
            &src,
            "c.rs",
            "use crate::{a::{A}, Other};\n// crate::b::B in a comment is no import\npub struct C;\n",
        );
        let found = cycles(&src, tmp.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0], "src/a.rs → src/b.rs → src/c.rs → src/a.rs");
    }

    #[test]
    fn the_root_tests_and_comments_make_no_cycle() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(
            &src,
            "lib.rs",
            "mod a;\nmod b;\npub use a::A;\npub struct E;\n",
        );
        write(
            &src,
            "a.rs",
            "use crate::E;\nuse crate::b::B;\npub struct A;\n",
        );
        write(
            &src,
            "b.rs",
            "/// See [A](crate::a::A).\npub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
        );
        assert!(cycles(&src, tmp.path()).is_empty());
    }

    #[test]
    fn a_parent_and_a_child_that_import_each_other_are_a_cycle() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src, "lib.rs", "mod batch;\n");
        write(
            &src,
            "batch/mod.rs",
            "mod layer;\npub(crate) use layer::Batched;\npub struct Batching;\n",
        );
        write(
            &src,
            "batch/layer.rs",
            "use super::Batching;\npub struct Batched;\nmod inner {\n    use super::Batched;\n}\n",
        );
        let found = cycles(&src, tmp.path());
        assert_eq!(
            found,
            ["src/batch/layer.rs → src/batch/mod.rs → src/batch/layer.rs"]
        );
    }

    #[test]
    fn super_inside_a_function_is_an_import_and_inside_an_inline_module_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src, "lib.rs", "mod report;\n");
        write(
            &src,
            "report/mod.rs",
            "mod html;\npub fn write() -> String {\n    html::page()\n}\npub fn f3() {}\n",
        );
        write(
            &src,
            "report/html.rs",
            "pub fn page() -> String {\n    super::f3();\n    String::new()\n}\n",
        );
        assert_eq!(
            cycles(&src, tmp.path()),
            ["src/report/html.rs → src/report/mod.rs → src/report/html.rs"]
        );
        write(
            &src,
            "report/html.rs",
            "pub fn page() -> String {\n    String::new()\n}\nmod inner {\n    fn g() {\n        super::page();\n    }\n}\n",
        );
        assert!(cycles(&src, tmp.path()).is_empty());
    }
}
