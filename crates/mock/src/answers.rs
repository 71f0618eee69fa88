//! What the mock answers: a keyword classifier as the student, deterministic rewrites as the
//! teacher (one-string and chat prompts), a label-matching judge.

use serde_json::{Value, json};

const SPAM_WORDS: [&str; 14] = [
    "win", "prize", "free", "claim", "cash", "£", "urgent", "offer", "loan", "bitcoin", "click",
    "reply", "call now", "earn",
];

pub(crate) fn student_answer(prompt: &str) -> &'static str {
    let lower = prompt.to_lowercase();
    // The message is the last paragraph of the rendered prompt; the instructions come before.
    let (instructions, message) = lower.rsplit_once("\n\n").unwrap_or(("", &lower));
    let guided = instructions.contains("prize") || instructions.contains("money");
    if guided && SPAM_WORDS.iter().any(|w| message.contains(w)) {
        "spam"
    } else {
        "ham"
    }
}

/// Every message of a student request, joined: instructions may sit in a system message.
pub(crate) fn whole_prompt(messages: &[Value]) -> String {
    messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A judge that gives 5 when the response names the reference label and 1 otherwise.
pub(crate) fn judge_answer(user: &str) -> String {
    let section = |title: &str| {
        user.split(&format!("## {title}\n<<<\n"))
            .nth(1)
            .and_then(|s| s.split("\n>>>").next())
            .unwrap_or("")
            .trim()
            .to_lowercase()
    };
    let response = section("Response to evaluate");
    let reference = section("Reference answer");
    let good = !reference.is_empty() && response.contains(&reference);
    json!({"reasoning": if good { "names the expected label" } else { "does not name the expected label" }, "score": if good { 5 } else { 1 }}).to_string()
}

pub(crate) fn teacher_answer(user: &str, system: &str) -> String {
    // The idea depends on the request only (how many rounds the ledger holds), never on the
    // request count, so runs with and without faults get the same answers.
    // Parallel proposals of one round each take a different idea.
    let proposal = user
        .split("You are proposal ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(0, |k| k - 1);
    let call = user.matches("\nRound ").count() as u64 + proposal;
    let current = user
        .split("<prompt>\n")
        .nth(1)
        .and_then(|s| s.split("\n</prompt>").next())
        .unwrap_or("{text}");
    let ideas = [
        (
            "Messages offering prizes, money or urgent claims are spam.",
            "the prompt never says what spam looks like",
        ),
        (
            "Reply with exactly one word: spam or ham.",
            "outputs are not constrained to the labels",
        ),
        (
            "Personal messages between friends are ham.",
            "ham is not described",
        ),
    ];
    let (line, why) = ideas[(call % ideas.len() as u64) as usize];
    let analysis = format!("Failures suggest {why}.");
    let hypothesis = format!("Adding '{line}' fixes it.");
    if system.contains("\"instruction\": ...") {
        // An instruction edit: the engine keeps the inputs; add the idea to the instruction.
        let current = user
            .split("<instruction>\n")
            .nth(1)
            .and_then(|s| s.split("\n</instruction>").next())
            .unwrap_or("")
            .trim();
        let instruction = if current.is_empty() || current.starts_with("(none yet") {
            line.to_string()
        } else {
            format!("{current}\n{line}")
        };
        return json!({"analysis": analysis, "hypothesis": hypothesis, "instruction": instruction})
            .to_string();
    }
    if system.contains("\"messages\": [") {
        // A chat prompt: add the idea to the system message, keep the others as they are.
        let messages: Vec<Value> = user
            .split("<message role=\"")
            .skip(1)
            .filter_map(|m| {
                let (role, rest) = m.split_once('"')?;
                let content = rest.split_once(">\n")?.1.split("\n</message>").next()?;
                let content = if role == "system" {
                    format!("{content}\n{line}")
                } else {
                    content.to_string()
                };
                Some(json!({"role": role, "content": content}))
            })
            .collect();
        return json!({"analysis": analysis, "hypothesis": hypothesis, "messages": messages})
            .to_string();
    }
    let prompt = match current.rfind("{text}") {
        Some(i) => format!("{}{line}\n\n{}", &current[..i], &current[i..]),
        None => format!("{current}\n{line}"),
    };
    json!({"analysis": analysis, "hypothesis": hypothesis, "improved_prompt": prompt}).to_string()
}

/// The text of the first (or the last) message with `role` in a request's message list; empty
/// when there is none.
pub(crate) fn content<'a>(messages: &'a [serde_json::Value], role: &str, last: bool) -> &'a str {
    let is_role = |m: &&serde_json::Value| m["role"] == role;
    let found = if last {
        messages.iter().rev().find(is_role)
    } else {
        messages.iter().find(is_role)
    };
    found.and_then(|m| m["content"].as_str()).unwrap_or("")
}
