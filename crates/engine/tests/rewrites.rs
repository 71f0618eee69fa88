#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What becomes of rewrites the guards object to: a repaired one says so wherever the result
//! shows it; a bare label is refused and re-asked, never repaired into a candidate; an
//! instruction edit cannot drop a variable.

mod common;

use std::sync::Arc;

use common::*;
use metaprompt_core::testing::ScriptedModel;
use metaprompt_engine::{Acceptance, EditMode};
use serde_json::json;

#[tokio::test]
async fn a_repaired_best_prompt_says_so_in_its_lineage_and_verdict() {
    // Every reply drops {text}; the last one is repaired (the input appended) and wins.
    let teacher = Arc::new(ScriptedModel::new("t").replies([
        rewrite("drop", "RULE-B Classify the message."),
        rewrite("drop", "RULE-B Classify the message."),
        rewrite("drop", "RULE-B Classify the message."),
    ]));
    let mut req = request(accuracy_student(), 1);
    req.config.acceptance = Acceptance::Mean;
    let res = optimizer(teacher, Arc::default())
        .optimize(req)
        .await
        .unwrap();
    let h = &res.history[0];
    assert!(h.repaired && h.accepted, "{h:?}");
    assert!(res.best_repaired);
    let node = res.lineage.iter().find(|n| n.best).unwrap();
    assert!(node.repaired && node.id != 0);
    assert!(!res.lineage[0].repaired);
    assert!(res.verdict().contains("repaired"), "{}", res.verdict());
}

#[tokio::test]
async fn a_bare_label_reply_is_refused_re_asked_and_never_repaired() {
    let teacher = Arc::new(ScriptedModel::new("t").replies([
        rewrite("label", "spam"),
        rewrite("label", "spam"),
        rewrite("label", "spam"),
    ]));
    let mut req = request(accuracy_student(), 1);
    req.config.min_instruction_words = 4;
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(teacher.call_count(), 3, "initial ask plus two re-asks");
    let reask = &teacher.requests()[1].messages;
    assert!(
        reask.last().unwrap().content.contains("only a label value"),
        "{:?}",
        reask.last()
    );
    let h = &res.history[0];
    assert!(h.failed && !h.repaired && h.val_score.is_none(), "{h:?}");
    assert_eq!(res.best_prompt.text(), BASE);
    assert!(!res.best_repaired);
}

fn instruction(text: &str) -> String {
    json!({"analysis": "pattern", "hypothesis": "say the rule", "instruction": text}).to_string()
}

#[tokio::test]
async fn an_instruction_edit_keeps_every_variable_the_teacher_leaves_out() {
    // The reply names no input at all: the engine puts `{text}` back where it was.
    let teacher = Arc::new(
        ScriptedModel::new("t")
            .replies([instruction("RULE-B Classify the message as spam or ham.")]),
    );
    let mut req = request(accuracy_student(), 1);
    req.config.edit = EditMode::Instruction;
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(teacher.call_count(), 1, "accepted on the first reply");
    assert_eq!(
        res.best_prompt.text(),
        "RULE-B Classify the message as spam or ham.\n\n{text}"
    );
    let h = &res.history[0];
    assert!(h.accepted && !h.repaired, "{h:?}");
    // The teacher was shown the instruction and the inputs apart, and asked for the instruction.
    let req = &teacher.requests()[0];
    assert!(req.messages[0].content.contains("\"instruction\": ..."));
    let brief = &req.messages[1].content;
    assert!(
        brief.contains(
            "<instruction>\nIs this message spam or ham? Answer with one word.\n</instruction>"
        ),
        "{brief}"
    );
    assert!(brief.contains("<inputs>\n{text}\n</inputs>"), "{brief}");
    let schema = serde_json::to_value(&req.response_schema.as_ref().unwrap().schema).unwrap();
    assert!(
        schema["properties"].get("instruction").is_some(),
        "{schema}"
    );
    assert!(
        schema["properties"].get("improved_prompt").is_none(),
        "{schema}"
    );
}

#[tokio::test]
async fn auto_edits_the_instruction_and_a_bare_label_is_still_refused() {
    // Default edit mode: the reply "spam" would assemble into "spam\n\n{text}": refused as a
    // label, re-asked; the next, a sentence, becomes the child.
    let teacher = Arc::new(ScriptedModel::new("t").replies([
        instruction("spam"),
        instruction("RULE-B Decide whether the message is spam or ham."),
    ]));
    let mut req = request(accuracy_student(), 1);
    req.config.edit = EditMode::default();
    req.config.min_instruction_words = 4;
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(teacher.call_count(), 2);
    let reask = teacher.requests()[1]
        .messages
        .last()
        .unwrap()
        .content
        .clone();
    assert!(reask.contains("only a label value"), "{reask}");
    assert_eq!(
        res.best_prompt.text(),
        "RULE-B Decide whether the message is spam or ham.\n\n{text}"
    );
}

#[tokio::test]
async fn whole_mode_is_unchanged_and_a_whole_reply_in_instruction_mode_is_checked_whole() {
    for edit in [EditMode::Whole, EditMode::Instruction] {
        // A whole prompt that drops `{text}`, three times: refused each time, then repaired
        // as before, in either mode.
        let teacher = Arc::new(ScriptedModel::new("t").replies([
            rewrite("drop", "RULE-B Classify the message."),
            rewrite("drop", "RULE-B Classify the message."),
            rewrite("drop", "RULE-B Classify the message."),
        ]));
        let mut req = request(accuracy_student(), 1);
        req.config.edit = edit;
        req.config.acceptance = Acceptance::Mean;
        let res = optimizer(teacher.clone(), Arc::default())
            .optimize(req)
            .await
            .unwrap();
        assert_eq!(teacher.call_count(), 3, "{edit:?}");
        assert!(res.history[0].repaired, "{edit:?}");
        let system = &teacher.requests()[0].messages[0].content;
        assert_eq!(
            system.contains("\"improved_prompt\": ..."),
            edit == EditMode::Whole,
            "{edit:?}"
        );
    }
}

#[tokio::test]
async fn a_label_reply_to_a_prompt_of_inline_inputs_is_refused_on_its_own_words() {
    // The whole prompt is one line with its input: the instruction goes in front of it, and
    // "spam" is judged alone, not with the question's words.
    let inline = "Is the message \"{text}\" spam or ham? Answer with one word.";
    let teacher = Arc::new(ScriptedModel::new("t").replies([
        instruction("spam"),
        instruction("spam"),
        instruction("RULE-B Messages that offer prizes are spam."),
    ]));
    let mut req = request(accuracy_student(), 1);
    req.initial_prompts = vec![p(inline)];
    req.config.edit = EditMode::Auto;
    req.config.min_instruction_words = 4;
    let res = optimizer(teacher.clone(), Arc::default())
        .optimize(req)
        .await
        .unwrap();
    assert_eq!(teacher.call_count(), 3);
    let brief = &teacher.requests()[0].messages[1].content;
    assert!(brief.contains("<instruction>\n(none yet"), "{brief}");
    assert_eq!(
        res.best_prompt.text(),
        format!("RULE-B Messages that offer prizes are spam.\n\n{inline}")
    );
}
