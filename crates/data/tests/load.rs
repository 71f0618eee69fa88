#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Loading fixture files of each format, good and broken.

use std::path::PathBuf;

use metaprompt_data::{DataError, Format, LoadOptions, load};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_err(name: &str) -> DataError {
    load(fixture(name), &LoadOptions::default()).unwrap_err()
}

fn with_id(field: &str) -> LoadOptions {
    LoadOptions {
        id_field: Some(field.into()),
        ..LoadOptions::default()
    }
}

#[test]
fn jsonl_rows_get_line_numbers_as_ids_and_blank_lines_are_skipped() {
    let ds = load(fixture("good.jsonl"), &LoadOptions::default()).unwrap();
    let ids: Vec<_> = ds.rows().iter().map(|r| r.id().to_string()).collect();
    assert_eq!(ids, ["1", "2", "4"]);
    assert_eq!(ds.rows()[2].get("label"), Some(&json!("spam")));
    let schema = ds.schema();
    assert_eq!(schema.fields["text"], 3);
}

#[test]
fn jsonl_with_bom_and_crlf_loads() {
    let ds = load(fixture("bom_crlf.jsonl"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.rows()[0].get("text"), Some(&json!("a")));
    assert_eq!(ds.rows()[1].get("label"), Some(&json!("y")));
}

#[test]
fn jsonl_non_object_line_names_line_and_kind() {
    let err = load_err("not_object.jsonl");
    assert!(matches!(err, DataError::NotAnObject { ref at, .. } if at.line == 2));
    assert!(
        err.to_string().ends_with(
            "not_object.jsonl:2: expected a JSON object with named fields, found an array"
        ),
        "{err}"
    );
}

#[test]
fn jsonl_invalid_json_names_line() {
    let err = load_err("bad_json.jsonl");
    assert!(
        matches!(err, DataError::InvalidJson { ref at, .. } if at.line == 3),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("bad_json.jsonl:3: invalid JSON: EOF while parsing"),
        "{err}"
    );
}

#[test]
fn jsonl_invalid_utf8_names_line() {
    let err = load_err("bad_utf8.jsonl");
    assert!(matches!(err, DataError::InvalidUtf8 { ref at } if at.line == 2));
    assert!(
        err.to_string()
            .ends_with("bad_utf8.jsonl:2: the line is not valid UTF-8; save the file as UTF-8")
    );
}

#[test]
fn duplicate_ids_name_both_lines() {
    let err = load(fixture("dup_ids.jsonl"), &with_id("id")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("dup_ids.jsonl:3: duplicate id `a` (first seen on line 1)"),
        "{err}"
    );
}

#[test]
fn explicit_id_field_is_used() {
    let ds = load(fixture("good.json"), &with_id("text")).unwrap();
    assert_eq!(ds.rows()[1].id().as_str(), "b");
    let err = load(fixture("good.json"), &with_id("nope")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("good.json:1: the id field `nope` is missing or is not a string or number"),
        "{err}"
    );
}

#[test]
fn empty_file_is_an_error() {
    let err = load_err("empty.jsonl");
    assert!(
        err.to_string()
            .ends_with("empty.jsonl: the file has no rows")
    );
    let err = load_err("header_only.csv");
    assert!(matches!(err, DataError::Empty { .. }));
}

#[test]
fn json_array_loads_with_nested_fields() {
    let ds = load(fixture("good.json"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.rows()[1].text("meta.title").as_deref(), Some("U"));
    assert_eq!(ds.rows()[0].id().as_str(), "1");
}

#[test]
fn json_non_object_element_is_named() {
    let err = load_err("not_object.json");
    assert!(
        err.to_string().ends_with(
            "not_object.json:2: expected a JSON object with named fields, found a string"
        ),
        "{err}"
    );
}

#[test]
fn json_that_is_not_an_array_is_an_error() {
    let err = load_err("single.json");
    assert!(err.to_string().contains("array of objects"), "{err}");
}

#[test]
fn csv_with_quoted_commas_newlines_and_quotes_loads() {
    let ds = load(fixture("quoted.csv"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.rows()[0].get("text"), Some(&json!("hello, world")));
    assert_eq!(ds.rows()[1].get("text"), Some(&json!("line one\nline two")));
    assert_eq!(ds.rows()[2].get("text"), Some(&json!("she said \"hi\"")));
    assert_eq!(ds.rows()[2].id().as_str(), "3");
}

#[test]
fn ragged_csv_names_line_and_counts() {
    let err = load_err("ragged.csv");
    assert!(
        matches!(err, DataError::RaggedCsv { ref at, expected: 2, found: 1 } if at.line == 3),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("ragged.csv:3: expected 2 fields like the header, found 1")
    );
}

#[test]
fn unknown_extension_asks_for_a_format() {
    let err = load(
        fixture("good.jsonl").with_extension("txt"),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("use a .jsonl, .json or .csv file"));
    // An explicit format overrides the extension (the file then fails to open: it does not exist).
    let opts = LoadOptions {
        format: Some(Format::Jsonl),
        ..LoadOptions::default()
    };
    assert!(matches!(
        load(fixture("nope.txt"), &opts),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn require_fields_reports_first_ten_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let mut text = String::new();
    for i in 0..25 {
        if i % 2 == 0 {
            text.push_str("{\"body\": \"x\"}\n");
        } else {
            text.push_str("{\"text\": \"y\"}\n");
        }
    }
    std::fs::write(&path, text).unwrap();
    let ds = load(&path, &LoadOptions::default()).unwrap();
    let err = ds.require_fields(&["text"], "the prompt").unwrap_err();
    match &err {
        DataError::MissingFields { rows, total, .. } => {
            assert_eq!(*total, 13);
            assert_eq!(rows.len(), 10);
            assert_eq!(rows[0].0, "1");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("13 row(s) lack fields that the prompt uses:"),
        "{msg}"
    );
    assert!(msg.ends_with("… and 3 more"), "{msg}");
}

#[test]
fn label_fields_must_exist() {
    let ds = load(fixture("good.jsonl"), &LoadOptions::default()).unwrap();
    let ds2 = ds.clone().with_label_fields(["label"]).unwrap();
    assert_eq!(ds2.label_fields(), ["label"]);
    let err = ds.with_label_fields(["lable"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no row has the field `lable`, but `label_fields` uses it; fields present: label, text"
    );
}
