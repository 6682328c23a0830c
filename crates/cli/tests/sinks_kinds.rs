//! `mcp-audit follow --sink` with an OTLP and a syslog sink, killed with SIGKILL mid-way while
//! a writer keeps recording: the next run resumes from its cursor, every record arrives in seq
//! order, and only the batch in flight at the kill may arrive twice. An OTLP receiver that
//! refuses one record forever: `sink status` shows it as a dead letter, and the rest arrives.
//! The receivers are real: an
//! HTTP server decoding OTLP/HTTP bodies with the official protobuf types, and Debian's
//! rsyslogd (the sinks crate's own, shared with its suites).

mod support;

#[path = "../../sinks/tests/support/rsyslog.rs"]
#[allow(dead_code)]
mod rsyslog;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use mcp_audit_core::AuditEvent;
use mcp_audit_store::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use serde_json::json;

use rsyslog::{Rsyslog, sd_param};
use support::BIN;
use support::follow::{sink_status, terminate};

const BATCH: u64 = 10;
const TOTAL: u64 = 200;

/// A writer recording `TOTAL` events one by one into `db` (each durable before the next), on
/// a thread of its own: the follow chases it, so a kill lands while records are still coming.
fn writer(db: &Path) -> std::thread::JoinHandle<()> {
    let db = db.to_path_buf();
    std::thread::spawn(move || {
        let store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
        let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
        for i in 0..TOTAL {
            let event = AuditEvent::tool_execution(format!("tool{i}"))
                .input(json!({"n": i}))
                .build()
                .unwrap();
            recorder.record(event).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        recorder.shutdown().unwrap();
    })
}

fn sinks_file(dir: &Path, kind: &str) -> std::path::PathBuf {
    let path = dir.join("sinks.toml");
    std::fs::write(
        &path,
        format!(
            "[[sink]]\nname = \"out\"\n{kind}\nbatch = {BATCH}\nbackoff_initial_ms = 10\n\
             backoff_max_ms = 100\npoll_ms = 20\n"
        ),
    )
    .unwrap();
    path
}

fn follow(db: &Path, config: &Path) -> Child {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(["follow", "--sink"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Polls `done` for two minutes at most: a bound on a hang, not a speed check.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting for {what}");
}

/// Kills a follow with SIGKILL once `arrived()` says a few batches are in, lets the writer
/// finish, runs a second follow to the end, and checks what `arrived()` then says (the seqs in
/// arrival order).
fn killed_mid_way_then_resumed(dir: &Path, config: &Path, arrived: impl Fn() -> Vec<u64>) {
    let db = dir.join("audit.db");
    // The log exists before the follow starts.
    SqliteStore::open(&db, SqliteOptions::default()).unwrap();
    let writing = writer(&db);
    let mut first = follow(&db, config);
    wait_for("a few batches", || arrived().len() >= 3 * BATCH as usize);
    first.kill().unwrap(); // SIGKILL: no chance to save anything
    first.wait().unwrap();
    let at_kill = arrived().len() as u64;
    writing.join().unwrap();
    assert!(
        at_kill < TOTAL,
        "the kill should land mid-way ({at_kill} records)"
    );

    let second = follow(&db, config);
    wait_for("every record", || arrived().contains(&(TOTAL - 1)));
    terminate(second);

    let seqs = arrived();
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = seqs.iter().copied().filter(|s| seen.insert(*s)).collect();
    assert_eq!(
        firsts,
        (0..TOTAL).collect::<Vec<_>>(),
        "every record, in order"
    );
    let twice = seqs.len() as u64 - TOTAL;
    assert!(
        twice <= BATCH,
        "only the batch in flight at the kill may come twice ({twice} duplicates)"
    );
}

/// An OTLP/HTTP receiver: decodes each `/v1/logs` body and keeps the `mcp_audit.seq` of every
/// log record, answering after a moment (so that a kill lands mid-way); an export holding a
/// refused seq is answered 400 and kept not at all.
struct OtlpReceiver {
    seqs: Arc<Mutex<Vec<u64>>>,
    endpoint: String,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Received {
    seqs: Arc<Mutex<Vec<u64>>>,
    refuse: Option<u64>,
}

type Answer = (StatusCode, [(HeaderName, &'static str); 1], Vec<u8>);

async fn logs(State(received): State<Received>, body: Bytes) -> Answer {
    let protobuf = [(header::CONTENT_TYPE, "application/x-protobuf")];
    let Ok(request) = ExportLogsServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, protobuf, Vec::new());
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seqs: Vec<u64> = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|record| {
            let seq = record
                .attributes
                .iter()
                .find(|kv| kv.key == "mcp_audit.seq")?
                .value
                .as_ref()?
                .value
                .as_ref()?;
            match seq {
                any_value::Value::IntValue(seq) => Some(*seq as u64),
                _ => None,
            }
        })
        .collect();
    if received.refuse.is_some_and(|r| seqs.contains(&r)) {
        return (StatusCode::BAD_REQUEST, protobuf, Vec::new());
    }
    received.seqs.lock().unwrap().extend(seqs);
    (
        StatusCode::OK,
        protobuf,
        ExportLogsServiceResponse::default().encode_to_vec(),
    )
}

impl OtlpReceiver {
    fn start(refuse: Option<u64>) -> OtlpReceiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seqs = Arc::new(Mutex::new(Vec::new()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/logs", axum::routing::post(logs))
            .with_state(Received {
                seqs: seqs.clone(),
                refuse,
            });
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        OtlpReceiver {
            seqs,
            endpoint,
            _runtime: runtime,
        }
    }
}

#[test]
fn a_killed_follow_with_an_otlp_sink_resumes_from_its_cursor_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start(None);
    let config = sinks_file(
        dir.path(),
        &format!(
            "type = \"otlp\"\nendpoint = \"{}\"\nsignals = \"logs\"",
            receiver.endpoint
        ),
    );
    killed_mid_way_then_resumed(dir.path(), &config, || {
        receiver.seqs.lock().unwrap().clone()
    });
}

#[test]
fn a_killed_follow_with_a_syslog_sink_resumes_from_its_cursor_and_loses_nothing() {
    let Some(receiver) = Rsyslog::start(false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = sinks_file(
        dir.path(),
        &format!(
            "type = \"syslog\"\naddress = \"{}\"\nformat = \"cef\"",
            receiver.address()
        ),
    );
    killed_mid_way_then_resumed(dir.path(), &config, || {
        receiver
            .received()
            .iter()
            .filter_map(|m| sd_param(m, "seq")?.parse().ok())
            .collect()
    });
}

#[test]
fn an_otlp_record_refused_forever_shows_in_sink_status_and_the_rest_flows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    writer(&db).join().unwrap();
    let receiver = OtlpReceiver::start(Some(7));
    let config = sinks_file(
        dir.path(),
        &format!(
            "type = \"otlp\"\nendpoint = \"{}\"\nsignals = \"logs\"\nmax_tries = 2",
            receiver.endpoint
        ),
    );
    let child = follow(&db, &config);
    wait_for("the last record", || {
        receiver.seqs.lock().unwrap().contains(&(TOTAL - 1))
    });
    // Its cursor is written after the acknowledgement: wait for status to show it there.
    let db_spec = db.display().to_string();
    let status = || sink_status(&db_spec, &config);
    let json = std::cell::RefCell::new(status());
    wait_for("the cursor at the end", || {
        *json.borrow_mut() = status();
        json.borrow()["sinks"][0]["cursor"] == TOTAL
    });
    terminate(child);

    // A refused export keeps nothing, and the runner narrows the batch one record at a time:
    // every other record once, in order.
    let seqs = receiver.seqs.lock().unwrap().clone();
    assert_eq!(seqs, (0..TOTAL).filter(|&s| s != 7).collect::<Vec<_>>());
    let json = json.into_inner();
    let sink = &json["sinks"][0];
    assert_eq!(sink["sink"], "out");
    assert_eq!(
        (sink["lag_records"].as_u64(), sink["dead_letters"].as_u64()),
        (Some(0), Some(1))
    );
    let letter = &json["dead_letters"][0];
    assert_eq!(
        (letter["seq"].as_u64(), letter["tries"].as_u64()),
        (Some(7), Some(2))
    );
    assert!(
        letter["last_error"].as_str().unwrap().contains("400"),
        "{letter}"
    );
}
