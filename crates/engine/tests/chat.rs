#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Chat prompts: the teacher sees every message with its role and rewrites only those it may.

mod common;

use std::sync::Arc;

use common::*;
use metaprompt_core::testing::ScriptedModel;
use metaprompt_core::{ChatRequest, Prompt, Role};
use serde_json::json;

fn chat_prompt() -> Prompt {
    Prompt::from_messages([
        (Role::System, "You classify SMS messages as spam or ham."),
        (Role::User, "Message: {text}"),
    ])
    .unwrap()
}

fn chat_rewrite(system: &str, user: &str) -> String {
    json!({"analysis": "a", "hypothesis": "h", "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]})
    .to_string()
}

#[tokio::test]
async fn the_teacher_sees_roles_and_a_rewrite_of_a_fixed_message_is_asked_again() {
    let student = accuracy_student();
    let teacher = Arc::new(ScriptedModel::new("t").replies([
        chat_rewrite("RULE-B You classify SMS messages.", "Classify: {text}"),
        chat_rewrite("RULE-B You classify SMS messages.", "Message: {text}"),
    ]));
    let mut req = request(student.clone(), 1);
    req.initial_prompts = vec![chat_prompt()];
    req.config.editable = Some(vec![Role::System]);
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    let first = &teacher.requests()[0];
    assert!(
        first.messages[0].content.contains("\"messages\": ["),
        "the chat schema is asked for"
    );
    let brief = &first.messages[1].content;
    assert!(
        brief.contains("<message role=\"system\" editable>"),
        "{brief}"
    );
    assert!(
        brief.contains("<message role=\"user\" fixed: return it unchanged>"),
        "{brief}"
    );
    assert_eq!(
        teacher.call_count(),
        2,
        "the rewrite of the user message was refused"
    );
    let reask = teacher.requests()[1]
        .messages
        .last()
        .unwrap()
        .content
        .clone();
    assert!(
        reask.contains("the user message may not be changed"),
        "{reask}"
    );
    let best = res.best_prompt.messages();
    assert_eq!(
        best[0].template.source(),
        "RULE-B You classify SMS messages."
    );
    assert_eq!(best[1].template.source(), "Message: {text}");
    // Every student call carries both messages.
    assert!(
        student
            .requests()
            .iter()
            .all(|r: &ChatRequest| r.messages.len() == 2 && r.messages[0].role == Role::System)
    );
}

#[tokio::test]
async fn a_variable_may_move_between_editable_messages() {
    let teacher = Arc::new(
        ScriptedModel::new("t").reply(chat_rewrite("RULE-B Classify this: {text}", "Answer now.")),
    );
    let mut req = request(accuracy_student(), 1);
    req.initial_prompts = vec![chat_prompt()];
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(teacher.call_count(), 1, "accepted at once");
    assert!(res.history[0].accepted, "{:?}", res.history[0]);
    assert_eq!(
        res.best_prompt.messages()[0].template.source(),
        "RULE-B Classify this: {text}"
    );
}

#[tokio::test]
async fn a_label_field_in_any_message_is_refused() {
    for (system, user) in [
        ("RULE-B The answer is {label}.", "Message: {text}"),
        ("RULE-B You classify.", "{text} (it is {label})"),
    ] {
        let student = accuracy_student();
        let teacher =
            Arc::new(ScriptedModel::new("t").with_handler(move |_| Ok(chat_rewrite(system, user))));
        let mut req = request(student.clone(), 1);
        req.initial_prompts = vec![chat_prompt()];
        let res = optimizer(teacher.clone(), Arc::default())
            .optimize(req)
            .await
            .unwrap();
        assert!(res.history[0].failed, "{:?}", res.history[0]);
        assert!(res.history[0].reason.contains("expected answers"));
        assert!(
            student
                .requests()
                .iter()
                .all(|r| !r.messages.iter().any(|m| m.content.contains("it is ")))
        );
    }
}

#[tokio::test]
async fn editable_roles_the_prompt_lacks_are_refused_before_any_call() {
    let student = accuracy_student();
    let mut req = request(student.clone(), 1);
    req.config.editable = Some(vec![Role::System]);
    let err = req.check().unwrap_err();
    assert!(err.to_string().contains("no such message"), "{err}");
    assert_eq!(student.call_count(), 0);
}
