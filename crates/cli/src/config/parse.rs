//! Reading config text: strict deserialisation with the line of an error and the nearest known
//! name, and the keys that moved (accepted with a warning naming the new one).

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use super::Config;

/// Keys that moved: (table, old key, new table, new key, why).
const MOVED: [(&str, &str, &str, &str, &str); 2] = [
    (
        "optimizer",
        "max_tokens",
        "optimizer",
        "max_total_tokens",
        "it is the run's token budget, not a per-reply limit",
    ),
    (
        "optimizer",
        "teacher_frequency_penalty",
        "teacher",
        "frequency_penalty",
        "the teacher's sampling is set in [teacher]",
    ),
];

/// Moves the keys of [`MOVED`] found in `doc` to their new place (unless the new key is
/// set too: then the old one is left for the strict parse to refuse) and says so.
fn migrate(doc: &mut toml::Table) -> Vec<String> {
    let mut warnings = Vec::new();
    for (table, old, new_table, new, why) in MOVED {
        let Some(value) = doc
            .get_mut(table)
            .and_then(toml::Value::as_table_mut)
            .and_then(|t| t.remove(old))
        else {
            continue;
        };
        let target = doc
            .entry(new_table)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(target) = target.as_table_mut() else {
            continue;
        };
        if target.contains_key(new) {
            warnings.push(format!(
                "[{table}] `{old}` is deprecated and [{new_table}] `{new}` is set too: remove `{old}`"
            ));
            // Put it back: the strict parse names it as an unknown key.
            if let Some(t) = doc.get_mut(table).and_then(toml::Value::as_table_mut) {
                t.insert(old.to_string(), value);
            }
            continue;
        }
        target.insert(new.to_string(), value);
        warnings.push(format!(
            "[{table}] `{old}` is deprecated: write [{new_table}] `{new}` ({why})"
        ));
    }
    warnings
}

/// Parses config text; errors name the file and the line. Returns the config and the
/// warnings about deprecated keys.
pub(crate) fn parse_with_warnings(text: &str, path: &Path) -> Result<(Config, Vec<String>)> {
    // Deprecated keys are rare: only then is the text read through a table (whose errors
    // carry no line).
    if let Ok(mut doc) = text.parse::<toml::Table>() {
        let warnings = migrate(&mut doc);
        if !warnings.is_empty() {
            let config = Config::deserialize(toml::Value::Table(doc)).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {} ({})",
                    path.display(),
                    nearest(e.message()),
                    warnings.join("; ")
                )
            })?;
            return Ok((config, warnings));
        }
    }
    strict(text, path).map(|c| (c, Vec::new()))
}

/// [`parse_with_warnings`] without the warnings.
#[cfg(test)]
pub(crate) fn parse(text: &str, path: &Path) -> Result<Config> {
    parse_with_warnings(text, path).map(|(c, _)| c)
}

/// The strict parse, with the line of an error.
fn strict(text: &str, path: &Path) -> Result<Config> {
    toml::from_str(text).map_err(|e| {
        let where_ = e
            .span()
            .map(|s| {
                let end = s.start.min(text.len());
                // Count lines on bytes: a span never needs to fall on a character boundary here.
                let line = text.as_bytes()[..end]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{where_}: {}", path.display(), nearest(e.message()))
    })
}

/// serde's "unknown field `x`, expected one of `a`, `b`, …" (or "unknown variant") with the
/// known name nearest to the misspelt one, when one is near enough to be what was meant.
fn nearest(message: &str) -> String {
    let Some((kind, rest)) = ["unknown field `", "unknown variant `"]
        .into_iter()
        .find_map(|p| message.strip_prefix(p).map(|r| (&p[..p.len() - 2], r)))
    else {
        return message.to_string();
    };
    let Some((given, expected)) = rest.split_once("`, expected ") else {
        return message.to_string();
    };
    // The names are the odd pieces between backticks.
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::jaro_winkler(given, known), known))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((similarity, known)) if similarity >= 0.85 => {
            format!("{kind} `{given}`; did you mean `{known}`?")
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Long run: PROPTEST_CASES=100000 cargo test --release -p metaprompt-cli --bin metaprompt
    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s, Path::new("c.toml"));
        }

        #[test]
        fn config_like_text_never_panics(s in "(\\[?[a-z_]{1,12}\\]?( = (\"[^\"]{0,10}\"|[0-9.]{1,4}|true|\\{ ?[a-z]+ = [0-9] ?\\}|\\[\\]))?\\n){0,12}") {
            let _ = parse(&s, Path::new("c.toml"));
        }
    }

    #[test]
    fn a_misspelt_key_or_value_names_the_nearest_known_one() {
        let err = parse("[optimizer]\npatience_delt = 1\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml:2: unknown field `patience_delt`; did you mean `patience`?"
        );
        let err = parse("[optimizer]\nacceptance = \"pared\"\n", Path::new("c.toml")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("unknown variant `pared`; did you mean `paired`?"),
            "{err}"
        );
        // Nothing near: every known name is listed.
        let err = parse("[optimizer]\nzzz = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("expected one of"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("task_description = \"x\"\nbogus = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("c.toml:"), "{err}");
    }

    const BASE: &str = "initial_prompts = [\"{x}\"]\nmapping = {}\n[dataset]\npath = \"d.jsonl\"\n[student]\nprovider = \"llama\"\n[teacher]\nprovider = \"llama\"\n[evaluator]\nkind = \"exact_match\"\n";

    #[test]
    fn moved_keys_are_accepted_with_a_warning_naming_the_new_one() {
        let text =
            format!("{BASE}[optimizer]\nmax_tokens = 1000\nteacher_frequency_penalty = 0.2\n");
        let (c, w) = parse_with_warnings(&text, Path::new("c.toml")).unwrap();
        assert_eq!(c.optimizer.max_total_tokens, Some(1000));
        assert_eq!(c.teacher.frequency_penalty, Some(0.2));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("`max_total_tokens`") && w[0].contains("not a per-reply limit"),
            "{w:?}"
        );
        assert!(w[1].contains("[teacher] `frequency_penalty`"), "{w:?}");
        // The new names: no warning, and errors keep their line.
        let text = format!("{BASE}[optimizer]\nmax_total_tokens = 1000\n");
        let (c, w) = parse_with_warnings(&text, Path::new("c.toml")).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.optimizer.max_total_tokens, Some(1000));
        // Both the old and the new key: refused, the warning says which to remove.
        let text = format!("{BASE}[optimizer]\nmax_tokens = 1\nmax_total_tokens = 2\n");
        let err = parse(&text, Path::new("c.toml")).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_tokens`")
                && err.to_string().contains("remove `max_tokens`"),
            "{err}"
        );
    }
}
