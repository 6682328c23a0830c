//! A Rust program runs the stdio proxy with recording, without the `mcp-audit` binary: it opens
//! a store, starts [`ProxyAudit`] on it, runs the real `server-everything` behind
//! [`run_stdio`] and talks to it as an MCP client would. What the binary does is this plus its
//! flags, so the library alone must give the same trail: a call on record before it ran
//! (`sync`), its outcome linked to it, the session's start and end, and the calls a previous
//! run left open closed as `incomplete` at the start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_audit_core::{AuditEvent, Outcome};
use mcp_audit_proxy::{AuditOptions, ProxyAudit, ProxyConfig, SessionConfig, Transport, run_stdio};
use mcp_audit_store::{
    Durability, Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore, Store,
    StoredEvent,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `server-everything`'s entry point, or `None` (with a note) when the MCP test peers are not
/// installed outside CI.
fn everything() -> Option<PathBuf> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.test-peers");
    let js = peers.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if js.exists() {
        return Some(js);
    }
    if std::env::var_os("CI").is_some() {
        panic!("the MCP test peers are not installed: run scripts/install-test-peers.sh");
    }
    eprintln!("skipped: MCP test peers not installed (run scripts/install-test-peers.sh)");
    None
}

fn open(path: &Path) -> Box<dyn Store> {
    Box::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
}

fn events(path: &Path) -> Vec<StoredEvent> {
    let mut store = SqliteStore::open_read_only(path, SqliteOptions::default()).unwrap();
    let mut all = Vec::new();
    store
        .for_each(
            &Filter {
                include_pending: true,
                ..Filter::default()
            },
            &mut |e| {
                all.push(e);
                Ok(())
            },
        )
        .unwrap();
    all
}

#[tokio::test]
async fn a_program_embedding_the_stdio_proxy_records_a_call_before_it_runs_and_recovers_the_last_run()
 {
    let Some(js) = everything() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");

    // A previous run that stopped with a call in flight: its intent is durable, no outcome.
    let previous = Recorder::start(
        SqliteStore::open(&db, SqliteOptions::default()).unwrap(),
        RecorderConfig::default(),
    )
    .unwrap();
    let left_open = AuditEvent::tool_execution("longRunningOperation")
        .session("previous-run")
        .request_id("7")
        .outcome(Outcome::Pending)
        .build()
        .unwrap();
    let left_open_id = left_open.id;
    previous.record_durable_async(left_open).await.unwrap();
    previous.shutdown_async().await.unwrap();

    let audit = ProxyAudit::start(
        open(&db),
        AuditOptions::new(Durability::Sync, Transport::Stdio),
    )
    .unwrap();
    assert_eq!(audit.recover().await.unwrap(), 1, "the call left open");

    let config = ProxyConfig {
        command: vec!["node".into(), js.into(), "stdio".into()],
        session: SessionConfig {
            session_id: "embedded".into(),
            server_name: Some("everything".into()),
            actor: Default::default(),
            transport: "stdio",
            capture_limit: 64 * 1024,
            record_intents: true,
        },
        denials: Default::default(),
    };
    // One pipe each way, as a client's: closing its input is the end of the session.
    let (mut to_proxy, proxy_in) = tokio::io::duplex(1 << 20);
    let (proxy_out, from_proxy) = tokio::io::duplex(1 << 20);
    let session = tokio::spawn(run_stdio(
        config,
        audit.recorder().clone(),
        proxy_in,
        proxy_out,
        std::future::pending(),
    ));
    let mut answers = BufReader::new(from_proxy).lines();
    let mut ask = async |message: Value| {
        let id = message["id"].clone();
        to_proxy
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
        to_proxy.flush().await.unwrap();
        if id.is_null() {
            return Value::Null;
        }
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), answers.next_line())
                .await
                .expect("the server answers")
                .unwrap()
                .expect("the proxy's output is open");
            let answer: Value = serde_json::from_str(&line).unwrap();
            if answer["id"] == id {
                return answer;
            }
        }
    };
    let init = ask(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "embedder", "version": "1"}}}),
    )
    .await;
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    let echoed = ask(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": "from an embedding program"}}}),
    )
    .await;
    assert!(
        echoed["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("from an embedding program")),
        "{echoed}"
    );
    // The client closes its side: the proxy closes the server's input, and the session ends.
    drop(to_proxy);
    session.await.unwrap().unwrap();
    audit.finish().await.unwrap();

    let all = events(&db);
    let recovered: Vec<_> = all
        .iter()
        .filter(|e| e.event.completes == Some(left_open_id))
        .collect();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].event.outcome, Outcome::Incomplete);

    let ours: Vec<_> = all
        .iter()
        .filter(|e| e.event.session_id.as_deref() == Some("embedded"))
        .collect();
    let echo: Vec<_> = ours
        .iter()
        .filter(|e| e.event.operation == "echo")
        .collect();
    assert_eq!(echo.len(), 2, "an intent and its outcome: {echo:?}");
    let (intent, outcome) = (&echo[0], &echo[1]);
    assert_eq!(intent.event.outcome, Outcome::Pending);
    assert!(intent.seq < outcome.seq, "on record before it ran");
    assert_eq!(outcome.event.outcome, Outcome::Success);
    assert_eq!(outcome.event.completes, Some(intent.event.id));
    for operation in ["session_start", "session_end"] {
        assert!(
            ours.iter().any(|e| e.event.operation == operation),
            "{operation} on record"
        );
    }
}
