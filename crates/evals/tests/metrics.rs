#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Table-driven tests of every local metric.

use metaprompt_core::{EvalInput, EvalResult};
use metaprompt_evals::*;

fn io(got: &str, want: &str) -> EvalInput {
    EvalInput::default()
        .with("response", got)
        .with("expected_response", want)
}

fn long(word: &str, n: usize) -> String {
    vec![word; n].join(" ")
}

fn check(name: &str, f: impl Fn(&EvalInput) -> EvalResult, cases: &[(&str, &str, f64)]) {
    assert!(cases.len() >= 8, "{name}: at least 8 cases");
    for (got, want, score) in cases {
        let r = f(&io(got, want));
        assert!(!r.is_error(), "{name}: {got:?}/{want:?}: {}", r.reason());
        assert!(
            (r.score() - score).abs() < 1e-9,
            "{name}: {got:?} vs {want:?}: got {} ({})",
            r.score(),
            r.reason()
        );
        assert!(r.reason().len() < 600, "{name}: reason too long");
    }
}

#[test]
fn exact_match_table() {
    let lax = ExactMatch::new(Normalize::all());
    let strict = ExactMatch::new(Normalize::default());
    let big = long("spam", 10_000);
    check(
        "exact lax",
        |i| lax.score(i),
        &[
            ("positive", "positive", 1.0),
            ("Positive.", "positive", 1.0),
            ("  positive \n", "positive", 1.0),
            ("negative", "positive", 0.0),
            ("", "", 1.0),
            ("", "x", 0.0),
            ("Ｐｏｓｉｔｉｖｅ", "positive", 1.0),
            ("Café", "café", 1.0),
            (&big, &big, 1.0),
            ("«oui»", "oui", 1.0),
        ],
    );
    check(
        "exact strict",
        |i| strict.score(i),
        &[
            ("positive", "positive", 1.0),
            ("Positive", "positive", 0.0),
            (" positive", "positive", 0.0),
            ("", "", 1.0),
            ("日本", "日本", 1.0),
            ("日本", "日本語", 0.0),
            (&big, &big, 1.0),
            ("a\tb", "a b", 0.0),
        ],
    );
}

#[test]
fn exact_match_reason_says_what_was_expected_and_seen() {
    let r = ExactMatch::new(Normalize::all()).score(&io("Positive.", "positive"));
    assert_eq!(
        r.reason(),
        "expected `positive`, got `Positive.` after normalisation → match"
    );
    let long_text = "x".repeat(500);
    let r = ExactMatch::default().score(&io(&long_text, "y"));
    assert!(
        r.reason().contains('…'),
        "long texts are clipped: {}",
        r.reason()
    );
}

#[test]
fn missing_fields_are_error_results() {
    let r = ExactMatch::default().score(&EvalInput::default().with("response", "x"));
    assert!(r.is_error());
    assert!(
        r.reason()
            .starts_with("error: no `expected_response` field")
    );
    let r = Length::default().score(&EvalInput::default());
    assert!(r.is_error() && r.reason().contains("`response`"));
}

#[test]
fn contains_table() {
    let any = Contains::new(
        vec!["refund".into(), "money back".into()],
        ContainsMode::Any,
        Normalize::all(),
    );
    let all = Contains::new(
        vec!["refund".into(), "money back".into()],
        ContainsMode::All,
        Normalize::all(),
    );
    let from_expected = Contains::default();
    check(
        "contains any",
        |i| any.score(i),
        &[
            ("We will REFUND you", "", 1.0),
            ("money-back guarantee", "", 0.0),
            ("money back guaranteed", "", 1.0),
            ("", "", 0.0),
            ("no luck", "", 0.0),
            ("ＲＥＦＵＮＤ", "", 1.0),
            (&long("refund", 5000), "", 1.0),
            ("refunds", "", 1.0),
        ],
    );
    check(
        "contains all",
        |i| all.score(i),
        &[
            ("refund and money back", "", 1.0),
            ("refund only", "", 0.0),
            ("", "", 0.0),
            ("Money back! Refund!", "", 1.0),
            ("money back", "", 0.0),
            ("réfund money back", "", 0.0),
            (&format!("{} money back", long("refund", 2000)), "", 1.0),
            ("refundmoney back", "", 1.0),
        ],
    );
    check(
        "contains expected",
        |i| from_expected.score(i),
        &[
            ("the answer is 42", "42", 1.0),
            ("the answer is 4", "42", 0.0),
            ("", "", 1.0),
            ("abc", "", 1.0),
            ("Paris", "paris", 0.0),
            ("東京へ行く", "東京", 1.0),
            ("x", "xx", 0.0),
            (&long("a", 3000), "a a a", 1.0),
        ],
    );
}

#[test]
fn one_of_table() {
    let m = OneOf::new(vec!["spam".into(), "ham".into()], Normalize::all());
    check(
        "one_of",
        |i| m.score(i),
        &[
            ("spam", "spam", 1.0),
            ("Spam.", "spam", 1.0),
            ("ham", "spam", 0.0),
            ("maybe spam", "spam", 0.0),
            ("", "ham", 0.0),
            ("ＨＡＭ", "ham", 1.0),
            (&long("spam", 100), "spam", 0.0),
            (" ham ", "ham", 1.0),
        ],
    );
    let r = m.score(&io("eggs", "spam"));
    assert!(
        r.reason().contains("not one of the labels spam | ham"),
        "{}",
        r.reason()
    );
    let no_expected = m.score(&EvalInput::default().with("response", "ham"));
    assert_eq!(no_expected.score(), 1.0);
}

#[test]
fn regex_table() {
    let full = Regex::new(r"(spam|ham)", true).unwrap();
    let partial = Regex::new(r"\d{3}-\d{4}", false).unwrap();
    check(
        "regex full",
        |i| full.score(i),
        &[
            ("spam", "", 1.0),
            ("ham", "", 1.0),
            ("spam!", "", 0.0),
            ("", "", 0.0),
            ("it is spam", "", 0.0),
            ("SPAM", "", 0.0),
            (&long("spam", 100), "", 0.0),
            ("hamspam", "", 0.0),
        ],
    );
    check(
        "regex partial",
        |i| partial.score(i),
        &[
            ("call 555-1234 now", "", 1.0),
            ("555-123", "", 0.0),
            ("", "", 0.0),
            ("٥٥٥-١٢٣٤", "", 1.0),
            (&format!("{} 555-1234", long("x", 5000)), "", 1.0),
            ("5551234", "", 0.0),
            ("123-4567-89", "", 1.0),
            ("phone: 12-3456", "", 0.0),
        ],
    );
    assert!(Regex::new("(", false).is_err());
}

#[test]
fn json_valid_and_schema_tables() {
    let v = JsonValid;
    check(
        "json_valid",
        |i| v.score(i),
        &[
            ("{}", "", 1.0),
            ("[1, 2]", "", 1.0),
            ("  {\"a\": \"é\"}  ", "", 1.0),
            ("", "", 0.0),
            ("{a: 1}", "", 0.0),
            ("null", "", 1.0),
            ("{\"a\": 1", "", 0.0),
            (&format!("[{}]", vec!["1"; 10000].join(",")), "", 1.0),
        ],
    );
    let s = JsonSchema::new(&serde_json::json!({
        "type": "object",
        "properties": {"label": {"enum": ["spam", "ham"]}, "score": {"type": "number"}},
        "required": ["label"]
    }))
    .unwrap();
    check(
        "json_schema",
        |i| s.score(i),
        &[
            (r#"{"label": "spam"}"#, "", 1.0),
            (r#"{"label": "ham", "score": 0.5}"#, "", 1.0),
            (r#"{"label": "eggs"}"#, "", 0.0),
            (r#"{"score": 1}"#, "", 0.0),
            ("", "", 0.0),
            (r#"{"label": "spam", "score": "high"}"#, "", 0.0),
            ("[]", "", 0.0),
            (r#"{"label": "ham", "note": "日本"}"#, "", 1.0),
        ],
    );
    let r = s.score(&io(r#"{"score": 1}"#, ""));
    assert!(r.reason().contains("label"), "{}", r.reason());
    assert!(JsonSchema::new(&serde_json::json!({"type": 12})).is_err());
}

#[test]
fn numeric_table() {
    let m = Numeric::new(0.01, 0.0);
    let rel = Numeric::new(0.0, 0.05);
    check(
        "numeric abs",
        |i| m.score(i),
        &[
            ("42", "42", 1.0),
            ("The answer is 42.", "42", 1.0),
            ("first 7 then 42", "42", 1.0),
            ("42.005", "42", 1.0),
            ("41", "42", 0.0),
            ("1,234.5", "1234.5", 1.0),
            ("-3", "-3.0", 1.0),
            ("", "42", 0.0),
            ("٤٢", "42", 0.0),
            (&format!("{} 9", long("x", 5000)), "9", 1.0),
        ],
    );
    check(
        "numeric rel",
        |i| rel.score(i),
        &[
            ("100", "104", 1.0),
            ("100", "106", 0.0),
            ("1e3", "1000", 1.0),
            ("0", "0", 1.0),
            ("0.1", "0", 0.0),
            ("about 95 or so", "100", 1.0),
            ("2,000", "2,050", 1.0),
            ("none", "5", 0.0),
        ],
    );
    let r = m.score(&io("5", "no number"));
    assert!(r.is_error());
    assert_eq!(last_number("a 1 b -2.5e1"), Some(-25.0));
}

#[test]
fn levenshtein_table() {
    let m = Levenshtein::new(Normalize::default());
    let lax = Levenshtein::new(Normalize::all());
    check(
        "levenshtein",
        |i| m.score(i),
        &[
            ("kitten", "kitten", 1.0),
            ("kitten", "sitting", 1.0 - 3.0 / 7.0),
            ("", "", 1.0),
            ("", "abc", 0.0),
            ("abc", "", 0.0),
            ("日本", "日本語", 1.0 - 1.0 / 3.0),
            ("abcd", "abce", 0.75),
            ("ab", "ba", 0.0),
        ],
    );
    check(
        "levenshtein lax",
        |i| lax.score(i),
        &[
            ("Kitten!", "kitten", 1.0),
            ("KITTEN", "kitten", 1.0),
            ("  a  b ", "a b", 1.0),
            ("", "", 1.0),
            ("x", "y", 0.0),
            ("Ｘ", "x", 1.0),
            ("ab", "abcd", 0.5),
            (&long("a", 200), &long("a", 200), 1.0),
        ],
    );
}

#[test]
fn token_f1_table() {
    let m = TokenF1;
    check(
        "token_f1",
        |i| m.score(i),
        &[
            ("the cat sat", "cat sat", 1.0),
            ("a cat", "the cat", 1.0),
            // got {cat, sat, down} vs {cat, sat}: p = 2/3, r = 1, f1 = 0.8
            ("cat sat down", "cat sat", 0.8),
            ("dog", "cat", 0.0),
            ("", "", 1.0),
            ("", "cat", 0.0),
            // got {x, x, y} vs {x, y, z}: common = 2, p = 2/3, r = 2/3, f1 = 2/3
            ("x x y", "x y z", 2.0 / 3.0),
            ("Café, au lait!", "café au lait", 1.0),
            (&long("w", 5000), &long("w", 5000), 1.0),
        ],
    );
}

#[test]
fn bleu_matches_hand_computed_values() {
    let b = Bleu::default();
    // "the cat sat on the mat" vs "the cat is on the mat" (both 6 tokens, BP = 1):
    //  p1 = 5/6 (the×2, cat, on, mat); p2 = (3+1)/(5+1) (the cat, on the, the mat);
    //  p3 = (1+1)/(4+1) (on the mat); p4 = (0+1)/(3+1).
    let expected = ((5.0 / 6.0) * (4.0 / 6.0) * (2.0 / 5.0) * (1.0 / 4.0f64)).powf(0.25);
    assert!((b.bleu("the cat sat on the mat", "the cat is on the mat") - expected).abs() < 1e-12);
    // Candidate "the cat" (2 tokens) vs the 6-token reference: p1 = 2/2, p2 = (1+1)/(1+1),
    // p3 = p4 = (0+1)/(0+1) = 1; BP = exp(1 − 6/2) = e^−2.
    let short = (-2.0f64).exp();
    assert!((b.bleu("the cat", "the cat is on the mat") - short).abs() < 1e-12);
    check(
        "bleu",
        |i| b.score(i),
        &[
            ("the cat sat on the mat", "the cat is on the mat", expected),
            ("the cat", "the cat is on the mat", short),
            ("a b c d", "a b c d", 1.0),
            ("The Cat.", "the cat", 1.0),
            ("x y z", "a b c", 0.0),
            ("", "", 1.0),
            ("", "a", 0.0),
            ("a", "", 0.0),
            (&long("a", 300), &long("a", 300), 1.0),
        ],
    );
}

#[test]
fn rouge_l_matches_hand_computed_values() {
    let r = RougeL::default();
    // LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5;
    // P = R = 5/6 → F1 = 5/6.
    // LCS("a b c d e", "a c e") = 3: P = 3/5, R = 3/3, F1 = 2·0.6·1/1.6 = 0.75.
    check(
        "rouge_l",
        |i| r.score(i),
        &[
            ("the cat sat on the mat", "the cat is on the mat", 5.0 / 6.0),
            ("a b c d e", "a c e", 0.75),
            ("a b c", "a b c", 1.0),
            ("c b a", "a b c", 1.0 / 3.0),
            ("", "", 1.0),
            ("x", "", 0.0),
            ("Hello, World!", "hello world", 1.0),
            ("日本 語", "日本 語", 1.0),
            (&long("z", 2000), &long("z", 1000), 2.0 * 0.5 * 1.0 / 1.5),
        ],
    );
}

#[test]
fn length_table() {
    let words = Length::new(LengthUnit::Words, Some(2), Some(4));
    let chars = Length::new(LengthUnit::Chars, None, Some(5));
    check(
        "length words",
        |i| words.score(i),
        &[
            ("one two", "", 1.0),
            ("one", "", 0.0),
            ("one two three four", "", 1.0),
            ("one two three four five", "", 0.0),
            ("", "", 0.0),
            ("  a   b  ", "", 1.0),
            ("日本 語", "", 1.0),
            (&long("w", 1000), "", 0.0),
        ],
    );
    check(
        "length chars",
        |i| chars.score(i),
        &[
            ("hello", "", 1.0),
            ("hello!", "", 0.0),
            ("", "", 1.0),
            ("日本語日本", "", 1.0),
            ("日本語日本語", "", 0.0),
            ("é", "", 1.0),
            (&"x".repeat(10_000), "", 0.0),
            ("a b", "", 1.0),
        ],
    );
    let r = words.score(&io("one", ""));
    assert_eq!(r.reason(), "1 words, bounds [2, 4] → too short");
}
