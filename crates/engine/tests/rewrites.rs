#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What becomes of rewrites the guards object to: a repaired one says so wherever the result
//! shows it; a bare label is refused and re-asked, never repaired into a candidate.

mod common;

use std::sync::Arc;

use common::*;
use metaprompt_core::testing::ScriptedModel;
use metaprompt_engine::Acceptance;

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
