//! The chat-completions route: faults, latency and the answer of each role (a batch line is
//! answered by the same `completion` as a live request).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answers::{content, judge_answer, student_answer, teacher_answer, whole_prompt};
use crate::{Shared, draw, hash, lock};

pub(crate) async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let arrived = Instant::now();
    let n = s.counter.fetch_add(1, Ordering::SeqCst);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut st = lock(&s.stats);
        st.requests += 1;
        st.max_in_flight = st.max_in_flight.max(now);
    }
    let resp = if s.dead.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "replica down").into_response()
    } else if s.config.echo_auth_401 {
        let seen: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": format!("invalid credentials; you sent {}", seen.join("; ")), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
        )
            .into_response()
    } else {
        answer(&s, n, &body).await
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    lock(&s.handled).push(arrived.elapsed());
    resp
}

async fn answer(s: &Shared, n: u64, body: &str) -> Response {
    let c = &s.config;
    if !c.latency.is_zero() {
        let latency = c.latency;
        // The async timer rounds every sleep up to the next millisecond tick; a thread sleep
        // does not, and a benchmark's bound is only as good as this latency.
        if tokio::task::spawn_blocking(move || std::thread::sleep(latency))
            .await
            .is_err()
        {
            tokio::time::sleep(latency).await;
        }
    }
    if s.dead.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "replica down").into_response();
    }
    let r = draw(c.seed, n);
    let fault = |st: &Shared| lock(&st.stats).faults += 1;
    if r < c.p_429 {
        fault(s);
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], Json(json!({"error": {"message": "rate limited", "type": "rate_limit_error", "param": null, "code": null}}))).into_response();
    }
    if r < c.p_429 + c.p_500 {
        fault(s);
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    if r < c.p_429 + c.p_500 + c.p_hang {
        fault(s);
        tokio::time::sleep(c.hang).await;
        return (StatusCode::SERVICE_UNAVAILABLE, "hung").into_response();
    }
    let truncate = r < c.p_429 + c.p_500 + c.p_hang + c.p_truncate;
    let completion = match completion(s, n, body, |completion| {
        if truncate {
            fault(s);
            Err(completion)
        } else {
            Ok(completion)
        }
    }) {
        Ok(c) => c,
        Err(Reply::Truncated(completion)) => {
            let cut = completion.len() / 2;
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                completion[..cut].to_string(),
            )
                .into_response();
        }
        Err(Reply::Error(status, v)) => return (status, Json(v)).into_response(),
        Err(Reply::Plain(status, text)) => return (status, text).into_response(),
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        completion,
    )
        .into_response()
}

/// A request the mock did not answer with a completion.
pub(crate) enum Reply {
    /// A JSON error body.
    Error(StatusCode, Value),
    /// A plain-text error body.
    Plain(StatusCode, &'static str),
    /// A completion cut in half on the wire.
    Truncated(String),
}

/// The chat completion for a request body, counted by kind (a batch line is answered by the
/// same function as a live request). `deliver` decides, given the completion, whether it is
/// sent whole (`Ok`) or cut (`Err`); only what is delivered whole is counted.
pub(crate) fn completion(
    s: &Shared,
    n: u64,
    body: &str,
    deliver: impl FnOnce(String) -> Result<String, String>,
) -> Result<String, Reply> {
    let c = &s.config;
    let fault = |st: &Shared| lock(&st.stats).faults += 1;
    let req: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            return Err(Reply::Error(
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "invalid JSON body", "type": "invalid_request_error", "param": null, "code": null}}),
            ));
        }
    };
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let system = content(&messages, "system", false);
    let user = content(&messages, "user", true);
    let is_teacher = system.starts_with("You improve prompts");
    let is_judge = system.starts_with("You are a strict, fair evaluator");
    if !is_teacher
        && !is_judge
        && let Some((after, fraction)) = c.fail_students_after
        && lock(&s.stats).student >= after
        && draw(hash(body), 0) < fraction
    {
        fault(s);
        return Err(Reply::Plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "student backend down",
        ));
    }
    let first_user = content(&messages, "user", false);
    let student_text = |user: &str| {
        let answer = c
            .student_reply
            .clone()
            .unwrap_or_else(|| student_answer(user).to_string());
        if c.mark_student_answers {
            let instructions = user.rsplit_once("\n\n").map_or("", |(i, _)| i);
            format!("{answer} #{}", hash(instructions) % 1000)
        } else {
            answer
        }
    };
    let text = if is_teacher {
        if s.garbage_served.load(Ordering::SeqCst) < c.garbage_teacher_calls {
            s.garbage_served.fetch_add(1, Ordering::SeqCst);
            "I'd rather not say.".to_string()
        } else {
            teacher_answer(first_user, system)
        }
    } else if is_judge {
        judge_answer(user)
    } else if req["response_format"]["json_schema"]["name"] == "answer" {
        // A student constrained to a label set answers in the structured form it was asked for.
        json!({"answer": student_text(&whole_prompt(&messages))}).to_string()
    } else {
        student_text(&whole_prompt(&messages))
    };
    let completion = json!({
        "id": format!("mock-{n}"), "object": "chat.completion", "created": 0,
        "model": req["model"].as_str().unwrap_or("mock"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": body.len() as u64 / 4, "completion_tokens": text.len() as u64 / 4 + 1, "total_tokens": 0}
    })
    .to_string();
    let completion = deliver(completion).map_err(Reply::Truncated)?;
    {
        let mut st = lock(&s.stats);
        let repeated = {
            let mut seen = lock(&s.seen);
            let k = seen.entry(body.to_string()).or_insert(0);
            *k += 1;
            *k > 1
        };
        if is_teacher {
            st.teacher += 1;
            st.repeated_teacher += u64::from(repeated);
        } else if is_judge {
            st.judge += 1;
            st.repeated_judge += u64::from(repeated);
        } else {
            if !system.is_empty() {
                st.student_with_system += 1;
            }
            st.student += 1;
            st.repeated_student += u64::from(repeated);
            lock(&s.answered).push(hash(body));
        }
    }
    Ok(completion)
}
