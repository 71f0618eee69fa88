//! The guards' unit tests.
use super::*;

fn ctx() -> GuardContext {
    GuardContext {
        required: ["text".to_string()].into(),
        available: ["text".to_string(), "context".into(), "label".into()].into(),
        labels: ["label".to_string()].into(),
        max_chars: 200,
        editable: [Role::User].into(),
        ..GuardContext::default()
    }
}

#[test]
fn degenerate_instructions_are_refused() {
    let c = GuardContext {
        label_values: ["positive".to_string(), "negative".into()].into(),
        min_instruction_words: 4,
        ..ctx()
    };
    let degenerate = |t: &str| matches!(c.check(t), Err(Violation::Degenerate(_)));
    assert!(degenerate("{text}"), "empty");
    assert!(degenerate("Text: {text}"), "only an input line");
    assert!(degenerate("positive\n\nText: {text}"), "a bare label");
    assert!(degenerate("Positive!\n{text}"), "a label, punctuated");
    assert!(degenerate("positive or negative\n{text}"), "three words");
    assert!(degenerate("positive"), "a label that also drops the input");
    assert!(
        c.check("Answer positive or negative.\n\nText: {text}")
            .is_ok()
    );
    assert!(
        c.check("Classify the sentiment of {text} as positive or negative.")
            .is_ok()
    );
    // 0 disables the minimum; the label-only rule stays.
    let off = GuardContext {
        min_instruction_words: 0,
        ..c.clone()
    };
    assert!(off.check("Classify.\n{text}").is_ok());
    assert!(matches!(
        off.check("negative {text}"),
        Err(Violation::Degenerate(_))
    ));
    // The repair never makes a candidate of a degenerate reply.
    let bare = Prompt::parse("positive").unwrap();
    assert!(matches!(
        c.repair(&bare, &["text".to_string()]),
        Err(Violation::Degenerate(_))
    ));
}

#[test]
fn healing_keeps_variables_and_escapes() {
    assert_eq!(heal_braces("{text} {{x}} {"), "{text} {{x}} {{");
    assert_eq!(heal_braces("}{ {not a var}"), "}}{{ {{not a var}}");
    assert_eq!(heal_braces("{ text }"), "{text}");
}

#[test]
fn each_violation_is_detected() {
    let c = ctx();
    assert!(matches!(c.check("Classify."), Err(Violation::MissingVariables(v)) if v == ["text"]));
    assert!(matches!(
        c.check("{text} answer is {label}"),
        Err(Violation::LabelVariables(_))
    ));
    assert!(matches!(
        c.check("{text} {topic}"),
        Err(Violation::UnknownVariables(..))
    ));
    assert!(matches!(
        c.check(&format!("{} {{text}}", "x".repeat(300))),
        Err(Violation::TooLong { .. })
    ));
    let mut seen = ctx();
    seen.seen.insert(normalised("Classify   {text}"));
    assert_eq!(seen.check("Classify\n{text}"), Err(Violation::Duplicate));
    let ok = c
        .check("Use {context} and {text}; reply {\"a\": 1}")
        .unwrap();
    assert_eq!(ok.prompt.variables(), vec!["context", "text"]);
}

#[test]
fn a_sentence_repeated_over_and_over_is_refused() {
    let mut c = ctx();
    c.max_chars = 10_000;
    let rep = "Classify the message. ".repeat(5) + "{text}";
    assert!(matches!(c.check(&rep), Err(Violation::Repetitive(_))));
    let phrase = "answer with spam or ham only, ".repeat(5) + "{text}";
    assert!(matches!(c.check(&phrase), Err(Violation::Repetitive(_))));
    assert!(
        c.check("Classify the message. Say spam or ham. Spam offers prizes.\n{text}")
            .is_ok()
    );
}

#[test]
fn repair_appends_missing_inputs() {
    let c = ctx();
    let p = Prompt::parse("Classify the message.").unwrap();
    let r = c.repair(&p, &["text".into()]).unwrap();
    assert!(r.repaired);
    assert_eq!(r.prompt.text(), "Classify the message.\n\nText: {text}");
}

#[test]
fn reference_copying_is_refused_when_enabled() {
    let mut c = ctx();
    c.add_reference("the quick brown fox jumps over the lazy dog today");
    let err = c
        .check("Answer like: The quick brown fox jumps over the lazy dog. {text}")
        .unwrap_err();
    assert!(matches!(err, Violation::CopiesReference(_)));
}

fn chat() -> Prompt {
    Prompt::from_messages([(Role::System, "Classify SMS."), (Role::User, "{text}")]).unwrap()
}

#[test]
fn a_message_that_may_not_be_edited_must_come_back_unchanged() {
    let mut c = ctx();
    c.editable = [Role::System].into();
    let err = c
        .check_messages(
            &chat(),
            &[
                (Role::System, "Classify SMS as spam or ham.".into()),
                (Role::User, "Message: {text}".into()),
            ],
        )
        .unwrap_err();
    assert!(
        matches!(err, Violation::NotEditable(Role::User, _)),
        "{err}"
    );
    let ok = c
        .check_messages(
            &chat(),
            &[
                (Role::System, "Classify SMS as spam or ham.".into()),
                (Role::User, " {text}\n".into()),
            ],
        )
        .unwrap();
    assert_eq!(ok.prompt.messages()[1].template.source(), "{text}");
}

#[test]
fn variables_may_move_between_editable_messages() {
    let mut c = ctx();
    c.editable = [Role::System, Role::User].into();
    let ok = c
        .check_messages(
            &chat(),
            &[
                (Role::System, "Classify: {text}".into()),
                (Role::User, "Answer now.".into()),
            ],
        )
        .unwrap();
    assert_eq!(ok.prompt.variables(), vec!["text"]);
    let labels = c.check_messages(
        &chat(),
        &[
            (Role::System, "Know {label}.".into()),
            (Role::User, "{text}".into()),
        ],
    );
    assert!(matches!(labels, Err(Violation::LabelVariables(_))));
    let wrong = c.check_messages(&chat(), &[(Role::User, "{text}".into())]);
    assert!(matches!(wrong, Err(Violation::Structure(..))));
}

#[test]
fn a_rewrite_that_copies_the_worked_examples_task_is_refused() {
    let c = GuardContext {
        foreign_words: ["ticket".to_string(), "routine".into()].into(),
        ..ctx()
    };
    let copied = "Decide whether the support ticket is urgent or routine.\n{text}";
    assert_eq!(
        c.check(copied),
        Err(Violation::CopiesExample("ticket".into()))
    );
    assert!(
        c.check(copied)
            .unwrap_err()
            .to_string()
            .contains("the worked example's task")
    );
    assert!(
        c.check("Decide whether the message is spam.\n{text}")
            .is_ok()
    );
}
