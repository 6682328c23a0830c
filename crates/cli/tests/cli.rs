//! The `mcp-audit` binary, driven as a user drives it: real processes, real SQLite files in
//! temporary directories, output parsed back and checked.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and gives stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        &self.stdout
    }

    /// Asserts the error contract: exit 1, exactly one stderr line `error: ...` that
    /// mentions `needle`.
    fn one_line_error(&self, needle: &str) {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        assert!(
            lines[0].to_lowercase().contains(needle),
            "expected `{needle}` in: {}",
            lines[0]
        );
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// A temporary directory with a database path in it.
struct Env {
    dir: TempDir,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        Env { dir, db }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
        command.arg("--db").arg(&self.db).args(args);
        command.env_remove("MCP_AUDIT_DB").env_remove("RUST_LOG");
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run_command(self.command(args), None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_command(self.command(args), Some(stdin))
    }

    /// Records events given as JSON values, one `log -` batch; asserts it succeeded.
    fn log(&self, events: &[Value]) {
        let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
        self.run_with_stdin(&["log", "-"], lines.as_bytes()).ok();
    }

    /// Every event (up to 10,000), newest first, as parsed `query --jsonl` lines.
    fn events(&self, filter: &[&str]) -> Vec<Value> {
        let mut args = vec!["query", "--jsonl", "--limit", "10000"];
        args.extend_from_slice(filter);
        self.run(&args)
            .ok()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn operations(&self, filter: &[&str]) -> Vec<String> {
        self.events(filter)
            .iter()
            .map(|e| e["operation"].as_str().unwrap().to_string())
            .collect()
    }

    fn count(&self) -> usize {
        self.events(&[]).len()
    }
}

fn run_command(mut command: Command, stdin: Option<&[u8]>) -> Run {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // Fed from a thread, so that a child writing much to stderr can not deadlock us; a child
    // that stops reading early (and so closes the pipe) is allowed to.
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || match pipe.write_all(&bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        })
    });
    let output = child.wait_with_output().unwrap();
    if let Some(feeder) = feeder {
        feeder.join().unwrap();
    }
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn tool(operation: &str, user: &str, session: &str, duration_us: u64) -> Value {
    json!({
        "kind": "tool_execution",
        "action": "EXECUTE",
        "operation": operation,
        "session_id": session,
        "actor": {"user_id": user},
        "duration_us": duration_us,
    })
}

fn failed_tool(operation: &str, user: &str, duration_us: u64) -> Value {
    let mut event = tool(operation, user, "s-err", duration_us);
    event["outcome"] = json!("tool_error");
    event["payload"] = json!({"error_message": "upstream timed out"});
    event
}

// ---------------------------------------------------------------------------------------------
// log

#[test]
fn log_of_one_event_prints_its_id_and_seq_and_the_event_is_stored() {
    let env = Env::new();
    let out = env.run(&["log", &tool("search", "alice", "s-1", 1200).to_string()]);
    let stdout = out.ok();
    assert!(stdout.starts_with("recorded "), "{stdout}");
    assert!(stdout.contains("(seq 0)"), "{stdout}");
    let events = env.events(&[]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["operation"], "search");
    assert_eq!(events[0]["actor"]["user_id"], "alice");
    assert!(
        stdout.contains(events[0]["id"].as_str().unwrap()),
        "{stdout}"
    );
}

#[test]
fn log_reads_one_event_from_a_file() {
    let env = Env::new();
    let file = env.dir.path().join("event.json");
    let pretty = serde_json::to_string_pretty(&tool("from_file", "bob", "s-1", 5)).unwrap();
    fs::write(&file, pretty).unwrap();
    env.run(&["log", "--file", file.to_str().unwrap()]).ok();
    assert_eq!(env.operations(&[]), ["from_file"]);

    // A JSON-lines file given as one event points at the right way to read it.
    let lines = env.dir.path().join("events.jsonl");
    let one = tool("x", "bob", "s-1", 5);
    fs::write(&lines, format!("{one}\n{one}\n")).unwrap();
    env.run(&["log", "--file", lines.to_str().unwrap()])
        .one_line_error("mcp-audit log -");
    env.run(&["log", "--file", "no-such-file.json"])
        .one_line_error("cannot read no-such-file.json");
    assert_eq!(env.count(), 1);
}

/// The error line of a refused `log -` batch.
fn batch_refused(rejected: usize, lines: usize) -> String {
    format!(
        "error: {rejected} of {lines} lines rejected; nothing recorded (a batch is all or nothing)"
    )
}

#[test]
fn log_batch_with_bad_lines_names_every_one_by_number_and_records_nothing() {
    let env = Env::new();
    env.log(&[tool("before", "alice", "s-0", 1)]);
    let good = |n: u32| format!("{}\n", tool(&format!("op{n}"), "alice", "s-1", 10));
    let mut input = Vec::new();
    input.extend(good(1).bytes()); // line 1
    input.extend(b"{\"kind\": \"tool_execution\", \n"); // line 2: malformed JSON
    input.extend(good(2).bytes()); // line 3
    input.extend(b"{\"kind\":\"teleport\",\"action\":\"EXECUTE\",\"operation\":\"x\"}\n"); // line 4
    input.extend(good(3).bytes()); // line 5
    input.extend(
        b"{\"kind\":\"tool_execution\",\"action\":\"EXECUTE\",\"operation\":\"x\",\"duration_us\":-5}\n",
    ); // line 6: negative duration
    input.extend(good(4).bytes()); // line 7
    input.extend(b"{\"kind\":\"tool_execution\",\"operation\":\"caf\xe9\"}\n"); // line 8: Latin-1
    input.extend(good(5).bytes()); // line 9

    let out = env.run_with_stdin(&["log", "-"], &input);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 5, "{out:?}");
    assert!(
        stderr[0].starts_with("line 2: malformed JSON"),
        "{}",
        stderr[0]
    );
    assert!(
        stderr[1].starts_with("line 4: ") && stderr[1].contains("teleport"),
        "{}",
        stderr[1]
    );
    assert!(
        stderr[2].starts_with("line 6: negative duration"),
        "{}",
        stderr[2]
    );
    assert!(
        stderr[3].starts_with("line 8: not valid UTF-8"),
        "{}",
        stderr[3]
    );
    assert_eq!(stderr[4], batch_refused(4, 9));
    // Nothing of the batch; what was there before is still there.
    assert_eq!(env.operations(&[]), ["before"]);

    // The same lines without the bad ones: all of them, in input order, after the first.
    let good_lines: String = (1..=5).map(good).collect();
    env.run_with_stdin(&["log", "-"], good_lines.as_bytes())
        .ok();
    let events = env.events(&[]);
    let in_order: Vec<(u64, &str)> = events
        .iter()
        .rev()
        .map(|e| (e["seq"].as_u64().unwrap(), e["operation"].as_str().unwrap()))
        .collect();
    assert_eq!(
        in_order,
        [
            (0, "before"),
            (1, "op1"),
            (2, "op2"),
            (3, "op3"),
            (4, "op4"),
            (5, "op5")
        ]
    );
}

#[test]
fn log_batch_names_lines_the_model_or_policy_refuses_and_records_nothing() {
    let env = Env::new();
    let mut unknown_policy = tool("bad_policy", "alice", "s-1", 1);
    unknown_policy["compliance"] = json!({"retention": "no_such_policy"});
    let mut unknown_field = tool("bad_field", "alice", "s-1", 1);
    unknown_field["colour"] = json!("blue");
    let empty_operation = tool("", "alice", "s-1", 1);
    let good = tool("good", "alice", "s-1", 1);
    let input = format!("{good}\n{unknown_policy}\n\n{unknown_field}\n{empty_operation}\n{good}\n");
    let out = env.run_with_stdin(&["log", "-"], input.as_bytes());
    assert_eq!(out.code, 1, "{out:?}");
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert!(
        stderr[0].starts_with("line 2: ") && stderr[0].contains("no_such_policy"),
        "{out:?}"
    );
    // Blank lines are skipped but still counted for numbering.
    assert!(
        stderr[1].starts_with("line 4: ") && stderr[1].contains("colour"),
        "{out:?}"
    );
    assert!(
        stderr[2].starts_with("line 5: ") && stderr[2].contains("operation"),
        "{out:?}"
    );
    assert_eq!(stderr[3], batch_refused(3, 5));
    assert_eq!(env.count(), 0);
}

#[test]
fn log_batch_names_a_repeated_event_id_by_line_and_records_nothing() {
    let env = Env::new();
    let id = "01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e";
    let mut first = tool("first", "alice", "s-1", 1);
    first["id"] = json!(id);
    env.log(&[first.clone()]);

    // Once in the database already, once twice within the same input.
    let mut again = tool("again", "alice", "s-1", 1);
    again["id"] = json!(id);
    let other_id = "01964f3a-7c1e-7b2a-9d4e-000000000001";
    let mut twice = tool("twice", "alice", "s-1", 1);
    twice["id"] = json!(other_id);
    let good = tool("good", "alice", "s-1", 1);
    let input = format!("{good}\n{again}\n{twice}\n{twice}\n{good}\n");
    let out = env.run_with_stdin(&["log", "-"], input.as_bytes());
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert!(
        stderr[0].starts_with("line 2: ") && stderr[0].contains("already recorded"),
        "{out:?}"
    );
    assert!(
        stderr[1].starts_with("line 4: duplicate event id"),
        "{out:?}"
    );
    assert!(stderr[1].contains("line 3"), "{out:?}");
    assert_eq!(stderr[2], batch_refused(2, 5));
    assert_eq!(env.operations(&[]), ["first"]);
    env.run(&["log", &again.to_string()])
        .one_line_error("already recorded");
}

/// Processes that open a new file at the same moment (three proxies started together) all
/// start: each migration step reads the schema version and applies the step in one IMMEDIATE
/// transaction, so none applies a step another already did (`table log_state already
/// exists`). Eight processes at once, on fifty new files, each recording one event.
#[test]
fn eight_processes_opening_a_new_file_at_once_all_start_and_record() {
    for round in 0..50 {
        let env = Env::new();
        let children: Vec<_> = (0..8)
            .map(|i| {
                let event = tool(&format!("p{i}"), "alice", "s-1", 1).to_string();
                env.command(&["log", &event])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
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
        let (count, max_seq): (i64, i64) = rusqlite::Connection::open(&env.db)
            .unwrap()
            .query_row("SELECT COUNT(*), MAX(seq) FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((count, max_seq), (8, 7), "round {round}: dense seqs");
    }
}

/// What a caller of the gateway's audit trail sends: an upper-case custom action, an
/// upper-case classification, data sources as URI strings, `success: false` and a top-level
/// `error_message`.
fn seed_caller_event() -> Value {
    json!({
        "kind": "admin",
        "action": "DELETE_SERVER",
        "operation": "server",
        "target": {"resource_type": "server", "resource_id": "srv-1"},
        "actor": {"user_id": "carol"},
        "compliance": {"classification": "INTERNAL"},
        "data_sources": ["postgres://db/servers", {"uri": "s3://bucket/x", "direction": "output"}],
        "success": false,
        "error_message": "server still has tools",
    })
}

/// Each seed form, stored in the event's own: the log holds one spelling of each, and the
/// review rule for `delete_server` applies to `DELETE_SERVER`.
fn assert_stored_in_canonical_form(stored: &Value) {
    assert_eq!(stored["action"], "delete_server", "{stored}");
    assert_eq!(
        stored["compliance"]["classification"], "internal",
        "{stored}"
    );
    assert_eq!(stored["compliance"]["requires_review"], true, "{stored}");
    assert_eq!(
        stored["data_sources"],
        json!([
            {"uri": "postgres://db/servers", "direction": "input"},
            {"uri": "s3://bucket/x", "direction": "output"},
        ]),
        "{stored}"
    );
    assert_eq!(stored["outcome"], "tool_error", "{stored}");
    assert_eq!(
        stored["payload"]["error_message"], "server still has tools",
        "{stored}"
    );
    assert!(stored.get("success").is_none(), "{stored}");
}

#[test]
fn log_accepts_what_the_seed_callers_send_and_stores_it_in_one_form() {
    let env = Env::new();
    env.run(&["log", &seed_caller_event().to_string()]).ok();
    let mut minimal = seed_caller_event();
    minimal["success"] = json!(true);
    minimal["data_sources"] = Value::Null;
    minimal["error_message"] = Value::Null;
    env.log(&[minimal]);

    let events = env.events(&["--action", "delete_server"]);
    assert_eq!(events.len(), 2, "both found by the canonical name");
    assert_eq!(events[0]["outcome"], "success");
    assert!(events[0].get("data_sources").is_none(), "{}", events[0]);
    assert_stored_in_canonical_form(&events[1]);
    assert_eq!(env.events(&["--review"]).len(), 2);
    let verified = env.run(&["verify"]);
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn log_names_the_valid_retention_policies_and_legal_bases_when_given_an_unknown_one() {
    let env = Env::new();
    let mut retention = tool("t", "alice", "s-1", 1);
    retention["compliance"] = json!({"retention": "medium"});
    let out = env.run(&["log", &retention.to_string()]);
    out.one_line_error("medium");
    for name in ["short", "standard", "extended"] {
        assert!(out.stderr.contains(name), "{name} missing: {out:?}");
    }
    let mut basis = tool("t", "alice", "s-1", 1);
    basis["compliance"] = json!({"legal_basis": "because"});
    let out = env.run(&["log", &basis.to_string()]);
    out.one_line_error("because");
    for name in [
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    ] {
        assert!(out.stderr.contains(name), "{name} missing: {out:?}");
    }
    assert_eq!(env.count(), 0);
}

#[test]
fn log_refuses_integers_beyond_two_to_the_53_in_the_events_own_fields() {
    // Exports are read by programs that hold numbers as doubles; the model's own numbers stay
    // within what those read exactly (the agent's arguments do not have to: see below).
    let env = Env::new();
    let mut huge = tool("huge", "alice", "s-1", 1);
    huge["duration_us"] = json!(u64::MAX);
    let mut code = tool("code", "alice", "s-1", 1);
    code["error_code"] = json!(i64::MIN);
    let good = tool("good", "alice", "s-1", 1);
    let input = format!("{huge}\n{code}\n{good}\n");
    let out = env.run_with_stdin(&["log", "-"], input.as_bytes());
    assert!(
        out.stderr
            .starts_with("line 1: duration_us is 18446744073709551615"),
        "{out:?}"
    );
    assert!(out.stderr.contains("line 2: error_code is"), "{out:?}");
    assert_eq!(env.count(), 0, "a batch with a bad line records nothing");
}

#[test]
fn log_keeps_every_digit_of_a_large_integer_in_the_arguments_and_verify_passes() {
    let env = Env::new();
    let mut event = tool("lookup", "alice", "s-1", 1);
    event["payload"] = json!({"input": {
        "tweet_id": 1_850_000_000_000_000_001u64,
        "below": -9_007_199_254_740_993i64,
        "temperature": 0.7,
    }});
    env.run(&["log", &event.to_string()]).ok();
    let events = env.events(&[]);
    let input = &events[0]["payload"]["input"];
    assert_eq!(input["tweet_id"].as_u64(), Some(1_850_000_000_000_000_001));
    assert_eq!(input["below"].as_i64(), Some(-9_007_199_254_740_993));
    assert_eq!(input["temperature"].as_f64(), Some(0.7));
    let shown = env.run(&["show", events[0]["id"].as_str().unwrap()]);
    assert!(shown.ok().contains("1850000000000000001"), "{shown:?}");
    let verified = env.run(&["verify"]);
    assert!(verified.ok().contains("ok"), "{verified:?}");
}

#[test]
fn log_of_a_bad_single_event_fails_with_one_line_and_records_nothing() {
    let env = Env::new();
    env.log(&[tool("before", "alice", "s-1", 1)]);
    env.run(&["log", "{\"kind\": "])
        .one_line_error("malformed json");
    env.run(&[
        "log",
        r#"{"kind":"teleport","action":"EXECUTE","operation":"x"}"#,
    ])
    .one_line_error("teleport");
    env.run(&[
        "log",
        r#"{"kind":"tool_execution","action":"EXECUTE","operation":"x","duration_us":-1}"#,
    ])
    .one_line_error("negative duration");
    assert_eq!(env.operations(&[]), ["before"]);
}

#[test]
fn log_level_writes_leaves_reads_out_and_keeps_writes_and_executions() {
    let env = Env::new();
    let read = json!({"kind":"resource_access","action":"READ","operation":"file:///a"});
    let write = json!({"kind":"resource_access","action":"UPDATE","operation":"file:///b"});
    let exec = tool("search", "alice", "s-1", 1);
    let input = format!("{read}\n{write}\n{exec}\n");
    let out = env.run_with_stdin(&["log", "--level", "writes", "-"], input.as_bytes());
    assert!(
        out.ok().contains("1 left out by the audit level"),
        "{out:?}"
    );
    let mut ops = env.operations(&[]);
    ops.sort();
    assert_eq!(ops, ["file:///b", "search"]);

    let off = env.run(&["log", "--level", "off", &exec.to_string()]);
    assert!(off.ok().starts_with("skipped"), "{off:?}");
    assert_eq!(env.count(), 2);
}

#[test]
fn log_retention_flag_sets_expires_at_of_events_that_name_none() {
    let env = Env::new();
    let mut named = tool("named", "alice", "s-1", 1);
    named["timestamp"] = json!("2026-01-01T00:00:00Z");
    named["compliance"] = json!({"retention": "7y"});
    let mut plain = tool("plain", "alice", "s-1", 1);
    plain["timestamp"] = json!("2026-01-01T00:00:00Z");
    let input = format!("{named}\n{plain}\n");
    env.run_with_stdin(&["log", "--retention", "30d", "-"], input.as_bytes())
        .ok();
    let events = env.events(&[]);
    let expiry = |op: &str| {
        events.iter().find(|e| e["operation"] == op).unwrap()["compliance"]["expires_at"].clone()
    };
    assert_eq!(expiry("named"), json!("2033-01-01T00:00:00Z"));
    assert_eq!(expiry("plain"), json!("2026-01-31T00:00:00Z"));
}

// ---------------------------------------------------------------------------------------------
// query

fn seeded() -> Env {
    let env = Env::new();
    env.log(&[
        tool("search", "alice", "s-1", 1_000),
        tool("fetch", "alice", "s-1", 3_000),
        tool("search", "bob", "s-2", 2_000),
        failed_tool("search", "bob", 9_000),
        json!({"kind":"prompt_execution","action":"EXECUTE","operation":"summarise","session_id":"s-1","actor":{"user_id":"alice"}}),
        json!({"kind":"admin","action":"DELETE","operation":"delete tool","target":{"resource_type":"tool","resource_id":"t-9"},"actor":{"user_id":"carol"}}),
    ]);
    env
}

#[test]
fn query_prints_an_aligned_table_newest_first() {
    let env = seeded();
    let out = env.run(&["query", "--user", "alice"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    for column in [
        "seq",
        "time",
        "server",
        "operation",
        "args",
        "caller",
        "outcome",
        "duration",
    ] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    assert!(
        lines[1].contains("summarise") && lines[3].contains("search"),
        "{out:?}"
    );
    // Aligned: the operation column starts at the same offset on every line.
    let at = lines[0].find("operation").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[at..].starts_with(['s', 'f'])),
        "{out:?}"
    );
    assert!(lines[3].contains("1.0ms"), "{}", lines[3]);
}

/// The rows of a table of left-aligned columns, as (column, cell) pairs: each line is cut where
/// the header's titles start.
fn table_rows(text: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut columns: Vec<(usize, String)> = Vec::new();
    let mut from = 0;
    for name in header.split_whitespace() {
        let at = from + header[from..].find(name).unwrap();
        columns.push((at, name.to_string()));
        from = at + name.len();
    }
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            columns
                .iter()
                .enumerate()
                .map(|(i, (start, name))| {
                    let end = columns.get(i + 1).map_or(chars.len(), |c| c.0);
                    let cell: String = chars[(*start).min(chars.len())..end.min(chars.len())]
                        .iter()
                        .collect();
                    (name.clone(), cell.trim().to_string())
                })
                .collect()
        })
        .collect()
}

#[test]
fn query_table_shows_the_server_an_excerpt_of_the_arguments_and_anonymous_callers() {
    let env = Env::new();
    let long = "x".repeat(500);
    env.log(&[
        json!({"kind":"tool_execution","action":"EXECUTE","operation":"search",
               "actor":{"user_id":"alice"},"target":{"server_name":"docs"},
               "payload":{"input":{"q":"mcp audit"}}}),
        json!({"kind":"tool_execution","action":"EXECUTE","operation":"echo",
               "target":{"server_name":"everything"},"payload":{"input":{"message":long}}}),
        json!({"kind":"tool_execution","action":"EXECUTE","operation":"echo",
               "actor":{"auth_method":"invalid_jwt"}}),
    ]);
    let out = env.run(&["query", "--columns", "server,caller,args"]);
    let rows = table_rows(out.ok());
    let get = |row: usize, column: &str| -> String {
        rows[row]
            .iter()
            .find(|(n, _)| n == column)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(get(2, "server"), "docs", "{out:?}");
    assert_eq!(get(2, "args"), r#"{"q":"mcp audit"}"#, "{out:?}");
    assert_eq!(get(2, "caller"), "alice", "{out:?}");
    assert_eq!(get(1, "caller"), "anonymous", "{out:?}");
    assert_eq!(get(0, "caller"), "anonymous (invalid_jwt)", "{out:?}");
    // An excerpt: the 500-character argument is cut, and says so.
    let excerpt = get(1, "args");
    assert!(
        excerpt.starts_with(r#"{"message":"xxx"#) && excerpt.ends_with('…'),
        "{out:?}"
    );
    assert!(excerpt.chars().count() <= 60, "{excerpt}");
}

#[test]
fn query_columns_choose_the_table_and_an_unknown_column_is_named_with_the_valid_ones() {
    let env = seeded();
    let out = env.run(&["query", "--columns", "kind,seq,session", "--user", "bob"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["kind", "seq", "session"],
        "{out:?}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["tool_execution", "3", "s-err"],
        "{out:?}"
    );
    let bad = env.run(&["query", "--columns", "seq,colour"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("unknown column `colour`")
            && bad.stderr.contains("seq, time, kind, action, server"),
        "{bad:?}"
    );
    let help = env.run(&["query", "--help"]);
    assert!(
        help.ok().contains("Columns (--columns): seq, time"),
        "{help:?}"
    );
}

#[test]
fn query_table_fits_the_width_it_is_given_and_is_whole_on_a_pipe() {
    let env = Env::new();
    env.log(&[json!({"kind":"tool_execution","action":"EXECUTE","operation":"a_rather_long_tool_name_indeed",
                     "target":{"server_name":"a-server-with-a-long-name"},
                     "actor":{"user_id":"someone-with-a-long-user-id"},
                     "payload":{"input":{"path":"/srv/shared/documents/quarterly/report-2026.pdf"}}})]);
    let whole = env.run(&["query"]);
    assert!(!whole.ok().contains('…'), "piped: nothing cut: {whole:?}");
    assert!(whole.ok().contains("a_rather_long_tool_name_indeed"));

    let mut command = env.command(&["query"]);
    command.env("COLUMNS", "110");
    let fitted = run_command(command, None);
    for line in fitted.ok().lines() {
        assert!(
            line.chars().count() <= 110,
            "{} wide: {line}",
            line.chars().count()
        );
    }
    assert!(fitted.ok().contains('…'), "{fitted:?}");
    assert!(
        fitted.ok().contains("success"),
        "outcomes are never cut: {fitted:?}"
    );
}

#[test]
fn query_table_escapes_bidirectional_controls_and_aligns_wide_characters() {
    let env = Env::new();
    env.log(&[
        json!({"kind":"tool_execution","action":"EXECUTE","operation":"report\u{202E}fdp.exe","actor":{"user_id":"alice"}}),
        json!({"kind":"tool_execution","action":"EXECUTE","operation":"検索","actor":{"user_id":"bob"}}),
    ]);
    let out = env.run(&["query", "--columns", "operation,caller"]);
    let text = out.ok();
    assert!(!text.contains('\u{202E}'), "{text}");
    assert!(text.contains("report\\u{202e}fdp.exe"), "{text}");
    // The caller column starts at the same display column on every line: 検索 counts as 4.
    let lines: Vec<&str> = text.lines().collect();
    let display_start = |line: &str, needle: &str| -> usize {
        let at = line.find(needle).unwrap();
        line[..at]
            .chars()
            .map(|c| {
                if ('\u{3040}'..='\u{9fff}').contains(&c) {
                    2
                } else {
                    1
                }
            })
            .sum()
    };
    assert_eq!(
        display_start(lines[0], "caller"),
        display_start(lines[1], "bob"),
        "{text}"
    );
    assert_eq!(
        display_start(lines[0], "caller"),
        display_start(lines[2], "alice"),
        "{text}"
    );
}

#[test]
fn query_filters_narrow_by_each_field() {
    let env = seeded();
    assert_eq!(env.operations(&["--tool", "fetch"]), ["fetch"]);
    assert_eq!(env.operations(&["--operation", "fetch"]), ["fetch"]);
    assert_eq!(env.operations(&["--user", "bob"]).len(), 2);
    assert_eq!(env.operations(&["--session", "s-1"]).len(), 3);
    assert_eq!(
        env.operations(&["--kind", "prompt_execution"]),
        ["summarise"]
    );
    assert_eq!(
        env.operations(&["--kind", "admin", "--kind", "prompt_execution"])
            .len(),
        2
    );
    assert_eq!(env.operations(&["--outcome", "tool_error"]).len(), 1);
    assert_eq!(env.operations(&["--action", "delete"]), ["delete tool"]);
    assert_eq!(
        env.operations(&["--resource-type", "tool", "--resource-id", "t-9"])
            .len(),
        1
    );
    assert_eq!(env.operations(&["--review"]), ["delete tool"]);
    assert_eq!(env.operations(&["--no-review"]).len(), 5);
    assert_eq!(env.operations(&["--since", "1h"]).len(), 6);
    assert_eq!(env.operations(&["--until", "1h"]).len(), 0);
    assert_eq!(
        env.operations(&["--since", "2000-01-01T00:00:00Z", "--user", "carol"])
            .len(),
        1
    );
}

#[test]
fn query_cursor_pages_through_everything_once_even_while_events_arrive() {
    let env = seeded();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_no in 0.. {
        let mut args = vec!["query", "--json", "--limit", "2"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = env.run(&args).json();
        for event in page["events"].as_array().unwrap() {
            seen.push(event["seq"].as_u64().unwrap());
        }
        if page_no == 0 {
            // A newer event arrives between pages: it must not shift what follows.
            env.log(&[tool("late", "dave", "s-9", 1)]);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1, 0]);
}

#[test]
fn query_table_prints_the_next_cursor_on_stderr_and_offset_skips() {
    let env = seeded();
    let out = env.run(&["query", "--limit", "2"]);
    assert!(out.stderr.starts_with("next page: --cursor "), "{out:?}");
    let offset = env.run(&["query", "--jsonl", "--offset", "4", "--limit", "10"]);
    let seqs: Vec<u64> = offset
        .ok()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 0]);
}

#[test]
fn query_rejects_a_damaged_cursor_with_one_line() {
    let env = seeded();
    env.run(&["query", "--cursor", "not-a-cursor"])
        .one_line_error("cursor");
}

// ---------------------------------------------------------------------------------------------
// show, summary, stats

#[test]
fn show_prints_one_event_in_full_as_pretty_json() {
    let env = Env::new();
    let mut event = tool("search", "alice", "s-1", 1);
    event["payload"] = json!({"input": {"q": "mcp audit"}, "output": {"hits": 3}});
    event["data_sources"] = json!([{"uri": "db://docs", "source_type": "database"}]);
    env.log(&[event]);
    let id = env.events(&[])[0]["id"].as_str().unwrap().to_string();
    let out = env.run(&["show", &id]);
    assert!(out.ok().lines().count() > 10, "pretty-printed: {out:?}");
    let shown = out.json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["payload"]["input"]["q"], "mcp audit");
    assert_eq!(shown["data_sources"][0]["uri"], "db://docs");
    assert_eq!(shown["leaf_hash"].as_str().unwrap().len(), 64);
}

/// Events stated in 2001 and 2099 are in the last hour by the time they were received, not by
/// the time they state; both are flagged, in the table, by `--skewed` and by `show`. A
/// receive time in the input is the caller's claim and is replaced by the recorder's.
#[test]
fn query_by_receive_time_finds_back_and_future_dated_events_and_flags_them() {
    let env = Env::new();
    let dated = |operation: &str, at: &str| {
        let mut event = tool(operation, "alice", "s-1", 1);
        event["timestamp"] = json!(at);
        event
    };
    let mut claimed = tool("claimed", "alice", "s-1", 1);
    claimed["received_at"] = json!("2001-01-01T00:00:00Z");
    env.log(&[
        dated("back", "2001-01-01T00:00:00Z"),
        dated("future", "2099-01-01T00:00:00Z"),
        tool("now", "alice", "s-1", 1),
        claimed,
    ]);
    let window = ["--since", "1h", "--until", "2098-01-01"];
    let by = |time: &str| {
        let mut ops = env.operations(&[&window[..], &["--time", time]].concat());
        ops.sort();
        ops
    };
    assert_eq!(by("stated"), ["claimed", "now"]);
    assert_eq!(
        env.operations(&window),
        ["claimed", "now"],
        "stated by default"
    );
    assert_eq!(by("received"), ["back", "claimed", "future", "now"]);
    for (time, total) in [("stated", 2), ("received", 4)] {
        let summary = env
            .run(&[&["summary", "--json", "--time", time][..], &window].concat())
            .json();
        assert_eq!(summary["total_operations"], total, "{time}: {summary}");
    }
    let mut skewed = env.operations(&["--skewed"]);
    skewed.sort();
    assert_eq!(skewed, ["back", "future"]);

    let claimed = &env.events(&["--tool", "claimed"])[0];
    let received: jiff::Timestamp = claimed["received_at"].as_str().unwrap().parse().unwrap();
    assert!(
        received > jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        "the recorder's time, not the claim: {claimed}"
    );

    let table = env.run(&["query"]);
    let marked: Vec<&str> = table.ok().lines().filter(|l| l.contains(" !")).collect();
    assert_eq!(marked.len(), 2, "{table:?}");
    assert!(
        marked.iter().any(|l| l.contains("2001-01-01")),
        "{marked:?}"
    );
    assert!(
        marked.iter().any(|l| l.contains("2099-01-01")),
        "{marked:?}"
    );
    assert!(table.stderr.contains("more than 5m"), "{table:?}");

    let back = &env.events(&["--tool", "back"])[0];
    let shown = env.run(&["show", back["id"].as_str().unwrap()]);
    let json = shown.json();
    assert_eq!(json["timestamp"], "2001-01-01T00:00:00Z");
    assert!(json["received_at"].is_string(), "{json}");
    assert_eq!(json["skewed"], true);
    assert!(json["clock_skew_us"].as_i64().unwrap() < -20 * 365 * 86_400 * 1_000_000);
    assert!(
        shown.stderr.contains("warning:") && shown.stderr.contains("before"),
        "{shown:?}"
    );
    let now = &env.events(&["--tool", "now"])[0];
    let shown = env.run(&["show", now["id"].as_str().unwrap()]).json();
    assert!(shown.get("skewed").is_none(), "{shown}");
    assert!(shown["clock_skew_us"].as_i64().unwrap().abs() < 60_000_000);

    env.run(&["verify"]).ok();
}

#[test]
fn show_of_an_unknown_or_malformed_id_is_a_one_line_error() {
    let env = seeded();
    env.run(&["show", "01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e"])
        .one_line_error("no event with id");
    env.run(&["show", "nope"]).one_line_error("names no event");
    env.run(&["show", "99"])
        .one_line_error("no event at seq 99");
    env.run(&["show", "another-log:1"])
        .one_line_error("not another-log");
}

#[test]
fn show_takes_the_seq_the_table_prints_and_log_colon_seq() {
    let env = seeded();
    let table = env.run(&["query", "--tool", "fetch", "--columns", "seq"]);
    let seq = table.ok().lines().nth(1).unwrap().trim().to_string();
    let shown = env.run(&["show", &seq]).json();
    assert_eq!(shown["operation"], "fetch");
    assert_eq!(shown["seq"].as_u64().unwrap().to_string(), seq);
    let log_id = shown["log_id"].as_str().unwrap();
    let by_log = env
        .run(&["show", "--compact", &format!("{log_id}:{seq}")])
        .json();
    assert_eq!(by_log, shown);
    let by_id = env.run(&["show", shown["id"].as_str().unwrap()]).json();
    assert_eq!(by_id, shown);
    let help = env.run(&["show", "--help"]);
    assert!(
        help.ok().contains("LOG:SEQ") && help.ok().contains("mcp-audit show 4"),
        "{help:?}"
    );
}

#[test]
fn summary_of_a_session_counts_every_kind_including_prompts() {
    let env = seeded();
    let summary = env.run(&["summary", "--session", "s-1", "--json"]).json();
    assert_eq!(summary["total_operations"], 3);
    assert_eq!(summary["tool_executions"], 2);
    assert_eq!(summary["prompt_executions"], 1);
    assert!(summary["first_activity"].is_string() && summary["last_activity"].is_string());

    let text = env.run(&["summary", "--session", "s-1"]);
    let out = text.ok();
    assert!(out.starts_with("session s-1\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("total operations") && l.ends_with(" 3")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("prompt executions") && l.ends_with(" 1")),
        "{out}"
    );
}

#[test]
fn summary_of_a_user_and_of_a_window() {
    let env = seeded();
    assert_eq!(
        env.run(&["summary", "--user", "bob", "--json"]).json()["total_operations"],
        2
    );
    let all = env.run(&["summary", "--since", "1h", "--json"]).json();
    assert_eq!(all["total_operations"], 6);
    assert_eq!(all["admin_actions"], 1);
    assert_eq!(all["distinct_users"], 3);
    let none = env
        .run(&["summary", "--until", "2000-01-01", "--json"])
        .json();
    assert_eq!(none["total_operations"], 0);
}

#[test]
fn stats_reports_calls_errors_rate_and_latency_per_tool() {
    let env = seeded();
    let stats = env.run(&["stats", "--json"]).json();
    let search = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tool"] == "search")
        .unwrap();
    assert_eq!(search["calls"], 3);
    assert_eq!(search["errors"], 1);
    assert!((search["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(search["p50_us"], 2_000);

    let table = env.run(&["stats"]);
    let line = table
        .ok()
        .lines()
        .find(|l| l.starts_with("search"))
        .unwrap()
        .to_string();
    assert!(line.contains("33.3%") && line.contains("2.0ms"), "{line}");
    let bob = env.run(&["stats", "--user", "bob", "--json"]).json();
    assert_eq!(bob[0]["calls"], 2);
}

// ---------------------------------------------------------------------------------------------
// export

#[test]
fn export_jsonl_parses_back_to_the_same_events_oldest_first() {
    let env = seeded();
    let out = env.run(&["export", "--format", "jsonl"]);
    let exported: Vec<Value> = out
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut queried = env.events(&[]);
    queried.reverse();
    assert_eq!(exported, queried);
    // Not a terminal: no progress bar, only the closing count.
    assert_eq!(out.stderr, "exported 6 event(s)\n");
}

#[test]
fn export_csv_parses_back_with_one_row_per_event() {
    let env = seeded();
    let out = env.run(&["export", "--format", "csv", "--user", "bob"]);
    let mut reader = csv::Reader::from_reader(out.ok().as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][column("operation")], "search");
    assert_eq!(&rows[1][column("outcome")], "tool_error");
    let payload: Value = serde_json::from_str(&rows[1][column("payload")]).unwrap();
    assert_eq!(payload["error_message"], "upstream timed out");
}

#[test]
fn export_cef_leef_and_ocsf_write_one_record_per_line_even_when_an_operation_holds_delimiters() {
    let env = seeded();
    let hostile = "evil|tool a=b\\c\tline\nCEF:0|forged|x|1|2|3|10|";
    env.log(&[tool(hostile, "mallory", "s-9", 1_000)]);

    let cef = env.run(&["export", "--format", "cef"]).ok().to_string();
    let lines: Vec<&str> = cef.lines().collect();
    assert_eq!(lines.len(), 7, "{cef}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("CEF:0|mcp-audit|mcp-audit|"))
    );
    let last = lines[6];
    // Escaped per CEF: pipes in the header, `=`, `\` and the line break in the extension.
    assert!(
        last.contains("|tool_execution/evil\\|tool a=b\\\\c line CEF:0\\|forged"),
        "{last}"
    );
    assert!(
        last.contains("cs6=evil|tool a\\=b\\\\c\tline\\nCEF:0|forged"),
        "{last}"
    );
    assert!(last.contains(" suser=mallory "), "{last}");

    let leef = env
        .run(&["export", "--format", "leef", "--user", "mallory"])
        .ok()
        .to_string();
    assert_eq!(leef.lines().count(), 1, "{leef}");
    assert!(leef.starts_with("LEEF:2.0|mcp-audit|mcp-audit|"));
    assert!(
        leef.contains("resource=evil|tool a=b\\\\c\\tline\\nCEF:0|forged"),
        "{leef}"
    );

    let file = env.dir.path().join("audit.ocsf.jsonl");
    env.run(&[
        "export",
        "--format",
        "ocsf",
        "--output",
        file.to_str().unwrap(),
    ])
    .ok();
    let records: Vec<Value> = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 7);
    assert!(records.iter().all(|r| r["class_uid"] == 6003));
    assert_eq!(records[6]["api"]["operation"], hostile);
    assert_eq!(records[6]["actor"]["user"]["uid"], "mallory");
    let uid = records[6]["metadata"]["uid"].as_str().unwrap();
    assert!(uid.ends_with(":6"), "LOG:SEQ, {uid}");
    // The admin DELETE is OCSF's Delete activity.
    assert_eq!(records[5]["activity_id"], 4);
}

#[test]
fn export_to_a_file_writes_it_whole_and_a_failed_export_leaves_no_file() {
    let env = seeded();
    let file = env.dir.path().join("out.jsonl");
    let out = env.run(&[
        "export",
        "--format",
        "jsonl",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.ok().is_empty(), "nothing on stdout: {out:?}");
    assert_eq!(fs::read_to_string(&file).unwrap().lines().count(), 6);

    let missing_dir = env.dir.path().join("no/such/dir/out.csv");
    let failed = env.run(&[
        "export",
        "--format",
        "csv",
        "--output",
        missing_dir.to_str().unwrap(),
    ]);
    failed.one_line_error("cannot export");
    assert!(!missing_dir.exists());
    let leftovers: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn export_shows_a_progress_bar_counting_to_the_total_when_stderr_is_a_terminal() {
    let env = Env::new();
    let events: Vec<Value> = (0..50)
        .map(|i| tool(&format!("op{i}"), "alice", "s-1", 1))
        .collect();
    env.log(&events);
    let file = env.dir.path().join("out.jsonl");
    // `script` runs the command on a pseudo-terminal and copies what it draws to stdout.
    let inner = format!(
        "'{}' --db '{}' export --format jsonl --output '{}'",
        env!("CARGO_BIN_EXE_mcp-audit"),
        env.db.display(),
        file.display()
    );
    let mut command = Command::new("script");
    command.args(["-qec", &inner, "/dev/null"]);
    let out = run_command(command, None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("/50 events"),
        "no progress bar drawn: {out:?}"
    );
    assert!(out.stdout.contains("exported 50 event(s)"), "{out:?}");
    assert_eq!(fs::read_to_string(&file).unwrap().lines().count(), 50);
}

#[test]
fn a_reader_that_stops_early_ends_export_and_query_quietly() {
    use std::io::Read;
    let env = Env::new();
    // About 500 KB of output: far more than a pipe holds, so the writer must meet the close.
    let events: Vec<Value> = (0..1000)
        .map(|i| tool(&format!("op{i:0>300}"), "a", "s", 1))
        .collect();
    env.log(&events);
    for args in [
        &["export", "--format", "jsonl"][..],
        &["export", "--format", "csv"],
        &["query", "--jsonl", "--limit", "1000"],
        &["query", "--limit", "1000"],
    ] {
        let mut child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 100];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout); // like `| head -c 100`
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// cleanup

#[test]
fn cleanup_deletes_only_expired_events_and_dry_run_deletes_nothing() {
    let env = Env::new();
    let mut expired = tool("expired", "alice", "s-1", 1);
    expired["timestamp"] = json!("2020-01-01T00:00:00Z");
    expired["compliance"] = json!({"retention": "30d"});
    expired["data_sources"] = json!([{"uri": "db://a"}, {"uri": "db://b"}]);
    let mut current = tool("current", "alice", "s-1", 1);
    current["compliance"] = json!({"retention": "30d"});
    let forever = tool("forever", "alice", "s-1", 1);
    env.log(&[expired, current, forever]);

    let dry = env.run(&["cleanup", "--dry-run"]);
    assert!(
        dry.ok().starts_with("would delete 1 expired event(s)"),
        "{dry:?}"
    );
    assert_eq!(env.count(), 3);

    let report = env.run(&["cleanup", "--json"]).json();
    assert_eq!(report["events"], 1);
    assert_eq!(report["data_sources"], 2);
    // The run is an event of the log, listing what it removed.
    assert_eq!(report["runs"][0]["cleanup_seq"], 3);
    assert_eq!(report["runs"][0]["ranges"], json!([{"start": 0, "end": 1}]));
    let mut left = env.operations(&[]);
    left.sort();
    assert_eq!(left, ["DELETE expired_events", "current", "forever"]);

    let again = env.run(&["cleanup"]);
    assert!(
        again.ok().starts_with("deleted 0 expired event(s)"),
        "{again:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// schema and help

#[test]
fn checked_in_schema_matches_the_rust_types() {
    let env = Env::new();
    let generated = env.run(&["schema"]);
    let checked_in =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/audit-event.v1.schema.json");
    let on_disk = fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        generated.ok() == on_disk,
        "schema/audit-event.v1.schema.json is out of date; refresh it with:\n  \
         cargo run -p mcp-audit -- schema > schema/audit-event.v1.schema.json"
    );
    let schema: Value = serde_json::from_str(&on_disk).unwrap();
    assert_eq!(schema["title"], "AuditEvent");
}

#[test]
fn every_command_help_shows_an_example() {
    let env = Env::new();
    for command in [
        "log", "query", "show", "summary", "stats", "export", "cleanup", "schema",
    ] {
        let help = env.run(&[command, "--help"]);
        let text = help.ok();
        assert!(
            text.contains("Example"),
            "`{command} --help` has no example:\n{text}"
        );
        assert!(
            text.contains(&format!("mcp-audit {command}")),
            "{command}:\n{text}"
        );
    }
}

#[test]
fn usage_errors_exit_with_status_2() {
    let env = Env::new();
    assert_eq!(env.run(&["query", "--no-such-flag"]).code, 2);
    assert_eq!(env.run(&["query", "--since", "whenever"]).code, 2);
    assert_eq!(env.run(&["query", "--limit", "0"]).code, 2);
    let negative = env.run(&["log", "--retention=-30d", "-"]);
    assert_eq!(negative.code, 2);
    assert!(
        negative.stderr.contains("negative duration"),
        "{negative:?}"
    );
    assert!(!env.db.exists(), "a usage error touches no database");
}

#[test]
fn the_database_path_comes_from_the_environment_when_not_given() {
    let env = Env::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
    command
        .args(["log", &tool("via_env", "alice", "s-1", 1).to_string()])
        .env("MCP_AUDIT_DB", &env.db);
    run_command(command, None).ok();
    assert_eq!(env.operations(&[]), ["via_env"]);
}

// ---------------------------------------------------------------------------------------------
// databases that can not be used

#[test]
fn commands_other_than_log_refuse_a_missing_database_and_create_nothing() {
    let env = Env::new();
    for command in ["query", "summary", "stats", "export", "cleanup"] {
        env.run(&[command]).one_line_error("does not exist");
    }
    env.run(&["show", "01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e"])
        .one_line_error("does not exist");
    assert!(!env.db.exists());
}

/// Runs the binary unable to override file permissions, even as root (tests run as root in
/// containers, and root ignores a file's mode): the capabilities that let root write a
/// read-only file are dropped from the bounding set, which is what `setpriv` does.
fn without_root_overrides(env: &Env, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let is_root = fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if is_root.unwrap_or(false) {
        let mut command = Command::new("setpriv");
        command
            .args(["--bounding-set", "-dac_override,-dac_read_search,-fowner"])
            .arg(env!("CARGO_BIN_EXE_mcp-audit"))
            .arg("--db")
            .arg(&env.db)
            .args(args)
            .env_remove("RUST_LOG");
        run_command(command, stdin)
    } else {
        run_command(env.command(args), stdin)
    }
}

#[test]
fn a_read_only_database_is_refused_with_one_line_and_left_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let env = seeded();
    // One expired event, so that `cleanup` has something to remove (with nothing to remove it
    // writes nothing, and says so).
    let mut expired = tool("expired", "alice", "s-1", 1);
    expired["timestamp"] = json!("2020-01-01T00:00:00Z");
    expired["compliance"] = json!({"retention": "30d"});
    env.log(&[expired]);
    fs::set_permissions(&env.db, fs::Permissions::from_mode(0o444)).unwrap();
    let before = fs::read(&env.db).unwrap();

    let event = tool("refused", "alice", "s-1", 1).to_string();
    without_root_overrides(&env, &["log", &event], None).one_line_error("read-only");
    let batch = format!("{event}\n{event}\n");
    without_root_overrides(&env, &["log", "-"], Some(batch.as_bytes())).one_line_error("read-only");
    without_root_overrides(&env, &["cleanup"], None).one_line_error("read-only");

    assert_eq!(fs::read(&env.db).unwrap(), before);
    // Reading a read-only database still works.
    let out = without_root_overrides(&env, &["query", "--jsonl"], None);
    assert_eq!(out.ok().lines().count(), 7);
}

#[test]
fn a_database_locked_past_the_timeout_is_refused_with_one_line_and_nothing_half_written() {
    let env = seeded();
    let holder = rusqlite::Connection::open(&env.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let event = tool("blocked", "alice", "s-1", 1).to_string();
    let args = ["--lock-timeout", "200ms", "log"];
    env.run(&[&args[..], &[event.as_str()]].concat())
        .one_line_error("locked");
    // A long batch is one transaction: it fails once, whole, and says that none of it was
    // recorded.
    let batch = format!("{event}\n").repeat(20_000);
    let out = env.run_with_stdin(&[&args[..], &["-"]].concat(), batch.as_bytes());
    out.one_line_error("locked");
    assert!(out.stderr.contains("none was recorded"), "{out:?}");

    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    let ops = env.operations(&[]);
    assert_eq!(ops.len(), 6);
    assert!(!ops.iter().any(|op| op == "blocked"));
    // Once the lock is gone the same database takes writes again, at the next seq.
    let out = env.run(&["log", &event]);
    assert!(out.ok().contains("(seq 6)"), "{out:?}");
}

/// 16 KiB of bytes that are not a SQLite database (a fixed pseudo-random sequence).
fn garbage() -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..16 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[test]
fn a_corrupt_database_file_is_refused_with_one_line_and_left_untouched() {
    let env = Env::new();
    fs::write(&env.db, garbage()).unwrap();
    let event = tool("x", "alice", "s-1", 1).to_string();
    env.run(&["log", &event]).one_line_error("corrupt");
    env.run_with_stdin(&["log", "-"], format!("{event}\n").as_bytes())
        .one_line_error("corrupt");
    env.run(&["query"]).one_line_error("corrupt");
    env.run(&["cleanup"]).one_line_error("corrupt");
    assert_eq!(fs::read(&env.db).unwrap(), garbage());
}

#[test]
fn a_database_from_a_newer_schema_version_is_refused_with_one_line() {
    let env = seeded();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    let supported: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let event = tool("x", "alice", "s-1", 1).to_string();
    env.run(&["log", &event]).one_line_error("newer");
    env.run(&["query"]).one_line_error("newer");
    env.run(&["summary"]).one_line_error("newer");

    rusqlite::Connection::open(&env.db)
        .unwrap()
        .pragma_update(None, "user_version", supported)
        .unwrap();
    assert_eq!(env.count(), 6, "nothing was written while refused");
}

// ---------------------------------------------------------------------------------------------
// conventions: data on stdout, people's text on stderr, colour only for people

/// Runs a proxy in front of `cat` and hands it a frame that is not JSON: the proxy logs a
/// warning on stderr. `terminal` runs it on a pseudo-terminal (`script`), where stdout and
/// stderr both land in the returned stdout.
fn proxy_warning(env: &Env, terminal: bool, no_color: Option<&str>) -> Run {
    let bin = env!("CARGO_BIN_EXE_mcp-audit");
    let mut command = if terminal {
        let inner = format!(
            "echo 'not json' | '{bin}' --db '{}' proxy -- cat",
            env.db.display()
        );
        let mut command = Command::new("script");
        command.args(["-qec", &inner, "/dev/null"]);
        command
    } else {
        env.command(&["proxy", "--", "cat"])
    };
    command.env_remove("RUST_LOG").env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    run_command(command, (!terminal).then_some(b"not json\n".as_slice()))
}

#[test]
fn log_lines_carry_colour_codes_only_on_a_terminal_and_never_under_no_color() {
    let env = Env::new();
    let piped = proxy_warning(&env, false, None);
    assert!(
        piped.stderr.contains("WARN"),
        "no warning logged: {piped:?}"
    );
    assert!(
        !piped.stderr.contains('\u{1b}'),
        "escape codes on a pipe: {piped:?}"
    );

    let terminal = proxy_warning(&env, true, None);
    assert!(terminal.stdout.contains("WARN"), "{terminal:?}");
    assert!(
        terminal.stdout.contains('\u{1b}'),
        "no colour on a terminal: {terminal:?}"
    );

    let no_color = proxy_warning(&env, true, Some("1"));
    assert!(no_color.stdout.contains("WARN"), "{no_color:?}");
    assert!(!no_color.stdout.contains('\u{1b}'), "{no_color:?}");
}

#[test]
fn log_id_on_a_sqlite_file_is_honoured_when_it_names_its_log_and_refused_otherwise() {
    let env = seeded();
    let log_id = env.events(&[])[0]["log_id"].as_str().unwrap().to_string();
    assert!(!log_id.is_empty());
    let own = env.run(&["--log-id", &log_id, "query", "--jsonl"]);
    assert_eq!(own.ok().lines().count(), env.count());
    for command in [
        vec!["query"],
        vec!["stats"],
        vec!["export"],
        vec!["verify"],
        vec!["log", r#"{"kind":"admin","action":"READ","operation":"x"}"#],
    ] {
        let mut args = vec!["--log-id", "another-log"];
        args.extend(&command);
        let refused = env.run(&args);
        assert_ne!(refused.code, 0, "{command:?}: {refused:?}");
        assert!(
            refused
                .stderr
                .contains("--log-id another-log is not the log of")
                && refused.stderr.contains(&log_id),
            "{command:?}: {refused:?}"
        );
    }
    assert_eq!(env.count(), 6, "nothing was recorded by the refused `log`");
}
