//! The ingest API (issue 19): events/s over HTTP (`POST /api/v1/events`) with 16 clients,
//! against `mcp-audit log -` given the same events in the same run.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench ingest
//! EVENTS=4000 cargo bench -p mcp-audit --bench ingest     # a quick run
//! ```
//!
//! `EVENTS` (default 20,000) events, the same JSON lines each time (a tool call with
//! arguments and a result, a user and a session), go into a fresh SQLite database four ways,
//! each measured from its start to its last event durable:
//!
//! - `log -`: one process reads them all from stdin and writes them in one transaction, the
//!   ceiling of this machine for these events through the same checks and the same recorder
//!   (the process's start and the database's creation included);
//! - HTTP, 16 clients, one event per request with `?wait=durable` (the Python client's way):
//!   the recorder's group commit joins the clients' events;
//! - HTTP, 16 clients, 100 events per request (JSON lines, `?wait=durable`): one
//!   transaction per request;
//! - HTTP, 16 clients, 100 events per request without `wait` (answered once checked and
//!   queued; the clock stops when `serve` has stopped, so that every event is durable).
//!
//! Each HTTP figure is given as events/s and as a share of `log -`'s events/s in the same
//! run. The load generator (reqwest, keep-alive) runs in this process on the same two cores
//! as the server.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");
const CLIENTS: usize = 16;
const BATCH: usize = 100;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The i-th event, as one JSON line.
fn event_line(i: usize) -> String {
    format!(
        concat!(
            r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"search_{}","#,
            r#""session_id":"s-{}","actor":{{"user_id":"user-{}"}},"#,
            r#""target":{{"server_name":"files"}},"duration_us":{},"#,
            r#""payload":{{"input":{{"query":"invoices of customer-{}","limit":20}},"#,
            r#""output":{{"hits":{},"first":"doc-{}"}}}}}}"#
        ),
        i % 7,
        i / 50,
        i % 40,
        1000 + i % 900,
        i % 1000,
        i % 13,
        i
    )
}

fn command(db: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--db")
        .arg(db)
        .env_remove("MCP_AUDIT_DB")
        .env_remove("MCP_AUDIT_LOG_ID")
        .env_remove("RUST_LOG");
    command
}

/// A fresh database with a writer token; returns the token.
fn prepare(db: &Path) -> String {
    let out = command(db)
        .args(["token", "create", "--name", "bench", "--role", "writer"])
        .args(["--actor", "bench"])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn serve(db: &Path, port: u16) -> Child {
    let child = command(db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve does not listen");
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait for serve");
    assert!(status.success(), "serve failed: {status}");
}

/// `log -` with every line: events/s.
fn log_stdin(lines: &[String]) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("audit.db");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let start = Instant::now();
    let mut child = command(&db)
        .args(["log", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn log");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write stdin");
    assert!(child.wait().expect("log").success());
    lines.len() as f64 / start.elapsed().as_secs_f64()
}

/// 16 clients posting `per_request` events per request; events/s, until every event is
/// durable (with `wait`: the last answer; without: `serve` stopped).
fn http(
    runtime: &tokio::runtime::Runtime,
    lines: &[String],
    per_request: usize,
    wait: bool,
) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("audit.db");
    let token = prepare(&db);
    let port = free_port();
    let child = serve(&db, port);
    let (content_type, query) = match (per_request, wait) {
        (1, true) => ("application/json", "?wait=durable"),
        (_, true) => ("application/jsonl", "?wait=durable"),
        (_, false) => ("application/jsonl", ""),
    };
    let url = format!("http://127.0.0.1:{port}/api/v1/events{query}");
    let bodies: Vec<String> = lines
        .chunks(per_request)
        .map(|chunk| chunk.iter().map(|l| format!("{l}\n")).collect())
        .collect();
    let bodies = Arc::new(bodies);
    let client = reqwest::Client::new();
    let start = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (client, url, token, bodies) = (
                client.clone(),
                url.clone(),
                token.clone(),
                Arc::clone(&bodies),
            );
            tasks.push(tokio::spawn(async move {
                for body in bodies.iter().skip(c).step_by(CLIENTS) {
                    let answer = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("post");
                    let status = answer.status().as_u16();
                    assert!(status == 201 || status == 202, "status {status}");
                }
            }));
        }
        for task in tasks {
            task.await.expect("client");
        }
    });
    // Without `wait`, the events are durable once `serve` has stopped (it flushes first).
    let rate = if wait {
        let rate = lines.len() as f64 / start.elapsed().as_secs_f64();
        stop(child);
        rate
    } else {
        stop(child);
        lines.len() as f64 / start.elapsed().as_secs_f64()
    };
    // Every event is in the log: the count is the proof that nothing was dropped.
    let out = command(&db)
        .args(["summary", "--json"])
        .output()
        .expect("summary");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        summary["tool_executions"].as_u64(),
        Some(lines.len() as u64),
        "{summary}"
    );
    rate
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("EVENTS", 20_000);
    let lines: Vec<String> = (0..n).map(event_line).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("ingest of {n} events (16 clients over HTTP against `log -`, same run)");
    let ceiling = log_stdin(&lines);
    println!("  log - (one process, one batch): {ceiling:>10.0} events/s (the ceiling)");
    for (label, per_request, wait) in [
        ("HTTP, 1 event/request, wait=durable", 1, true),
        ("HTTP, 100 events/request, wait=durable", BATCH, true),
        ("HTTP, 100 events/request, no wait", BATCH, false),
    ] {
        let rate = http(&runtime, &lines, per_request, wait);
        println!(
            "  {label:<40} {rate:>10.0} events/s  {:>5.1}% of log -",
            100.0 * rate / ceiling
        );
    }
}
