#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Split determinism, fractions, stratification and small data.

use std::collections::BTreeMap;

use metaprompt_core::DataMapper;
use metaprompt_core::Row;
use metaprompt_data::{BasicDataMapper, Dataset, SplitConfig, Splits};
use serde_json::json;

fn dataset(n: usize) -> Dataset {
    Dataset::new(
        (1..=n)
            .map(|i| {
                let label = if i % 4 == 0 { "spam" } else { "ham" };
                Row::from_json(
                    i.to_string(),
                    json!({"text": format!("t{i}"), "label": label}),
                )
                .unwrap()
            })
            .collect(),
    )
}

fn ids(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|r| r.id().to_string()).collect()
}

fn cfg(seed: u64) -> SplitConfig {
    SplitConfig {
        seed,
        ..SplitConfig::default()
    }
}

#[test]
fn same_seed_gives_golden_split() {
    let s = dataset(12).split(&cfg(7)).unwrap();
    // Golden values: these must never change across runs, platforms or dependency updates,
    // or every saved run's split would silently change.
    assert_eq!(ids(&s.train), GOLDEN_TRAIN);
    assert_eq!(ids(&s.val), GOLDEN_VAL);
    assert_eq!(ids(&s.test), GOLDEN_TEST);
}

const GOLDEN_TRAIN: [&str; 6] = ["4", "6", "9", "11", "10", "1"];
const GOLDEN_VAL: [&str; 3] = ["3", "5", "7"];
const GOLDEN_TEST: [&str; 3] = ["8", "12", "2"];

#[test]
fn same_seed_same_split_and_different_seeds_differ() {
    let ds = dataset(200);
    let a = ds.split(&cfg(1)).unwrap();
    let b = ds.split(&cfg(1)).unwrap();
    let c = ds.split(&cfg(2)).unwrap();
    assert_eq!(ids(&a.train), ids(&b.train));
    assert_eq!(ids(&a.val), ids(&b.val));
    assert_ne!(ids(&a.train), ids(&c.train));
}

#[test]
fn splits_are_disjoint_and_cover_everything() {
    let s = dataset(97).split(&cfg(3)).unwrap();
    let mut all: Vec<String> = [ids(&s.train), ids(&s.val), ids(&s.test)].concat();
    all.sort_by_key(|x| x.parse::<u32>().unwrap());
    assert_eq!(all, (1..=97).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn fractions_are_honoured_within_one_row() {
    for n in [20usize, 33, 97, 150] {
        for (tr, va, te) in [(0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.7, 0.3, 0.0)] {
            let s = dataset(n)
                .split(&SplitConfig {
                    train: tr,
                    val: va,
                    test: te,
                    seed: 5,
                    stratify_by: None,
                })
                .unwrap();
            for (got, f) in [(s.train.len(), tr), (s.val.len(), va), (s.test.len(), te)] {
                assert!(
                    (got as f64 - f * n as f64).abs() <= 1.0,
                    "n={n} f={f} got={got}"
                );
            }
        }
    }
}

fn class_counts(rows: &[Row]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.text("label").unwrap()).or_insert(0) += 1;
    }
    m
}

#[test]
fn stratified_split_keeps_class_ratios_within_one_row_per_class() {
    let ds = dataset(103);
    let totals = class_counts(ds.rows());
    let s = ds
        .split(&SplitConfig {
            stratify_by: Some("label".into()),
            ..cfg(11)
        })
        .unwrap();
    for (rows, f) in [(&s.train, 0.5), (&s.val, 0.25), (&s.test, 0.25)] {
        let counts = class_counts(rows);
        for (class, total) in &totals {
            let got = counts.get(class).copied().unwrap_or(0) as f64;
            assert!(
                (got - f * *total as f64).abs() <= 1.0,
                "{class}: {got} vs {f}×{total}"
            );
        }
    }
}

#[test]
fn small_data_warns_and_fills_every_split() {
    let s = dataset(5).split(&cfg(1)).unwrap();
    assert!(!s.val.is_empty() && !s.test.is_empty() && !s.train.is_empty());
    assert!(
        s.warnings.iter().any(|w| w.contains("only 5 rows")),
        "{:?}",
        s.warnings
    );
    let err = dataset(2).split(&cfg(1)).unwrap_err();
    assert!(
        err.to_string().contains("2 row(s) cannot fill 3 splits"),
        "{err}"
    );
}

#[test]
fn bad_fractions_are_errors() {
    let bad = SplitConfig {
        train: 0.5,
        val: 0.5,
        test: 0.5,
        ..cfg(0)
    };
    assert!(
        dataset(10)
            .split(&bad)
            .unwrap_err()
            .to_string()
            .contains("add up to 1")
    );
    let neg = SplitConfig {
        train: 1.5,
        val: -0.5,
        test: 0.0,
        ..cfg(0)
    };
    assert!(
        dataset(10)
            .split(&neg)
            .unwrap_err()
            .to_string()
            .contains("non-negative")
    );
}

#[test]
fn split_column_routes_rows() {
    let rows = vec![
        Row::from_json("1", json!({"s": "train"})).unwrap(),
        Row::from_json("2", json!({"s": "validation"})).unwrap(),
        Row::from_json("3", json!({"s": "TEST"})).unwrap(),
    ];
    let s = Dataset::new(rows.clone()).split_by_column("s").unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (1, 1, 1));
    let mut bad = rows;
    bad.push(Row::from_json("4", json!({"s": "holdout"})).unwrap());
    let err = Dataset::new(bad).split_by_column("s").unwrap_err();
    assert!(
        err.to_string()
            .contains("row `4`: the split column `s` holds `holdout`"),
        "{err}"
    );
}

#[test]
fn separate_files_get_prefixed_ids() {
    let s = Splits::from_datasets(dataset(2), dataset(2), None);
    assert_eq!(ids(&s.train), ["train:1", "train:2"]);
    assert_eq!(ids(&s.val), ["val:1", "val:2"]);
    assert!(s.test.is_empty());
}

#[test]
fn key_map_naming_an_absent_field_is_an_error_at_construction() {
    let ds = dataset(4);
    let err = BasicDataMapper::for_dataset([("expected_response", "answer")], &ds).unwrap_err();
    assert!(
        err.to_string().contains(
            "no row has the field `answer`, but the key map (`expected_response`) uses it"
        ),
        "{err}"
    );
    let ok = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
            ("input", "text"),
        ],
        &ds,
    )
    .unwrap();
    let input = ok.map("ham", &ds.rows()[0]).unwrap();
    assert_eq!(input.text("input").as_deref(), Some("t1"));
    assert_eq!(input.expected().as_deref(), Some("ham"));
}
