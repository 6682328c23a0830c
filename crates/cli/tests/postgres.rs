//! `--db postgres://...`: the commands that work on a SQLite file work on PostgreSQL, driven as
//! a user drives them, against the real server named by `MCP_AUDIT_TEST_PG` (skipped, and said
//! so, without it; a failure under `CI=true`). Each test gets a schema of its own.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

mod support;

use support::PgSchema;

/// A schema of its own in the test database, dropped at the end, and the binary pointed at it.
struct Pg {
    schema: PgSchema,
    dir: tempfile::TempDir,
}

impl Pg {
    fn new() -> Option<Pg> {
        Some(Pg {
            schema: PgSchema::new("cli")?,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// The binary pointed at this schema, with its spool directory beside it, its stdio piped,
    /// and no database settings of the environment that runs the tests.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
        command
            .arg("--db")
            .arg(&self.schema.url)
            .arg("--spool-dir")
            .arg(self.dir.path().join("spool"))
            .env_remove("MCP_AUDIT_DB")
            .env_remove("MCP_AUDIT_LOG_ID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        let mut child = self.command().args(args).spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.unwrap_or_default()).unwrap();
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    }

    fn log(&self, events: &[Value], log_id: &str) {
        let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
        let (code, _, err) = self.run(&["--log-id", log_id, "log", "-"], Some(lines.as_bytes()));
        assert_eq!(code, 0, "{err}");
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        self.ok(args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn tool(operation: &str, user: &str, duration_us: u64) -> Value {
    json!({
        "kind": "tool_execution", "action": "EXECUTE", "operation": operation,
        "actor": {"user_id": user}, "session_id": "s1", "duration_us": duration_us,
        "payload": {"input": {"q": operation}},
    })
}

#[test]
fn every_reading_command_sees_the_events_of_every_log() {
    let Some(pg) = Pg::new() else { return };
    pg.log(
        &[tool("search", "alice", 100), tool("fetch", "bob", 200)],
        "proxy-a",
    );
    pg.log(&[tool("search", "carol", 300)], "proxy-b");

    let all = pg.json_lines(&["query", "--jsonl"]);
    assert_eq!(all.len(), 3);
    let logs: std::collections::BTreeSet<&str> =
        all.iter().map(|e| e["log_id"].as_str().unwrap()).collect();
    assert_eq!(logs.into_iter().collect::<Vec<_>>(), ["proxy-a", "proxy-b"]);
    assert_eq!(
        pg.json_lines(&["query", "--jsonl", "--tool", "search"])
            .len(),
        2
    );

    let id = all[0]["id"].as_str().unwrap();
    assert!(pg.ok(&["show", id]).contains(id));

    let summary: Value =
        serde_json::from_str(&pg.ok(&["summary", "--session", "s1", "--json"])).unwrap();
    assert_eq!(summary["tool_executions"], 3);
    assert_eq!(summary["distinct_users"], 3);

    let stats: Value = serde_json::from_str(&pg.ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats[0]["tool"], "search");
    assert_eq!(stats[0]["calls"], 2);

    let exported = pg.json_lines(&["export"]);
    assert_eq!(exported.len(), 3);
}

#[test]
fn cleanup_deletes_expired_events_and_a_log_in_use_is_refused_in_one_line() {
    let Some(pg) = Pg::new() else { return };
    let mut old = tool("old", "alice", 1);
    old["timestamp"] = json!("2020-01-01T00:00:00Z");
    old["compliance"] = json!({"retention": "30d"});
    pg.log(&[old, tool("new", "alice", 1)], "proxy-a");
    let dry: Value = serde_json::from_str(&pg.ok(&["cleanup", "--dry-run", "--json"])).unwrap();
    assert_eq!(
        (dry["events"].as_u64(), dry["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        pg.json_lines(&["query", "--jsonl"]).len(),
        2,
        "a dry run deletes nothing"
    );
    let report: Value = serde_json::from_str(&pg.ok(&["cleanup", "--json"])).unwrap();
    assert_eq!(report["events"], 1);
    assert_eq!(report["runs"][0]["log_id"], "proxy-a");
    assert_eq!(report["runs"][0]["cleanup_seq"], 2);
    let left = pg.json_lines(&["query", "--jsonl"]);
    let left: Vec<&str> = left
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["DELETE expired_events", "new"]);
    let verify = pg.ok(&["verify", "--log-id", "proxy-a"]);
    assert!(verify.contains("1 entries expired"), "{verify}");

    // A writer holding log `busy` while `log --log-id busy` starts, and while `cleanup` finds
    // expired events in it: they stay for a run while the log is free.
    let mut expired = tool("busy old", "alice", 1);
    expired["timestamp"] = json!("2020-01-01T00:00:00Z");
    expired["compliance"] = json!({"retention": "30d"});
    pg.log(&[expired], "busy");
    let holder = mcp_audit_store::PgStore::open(
        &pg.schema.url,
        mcp_audit_store::PgOptions {
            log_id: Some("busy".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let line = format!("{}\n", tool("t", "u", 1));
    let (code, _, err) = pg.run(&["--log-id", "busy", "log", "-"], Some(line.as_bytes()));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already being written"), "{err}");
    let report: Value = serde_json::from_str(&pg.ok(&["cleanup", "--json"])).unwrap();
    assert_eq!(report["busy"], json!(["busy"]));
    assert_eq!(report["events"], 0);
    drop(holder);
    let report: Value = serde_json::from_str(&pg.ok(&["cleanup", "--json"])).unwrap();
    assert_eq!(
        (
            report["events"].as_u64(),
            report["busy"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    let verify = pg.ok(&["verify", "--log-id", "busy"]);
    assert!(verify.contains("1 entries expired"), "{verify}");
}

#[test]
fn a_wrong_database_url_fails_with_one_line_and_no_password() {
    let Some(pg) = Pg::new() else { return };
    let (code, _, err) = {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
            .args([
                "--db",
                "postgres://someone:hunter2@127.0.0.1:1/nothing",
                "query",
            ])
            .env_remove("MCP_AUDIT_DB")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    drop(pg);
}

#[test]
fn a_database_with_one_log_needs_no_log_id_to_checkpoint() {
    let Some(pg) = Pg::new() else { return };
    let key = pg.dir.path().join("k.key");
    let key = key.to_str().unwrap();
    pg.ok(&["keygen", "--name", "audit-test", "--out", key]);
    let (code, _, err) = pg.run(&["checkpoint", "--key", key], None);
    assert_eq!(code, 1, "nothing recorded yet");
    assert!(err.contains("recorded"), "{err}");

    pg.log(&[tool("a0", "alice", 1), tool("a1", "alice", 2)], "only");
    let out = pg.ok(&["checkpoint", "--key", key]);
    assert!(
        out.starts_with("mcp-audit/only\n2\n"),
        "the log's checkpoint of both entries: {out}"
    );
    let out = pg.ok(&["verify", "--key", &format!("{key}.pub")]);
    assert!(
        out.contains("log only:\n2 entries checked, 0 redacted, 1 checkpoint(s) verified"),
        "{out}"
    );
}

#[test]
fn verify_checks_each_log_and_proofs_and_erasure_work_per_event() {
    let Some(pg) = Pg::new() else { return };
    let dir = pg.dir.path().to_path_buf();
    pg.log(&[tool("a0", "alice", 1), tool("a1", "alice", 2)], "proxy-a");
    pg.log(
        &[
            tool("b0", "bob", 1),
            tool("b1", "bob", 2),
            tool("b2", "bob", 3),
        ],
        "proxy-b",
    );
    let key = dir.join("k.key");
    let key = key.to_str().unwrap();
    pg.ok(&["keygen", "--name", "audit-test", "--out", key]);
    let (code, _, err) = pg.run(&["checkpoint", "--key", key], None);
    assert_eq!(code, 1, "two logs: which one to checkpoint?");
    assert!(
        err.contains("holds 2 logs (proxy-a, proxy-b)") && err.contains("--log-id"),
        "{err}"
    );
    let outside = dir.join("a.jsonl");
    let outside = outside.to_str().unwrap();
    pg.ok(&[
        "--log-id",
        "proxy-a",
        "checkpoint",
        "--key",
        key,
        "--checkpoint-out",
        outside,
    ]);
    pg.ok(&["--log-id", "proxy-b", "checkpoint", "--key", key]);
    let public = format!("{key}.pub");
    // Outside checkpoints belong to one log.
    let (code, _, err) = pg.run(
        &["verify", "--key", &public, "--checkpoints", outside],
        None,
    );
    assert_eq!(code, 2, "could not run: {err}");
    assert!(err.contains("--log-id"), "{err}");
    let out = pg.ok(&[
        "--log-id",
        "proxy-a",
        "verify",
        "--key",
        &public,
        "--checkpoints",
        outside,
    ]);
    assert!(
        out.contains("2 entries checked") && out.contains("\nok\n"),
        "{out}"
    );
    let out = pg.ok(&["verify", "--key", &public]);
    assert!(out.contains("log proxy-a:\n2 entries checked"), "{out}");
    assert!(out.contains("log proxy-b:\n3 entries checked"), "{out}");
    assert!(!out.contains("NOT OK"), "{out}");

    let b1 = pg.json_lines(&["query", "--jsonl", "--tool", "b1"]);
    let id = b1[0]["id"].as_str().unwrap();
    let proof: Value = serde_json::from_str(&pg.ok(&["prove", id])).unwrap();
    assert_eq!(
        (proof["seq"].as_u64(), proof["tree_size"].as_u64()),
        (Some(1), Some(3))
    );
    let proof_file = dir.join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    pg.ok(&[
        "verify-proof",
        proof_file.to_str().unwrap(),
        "--key",
        &public,
    ]);

    // The erasure is recorded in the eraser's own log, which is checkpointed like any other.
    let (code, out, err) = pg.run(
        &["--log-id", "admin", "erase", id, "--reason", "request 7"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    // What PostgreSQL keeps of the deleted row is said, not hidden.
    assert!(err.contains("warning:") && err.contains("VACUUM"), "{err}");
    assert!(
        out.contains(&format!("erased the personal data of record {id}")),
        "{out}"
    );
    pg.ok(&["--log-id", "admin", "checkpoint", "--key", key]);
    let out = pg.ok(&["verify", "--key", &public]);
    assert!(
        out.contains("log proxy-b:\n3 entries checked, 1 redacted"),
        "{out}"
    );
    assert!(out.contains("log admin:\n1 entries checked"), "{out}");
    assert!(!out.contains("NOT OK"), "{out}");

    // Tampering with one log fails verify and names that log's finding only.
    let mut raw = postgres::Client::connect(&pg.schema.url, postgres::NoTls).unwrap();
    raw.batch_execute("UPDATE events SET user_id = 'mallory' WHERE log_id = 'proxy-a' AND seq = 1")
        .unwrap();
    let (code, out, _) = pg.run(&["verify", "--key", &public, "--json"], None);
    assert_eq!(code, 1, "{out}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    let report = |log: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["log_id"] == log)
            .unwrap()
            .clone()
    };
    assert_eq!(
        report("proxy-a")["findings"][0]["finding"],
        "modified_column"
    );
    assert_eq!(report("proxy-b")["findings"].as_array().unwrap().len(), 0);
    assert_eq!(report("admin")["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn two_proxies_record_into_one_database_each_in_its_own_log() {
    let Some(pg) = Pg::new() else { return };
    let frames = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{}}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n";
    let proxies: Vec<_> = ["sync", "batch"]
        .into_iter()
        .map(|durability| {
            let mut child = pg
                .command()
                .args(["--log-id", &format!("proxy-{durability}")])
                .args(["proxy", "--durability", durability, "--", "sh", "-c", "cat"])
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(frames).unwrap();
            child
        })
        .collect();
    for child in proxies {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, frames, "the bytes pass through unchanged");
    }
    let all = pg.json_lines(&["query", "--jsonl", "--include-pending"]);
    for log in ["proxy-sync", "proxy-batch"] {
        let ops: Vec<&str> = all
            .iter()
            .filter(|e| e["log_id"] == log)
            .map(|e| e["operation"].as_str().unwrap())
            .collect();
        assert!(ops.contains(&"search"), "{log}: {ops:?}");
    }
    // Both logs are whole and dense.
    let out = pg.ok(&["verify"]);
    assert_eq!(out.matches("\nok\n").count(), 2, "{out}");
}

/// The names of an object's members, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn verify_json_has_the_same_shape_on_sqlite_and_postgresql() {
    let Some(pg) = Pg::new() else { return };
    pg.log(&[tool("a0", "alice", 1)], "only");
    let (code, out, err) = pg.run(&["verify", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let on_pg: Value = serde_json::from_str(&out).unwrap();

    let file = pg.dir.path().join("a.db");
    let sqlite = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
            .arg("--db")
            .arg(&file)
            .args(args)
            .output()
            .unwrap()
    };
    let logged = sqlite(&["log", &tool("a0", "alice", 1).to_string()]);
    assert!(logged.status.success());
    let out = sqlite(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let on_sqlite: Value = serde_json::from_slice(&out.stdout).unwrap();

    // One array of one report per log, each with the same members.
    assert_eq!(on_pg.as_array().map(Vec::len), Some(1), "{on_pg}");
    assert_eq!(on_sqlite.as_array().map(Vec::len), Some(1), "{on_sqlite}");
    assert_eq!(keys(&on_pg[0]), keys(&on_sqlite[0]));
    assert_eq!(on_pg[0]["log_id"], "only");
    assert!(
        on_sqlite[0]["log_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

/// Processes that open a new database at the same moment all start: PostgreSQL's migration
/// runs under a transaction advisory lock, so none applies a step another already did. Eight
/// processes at once (a log each), on fifty new schemas, each recording one event.
#[test]
fn eight_processes_opening_a_new_database_at_once_all_start_and_record() {
    for round in 0..50 {
        let Some(pg) = Pg::new() else { return };
        let children: Vec<_> = (0..8)
            .map(|i| {
                let event = tool(&format!("p{i}"), "alice", 1).to_string();
                let mut command = pg.command();
                command
                    .args(["--log-id", &format!("proxy-{i}"), "log", &event])
                    .stdin(Stdio::null());
                command.spawn().unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}, process {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let logs = pg.json_lines(&["query", "--jsonl"]);
        assert_eq!(logs.len(), 8, "round {round}");
    }
}

/// The seed callers' forms (an upper-case custom action and classification, data sources as
/// URI strings, `success: false`, a top-level `error_message`) are stored in the event's own
/// form on PostgreSQL too, and found by the canonical action name.
#[test]
fn log_stores_what_the_seed_callers_send_in_one_form() {
    let Some(pg) = Pg::new() else { return };
    let event = json!({
        "kind": "admin",
        "action": "DELETE_SERVER",
        "operation": "server",
        "target": {"resource_type": "server", "resource_id": "srv-1"},
        "compliance": {"classification": "INTERNAL"},
        "data_sources": ["postgres://db/servers"],
        "success": false,
        "error_message": "server still has tools",
    });
    pg.log(&[event], "gateway");
    let stored = pg.json_lines(&["query", "--jsonl", "--action", "delete_server"]);
    assert_eq!(stored.len(), 1);
    let stored = &stored[0];
    assert_eq!(stored["action"], "delete_server");
    assert_eq!(stored["compliance"]["classification"], "internal");
    assert_eq!(stored["compliance"]["requires_review"], true);
    assert_eq!(
        stored["data_sources"],
        json!([{"uri": "postgres://db/servers", "direction": "input"}])
    );
    assert_eq!(stored["outcome"], "tool_error");
    assert_eq!(stored["payload"]["error_message"], "server still has tools");
}

#[test]
fn the_table_prints_log_and_seq_which_show_takes_and_a_bare_seq_needs_its_log() {
    let Some(pg) = Pg::new() else { return };
    pg.log(&[tool("search", "alice", 100)], "proxy-a");
    pg.log(&[tool("fetch", "bob", 200)], "proxy-b");

    let table = pg.ok(&["query", "--columns", "seq,operation"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["log:seq", "operation"]
    );
    let fetch = lines
        .iter()
        .find(|l| l.contains("fetch"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert_eq!(fetch, "proxy-b:0", "{table}");
    let shown: Value = serde_json::from_str(&pg.ok(&["show", fetch])).unwrap();
    assert_eq!(shown["operation"], "fetch");
    assert_eq!(shown["log_id"], "proxy-b");

    // Seq 0 is in both logs: a bare seq is refused, naming the way out.
    let (code, _, err) = pg.run(&["show", "0"], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("holds 2 logs (proxy-a, proxy-b)") && err.contains("LOG:SEQ"),
        "{err}"
    );
    let by_log_id: Value =
        serde_json::from_str(&pg.ok(&["--log-id", "proxy-a", "show", "0"])).unwrap();
    assert_eq!(by_log_id["operation"], "search");
    let (code, _, err) = pg.run(&["show", "proxy-c:0"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no event at seq 0 in log proxy-c"), "{err}");

    // `query --log-id` reads that log only, with nothing on stderr.
    let (code, out, err) = pg.run(&["--log-id", "proxy-a", "query", "--jsonl"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("search"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn each_reading_command_with_log_id_sees_only_that_log() {
    let Some(pg) = Pg::new() else { return };
    pg.log(
        &[tool("search", "alice", 100), tool("fetch", "bob", 200)],
        "proxy-a",
    );
    pg.log(&[tool("search", "carol", 300)], "proxy-b");
    let summary = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--json"]);
        serde_json::from_str(&pg.ok(&all)).unwrap()
    };

    for (log, events, users) in [("proxy-a", 2, 2), ("proxy-b", 1, 1)] {
        let queried = pg.json_lines(&["--log-id", log, "query", "--jsonl"]);
        assert_eq!(queried.len(), events, "{log}");
        assert!(queried.iter().all(|e| e["log_id"] == log), "{queried:?}");
        let exported = pg.json_lines(&["--log-id", log, "export"]);
        assert_eq!(exported.len(), events, "{log}");
        assert!(exported.iter().all(|e| e["log_id"] == log), "{exported:?}");

        // Every scope of a summary: a window (everything), a session, a user.
        let window = summary(&["--log-id", log, "summary"]);
        assert_eq!(window["tool_executions"], events, "{log}");
        let session = summary(&["--log-id", log, "summary", "--session", "s1"]);
        assert_eq!(session["tool_executions"], events, "{log}");
        assert_eq!(session["distinct_users"], users, "{log}");
        let carol = summary(&["--log-id", log, "summary", "--user", "carol"]);
        assert_eq!(
            carol["tool_executions"],
            u64::from(log == "proxy-b"),
            "{log}"
        );
    }

    let stats: Value =
        serde_json::from_str(&pg.ok(&["--log-id", "proxy-b", "stats", "--json"])).unwrap();
    assert_eq!(stats.as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats[0]["tool"], "search");
    assert_eq!(stats[0]["calls"], 1);
    let stats: Value =
        serde_json::from_str(&pg.ok(&["--log-id", "proxy-a", "stats", "--json"])).unwrap();
    assert_eq!(stats.as_array().unwrap().len(), 2, "{stats}");

    // Without it, every log; a log the database does not hold has no events.
    assert_eq!(pg.json_lines(&["query", "--jsonl"]).len(), 3);
    assert_eq!(summary(&["summary"])["tool_executions"], 3);
    assert!(pg.json_lines(&["--log-id", "proxy-c", "export"]).is_empty());
}

#[test]
fn a_subjects_export_spans_logs_and_a_hold_in_another_log_keeps_events_from_cleanup() {
    let Some(pg) = Pg::new() else { return };
    let key = pg.dir.path().join("k.key");
    let key = key.to_str().unwrap();
    let export = pg.dir.path().join("export.json");
    let mut old = tool("old", "cust-42", 1);
    old["timestamp"] = json!("2020-01-01T00:00:00Z");
    old["compliance"] = json!({"retention": "30d"});
    pg.log(&[old, tool("a", "bob", 1)], "proxy-a");
    pg.log(&[tool("b", "cust-42", 1)], "proxy-b");
    pg.ok(&["keygen", "--name", "audit-test", "--out", key]);
    for log in ["proxy-a", "proxy-b"] {
        pg.ok(&["--log-id", log, "checkpoint", "--key", key]);
    }

    pg.ok(&[
        "--log-id",
        "admin",
        "subject",
        "export",
        "cust-42",
        "--output",
        export.to_str().unwrap(),
    ]);
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let logs: Vec<&str> = document["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["log_id"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["proxy-a", "proxy-b"]);
    let verified = pg.ok(&[
        "subject",
        "verify-export",
        export.to_str().unwrap(),
        "--key",
        &format!("{key}.pub"),
    ]);
    assert!(verified.contains("ok: 2 event(s)"), "{verified}");
    assert_eq!(
        pg.json_lines(&["query", "--jsonl", "--operation", "EXPORT data_subject"])
            .len(),
        1
    );

    let hold = pg.ok(&[
        "--log-id",
        "admin",
        "hold",
        "add",
        "--user",
        "cust-42",
        "--reason",
        "litigation 17",
    ]);
    let hold = hold.trim();
    let dry: Value = serde_json::from_str(&pg.ok(&["cleanup", "--dry-run", "--json"])).unwrap();
    assert_eq!(
        (dry["events"].as_u64(), dry["held"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(dry["logs"][0]["log_id"], "proxy-a");
    assert_eq!(dry["logs"][0]["held"][hold], 1);
    let cleaned: Value = serde_json::from_str(&pg.ok(&["cleanup", "--json"])).unwrap();
    assert_eq!(cleaned["events"], 0, "the held event stays");
    assert_eq!(
        pg.json_lines(&["query", "--jsonl", "--tool", "old"]).len(),
        1
    );

    pg.ok(&[
        "--log-id", "admin", "hold", "release", hold, "--reason", "settled",
    ]);
    let cleaned: Value = serde_json::from_str(&pg.ok(&["cleanup", "--json"])).unwrap();
    assert_eq!(cleaned["events"], 1, "released: it goes");
}
