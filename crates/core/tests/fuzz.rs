#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile input: the template parser and JSON extraction never panic. CI runs the default
//! case count; a long run: `PROPTEST_CASES=100000 cargo test --release -p metaprompt-core --test fuzz`.

use metaprompt_core::{PromptTemplate, Row, extract_json};
use proptest::prelude::*;

proptest! {
    #[test]
    fn template_parse_and_render_never_panic(s in "\\PC{0,200}") {
        if let Ok(t) = PromptTemplate::parse(&s) {
            let _ = t.render(&Row::from_json("1", serde_json::json!({"text": s.clone()})).unwrap());
        }
    }

    #[test]
    fn template_parse_survives_brace_soup(s in "[{}a-z_. \\\\\"]{0,300}") {
        let _ = PromptTemplate::parse(&s);
    }

    #[test]
    fn extract_json_never_panics(s in "\\PC{0,300}") {
        let _ = extract_json::<serde_json::Value>(&s);
    }

    #[test]
    fn extract_json_survives_nesting_and_fences(s in "[{}\\[\\]\"\\\\:,`a-z0-9 \\n]{0,400}") {
        let _ = extract_json::<serde_json::Value>(&s);
    }
}
