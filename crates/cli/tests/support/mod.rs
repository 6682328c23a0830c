//! What the proxy suites share (`proxy.rs` for stdio, `http_proxy.rs` for Streamable HTTP, and the
//! suites that drive a proxy too): the binary, the real MCP peers they drive, a raw client at the
//! stdio proxy, and reading back the trail a proxy recorded. One copy, so that both transports
//! are checked against the same reading of the trail.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

pub mod browser;
pub mod follow;
pub mod witness;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcp_audit_core::Outcome;
use mcp_audit_store::{Filter, Read, SqliteOptions, SqliteStore, StoredEvent};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

/// The root of the repository (where `tests/peers/` and `.test-peers/` are).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The installed peers, or `None` (with a note) when they are not installed outside CI.
pub fn peers() -> Option<PathBuf> {
    let dir = repo().join(".test-peers");
    if dir.join("venv/bin/python").exists() && dir.join("npm/node_modules").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("the MCP test peers are not installed: run scripts/install-test-peers.sh");
    }
    eprintln!("skipped: MCP test peers not installed (run scripts/install-test-peers.sh)");
    None
}

/// The Python of the peers' virtual environment (it has the official MCP SDK).
pub fn python(peers: &Path) -> PathBuf {
    peers.join("venv/bin/python")
}

/// A script of ours in `tests/peers/`.
pub fn peer_script(name: &str) -> PathBuf {
    repo().join("tests/peers").join(name)
}

/// `server-everything`'s entry point, which both transports' suites run as the upstream.
pub fn everything_js(peers: &Path) -> PathBuf {
    peers.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The one JSON object a peer printed, after checking that `what` succeeded.
pub fn json_output(what: &str, output: Output) -> Value {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A port that was just free on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every event of the trail in `db`, intents included.
pub fn events(db: &Path) -> Vec<StoredEvent> {
    try_events(db).unwrap()
}

/// The events, or why they can not be read (while the database is still being created).
pub fn try_events(db: &Path) -> Result<Vec<StoredEvent>, mcp_audit_store::StoreError> {
    let mut store = SqliteStore::open_read_only(db, SqliteOptions::default())?;
    let mut all = Vec::new();
    store.for_each(
        &Filter {
            include_pending: true,
            ..Filter::default()
        },
        &mut |e| {
            all.push(e);
            Ok(())
        },
    )?;
    Ok(all)
}

/// The events of `operation` with `outcome`.
pub fn all_of<'a>(
    events: &'a [StoredEvent],
    operation: &str,
    outcome: Outcome,
) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.operation == operation && e.event.outcome == outcome)
        .collect()
}

/// The one event of `operation` with `outcome` (a second one is a failure).
pub fn one<'a>(events: &'a [StoredEvent], operation: &str, outcome: Outcome) -> &'a StoredEvent {
    let found = all_of(events, operation, outcome);
    assert_eq!(
        found.len(),
        1,
        "exactly one {operation} {outcome}: {found:#?}"
    );
    found[0]
}

/// The intent of `operation` and its one outcome with `outcome`, after checking that the
/// outcome completes that intent (sync mode records the intent before the call goes on).
pub fn intent_and_outcome<'a>(
    events: &'a [StoredEvent],
    operation: &str,
    outcome: Outcome,
) -> (&'a StoredEvent, &'a StoredEvent) {
    let intent = one(events, operation, Outcome::Pending);
    let done = one(events, operation, outcome);
    assert_eq!(done.event.completes, Some(intent.event.id), "{operation}");
    (intent, done)
}

/// The event's error message, which the test expects it to have.
pub fn error_message(e: &StoredEvent) -> &str {
    e.event
        .payload
        .error_message
        .as_deref()
        .expect("an error message")
}

/// The `key` of the event's details (`null` when it has none), which the test expects it to
/// have. A copy, so that it compares with `json!` values and plain literals alike.
pub fn detail(e: &StoredEvent, key: &str) -> Value {
    e.event.payload.details.as_ref().expect("details")[key].clone()
}

/// The records of JSON-RPC request `id`.
pub fn of_request<'a>(all: &'a [StoredEvent], id: &str) -> Vec<&'a StoredEvent> {
    all.iter()
        .filter(|e| e.event.request_id.as_deref() == Some(id))
        .collect()
}

/// The intent and outcome of request `id`, asserting that the call was on record as
/// `operation` before it ran: its intent comes first in the log and the outcome completes it.
pub fn on_record_before_it_ran<'a>(
    all: &'a [StoredEvent],
    id: &str,
    operation: &str,
    what: &str,
) -> (&'a StoredEvent, &'a StoredEvent) {
    let events = of_request(all, id);
    let intent = events
        .iter()
        .find(|e| e.event.outcome == Outcome::Pending)
        .unwrap_or_else(|| panic!("{what}: no intent: {events:#?}"));
    assert_eq!(intent.event.operation, operation, "{what}");
    let done = events
        .iter()
        .find(|e| e.event.completes == Some(intent.event.id))
        .unwrap_or_else(|| panic!("{what}: no outcome: {events:#?}"));
    assert!(intent.seq < done.seq, "{what}");
    (intent, done)
}

/// `server-everything` over stdio, as the proxy's server command.
pub fn everything(peers: &Path) -> Vec<String> {
    let js = everything_js(peers).display().to_string();
    vec!["node".to_string(), js, "stdio".to_string()]
}

/// A client of our own at the proxy's standard input and output, speaking raw lines: the
/// attacker of issue 16, who picks the bytes an SDK client would not send.
pub struct RawClient {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    answers: std::sync::mpsc::Receiver<Value>,
}

impl RawClient {
    /// `mcp-audit proxy --db <db> <args> -- <server>`, initialized.
    pub fn start(db: &Path, args: &[&str], server: &[String]) -> RawClient {
        use std::io::BufRead;

        let mut child = Command::new(BIN)
            .arg("proxy")
            .arg("--db")
            .arg(db)
            .args(args)
            .arg("--")
            .args(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let output = std::io::BufReader::new(child.stdout.take().unwrap());
        let (send, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut output = output;
            let mut line = Vec::new();
            while output.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                // The server's notifications and requests are not what the tests wait for.
                // Read as the proxy reads: an answer may hold a lone surrogate escape.
                match mcp_audit_proxy::json::parse(&line) {
                    Ok(value) if value.get("method").is_none() => {
                        if send.send(value).is_err() {
                            return;
                        }
                    }
                    _ => eprintln!("not an answer: {}", String::from_utf8_lossy(&line)),
                }
                line.clear();
            }
        });
        let mut client = RawClient {
            input: child.stdin.take(),
            child,
            answers,
        };
        client.send(br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
        assert!(client.answer().get("result").is_some());
        client.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        client
    }

    /// Sends one frame (a newline is added).
    pub fn send(&mut self, frame: &[u8]) {
        let input = self.input.as_mut().unwrap();
        input.write_all(frame).unwrap();
        input.write_all(b"\n").unwrap();
        input.flush().unwrap();
    }

    /// The next answer the client gets.
    pub fn answer(&mut self) -> Value {
        self.answers
            .recv_timeout(Duration::from_secs(60))
            .expect("an answer within a minute")
    }

    /// Closes the client's side and waits for the proxy to end the session.
    pub fn close(mut self) {
        drop(self.input.take());
        assert!(self.child.wait().unwrap().success());
    }
}

/// The two backends a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

/// Runs each named test once per backend, as `sqlite::NAME` and `postgres::NAME` (which the
/// runner groups with the other PostgreSQL tests, and counts as skipped without a server):
/// `$setup(Backend)`, a function of the suite, gives the test its fixture, or `None` when
/// that backend is not there.
#[allow(unused_macros)] // as the module's `dead_code`: not every suite runs on both
macro_rules! on_both_backends {
    ($setup:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    if let Some(fixture) = super::$setup(super::support::Backend::Sqlite) {
                        super::$name(fixture);
                    }
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(fixture) = super::$setup(super::support::Backend::Postgres) {
                        super::$name(fixture);
                    }
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;

/// A schema of its own in the test PostgreSQL database (`MCP_AUDIT_TEST_PG`), dropped at the
/// end, and the URL that points the binary at it. `None` (the test is skipped, and says so)
/// without a server; a failure under `CI=true`.
pub struct PgSchema {
    base: String,
    schema: String,
    /// The database URL with the schema as its search path.
    pub url: String,
}

impl PgSchema {
    /// A new schema named `<prefix>_<pid>_<nanos>`.
    pub fn new(prefix: &str) -> Option<PgSchema> {
        let base = match std::env::var("MCP_AUDIT_TEST_PG") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("MCP_AUDIT_TEST_PG is not set, and CI must run the PostgreSQL tests");
                }
                eprintln!("skipped: MCP_AUDIT_TEST_PG is not set");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!("{prefix}_{}_{nanos}", std::process::id());
        ::postgres::Client::connect(&base, ::postgres::NoTls)
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(PgSchema { base, schema, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.base, ::postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// Whether `promtool` (Debian's `prometheus` package) is on PATH. Without it, a test that
/// checks an exposition with it is skipped, and says so; under `CI=true` it fails instead.
/// `scripts/test` looks for it the same way and leaves out (counts as skipped) the tests whose
/// name holds `promtool`.
pub fn promtool() -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("promtool").is_file())
    });
    if !found {
        let why = "promtool is not installed (scripts/install-test-peers.sh installs Debian's prometheus)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}; CI must check the metrics with it");
        }
        eprintln!("skipped: {why}");
    }
    found
}

/// `promtool check metrics` on `text`: the exposition must parse and pass its lint (names,
/// help, units, counters ending in `_total`).
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The samples of a Prometheus text exposition (series → value), after checking its shape:
/// every sample belongs to a family with a `# TYPE` line (a histogram's by its `_bucket`,
/// `_sum` and `_count` series).
pub fn metric_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    let typed: std::collections::BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut samples = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|family| typed.get(family) == Some(&"histogram"))
            .unwrap_or(name);
        assert!(typed.contains_key(family), "{name} has no # TYPE: {text}");
        samples.insert(series.to_string(), value.parse::<f64>().unwrap());
    }
    samples
}

/// The value of `series` in `samples`, 0 when absent (a pair never counted is not listed).
pub fn sample(samples: &std::collections::BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.1, connection closed after): the status, the head
/// (lower-case) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    use std::io::Read;

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let body = String::from_utf8_lossy(&out[split + 4..]).into_owned();
    (status, head, body)
}

/// The `mcp_audit_recorder_events_written_total` series a trail should show: its events
/// counted by kind and outcome.
pub fn written_series(all: &[StoredEvent]) -> std::collections::BTreeMap<String, f64> {
    let mut series = std::collections::BTreeMap::new();
    for e in all {
        let name = format!(
            r#"mcp_audit_recorder_events_written_total{{kind="{}",outcome="{}"}}"#,
            e.event.kind.as_str(),
            e.event.outcome.as_str()
        );
        *series.entry(name).or_insert(0.0) += 1.0;
    }
    series
}

/// The `mcp_audit_recorder_events_written_total` series of an exposition's samples.
pub fn written_samples(
    samples: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|(series, _)| series.starts_with("mcp_audit_recorder_events_written_total{"))
        .map(|(series, n)| (series.clone(), *n))
        .collect()
}

/// Starts `mcp-audit serve` from `command` (the binary with its database flags) on a free port
/// with `extra` flags; returns the child and the console's base URL, read from the line it
/// prints once it listens. Its stderr is kept drained (and echoed), so that the server never
/// blocks on a full pipe.
pub fn spawn_serve(mut command: Command, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "serve stopped before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap();
            break url.trim_end_matches("/api/v1/").to_string();
        }
    };
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        if !rest.is_empty() {
            eprintln!("serve: {rest}");
        }
    });
    (child, base)
}
