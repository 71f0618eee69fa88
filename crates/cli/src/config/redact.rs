//! What the run directory and the store keep of a config: its text with secrets removed.

/// The config text with every secret-bearing value (header values written in the file)
/// replaced by `[redacted]`: what the run directory and the store keep.
pub(crate) fn redacted(text: &str) -> String {
    fn walk(v: &mut toml::Value) {
        match v {
            toml::Value::Table(t) => {
                for (k, child) in t.iter_mut() {
                    if k == "headers"
                        && let toml::Value::Table(h) = child
                    {
                        for (_, hv) in h.iter_mut() {
                            if hv.is_str() {
                                *hv = toml::Value::String("[redacted]".into());
                            }
                        }
                        continue;
                    }
                    walk(child);
                }
            }
            toml::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match toml::from_str::<toml::Value>(text) {
        Ok(mut v) => {
            walk(&mut v);
            toml::to_string(&v).unwrap_or_default()
        }
        // Never stored unparsed: a file that does not parse was refused before any run.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_redacted_and_env_references_kept() {
        let text = "[student]\nprovider = \"openai\"\nheaders = { \"X-Token\" = \"s3cr3t-value\", \"X-Other\" = { env = \"MY_TOKEN\" } }\n";
        let out = redacted(text);
        assert!(!out.contains("s3cr3t-value"), "{out}");
        assert!(
            out.contains("[redacted]") && out.contains("MY_TOKEN"),
            "{out}"
        );
    }
}
