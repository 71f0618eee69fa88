#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile config files: the binary exits 2 with a message, never panics (exit 101).

mod common;

use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_config_text_is_a_usage_error_not_a_crash(s in "([a-z_\\[\\]=\"{}.0-9 ]{0,30}\\n){0,8}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &s).unwrap();
        let o = run(&["optimize", "--config", path.to_str().unwrap(), "--dry-run"], dir.path());
        prop_assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        prop_assert!(text(&o.stderr).starts_with("error: "));
    }
}
