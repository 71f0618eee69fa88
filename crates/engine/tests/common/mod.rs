//! Shared set-up of the engine's flow tests: a small SMS-like dataset, a student whose
//! accuracy depends on which instructions the prompt holds, scripted teachers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod sim;

use std::sync::{Arc, Mutex};

use metaprompt_core::run::{Phase, RunEvent};
use metaprompt_core::testing::ScriptedModel;
use metaprompt_core::{ChatRequest, EventSink, Prompt, Row};
use metaprompt_data::{BasicDataMapper, Dataset, SplitConfig};
use metaprompt_engine::{
    Acceptance, DataSource, EditMode, MetaPromptOptimizer, MutationKind, OptimizeRequest,
    ParentSelection,
};
use metaprompt_evals::{ExactMatch, Normalize};
use serde_json::json;

pub const BASE: &str = "Is this message spam or ham? Answer with one word.\n\n{text}";

pub fn p(text: &str) -> Prompt {
    Prompt::parse(text).unwrap()
}

pub fn label(i: usize) -> &'static str {
    if i.is_multiple_of(4) { "spam" } else { "ham" }
}

pub fn dataset(n: usize) -> Dataset {
    Dataset::new(
        (1..=n)
            .map(|i| {
                Row::from_json(
                    i.to_string(),
                    json!({"text": format!("msg {i}"), "label": label(i)}),
                )
                .unwrap()
            })
            .collect(),
    )
    .with_label_fields(["label"])
    .unwrap()
}

/// The row number a rendered request is about (`msg 17` → 17), wherever the input sits.
pub fn row_of(req: &ChatRequest) -> usize {
    whole(req)
        .rsplit("msg ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or(0)
}

/// Every message of a request, joined: what a prompt "says" to the student.
pub fn whole(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The answer of a student whose accuracy depends on which instructions the prompt holds.
pub fn accuracy_answer(req: &ChatRequest) -> String {
    let i = row_of(req);
    let prompt = whole(req);
    let right = label(i);
    let wrong = if right == "spam" { "ham" } else { "spam" };
    let correct = if prompt.contains("HARM") {
        false
    } else if prompt.contains("RULE-B") {
        true
    } else if prompt.contains("RULE-A") {
        !i.is_multiple_of(7)
    } else {
        i.is_multiple_of(3)
    };
    if correct { right } else { wrong }.to_string()
}

/// A student whose accuracy depends on which instructions the prompt holds.
pub fn accuracy_student() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::new("student").with_handler(|req: &ChatRequest| Ok(accuracy_answer(req))),
    )
}

pub fn rewrite(hypothesis: &str, prompt: &str) -> String {
    json!({"analysis": "pattern", "hypothesis": hypothesis, "improved_prompt": prompt}).to_string()
}

pub fn request(student: Arc<ScriptedModel>, rounds: u32) -> OptimizeRequest {
    request_on(student, dataset(40), rounds)
}

/// A request on `ds` that follows one line of descent (`parent_selection = "current"`, one
/// rewrite per round) and accepts on a higher val mean (10 val rows are too few for the paired test), as the
/// protocol tests expect; the search tests set their own.
pub fn request_on(student: Arc<ScriptedModel>, ds: Dataset, rounds: u32) -> OptimizeRequest {
    let mapper = BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        &ds,
    )
    .unwrap();
    let mut r = OptimizeRequest::new(
        student,
        Arc::new(ExactMatch::new(Normalize::all())),
        Arc::new(mapper),
        DataSource::Dataset(
            ds,
            SplitConfig {
                seed: 3,
                ..SplitConfig::default()
            },
        ),
        vec![p(BASE)],
    );
    r.config.num_rounds = rounds;
    r.config.eval_subset_size = 8;
    r.config.parent_selection = ParentSelection::Current;
    r.config.proposals_per_round = 1;
    r.config.parents_per_round = 1;
    r.config.mutations = vec![MutationKind::Rewrite];
    // The scripted rewrites are symbols (`RULE-A`), not sentences.
    r.config.min_instruction_words = 0;
    // The scripted teachers return whole prompts and the tests read the brief's `<prompt>`;
    // tests/rewrites.rs covers instruction edits.
    r.config.edit = EditMode::Whole;
    r.config.acceptance = Acceptance::Mean;
    r.task_description = "Decide whether an SMS message is spam.".into();
    r
}

#[derive(Default)]
pub struct Events(pub Mutex<Vec<RunEvent>>);

impl EventSink for Events {
    fn emit(&self, e: &RunEvent) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Events {
    pub fn evaluations(&self, phase: Phase) -> usize {
        self.0.lock().unwrap().iter().filter(|e| matches!(e, RunEvent::Evaluated { phase: p, done, total } if *p == phase && done == total)).count()
    }
}

pub fn optimizer(teacher: Arc<ScriptedModel>, events: Arc<Events>) -> MetaPromptOptimizer {
    MetaPromptOptimizer::builder()
        .teacher(teacher)
        .events(events)
        .build()
        .unwrap()
}

pub fn teacher_prompt(t: &ScriptedModel, call: usize) -> String {
    t.requests()[call].messages[1].content.clone()
}

/// The key map of the SMS-like task: the student's output against the `label` column.
pub fn mapper(ds: &Dataset) -> BasicDataMapper {
    BasicDataMapper::for_dataset(
        [
            ("response", "generated_output"),
            ("expected_response", "label"),
        ],
        ds,
    )
    .unwrap()
}

/// The prompt a brief shows as the one to improve (prompt A of a merge).
pub fn current_prompt(brief: &str) -> String {
    let start = brief.find("<prompt>\n").expect("a prompt in the brief") + "<prompt>\n".len();
    let end = start + brief[start..].find("\n</prompt>").unwrap();
    brief[start..end].to_string()
}

/// The instruction a brief shows for an instruction edit (that of prompt A of a merge).
pub fn current_instruction(brief: &str) -> String {
    let start = brief
        .find("<instruction>\n")
        .expect("an instruction in the brief")
        + "<instruction>\n".len();
    let end = start + brief[start..].find("\n</instruction>").unwrap();
    brief[start..end].to_string()
}
