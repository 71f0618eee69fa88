//! Reading a source file for the paths it names: comments and test modules left out,
//! `use` groups expanded, child modules and inline modules told apart.

/// The code of a file without comments and without its trailing `#[cfg(test)]` module.
pub(super) fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        // A trailing comment: cut at `//` outside a string (rough: not after a quote).
        let cut = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(cut);
        out.push('\n');
    }
    out
}

pub(super) fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The path segments written after `start` in `code` (`a::b::{c, d::e}` gives `[a, b]`,
/// `[a, b, c]`, `[a, b, d, e]`).
pub(super) fn paths_after(code: &str, start: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(start) {
        let at = from + i;
        from = at + start.len();
        // A whole-word match: `crate::` not preceded by an identifier character or `::`.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        collect(&code[from..], Vec::new(), &mut out);
    }
    out
}

/// Reads `a::b::{…}` at the start of `rest`, pushing every path it names.
pub(super) fn collect(rest: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut s = rest.trim_start();
    loop {
        let n: usize = s
            .chars()
            .take_while(|c| is_ident(*c))
            .map(char::len_utf8)
            .sum();
        if n == 0 {
            if let Some(group) = s.strip_prefix('{') {
                for item in split_group(group) {
                    collect(item, path.clone(), out);
                }
            }
            break;
        }
        path.push(s[..n].to_string());
        s = &s[n..];
        match s.strip_prefix("::") {
            Some(r) => s = r.trim_start(),
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The top-level comma-separated items of a `{…}` group (the text after its `{`).
pub(super) fn split_group(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The child modules a file declares (`mod layer;`).
pub(super) fn children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let t = l.trim();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            let name = t.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// The code of a file without the bodies of its inline modules (`mod x { … }`).
pub(super) fn outside_inline_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut depth = 0usize;
    let mut skipping: Option<usize> = None;
    for line in code.lines() {
        let t = line.trim();
        let opens = t.matches('{').count();
        let closes = t.matches('}').count();
        let starts_module = skipping.is_none()
            && t.ends_with('{')
            && t.trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .starts_with("mod ");
        if starts_module {
            skipping = Some(depth);
        }
        if skipping.is_none() {
            out.push_str(line);
            out.push('\n');
        }
        depth = (depth + opens).saturating_sub(closes);
        if skipping.is_some_and(|d| depth <= d) {
            skipping = None;
        }
    }
    out
}
