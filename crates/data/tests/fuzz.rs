#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile input: the three loaders never panic on arbitrary bytes. CI runs the default case
//! count; a long run: `PROPTEST_CASES=100000 cargo test --release -p metaprompt-data --test fuzz`.

use metaprompt_data::{LoadOptions, load};
use proptest::prelude::*;

fn load_bytes(ext: &str, bytes: &[u8], id: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("f.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    let _ = load(
        &path,
        &LoadOptions {
            id_field: id.map(str::to_string),
            ..LoadOptions::default()
        },
    );
}

proptest! {
    #[test]
    fn jsonl_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_bytes("jsonl", &b, None);
    }

    #[test]
    fn jsonl_like_text_never_panics(s in "([{}\\[\\]\":,a-z0-9 ]{0,40}\\n?){0,10}") {
        load_bytes("jsonl", s.as_bytes(), Some("id"));
    }

    #[test]
    fn json_never_panics(s in "[\\[\\]{}\":,a-z0-9 \\n]{0,300}") {
        load_bytes("json", s.as_bytes(), None);
    }

    #[test]
    fn csv_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_bytes("csv", &b, None);
    }

    #[test]
    fn csv_like_text_never_panics(s in "([a-z\",\\r ]{0,20}\\n){0,12}") {
        load_bytes("csv", s.as_bytes(), Some("a"));
    }
}
