//! An OpenAI-compatible mock server for tests and benchmarks, on 127.0.0.1 with a random port.
//!
//! It answers teacher requests (those asking for a prompt rewrite) with valid structured
//! rewrites and student requests deterministically from the prompt, so runs are comparable;
//! it injects faults from a seed (429 with `Retry-After`, 500, hangs, truncated bodies) and
//! counts requests by kind, repeated student requests and the most requests in flight.
//!
//! The student is a keyword classifier for the bundled SMS task: with the base prompt it
//! answers `ham` to everything; once the prompt mentions prizes or money it flags messages with
//! such words as `spam`. So an optimization against it has something to find.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

/// Faults and latency.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// Latency added to every answer, slept on a blocking thread so it is precise to tens of
    /// microseconds rather than rounded up to the async timer's millisecond.
    pub latency: Duration,
    /// Probability of a 429 with `Retry-After: 0`.
    pub p_429: f64,
    /// Probability of a 500.
    pub p_500: f64,
    /// Probability of hanging for `hang` before answering.
    pub p_hang: f64,
    /// How long a hang lasts.
    pub hang: Duration,
    /// Probability of a truncated JSON body.
    pub p_truncate: f64,
    /// Seed of the fault draws.
    pub seed: u64,
    /// The first this-many teacher answers are not JSON (a teacher gone bad for a while).
    pub garbage_teacher_calls: u64,
    /// After this many successful student answers, a fraction of student requests (chosen by
    /// their body) fail with 500 forever.
    pub fail_students_after: Option<(u64, f64)>,
    /// Student answers with this text for every request, when set.
    pub student_reply: Option<String>,
    /// Answer every request with a 401 whose body echoes the request's headers (a server that
    /// leaks the credentials it was sent).
    pub echo_auth_401: bool,
    /// The student appends a mark of its prompt to every answer (` #123`), so that two
    /// prompts never give the same output and never share a judge request.
    pub mark_student_answers: bool,
    /// How long each step of a batch takes (validating, answering, finalizing); zero means
    /// 300 ms.
    pub batch_step: Duration,
    /// Every this-many-th line of a batch fails (into the error file); zero fails none.
    pub batch_fail_every: u64,
}

/// Request counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Every request.
    pub requests: u64,
    /// Student requests answered successfully.
    pub student: u64,
    /// Teacher requests answered successfully.
    pub teacher: u64,
    /// Judge requests (LLM-as-judge) answered successfully.
    pub judge: u64,
    /// Successful student requests that carried a system message.
    pub student_with_system: u64,
    /// Requests to the Anthropic Messages route answered successfully.
    pub anthropic: u64,
    /// FutureAGI evaluations answered.
    pub futureagi: u64,
    /// FutureAGI catalogue listings answered.
    pub futureagi_catalogue: u64,
    /// Successful student requests whose body was answered before.
    pub repeated_student: u64,
    /// Successful teacher requests whose body was answered before.
    pub repeated_teacher: u64,
    /// Successful judge requests whose body was answered before.
    pub repeated_judge: u64,
    /// Injected faults.
    pub faults: u64,
    /// Most requests in flight at once.
    pub max_in_flight: u64,
    /// Files uploaded (`POST /v1/files`).
    pub files_uploaded: u64,
    /// Batches created.
    pub batches_created: u64,
    /// Batch cancellations asked for.
    pub batches_cancelled: u64,
    /// Batch lines processed (answered or failed).
    pub batch_lines: u64,
}

pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    pub(crate) garbage_served: AtomicU64,
    pub(crate) counter: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) seen: Mutex<HashMap<String, u64>>,
    pub(crate) handled: Mutex<Vec<Duration>>,
    pub(crate) batch: Mutex<batch::Store>,
    /// Hashes of the student request bodies answered successfully, in order.
    pub(crate) answered: Mutex<Vec<u64>>,
    /// Killed: every request fails with 503.
    pub(crate) dead: std::sync::atomic::AtomicBool,
}

mod answers;
mod batch;
mod chat;
mod messages;

pub use batch::run_batch;

impl Shared {
    pub(crate) fn new(config: MockConfig) -> Shared {
        Shared {
            config,
            garbage_served: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
            seen: Mutex::new(HashMap::new()),
            handled: Mutex::new(Vec::new()),
            batch: Mutex::new(batch::Store::default()),
            answered: Mutex::new(Vec::new()),
            dead: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// A running mock server.
pub struct MockServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    serving: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl MockServer {
    /// Starts a server on 127.0.0.1 with a random port, on the current tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        MockServer::serve(listener, config)
    }

    /// Starts a server on its own thread and tokio runtime, so that a benchmark's
    /// measurements of its client are the client's alone. Every thread of the mock (its
    /// runtime's and the blocking threads that hold requests for the latency) is named
    /// `mock…`, so CPU time can be told apart per thread. The server runs until the process
    /// ends.
    pub fn spawn(config: MockConfig) -> std::io::Result<Arc<MockServer>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("mock".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("mock-blocking")
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match MockServer::start(config).await {
                        Ok(server) => {
                            let _ = tx.send(Ok(Arc::new(server)));
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        rx.recv()
            .map_err(|_| std::io::Error::other("the mock's thread stopped while starting"))?
    }

    /// Serves on a bound listener.
    pub fn serve(
        listener: tokio::net::TcpListener,
        config: MockConfig,
    ) -> std::io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat::chat))
            .route("/v1/messages", post(messages::anthropic))
            .route("/sdk/api/v1/new-eval/", post(messages::futureagi_eval))
            .route("/sdk/api/v1/get-evals/", get(messages::futureagi_catalogue))
            .route("/stats", get(stats));
        // The Files and Batches API, at OpenAI's paths and at Azure's resource-level ones.
        let mut app = app;
        for prefix in ["/v1", "/openai/v1"] {
            app = app
                .route(&format!("{prefix}/files"), post(batch::upload))
                .route(
                    &format!("{prefix}/files/{{id}}/content"),
                    get(batch::content),
                )
                .route(&format!("{prefix}/batches"), post(batch::create))
                .route(&format!("{prefix}/batches/{{id}}"), get(batch::retrieve))
                .route(
                    &format!("{prefix}/batches/{{id}}/cancel"),
                    post(batch::cancel),
                );
        }
        // Batch input files may be 200 MB (axum's default limit is 2 MB).
        let app = app
            .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(shared.clone());
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(MockServer {
            addr,
            shared,
            serving: Mutex::new(Some(serving)),
        })
    }

    /// Kills the server: it stops accepting connections, and every request on a connection
    /// already open (in flight or new) fails with 503, as a replica that went down.
    pub fn kill(&self) {
        self.shared.dead.store(true, Ordering::SeqCst);
        if let Some(h) = lock(&self.serving).take() {
            h.abort();
        }
    }

    /// Hashes of the student request bodies this server answered successfully: a body in two
    /// servers' lists was paid twice.
    pub fn answered_students(&self) -> Vec<u64> {
        lock(&self.shared.answered).clone()
    }

    /// The base URL to configure (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// How long the handler held each request so far (latency included), in arrival order: what
    /// a client's wall time per call is compared with to get the client's own overhead.
    pub fn handling_times(&self) -> Vec<Duration> {
        lock(&self.shared.handled).clone()
    }
}

/// The process's peak resident memory in MB (`VmHWM`, Linux; 0 elsewhere), for benchmarks.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn stats(State(s): State<Arc<Shared>>) -> Json<Stats> {
    Json(lock(&s.stats).clone())
}

/// FNV-1a of a text.
pub(crate) fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A uniform draw in [0, 1) from the seed and the request number (SplitMix64).
pub(crate) fn draw(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn post(server: &MockServer, body: &str) -> String {
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn latency_is_held_and_recorded_per_request() {
        let latency = Duration::from_millis(30);
        let server = MockServer::start(MockConfig {
            latency,
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let body = r#"{"model":"m","messages":[{"role":"user","content":"Win a prize now\n\nclaim your cash"}]}"#;
        let started = Instant::now();
        let reply = post(&server, body).await;
        let wall = started.elapsed();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        // The instructions mention a prize, and the message has spam words.
        assert!(reply.contains(r#""content":"spam""#), "{reply}");
        let held = server.handling_times();
        assert_eq!(held.len(), 1);
        assert!(held[0] >= latency, "held {:?}", held[0]);
        assert!(held[0] <= wall, "held {:?} > wall {wall:?}", held[0]);
        assert_eq!(server.stats().student, 1);
    }
}
