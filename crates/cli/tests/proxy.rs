//! The stdio proxy against real peers: the official MCP reference server (npm) driven by the
//! official Python SDK client (PyPI), and plain programs (`cat`, `sh`) for the faults and for
//! byte-for-byte transparency. Assertions are on what the audit trail holds, field by field.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_audit_core::{EventKind, Outcome};
use mcp_audit_store::{Append, SqliteOptions, SqliteStore, StoredEvent};
use serde_json::{Value, json};

mod support;

use support::{
    BIN, RawClient, all_of, detail, error_message, events, everything, free_port, http_get,
    intent_and_outcome, json_output, metric_samples, of_request, on_record_before_it_ran, one,
    peer_script, peers, promtool, promtool_check, python, sample, try_events, written_samples,
    written_series,
};

/// Runs a Python SDK client script from `tests/peers/` against
/// `mcp-audit proxy <proxy args> -- <server>`, and returns what it printed (one JSON object).
fn run_client(
    peers: &Path,
    script: &str,
    db: &Path,
    proxy_args: &[&str],
    server: &[String],
) -> Value {
    let output = Command::new(python(peers))
        .arg(peer_script(script))
        .arg(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(db)
        .args(proxy_args)
        .arg("--")
        .args(server)
        .output()
        .unwrap();
    json_output("client", output)
}

#[test]
fn a_real_client_and_server_are_recorded_field_by_field() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let server = everything(&peers);
    let seen = run_client(
        &peers,
        "legacy_client.py",
        &db,
        &["--user", "tester"],
        &server,
    );
    let all = events(&db);

    // The client got the server's real answers through the proxy.
    assert_eq!(seen["echo"], json!(["Echo: hello through the proxy"]));
    assert_eq!(seen["cancelled"], json!(true));

    let start = one(&all, "session_start", Outcome::Success);
    let session = start.event.session_id.clone().expect("a session id");
    assert_eq!(start.event.actor.client_name.as_deref(), Some("mcp"));
    assert_eq!(
        start.event.target.server_name.as_deref(),
        Some("mcp-servers/everything")
    );
    let details = start.event.payload.details.as_ref().unwrap();
    assert!(
        details["server_capabilities"]["tools"].is_object(),
        "{details}"
    );
    assert!(
        all.iter()
            .all(|e| e.event.session_id.as_deref() == Some(session.as_str()))
    );
    assert!(
        all.iter()
            .all(|e| e.event.actor.user_id.as_deref() == Some("tester"))
    );

    // A tool call: intent first (sync), then the outcome that completes it.
    let (intent, echo) = intent_and_outcome(&all, "echo", Outcome::Success);
    assert_eq!(echo.event.kind, EventKind::ToolExecution);
    assert_eq!(echo.event.correlation_id, intent.event.correlation_id);
    assert!(intent.seq < echo.seq);
    assert_eq!(
        echo.event.payload.input,
        Some(json!({"message": "hello through the proxy"}))
    );
    assert_eq!(
        echo.event.payload.output.as_ref().unwrap()["content"][0]["text"],
        "Echo: hello through the proxy"
    );
    assert!(echo.event.duration_us.is_some());
    assert_eq!(
        echo.event.target.protocol_version.as_deref(),
        Some("2025-11-25")
    );
    assert_eq!(echo.event.target.transport.as_deref(), Some("stdio"));

    // A failing tool call is recorded as a tool error, with the server's message.
    let failed = one(&all, "get-sum", Outcome::ToolError);
    assert!(!error_message(failed).is_empty());

    let uri = seen["resource"]["uri"].as_str().unwrap();
    let read = one(&all, uri, Outcome::Success);
    assert_eq!(read.event.kind, EventKind::ResourceAccess);
    assert_eq!(read.event.target.resource_type.as_deref(), Some("resource"));

    let prompt = one(
        &all,
        seen["prompt"]["name"].as_str().unwrap(),
        Outcome::Success,
    );
    assert_eq!(prompt.event.kind, EventKind::PromptExecution);

    // The server asked the client to sample: a server-to-client request, paired too.
    let sampling = one(&all, "sampling/createMessage", Outcome::Success);
    assert_eq!(sampling.event.kind, EventKind::Sampling);
    assert_eq!(
        sampling.event.payload.output.as_ref().unwrap()["content"]["text"],
        "sampled answer"
    );

    let cancelled = one(&all, "trigger-long-running-operation", Outcome::Cancelled);
    assert!(cancelled.event.duration_us.unwrap() >= 900_000);

    assert!(all.iter().any(|e| e.event.operation == "tools/list"));
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "reason"), "client closed its input");

    // Every intent has its outcome.
    let mut store = SqliteStore::open_read_only(&db, SqliteOptions::default()).unwrap();
    assert!(store.pending_without_outcome().unwrap().is_empty());

    // And a person can see it: `query --tool`.
    let out = Command::new(BIN)
        .args(["query", "--tool", "echo", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("echo") && table.contains("success"),
        "{table}"
    );
}

#[test]
fn batch_durability_records_no_intents() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let server = everything(&peers);
    run_client(
        &peers,
        "legacy_client.py",
        &db,
        &["--durability", "batch"],
        &server,
    );
    let all = events(&db);
    assert!(all.iter().all(|e| e.event.outcome != Outcome::Pending));
    let echo = one(&all, "echo", Outcome::Success);
    assert_eq!(echo.event.completes, None);
    assert_eq!(echo.event.actor.auth_method.as_deref(), Some("os_user"));
    let user = echo.event.actor.user_id.as_deref().unwrap_or("");
    assert!(
        !user.is_empty() && user != "unknown" && user != "system",
        "{user}"
    );
}

/// Starts the proxy in front of `server` (a shell command), feeding it `input` and closing
/// its stdin; returns (exit code, stdout bytes, stderr text).
fn proxy_with_input(
    db: &Path,
    server: &str,
    input: &[u8],
    extra: &[&str],
) -> (Option<i32>, Vec<u8>, String) {
    let mut child = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(db)
        .args(extra)
        .args(["--", "sh", "-c", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        output.status.code(),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_byte_passes_through_unchanged_and_junk_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n");
    input.extend_from_slice(b"this is not json\n");
    input.extend_from_slice(b"{\"bad utf8\": \"\xff\xfe\"}\n");
    input.extend_from_slice(b"[{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"b\"}]\r\n");
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":\"{}\"}}\n",
        "y".repeat(12 * 1024 * 1024)
    );
    input.extend_from_slice(huge.as_bytes());
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}");
    // `cat` sends back every byte it gets: what the client receives must be what it sent.
    let (code, out, _) = proxy_with_input(&db, "cat", &input, &["--durability", "batch"]);
    assert_eq!(code, Some(0));
    assert!(
        out == input,
        "the bytes changed on the way ({} in, {} out)",
        input.len(),
        out.len()
    );

    let all = events(&db);
    let malformed: Vec<_> = all
        .iter()
        .filter(|e| e.event.operation == "malformed_frame")
        .collect();
    // Non-JSON and non-UTF-8 in both directions (4); the final response to the unknown id 9 in
    // both directions (2).
    assert_eq!(malformed.len(), 6, "{malformed:#?}");
    assert!(
        malformed
            .iter()
            .all(|e| e.event.outcome == Outcome::ProtocolError)
    );
    let details = malformed[0].event.payload.details.as_ref().unwrap();
    assert_eq!(details["sha256"].as_str().unwrap().len(), 64);
    // Each element of the batch is a request of its own (here unanswered, so incomplete), once
    // as the client sent it and once as `cat` sent it back.
    for method in ["a", "b"] {
        let n = all
            .iter()
            .filter(|e| e.event.operation == method && e.event.outcome == Outcome::Incomplete)
            .count();
        assert_eq!(n, 2, "batch element {method}");
    }
    let oversized: Vec<_> = all
        .iter()
        .filter(|e| e.event.operation == "oversized_frame")
        .collect();
    assert_eq!(oversized.len(), 2, "one each way");
    // The frame's size: its bytes up to the newline that ends it.
    assert_eq!(detail(oversized[0], "size"), huge.len() - 1);
}

#[test]
fn a_server_that_exits_at_once_ends_the_session_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let (code, _, _) = proxy_with_input(&db, "exit 7", b"", &[]);
    assert_eq!(code, Some(7), "the proxy exits with the server's status");
    let all = events(&db);
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "server_exit_status"), 7);
}

#[test]
fn a_server_that_cannot_be_started_is_on_record_with_its_command_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let out = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db)
        .args([
            "--server-name",
            "missing",
            "--",
            "mcp-audit-no-such-server",
            "--flag",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot start the MCP server `mcp-audit-no-such-server --flag`"),
        "{stderr}"
    );
    let all = events(&db);
    let start = one(&all, "server_start", Outcome::ProtocolError);
    assert_eq!(start.event.kind, mcp_audit_core::EventKind::ServerOperation);
    assert_eq!(detail(start, "command"), "mcp-audit-no-such-server --flag");
    assert!(
        detail(start, "error")
            .as_str()
            .is_some_and(|e| e.contains("No such file")),
        "{:?}",
        start.event.payload
    );
    assert_eq!(start.event.target.server_name.as_deref(), Some("missing"));
    assert!(
        start.event.actor.user_id.is_some(),
        "who tried is on record"
    );
}

#[test]
fn an_auto_mode_clients_version_probe_is_recorded_as_a_probe_that_found_a_legacy_server() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    // The SDK's default mode: `server/discover` first, then the handshake when it is turned down.
    let script = r#"
import json, sys, anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
async def main(command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode="auto") as client:
        echo = await client.call_tool("echo", {"message": "after the probe"})
        print(json.dumps({"echo": [c.text for c in echo.content]}))
anyio.run(main, sys.argv[1:])
"#;
    let out = Command::new(python(&peers))
        .args(["-c", script, BIN, "proxy", "--db"])
        .arg(&db)
        .arg("--")
        .args(everything(&peers))
        .output()
        .unwrap();
    let seen = json_output("the client", out);
    assert_eq!(seen["echo"], json!(["Echo: after the probe"]));
    let all = events(&db);
    let probe = one(&all, "server/discover", Outcome::Success);
    assert_eq!(detail(probe, "discovery"), "legacy");
    assert!(
        detail(probe, "error_code").is_i64(),
        "the server's answer is kept"
    );
    assert!(
        all.iter()
            .all(|e| e.event.outcome != Outcome::ProtocolError),
        "nothing in the error queries: {all:#?}"
    );
}

#[test]
fn a_server_crash_mid_call_leaves_the_call_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let call = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"slow\",\"arguments\":{}}}\n";
    let (code, _, _) = proxy_with_input(&db, "head -n 1 >/dev/null; exit 3", call, &[]);
    assert_eq!(code, Some(3));
    let all = events(&db);
    intent_and_outcome(&all, "slow", Outcome::Incomplete);
}

#[test]
fn a_client_leaving_mid_call_leaves_the_call_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let call = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///x\"}}\n";
    // The server reads everything and never answers; the client closes its input.
    let (code, _, _) = proxy_with_input(&db, "cat >/dev/null", call, &[]);
    assert_eq!(code, Some(0));
    let all = events(&db);
    one(&all, "file:///x", Outcome::Incomplete);
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "reason"), "client closed its input");
}

#[test]
fn an_unopenable_database_stops_the_proxy_before_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("server-ran");
    let db = dir.path().join("missing-dir/audit.db");
    let (code, _, stderr) = proxy_with_input(&db, &format!("touch {}", marker.display()), b"", &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("audit.db"),
        "{stderr}"
    );
    assert!(!marker.exists(), "no unaudited session");
}

/// A Python SDK client that calls `echo` twice through the proxy, each time when the test says
/// `go` on its stdin, and prints what it saw as one JSON line per step.
const STEPPED_CLIENT: &str = r#"
import json, sys, anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

def say(seen):
    print(json.dumps(seen), flush=True)

async def go():
    await anyio.to_thread.run_sync(sys.stdin.readline)

async def main(command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode="legacy") as client:
        say({"ready": True})
        for message in ["refused", "accepted"]:
            await go()
            try:
                answer = await client.call_tool("echo", {"message": message})
                say({"text": answer.content[0].text})
            except Exception as error:
                say({"error": str(error)})

anyio.run(main, sys.argv[1:])
"#;

#[test]
fn a_locked_store_refuses_the_call_with_a_json_rpc_error_and_the_session_goes_on() {
    use std::io::{BufRead, BufReader};

    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut client = Command::new(python(&peers))
        .args([
            "-c",
            STEPPED_CLIENT,
            BIN,
            "proxy",
            "--lock-timeout",
            "2s",
            "--db",
        ])
        .arg(&db)
        .arg("--")
        .args(everything(&peers))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(client.stdout.take().unwrap()).lines();
    let mut next =
        move || -> Value { serde_json::from_str(&said.next().unwrap().unwrap()).unwrap() };
    let mut go = client.stdin.take().unwrap();
    assert_eq!(next(), json!({"ready": true}));
    // The session's start on record first, so that only the call meets the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !try_events(&db).is_ok_and(|all| all.iter().any(|e| e.event.kind == EventKind::Session)) {
        assert!(
            Instant::now() < deadline,
            "the session start never became durable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Another process holds the write lock past the proxy's lock timeout.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    writeln!(go, "go").unwrap();
    let first = next();
    holder.execute_batch("COMMIT").unwrap();
    // The lock is gone: the session goes on, and the next call runs as usual.
    writeln!(go, "go").unwrap();
    let second = next();
    drop(go);
    assert!(client.wait().unwrap().success());

    let refused = first["error"].as_str().unwrap_or_else(|| panic!("{first}"));
    assert!(
        refused.contains("audit record could not be written"),
        "{refused}"
    );
    assert_eq!(second, json!({"text": "Echo: accepted"}));
    let all = events(&db);
    // The refused call never reached the server: the trail holds it as denied, with the
    // reason; the accepted one has its intent and its outcome.
    let refusal = one(&all, "echo", Outcome::Denied);
    assert_eq!(
        refusal.event.payload.input,
        Some(json!({"message": "refused"}))
    );
    assert!(
        error_message(refusal).contains("audit record could not be written"),
        "{refusal:#?}"
    );
    let (_, accepted) = intent_and_outcome(&all, "echo", Outcome::Success);
    assert_eq!(
        accepted.event.payload.input,
        Some(json!({"message": "accepted"}))
    );
}

#[test]
fn a_killed_proxy_leaves_intents_that_recover_marks_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut child = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db)
        .args(["--", "sh", "-c", "cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"p\"}}\n")
        .unwrap();
    // Wait until the intent is durable, then kill the proxy without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The file may exist before its schema does: not readable yet is "not yet".
        if try_events(&db).is_ok_and(|all| all.iter().any(|e| e.event.outcome == Outcome::Pending))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the intent never became durable");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // From here on the trail is read the way an operator would, through the CLI.
    let trail = |db: &Path| -> Vec<Value> {
        let out = Command::new(BIN)
            .args(["query", "--include-pending", "--jsonl", "--db"])
            .arg(db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    };
    let before = trail(&db);
    assert_eq!(before.len(), 1, "only the intent: {before:#?}");
    assert_eq!(before[0]["outcome"], "pending");

    let out = Command::new(BIN)
        .arg("recover")
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("recorded 1 incomplete"));
    let after = trail(&db);
    assert_eq!(after.len(), 2, "{after:#?}");
    assert_eq!(after[0]["outcome"], "incomplete");
    assert_eq!(after[0]["operation"], "p");
    assert_eq!(after[0]["completes"], before[0]["id"]);

    // A second recovery finds nothing left to close.
    let again = Command::new(BIN)
        .arg("recover")
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("recorded 0 incomplete"));
}

/// Runs the stateless (2026-07-28) Python SDK client against the Python SDK's `MCPServer`.
fn run_modern(peers: &Path, db: &Path, durability: &str) -> Value {
    let python = python(peers).display().to_string();
    let server = peer_script("modern_server.py").display().to_string();
    run_client(
        peers,
        "modern_client.py",
        db,
        &["--durability", durability],
        &[python, server],
    )
}

#[test]
fn the_stateless_2026_07_28_protocol_is_recorded_and_input_required_retries_are_linked() {
    let Some(peers) = peers() else { return };
    for durability in ["batch", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let seen = run_modern(&peers, &db, durability);
        assert_eq!(seen["add"], json!(["5"]), "{durability}");
        assert_eq!(seen["count_roots"], json!(["1"]), "{durability}");
        let all = events(&db);

        // No handshake: the session starts with the first request's `_meta`.
        let start = one(&all, "session_start", Outcome::Success);
        assert_eq!(detail(start, "stateless"), true);
        let add = one(&all, "add", Outcome::Success);
        assert_eq!(
            add.event.target.protocol_version.as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            add.event.target.server_name.as_deref(),
            Some("modern-test-server")
        );
        assert_eq!(add.event.actor.client_name.as_deref(), Some("mcp"));
        assert_eq!(add.event.payload.input, Some(json!({"a": 2, "b": 3})));
        one(&all, "fail", Outcome::ToolError);

        // count_roots: answered `input_required`, retried with a new request id; one logical
        // operation (one correlation id), each step completing the one before.
        let chain: Vec<&StoredEvent> = all
            .iter()
            .filter(|e| e.event.operation == "count_roots")
            .collect();
        let correlation = &chain[0].event.correlation_id;
        assert!(
            chain.iter().all(|e| &e.event.correlation_id == correlation),
            "{durability}"
        );
        let request_ids: std::collections::BTreeSet<_> = chain
            .iter()
            .filter_map(|e| e.event.request_id.clone())
            .collect();
        assert_eq!(request_ids.len(), 2, "two JSON-RPC requests, one operation");
        for pair in chain.windows(2) {
            assert_eq!(
                pair[1].event.completes,
                Some(pair[0].event.id),
                "{durability}: {chain:#?}"
            );
        }
        let last = chain.last().unwrap();
        assert_eq!(last.event.outcome, Outcome::Success);
        assert!(last.event.payload.context.as_ref().unwrap()["inputResponses"].is_object());
        let step = chain.iter().find(|e| {
            e.event
                .payload
                .output
                .as_ref()
                .is_some_and(|o| o["resultType"] == "input_required")
        });
        assert_eq!(step.map(|s| s.event.outcome), Some(Outcome::Pending));
        assert_eq!(chain.len(), if durability == "sync" { 4 } else { 2 });

        let mut store = SqliteStore::open_read_only(&db, SqliteOptions::default()).unwrap();
        assert!(
            store.pending_without_outcome().unwrap().is_empty(),
            "{durability}"
        );
    }
}

#[test]
fn the_filesystem_server_asks_for_roots_and_its_file_operations_are_recorded() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let server =
        peers.join("npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let output = Command::new(python(&peers))
        .arg(peer_script("fs_client.py"))
        .arg(&root)
        .arg(BIN)
        .args(["proxy", "--server-name", "files", "--db"])
        .arg(&db)
        .args(["--", "node"])
        .arg(&server)
        .arg(&root)
        .output()
        .unwrap();
    let seen = json_output("fs_client.py", output);
    assert_eq!(seen["read"], "audited hello");
    // The file really was written by the server, through the proxy.
    assert_eq!(
        std::fs::read_to_string(root.join("note.txt")).unwrap(),
        "audited hello"
    );

    let all = events(&db);
    assert!(
        all.iter()
            .all(|e| e.event.target.server_name.as_deref() == Some("files"))
    );
    // The server asked the client for its roots: a server-to-client request, paired.
    let roots = all
        .iter()
        .find(|e| e.event.operation == "roots/list" && e.event.outcome == Outcome::Success)
        .expect("roots/list recorded");
    assert_eq!(
        roots.event.payload.output.as_ref().unwrap()["roots"][0]["uri"],
        format!("file://{}", root.display())
    );
    let write = one(&all, "write_file", Outcome::Success);
    assert_eq!(
        write.event.payload.input.as_ref().unwrap()["content"],
        "audited hello"
    );
    let reads: Vec<_> = all
        .iter()
        .filter(|e| e.event.operation == "read_text_file")
        .collect();
    let outcomes: Vec<Outcome> = reads
        .iter()
        .filter(|e| e.event.outcome != Outcome::Pending)
        .map(|e| e.event.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::Success, Outcome::ToolError],
        "inside, then outside the root"
    );
}

/// A `tools/call echo` with id `id` whose `arguments` are the bytes `arguments`.
fn raw_echo(id: u32, arguments: &[u8]) -> Vec<u8> {
    let mut frame = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":"#
    )
    .into_bytes();
    frame.extend_from_slice(arguments);
    frame.extend_from_slice(b"}}");
    frame
}

/// The frames that once passed the proxy unrecorded while the servers ran them (issue 16):
/// (id, what, arguments).
fn differential_calls() -> Vec<(u32, &'static str, Vec<u8>)> {
    vec![
        (
            2,
            "129-deep array",
            format!(
                r#"{{"message":"deep","nested":{}{}}}"#,
                "[".repeat(129),
                "]".repeat(129)
            )
            .into_bytes(),
        ),
        (
            3,
            "invalid UTF-8",
            b"{\"message\":\"caf\xc3\x28\xff\"}".to_vec(),
        ),
        (4, "1e400", br#"{"message":"big","n":1e400}"#.to_vec()),
        (5, "lone surrogate", br#"{"message":"a\ud800b"}"#.to_vec()),
    ]
}

#[test]
fn frames_strict_json_refuses_are_held_as_their_operation_before_server_everything_runs_them() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut client = RawClient::start(&db, &[], &everything(&peers));
    let mut ran = Vec::new();
    for (id, what, arguments) in differential_calls() {
        client.send(&raw_echo(id, &arguments));
        let answer = client.answer();
        assert_eq!(answer["id"], id, "{what}: {answer}");
        let text = answer["result"]["content"][0]["text"].as_str();
        assert!(
            text.is_some_and(|t| t.starts_with("Echo: ")),
            "{what}: the server ran it: {answer}"
        );
        ran.push((id, what));
    }
    // A blank tool name: the server answers it (with an error); the call is on record.
    client.send(
        br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"","arguments":{}}}"#,
    );
    assert_eq!(client.answer()["id"], 6);
    client.close();

    let all = events(&db);
    for (id, what) in ran {
        let (intent, done) = on_record_before_it_ran(&all, &id.to_string(), "echo", what);
        assert_eq!(done.event.outcome, Outcome::Success, "{what}");
        assert!(
            intent.event.payload.input.as_ref().unwrap()["message"].is_string(),
            "{what}"
        );
    }
    let blank = of_request(&all, "6");
    assert!(
        blank
            .iter()
            .any(|e| e.event.outcome == Outcome::Pending && e.event.operation == "tools/call"),
        "{blank:#?}"
    );
    assert_eq!(blank.len(), 2, "intent and outcome: {blank:#?}");
    assert!(all_of(&all, "malformed_frame", Outcome::ProtocolError).is_empty());
}

#[test]
fn frames_strict_json_refuses_are_recorded_as_their_operation_in_batch() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut client = RawClient::start(&db, &["--durability", "batch"], &everything(&peers));
    for (id, _, arguments) in differential_calls() {
        client.send(&raw_echo(id, &arguments));
        assert_eq!(client.answer()["id"], id);
    }
    client.close();
    let all = events(&db);
    for (id, what, _) in differential_calls() {
        let events = of_request(&all, &id.to_string());
        assert_eq!(events.len(), 1, "{what}: {events:#?}");
        assert_eq!(
            (events[0].event.operation.as_str(), events[0].event.outcome),
            ("echo", Outcome::Success),
            "{what}"
        );
    }
    let deep = &of_request(&all, "2")[0].event.payload.input;
    let deep = deep.as_ref().unwrap()["nested"].to_string();
    assert_eq!(deep.matches('[').count(), 129, "every bracket is on record");
}

#[test]
fn an_oversized_frame_and_a_reused_id_are_refused_in_sync_with_a_json_rpc_error_and_denied() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut client = RawClient::start(&db, &[], &everything(&peers));
    // Over 10 MiB: more than the proxy holds, so it can not be on record before it runs.
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(11 * 1024 * 1024));
    client.send(&raw_echo(7, big.as_bytes()));
    let refusal = client.answer();
    assert_eq!(refusal["id"], 7, "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("mcp-audit: "), "{message}");
    // An id in flight, reused: the second call is refused, the first one runs.
    client.send(br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":1,"steps":1}}}"#);
    client.send(&raw_echo(8, br#"{"message":"second"}"#));
    let first = client.answer();
    let second = client.answer();
    let (refused, ran) = if first.get("error").is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight"),
        "{refused}"
    );
    assert!(
        ran["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Long running operation completed"),
        "{ran}"
    );
    // Still in step: the next call runs.
    client.send(&raw_echo(9, br#"{"message":"after"}"#));
    assert_eq!(
        client.answer()["result"]["content"][0]["text"],
        "Echo: after"
    );
    client.close();

    let all = events(&db);
    let oversized = one(&all, "oversized_frame", Outcome::Denied);
    assert!(detail(oversized, "size").as_u64().unwrap() > 11 * 1024 * 1024);
    let echoes = all_of(&all, "echo", Outcome::Denied);
    assert_eq!(
        echoes.len(),
        2,
        "the oversized one and the reused id: {echoes:#?}"
    );
    assert!(
        all_of(&all, "echo", Outcome::Success)
            .iter()
            .all(|e| e.event.request_id.as_deref() == Some("9")),
        "only the call after them ran"
    );
    intent_and_outcome(&all, "trigger-long-running-operation", Outcome::Success);
}

/// A compromised server: answers every request with a JSON-RPC error whose code is beyond
/// ±2^53, which once cost the record of the call.
const HUGE_CODE_SERVER: &str = r#"
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if "id" in message and "method" in message:
        answer = {"jsonrpc": "2.0", "id": message["id"], "error": {"code": 2**60 + 1, "message": "no"}}
        print(json.dumps(answer), flush=True)
"#;

#[test]
fn an_error_code_beyond_2_pow_53_keeps_the_call_on_record() {
    let Some(peers) = peers() else { return };
    for durability in ["sync", "batch"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let script = dir.path().join("server.py");
        std::fs::write(&script, HUGE_CODE_SERVER).unwrap();
        let server = format!("{} {}", python(&peers).display(), script.display());
        let call = raw_echo(1, br#"{"message":"hi"}"#);
        let (code, out, _) = proxy_with_input(
            &db,
            &server,
            &[call.as_slice(), b"\n"].concat(),
            &["--durability", durability],
        );
        assert_eq!(code, Some(0));
        assert!(String::from_utf8_lossy(&out).contains("1152921504606846977"));
        let all = events(&db);
        let failed = one(&all, "echo", Outcome::ProtocolError);
        assert_eq!(failed.event.error_code, None, "{durability}");
        let message = error_message(failed);
        assert!(
            message.contains("1152921504606846977"),
            "{durability}: the code as written: {message}"
        );
    }
}

#[test]
fn a_notification_flood_is_stored_as_counts_per_second_that_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    // A hostile server: fifty thousand notifications as fast as a pipe takes them.
    let sent = 50_000;
    let server = format!(
        r#"yes '{{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{{"uri":"file:///x"}}}}' | head -n {sent}"#
    );
    let (code, out, _) = proxy_with_input(&db, &server, b"", &["--durability", "batch"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.iter().filter(|b| **b == b'\n').count(),
        sent,
        "all reach the client"
    );
    let all = events(&db);
    let flood: Vec<&StoredEvent> = all
        .iter()
        .filter(|e| e.event.operation == "notifications/resources/updated")
        .collect();
    assert!(
        flood.len() < 1000,
        "{} events for {sent} notifications",
        flood.len()
    );
    let counted: u64 = flood
        .iter()
        .map(|e| match detail(e, "aggregated") {
            Value::Bool(true) => {
                assert_eq!(detail(e, "sample")["uri"], "file:///x");
                detail(e, "count").as_u64().unwrap()
            }
            _ => 1,
        })
        .sum();
    assert_eq!(counted, sent as u64);
}

#[test]
fn frames_strict_json_refuses_are_held_as_their_operation_before_the_python_sdk_server_runs_them() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let server = [
        python(&peers).display().to_string(),
        peer_script("modern_server.py").display().to_string(),
    ];
    let mut client = RawClient::start(&db, &[], &server);
    let adds: [(u32, &str, Vec<u8>); 3] = [
        (
            2,
            "129-deep array",
            format!(
                r#"{{"a":1,"b":2,"d":{}{}}}"#,
                "[".repeat(129),
                "]".repeat(129)
            )
            .into_bytes(),
        ),
        (
            3,
            "invalid UTF-8",
            b"{\"a\":1,\"b\":2,\"s\":\"caf\xc3\x28\"}".to_vec(),
        ),
        (4, "1e400", br#"{"a":1,"b":2,"n":1e400}"#.to_vec()),
    ];
    for (id, what, arguments) in &adds {
        let mut frame = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add","arguments":"#
        )
        .into_bytes();
        frame.extend_from_slice(arguments);
        frame.extend_from_slice(b"}}");
        client.send(&frame);
        let answer = client.answer();
        assert_eq!(
            answer["result"]["structuredContent"]["result"], 3,
            "{what}: the server ran it: {answer}"
        );
    }
    client.close();
    let all = events(&db);
    for (id, what, _) in adds {
        let (_, done) = on_record_before_it_ran(&all, &id.to_string(), "add", what);
        assert_eq!(done.event.outcome, Outcome::Success, "{what}");
    }
}

/// The processes of this user whose environment holds `mark` (a value no other test uses):
/// what is left of a proxy and its server once they should be gone.
fn processes_marked(mark: &str) -> Vec<u32> {
    let needle = format!("MCP_AUDIT_TEST_MARK={mark}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Waits for `child` up to `limit`; `None` if it is still running then (the caller fails).
fn wait_up_to(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0, "kill {pid}");
}

#[test]
fn the_inspector_stopping_the_proxy_as_the_typescript_sdk_does_leaves_a_session_end_and_no_server()
{
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mark = dir.path().display().to_string();
    // The Inspector's CLI (TypeScript SDK) lists the tools, then closes the proxy's input,
    // waits 2 s, sends SIGTERM, and SIGKILL 2 s later. server-everything does not exit when
    // its input closes, so the proxy must stop it on SIGTERM and record the end in time.
    let output = Command::new(peers.join("npm/node_modules/.bin/mcp-inspector"))
        .args(["--cli", "--method", "tools/list"])
        .args(["-e", &format!("MCP_AUDIT_TEST_MARK={mark}")])
        .arg("--")
        .arg(BIN)
        .args(["proxy", "--db"])
        .arg(&db)
        .arg("--")
        .args(everything(&peers))
        .env("MCP_CATALOG_PATH", dir.path().join("catalog.json"))
        .output()
        .unwrap();
    let listed = json_output("the inspector", output);
    assert!(
        listed["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{listed}"
    );
    // The server is stopped with the proxy, not left running alone.
    assert_eq!(processes_marked(&mark), Vec::<u32>::new(), "left running");

    let all = events(&db);
    one(&all, "session_start", Outcome::Success);
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "reason"), "client closed its input");
    assert_eq!(detail(end, "server_signal"), "SIGTERM");
    // The server's request that the client never answered is on record.
    one(&all, "roots/list", Outcome::Incomplete);
}

#[test]
fn sigterm_stops_the_whole_server_group_and_records_a_server_that_ignores_it_as_killed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mark = dir.path().display().to_string();
    // A server that ignores SIGTERM, with a child of its own that ignores it too.
    let mut proxy = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db)
        .args(["--", "sh", "-c", "trap '' TERM; sleep 300 & wait"])
        .env("MCP_AUDIT_TEST_MARK", &mark)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The proxy, the shell and `sleep`.
    while processes_marked(&mark).len() < 3 {
        assert!(Instant::now() < deadline, "the server never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(proxy.id(), libc::SIGTERM);
    let status = wait_up_to(&mut proxy, Duration::from_secs(20));
    if status.is_none() {
        let _ = proxy.kill();
    }
    assert!(status.is_some(), "the proxy did not stop on SIGTERM");
    assert_eq!(processes_marked(&mark), Vec::<u32>::new(), "left running");

    let all = events(&db);
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "reason"), "the proxy was told to stop");
    assert_eq!(detail(end, "server_signal"), "SIGKILL");
    assert_eq!(detail(end, "server_exit_status"), Value::Null);
}

#[test]
fn a_server_killed_by_a_signal_is_recorded_with_the_signals_name_not_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let (code, _, _) = proxy_with_input(&db, "kill -USR1 $$", b"", &[]);
    assert_eq!(code, Some(1), "no status to pass on");
    let all = events(&db);
    let end = one(&all, "session_end", Outcome::Success);
    assert_eq!(detail(end, "server_signal"), "SIGUSR1");
    assert_eq!(detail(end, "server_exit_status"), Value::Null);
}

#[test]
fn the_stdio_proxys_metrics_listen_serves_counts_that_match_its_trail_and_pass_promtool() {
    let Some(peers) = peers() else { return };
    if !promtool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut client = RawClient::start(&db, &["--metrics-listen", &listen], &everything(&peers));
    for id in 1..=3 {
        client.send(&raw_echo(id, br#"{"message":"counted"}"#));
        assert!(client.answer().get("result").is_some());
    }
    // A frame `sync` can not put on record whole: refused, recorded denied, not forwarded.
    client.send(b"{not json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !try_events(&db).is_ok_and(|all| {
        all_of(&all, "echo", Outcome::Success).len() == 3
            && all.iter().any(|e| e.event.outcome == Outcome::Denied)
    }) {
        assert!(Instant::now() < deadline, "the trail never held the calls");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, _, text) = http_get(port, "/metrics");
    let trail = events(&db);
    assert_eq!(status, 200, "{text}");
    promtool_check(&text);
    let samples = metric_samples(&text);
    assert_eq!(written_samples(&samples), written_series(&trail), "{text}");
    let denied = trail
        .iter()
        .filter(|e| e.event.outcome == Outcome::Denied)
        .count() as f64;
    assert!(denied >= 1.0);
    assert_eq!(
        samples[r#"mcp_audit_proxy_denied_calls_total{reason="not_recordable"}"#], denied,
        "{text}"
    );
    assert_eq!(
        sample(
            &samples,
            r#"mcp_audit_proxy_denied_calls_total{reason="credentials"}"#
        ),
        0.0
    );
    assert!(samples["mcp_audit_recorder_commit_duration_seconds_count"] >= 1.0);
    assert_eq!(http_get(port, "/elsewhere").0, 404);
    client.close();
}

/// The proxy's standard streams as its client gives them: `kind` says what (a socket pair, or
/// a file for input and a pipe for output), with `input` written first and the input closed.
/// The server answers one `tools/call` (id 1) once it has read it. Returns (exit code, stdout).
fn proxy_on(kind: &str, db: &Path, input: &[u8]) -> (Option<i32>, Vec<u8>) {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    let server = r#"read -r line; printf '%s\n' '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"answered"}]}}'"#;
    let mut command = Command::new(BIN);
    command
        .arg("proxy")
        .arg("--db")
        .arg(db)
        .args(["--", "sh", "-c", server]);
    match kind {
        "socket pair" => {
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let theirs_out = theirs.try_clone().unwrap();
            let mut child = command
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(OwnedFd::from(theirs_out)))
                .spawn()
                .unwrap();
            // The command holds the child's ends until it is dropped: the proxy's output ends
            // only when every copy of its end is closed.
            drop(command);
            ours.write_all(input).unwrap();
            ours.shutdown(std::net::Shutdown::Write).unwrap();
            let mut output = Vec::new();
            ours.read_to_end(&mut output).unwrap();
            (child.wait().unwrap().code(), output)
        }
        _ => {
            let file = db.with_extension("input");
            std::fs::write(&file, input).unwrap();
            let output = command
                .stdin(std::fs::File::open(&file).unwrap())
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            (output.status.code(), output.stdout)
        }
    }
}

/// A client may start the proxy on a socket pair rather than pipes, and a script may feed it a
/// file: the first is polled by the runtime like a pipe, the second read as tokio reads any
/// input. Either way the call goes through, byte for byte, and is on record, its intent first.
#[test]
fn the_proxy_serves_a_client_on_a_socket_pair_and_input_from_a_file() {
    let call = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{}}}\n";
    for kind in ["socket pair", "file"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let (code, output) = proxy_on(kind, &db, call);
        assert_eq!(code, Some(0), "{kind}");
        assert_eq!(
            String::from_utf8_lossy(&output),
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"answered\"}]}}\n",
            "{kind}"
        );
        let all = events(&db);
        intent_and_outcome(&all, "echo", Outcome::Success);
    }
}
