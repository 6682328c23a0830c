//! The proxy through outages of its store, against real peers (the reference server driven by
//! the official Python SDK client): a SQLite file locked by another process past the lock
//! timeout, a full disk (a file-size limit on the proxy, lifted while it runs), PostgreSQL out
//! of reach, a recovery while a proxy is live, and `kill -9` under load. Assertions are on the
//! trail: what is recorded, what is not, and what says that something is not.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_audit_core::{EventKind, Outcome};
use serde_json::{Value, json};

mod support;

use support::{BIN, error_message, events, everything_js, one, peers, python, try_events};

/// `server-everything` over stdio, as the proxy's server command.
fn everything(peers: &Path) -> Vec<String> {
    let js = everything_js(peers).display().to_string();
    vec!["node".to_string(), js, "stdio".to_string()]
}

/// A Python SDK client that calls `echo` with each line of its stdin as the message, and prints
/// what it saw as one JSON line per call (after `{"ready": true}` once the session is up).
const LINE_CLIENT: &str = r#"
import json, sys, anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

def say(seen):
    print(json.dumps(seen), flush=True)

async def main(command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode="legacy") as client:
        say({"ready": True})
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            try:
                answer = await client.call_tool("echo", {"message": line.strip()})
                say({"text": answer.content[0].text})
            except Exception as error:
                say({"error": str(error)})

anyio.run(main, sys.argv[1:])
"#;

/// The line client driving `<command> -- server-everything`, where `command` runs the proxy.
struct Session {
    client: Child,
    said: std::io::Lines<BufReader<std::process::ChildStdout>>,
    to: Option<ChildStdin>,
}

impl Session {
    fn start(peers: &Path, command: &[&str]) -> Session {
        let mut client = Command::new(python(peers))
            .args(["-c", LINE_CLIENT])
            .args(command)
            .arg("--")
            .args(everything(peers))
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = BufReader::new(client.stdout.take().unwrap()).lines();
        let to = client.stdin.take();
        let mut session = Session { client, said, to };
        assert_eq!(session.next(), json!({"ready": true}));
        session
    }

    fn next(&mut self) -> Value {
        let line = self
            .said
            .next()
            .expect("the client said nothing more")
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// Calls `echo` with `message`; what the client saw.
    fn call(&mut self, message: &str) -> Value {
        writeln!(self.to.as_mut().unwrap(), "{message}").unwrap();
        self.next()
    }

    /// Ends the session; the client's (and so the proxy's) stderr.
    fn end(mut self) -> String {
        drop(self.to.take());
        let out = self.client.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    }
}

/// Waits (up to a minute) until `done` holds of the trail in `db`.
fn until_trail(db: &Path, what: &str, done: impl Fn(&[mcp_audit_store::StoredEvent]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !try_events(db).is_ok_and(|all| done(&all)) {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `echo` outcome events with `outcome` and their messages.
fn echoed(all: &[mcp_audit_store::StoredEvent], outcome: Outcome) -> Vec<String> {
    all.iter()
        .filter(|e| e.event.operation == "echo" && e.event.outcome == outcome)
        .filter_map(|e| {
            let input = e.event.payload.input.as_ref()?;
            Some(input["message"].as_str()?.to_string())
        })
        .collect()
}

fn session_started(all: &[mcp_audit_store::StoredEvent]) -> bool {
    all.iter().any(|e| e.event.kind == EventKind::Session)
}

#[test]
fn a_refused_calls_denied_record_outlives_a_lock_longer_than_the_lock_timeout() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let mut session = Session::start(
        &peers,
        &[BIN, "--db", db_arg, "--lock-timeout", "300ms", "proxy"],
    );
    until_trail(&db, "the session start is durable", session_started);

    // Another process holds the write lock for five times the proxy's lock timeout: the
    // intent fails, and so, on the old writer, did the refusal's record, lost for good.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let refused = session.call("refused");
    std::thread::sleep(Duration::from_millis(1_500));
    holder.execute_batch("ROLLBACK").unwrap();
    let accepted = session.call("accepted");
    session.end();

    let refusal = refused["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(
        refusal.contains("audit record could not be written"),
        "{refusal}"
    );
    assert_eq!(accepted, json!({"text": "Echo: accepted"}));
    let all = events(&db);
    let denied = one(&all, "echo", Outcome::Denied);
    assert_eq!(
        denied.event.payload.input,
        Some(json!({"message": "refused"}))
    );
    assert!(error_message(denied).contains("locked"), "{denied:#?}");
    assert_eq!(echoed(&all, Outcome::Success), ["accepted"]);
}

#[test]
fn a_batch_proxy_refuses_calls_once_its_store_has_refused_writes_past_max_outage() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let mut session = Session::start(
        &peers,
        &[
            BIN,
            "--db",
            db_arg,
            "--lock-timeout",
            "100ms",
            "proxy",
            "--durability",
            "batch",
            "--max-outage",
            "1s",
        ],
    );
    until_trail(&db, "the session start is durable", session_started);

    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // Within the limit, `batch` forwards as ever; its record waits in memory.
    let during = session.call("during");
    std::thread::sleep(Duration::from_millis(1_500));
    // Past it, calls are refused.
    let refused = session.call("refused");
    holder.execute_batch("ROLLBACK").unwrap();
    // The writer tries again on its own; once the kept record is in, calls pass again.
    until_trail(&db, "the kept record is written", |all| {
        echoed(all, Outcome::Success) == ["during"]
    });
    let after = session.call("after");
    session.end();

    assert_eq!(during, json!({"text": "Echo: during"}));
    let refusal = refused["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(refusal.contains("refused writes"), "{refusal}");
    assert_eq!(after, json!({"text": "Echo: after"}));
    let all = events(&db);
    assert_eq!(echoed(&all, Outcome::Success), ["during", "after"]);
    let denied = one(&all, "echo", Outcome::Denied);
    assert!(
        error_message(denied).contains("past the limit"),
        "{denied:#?}"
    );
}

#[test]
fn a_full_disk_keeps_a_batch_proxys_records_until_there_is_room_again() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    // The proxy runs with SIGXFSZ ignored, so that a write past a file-size limit fails
    // (EFBIG) instead of killing the process, as a write to a full disk fails.
    let pid_file = dir.path().join("proxy.pid");
    let script = format!(
        "trap '' XFSZ; echo $$ > '{}'; exec \"$@\"",
        pid_file.display()
    );
    let mut session = Session::start(
        &peers,
        &[
            "sh",
            "-c",
            &script,
            "sh",
            BIN,
            "--db",
            db_arg,
            "proxy",
            "--durability",
            "batch",
        ],
    );
    until_trail(&db, "the session start is durable", session_started);
    // From now on the files the proxy writes may not grow by more than 64 KiB: its disk is
    // full, until the test lifts the limit of the running process.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
    let limit = size("audit.db").max(size("audit.db-wal")) + 64 * 1024;
    let prlimit = |fsize: &str| {
        let status = Command::new("prlimit")
            .args(["--pid", pid.trim(), &format!("--fsize={fsize}")])
            .status()
            .unwrap();
        assert!(status.success());
    };
    prlimit(&format!("{limit}:unlimited"));
    // Calls until the trail stops growing: the disk is full.
    let mut answered = 0;
    let mut last_seen = 0;
    let mut stalled = 0;
    while stalled < 50 {
        let said = session.call(&format!("call-{answered}"));
        assert_eq!(said["text"], format!("Echo: call-{answered}"));
        answered += 1;
        let seen = try_events(&db).map(|all| all.len()).unwrap_or(last_seen);
        stalled = if seen == last_seen { stalled + 1 } else { 0 };
        last_seen = seen;
        assert!(answered < 20_000, "the file-size limit never bit");
    }
    prlimit("unlimited:unlimited");
    session.call("after");
    session.end();

    let all = events(&db);
    let recorded = echoed(&all, Outcome::Success);
    assert_eq!(
        recorded.len(),
        answered + 1,
        "every answered call is on record"
    );
    assert!(
        !all.iter()
            .any(|e| mcp_audit_store::gap_size(&e.event).is_some())
    );
}

#[test]
fn recover_and_a_second_proxy_leave_a_live_proxys_call_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    // A live proxy with a call in flight: its server never answers.
    let mut live = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db)
        .args(["--", "sh", "-c", "cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = live.stdin.take().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"p\"}}\n")
        .unwrap();
    until_trail(&db, "the intent is durable", |all| {
        all.iter().any(|e| e.event.outcome == Outcome::Pending)
    });
    let recover = || {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(recover().contains("recorded 0 incomplete"));
    let second = Command::new(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(second.status.success());
    let incomplete = |db: &Path| {
        events(db)
            .into_iter()
            .filter(|e| e.event.operation == "p" && e.event.outcome == Outcome::Incomplete)
            .count()
    };
    assert_eq!(incomplete(&db), 0, "the live proxy's call is left alone");

    // Once the proxy is gone, its call is closed by the next recovery.
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(recover().contains("recorded 1 incomplete"));
    assert_eq!(incomplete(&db), 1);
}

#[test]
fn a_batch_proxy_on_unreachable_postgres_starts_on_its_spool_and_warns_once() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_arg = spool.to_str().unwrap();
    // Nothing listens on port 1.
    let mut session = Session::start(
        &peers,
        &[
            BIN,
            "--db",
            "postgres://postgres@127.0.0.1:1/test",
            "--spool-dir",
            spool_arg,
            "proxy",
            "--durability",
            "batch",
        ],
    );
    for i in 0..20 {
        assert_eq!(
            session.call(&format!("call-{i}")),
            json!({"text": format!("Echo: call-{i}")})
        );
    }
    let stderr = session.end();
    let spool_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("spool")).collect();
    assert_eq!(
        spool_lines.len(),
        1,
        "one warning for the outage:\n{stderr}"
    );
    assert!(spool_lines[0].contains("unreachable"), "{stderr}");
    let files: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert_eq!(files.len(), 1);
    let spooled = files[0].as_ref().unwrap().metadata().unwrap().len();
    assert!(spooled > 0, "the records wait in the spool");

    // With a server at hand, the next writer on the same spool replays them into it.
    let Ok(base) = std::env::var("MCP_AUDIT_TEST_PG") else {
        eprintln!("replay not checked: MCP_AUDIT_TEST_PG is not set");
        return;
    };
    let schema = format!("outage_{}", std::process::id());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["--db", &url, "--spool-dir", spool_arg])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["proxy", "--durability", "batch", "--", "true"]);
    let trail = cli(&["query", "--jsonl", "--tool", "echo", "--limit", "100"]);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    assert_eq!(trail.lines().count(), 20, "{trail}");
}

/// A Python SDK client that calls `echo` from eight tasks at once, each as soon as its last call
/// was answered, and prints the message of every answered call. It ends when the proxy dies.
const FLOOD_CLIENT: &str = r#"
import os, sys, anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

async def main(command):
    run = os.environ["RUN"]
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode="legacy") as client:
        async def caller(task):
            i = 0
            while True:
                message = f"{run}-{task}-{i}"
                await client.call_tool("echo", {"message": message})
                print(message, flush=True)
                i += 1
        async with anyio.create_task_group() as group:
            for task in range(8):
                group.start_soon(caller, task)

try:
    anyio.run(main, sys.argv[1:])
except BaseException:
    pass
"#;

/// What `kill -9` of a `batch` proxy may lose, by the proxy's queue (1,024) and batch (512)
/// bounds: records acknowledged to the adapter and not yet committed.
const KILL_BOUND: usize = 1_024 + 512;

/// Runs `kills` floods of a `batch` proxy, each killed with SIGKILL after `run_for` of answered
/// calls; per run, how many calls the client saw answered and how many of them are not on
/// record. Fails when a run loses more than [`KILL_BOUND`].
fn kill_floods(peers: &Path, kills: usize, run_for: Duration) -> Vec<(usize, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let pid_file = dir.path().join("proxy.pid");
    let script = format!("echo $$ > '{}'; exec \"$@\"", pid_file.display());
    let mut figures = Vec::new();
    for run in 0..kills {
        let _ = std::fs::remove_file(&pid_file);
        let mut client = Command::new(python(peers))
            .args(["-c", FLOOD_CLIENT, "sh", "-c", &script, "sh", BIN, "--db"])
            .arg(&db)
            .args(["proxy", "--durability", "batch", "--"])
            .args(everything(peers))
            .env("RUN", run.to_string())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
        let first = lines.next().expect("no call was answered").unwrap();
        let started = Instant::now();
        let mut answered = vec![first];
        while started.elapsed() < run_for {
            answered.push(lines.next().expect("the flood ended early").unwrap());
        }
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let killed = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(killed.success());
        // Whatever the client printed before it saw the proxy die was answered too.
        answered.extend(lines.map_while(Result::ok));
        client.wait().unwrap();
        let recorded: std::collections::HashSet<String> =
            echoed(&events(&db), Outcome::Success).into_iter().collect();
        let missing = answered.iter().filter(|m| !recorded.contains(*m)).count();
        assert!(
            missing <= KILL_BOUND,
            "run {run}: {missing} of {} answered calls are not on record",
            answered.len()
        );
        figures.push((answered.len(), missing));
    }
    figures
}

#[test]
fn a_killed_batch_proxy_loses_no_more_answered_calls_than_its_bound() {
    let Some(peers) = peers() else { return };
    let figures = kill_floods(&peers, 2, Duration::from_secs(2));
    eprintln!("answered, not on record, per kill: {figures:?}");
}

#[test]
fn a_batch_proxy_whose_writer_is_stuck_answers_no_more_calls_than_a_kill_may_lose() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let pid_file = dir.path().join("proxy.pid");
    let script = format!("echo $$ > '{}'; exec \"$@\"", pid_file.display());
    // A writer that waits two minutes for a lock it will not get: as stuck as on a dead disk.
    let mut client = Command::new(python(&peers))
        .args(["-c", FLOOD_CLIENT, "sh", "-c", &script, "sh", BIN, "--db"])
        .arg(&db)
        .args([
            "--lock-timeout",
            "120s",
            "proxy",
            "--durability",
            "batch",
            "--",
        ])
        .args(everything(&peers))
        .env("RUN", "stuck")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, answered_rx) = std::sync::mpsc::channel();
    let stdout = client.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut answered = vec![answered_rx.recv().expect("no call was answered")];
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.busy_timeout(Duration::from_secs(30)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The flood goes on until the proxy's queue is full and it stops answering (three quiet
    // seconds), or, unbounded, for a minute.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        match answered_rx.recv_timeout(Duration::from_secs(3)) {
            Ok(line) => answered.push(line),
            Err(_) => break,
        }
    }
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    client.wait().unwrap();
    answered.extend(answered_rx.try_iter());
    holder.execute_batch("ROLLBACK").unwrap();
    let recorded: std::collections::HashSet<String> =
        echoed(&events(&db), Outcome::Success).into_iter().collect();
    let missing = answered.iter().filter(|m| !recorded.contains(*m)).count();
    assert!(
        missing <= KILL_BOUND,
        "{missing} of {} answered calls are not on record",
        answered.len()
    );
    assert!(
        missing > 0,
        "the writer was not stuck: the test proves nothing"
    );
    eprintln!(
        "stuck writer: {missing} of {} answered calls lost",
        answered.len()
    );
}

/// The long version, for `docs/proxy.md`: `KILLS` (default 20) kills after 3 s of flood each.
/// `cargo test -p mcp-audit --test outages -- --ignored --nocapture kill_flood_benchmark`
#[test]
#[ignore]
fn kill_flood_benchmark() {
    let Some(peers) = peers() else { return };
    let kills = std::env::var("KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let figures = kill_floods(&peers, kills, Duration::from_secs(3));
    let answered: usize = figures.iter().map(|f| f.0).sum();
    let missing: usize = figures.iter().map(|f| f.1).sum();
    let worst = figures.iter().map(|f| f.1).max().unwrap_or(0);
    eprintln!(
        "{kills} kills: {missing} of {answered} answered calls not on record; worst kill {worst}"
    );
}

#[test]
fn verify_lists_the_gaps_a_writer_put_on_record_and_still_finds_the_log_intact() {
    use mcp_audit_store::{Durability, Recorder, RecorderConfig, SqliteOptions, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = SqliteStore::open(
        &db,
        SqliteOptions {
            lock_timeout: Duration::from_millis(100),
        },
    )
    .unwrap();
    // A writer with room for one record through an outage, given three.
    let recorder = Recorder::start(
        store,
        RecorderConfig {
            durability: Durability::Batch,
            backlog: 1,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for i in 0..3 {
        let event = mcp_audit_core::AuditEvent::tool_execution(format!("t{i}"))
            .build()
            .unwrap();
        recorder.record(event).unwrap();
    }
    assert!(recorder.flush().is_err(), "two records were lost");
    holder.execute_batch("ROLLBACK").unwrap();
    recorder.shutdown().unwrap();

    let out = Command::new(BIN)
        .arg("verify")
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("GAP at seq 0: 2 record(s) lost while the store refused writes"),
        "{stdout}"
    );
    assert!(stdout.contains("\nok"), "{stdout}");
}
