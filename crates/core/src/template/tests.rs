//! The template's unit and property tests.

use super::*;
use serde_json::json;

fn row(v: Value) -> Row {
    Row::from_json("r1", v).unwrap()
}

#[test]
fn lists_variables_in_order_without_duplicates() {
    let t = PromptTemplate::parse("{b} {a} {b} {c}").unwrap();
    assert_eq!(t.variables(), vec!["b", "a", "c"]);
}

#[test]
fn escapes_render_as_single_braces() {
    let t = PromptTemplate::parse("{{x}} and }}{{").unwrap();
    assert!(t.variables().is_empty());
    assert_eq!(t.render(&row(json!({}))).unwrap(), "{x} and }{");
}

#[test]
fn literal_json_in_a_prompt_renders() {
    let src = "Reply as {{\"label\": \"spam\" | \"ham\", \"why\": {{\"k\": [1, 2]}}}}\n{text}";
    let t = PromptTemplate::parse(src).unwrap();
    assert_eq!(
        t.render(&row(json!({"text": "hi {there}"}))).unwrap(),
        "Reply as {\"label\": \"spam\" | \"ham\", \"why\": {\"k\": [1, 2]}}\nhi {there}"
    );
}

#[test]
fn unclosed_brace_says_where() {
    let err = PromptTemplate::parse("line one\nab {text").unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnclosedBrace {
            at: Position {
                offset: 12,
                line: 2,
                column: 4
            }
        }
    );
    assert!(err.to_string().contains("line 2, column 4"));
}

#[test]
fn brace_opened_twice_is_unclosed() {
    let err = PromptTemplate::parse("{a {b}").unwrap_err();
    assert!(matches!(err, TemplateError::UnclosedBrace { at } if at.offset == 0));
}

#[test]
fn unmatched_close_says_where() {
    let err = PromptTemplate::parse("héllo }").unwrap_err();
    assert!(matches!(err, TemplateError::UnmatchedClose { at } if at.column == 7));
}

#[test]
fn empty_placeholder_is_rejected() {
    assert!(matches!(
        PromptTemplate::parse("x {} y"),
        Err(TemplateError::EmptyPlaceholder { .. })
    ));
    assert!(matches!(
        PromptTemplate::parse("x {  } y"),
        Err(TemplateError::EmptyPlaceholder { .. })
    ));
}

#[test]
fn invalid_name_is_rejected() {
    let err = PromptTemplate::parse("{\"a\": 1}").unwrap_err();
    assert!(matches!(err, TemplateError::InvalidName { ref name, .. } if name == "\"a\": 1"));
    assert!(matches!(
        PromptTemplate::parse("{1abc}"),
        Err(TemplateError::InvalidName { .. })
    ));
}

#[test]
fn missing_variable_names_field_and_row() {
    let t = PromptTemplate::parse("{text} {context}").unwrap();
    let err = t.render(&row(json!({"text": "a"}))).unwrap_err();
    assert_eq!(
        err,
        TemplateError::MissingVariable {
            name: "context".into(),
            row_id: "r1".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "row `r1` has no field `context`, but the prompt uses {context}"
    );
}

#[test]
fn non_string_values_render_as_json_and_dotted_names_read_nested_fields() {
    let t = PromptTemplate::parse("{n} {tags} {meta.title}").unwrap();
    let r = row(json!({"n": 3, "tags": ["a", "b"], "meta": {"title": "T"}}));
    assert_eq!(t.render(&r).unwrap(), "3 [\"a\",\"b\"] T");
}

#[test]
fn whitespace_inside_placeholder_is_trimmed() {
    let t = PromptTemplate::parse("{ text }").unwrap();
    assert_eq!(t.variables(), vec!["text"]);
}

#[test]
fn serde_round_trips_through_source_text() {
    let t = PromptTemplate::parse("Q: {q} {{}}").unwrap();
    let s = serde_json::to_string(&t).unwrap();
    assert_eq!(s, "\"Q: {q} {{}}\"");
    let back: PromptTemplate = serde_json::from_str(&s).unwrap();
    assert_eq!(back, t);
    assert!(serde_json::from_str::<PromptTemplate>("\"{oops\"").is_err());
}

#[test]
fn from_segments_escapes_literals() {
    let t = PromptTemplate::from_segments(vec![
        Segment::Literal("a{".into()),
        Segment::Literal("}".into()),
        Segment::Variable("x".into()),
    ]);
    assert_eq!(t.source(), "a{{}}{x}");
    assert_eq!(PromptTemplate::parse(t.source()).unwrap(), t);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-zA-Z0-9 {}\"\\n:,\\[\\]é]{1,12}".prop_map(Segment::Literal),
            "[a-z_][a-z0-9_]{0,6}".prop_map(Segment::Variable),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = PromptTemplate::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_brace_heavy_input(s in "[{}a ]{0,40}") {
            let _ = PromptTemplate::parse(&s);
        }

        #[test]
        fn render_of_parse_round_trips(segs in proptest::collection::vec(segment(), 0..8)) {
            let built = PromptTemplate::from_segments(segs.clone());
            let parsed = PromptTemplate::parse(built.source()).unwrap();
            prop_assert_eq!(&parsed, &built);
            // Render with every variable bound to `<name>` and compare with the segments.
            let mut fields = serde_json::Map::new();
            let mut expected = String::new();
            for s in &segs {
                match s {
                    Segment::Literal(t) => expected.push_str(t),
                    Segment::Variable(v) => {
                        fields.insert(v.clone(), Value::String(format!("<{v}>")));
                        expected.push_str(&format!("<{v}>"));
                    }
                }
            }
            let r = Row::new("p", fields);
            prop_assert_eq!(parsed.render(&r).unwrap(), expected);
        }
    }
}
