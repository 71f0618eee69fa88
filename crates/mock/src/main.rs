//! `metaprompt-mock [--port N] [--latency-ms N]`: the mock OpenAI-compatible server as a
//! process, to try `metaprompt optimize` end to end without any model or key.
//!
//! Its student is a keyword classifier for the bundled SMS task and its teacher proposes
//! deterministic rewrites, so a run against it shows the whole loop, including improvement.

use std::time::Duration;

use metaprompt_mock::{MockConfig, MockServer};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "metaprompt-mock [--port N (default 8089)] [--latency-ms N]\nAn OpenAI-compatible mock server on 127.0.0.1 for trying metaprompt without a model."
        );
        return Ok(());
    }
    let port = arg("--port").unwrap_or(8089);
    let latency = Duration::from_millis(arg("--latency-ms").unwrap_or(0));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port as u16)).await?;
    let server = MockServer::serve(
        listener,
        MockConfig {
            latency,
            ..MockConfig::default()
        },
    )?;
    eprintln!(
        "mock OpenAI-compatible server on {} (Ctrl-C to stop)",
        server.base_url()
    );
    tokio::signal::ctrl_c().await?;
    let s = server.stats();
    eprintln!(
        "served {} requests ({} student, {} teacher)",
        s.requests, s.student, s.teacher
    );
    Ok(())
}
