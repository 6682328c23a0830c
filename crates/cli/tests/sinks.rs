//! `mcp-audit follow` and `mcp-audit sink status` as a user runs them, against a real webhook
//! receiver (an HTTP server in the test that checks every signature): a follow killed with
//! SIGKILL mid-way resumes from its cursor and loses nothing, a record refused forever shows
//! in `sink status` as a dead letter while the rest flows, a bad configuration file is refused
//! with its line, and `follow --stdout` prints JSON lines; `sink retry` sends dead letters again
//! (and a letter refused again goes back), `sink drop` discards them, both recorded; two
//! `follow`s of one sink name send from one process at a time, the second taking over when the
//! first is killed. On SQLite and on PostgreSQL.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use mcp_audit_core::AuditEvent;
use mcp_audit_store::{
    Log, PgOptions, PgStore, Recorder, RecorderConfig, SqliteOptions, SqliteStore, Store,
};
use serde_json::{Value, json};
use sha2::Sha256;

use support::follow::{sink_status, terminate};
use support::{BIN, PgSchema};

const SECRET: &str = "the-cli-tests-secret";

#[derive(Default)]
struct Seen {
    /// (key, log, seq) of every record kept, in arrival order.
    records: Vec<(String, String, u64)>,
    /// The operation of each record kept, by key.
    operations: BTreeMap<String, String>,
    bad_signatures: u64,
}

struct Receiver {
    seen: Arc<Mutex<Seen>>,
    refuse: Arc<Mutex<BTreeSet<String>>>,
    url: String,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Seen>>,
    /// Keys refused (answered 422 with their index), until the test takes them out.
    refuse: Arc<Mutex<BTreeSet<String>>>,
    /// How long each answer takes (so that a kill lands mid-way).
    delay: Duration,
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signed = headers
        .get("x-mcp-audit-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (t, v1) = v.split_once(",v1=")?;
            let t = t.strip_prefix("t=")?;
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).ok()?;
            mac.update(format!("{t}.").as_bytes());
            mac.update(&body);
            mac.verify_slice(&hex::decode(v1).ok()?).ok()
        })
        .is_some();
    tokio::time::sleep(shared.delay).await;
    let mut seen = shared.seen.lock().unwrap();
    if !signed {
        seen.bad_signatures += 1;
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let batch: Value = serde_json::from_slice(&body).unwrap();
    for (i, r) in batch["records"].as_array().unwrap().iter().enumerate() {
        let key = r["key"].as_str().unwrap().to_string();
        if shared.refuse.lock().unwrap().contains(&key) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(r#"{{"accepted": {i}}}"#),
            );
        }
        if let Some(op) = r["event"]["operation"].as_str() {
            seen.operations.insert(key.clone(), op.to_string());
        }
        seen.records.push((
            key,
            r["log_id"].as_str().unwrap().into(),
            r["seq"].as_u64().unwrap(),
        ));
    }
    (StatusCode::OK, String::new())
}

impl Receiver {
    fn start(refuse: &[String], delay: Duration) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let refuse = Arc::new(Mutex::new(refuse.iter().cloned().collect()));
        let shared = Shared {
            seen: seen.clone(),
            refuse: Arc::clone(&refuse),
            delay,
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            seen,
            refuse,
            url,
            _runtime: runtime,
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().records.len()
    }

    /// Waits (polling) until `done`; fails after two minutes rather than hang.
    fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        for _ in 0..2_400 {
            if done(&self.seen.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the receiver never saw {what} ({} records)", self.count());
    }

    /// The seqs of each log in the order they first arrived.
    fn first_arrivals(&self) -> BTreeMap<String, Vec<u64>> {
        let mut firsts = BTreeMap::<String, Vec<u64>>::new();
        let mut keys = BTreeSet::new();
        for (key, log, seq) in &self.seen.lock().unwrap().records {
            if keys.insert(key.clone()) {
                firsts.entry(log.clone()).or_default().push(*seq);
            }
        }
        firsts
    }
}

/// A database the tests point `--db` at: a SQLite file, or a PostgreSQL schema.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
}

impl Db {
    fn spec(&self) -> String {
        match self {
            Db::Sqlite(dir) => dir.path().join("audit.db").display().to_string(),
            Db::Postgres(pg) => pg.url.clone(),
        }
    }

    fn writer(&self, log: &str) -> Box<dyn Store> {
        match self {
            Db::Sqlite(_) => {
                Box::new(SqliteStore::open(self.spec(), SqliteOptions::default()).unwrap())
            }
            Db::Postgres(pg) => Box::new(
                PgStore::open(
                    &pg.url,
                    PgOptions {
                        log_id: Some(log.into()),
                        ..PgOptions::default()
                    },
                )
                .unwrap(),
            ),
        }
    }

    fn record(&self, log: &str, n: u64) {
        let r = Recorder::start(self.writer(log), RecorderConfig::default()).unwrap();
        for i in 0..n {
            let event = AuditEvent::tool_execution(format!("tool{i}"))
                .input(json!({"n": i}))
                .build()
                .unwrap();
            r.record(event).unwrap();
        }
        r.shutdown().unwrap();
    }
}

/// The database of a test run on both backends.
fn fixture(backend: support::Backend) -> Option<Db> {
    match backend {
        support::Backend::Sqlite => Some(Db::Sqlite(tempfile::tempdir().unwrap())),
        support::Backend::Postgres => PgSchema::new("sinks").map(Db::Postgres),
    }
}

fn config(dir: &Path, receiver: &Receiver, extra: &str) -> std::path::PathBuf {
    let path = dir.join("sinks.toml");
    std::fs::write(
        &path,
        format!(
            "[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n\
             batch = 10\nbackoff_initial_ms = 10\nbackoff_max_ms = 100\npoll_ms = 50\n{extra}",
            receiver.url
        ),
    )
    .unwrap();
    path
}

fn follow(db: &Db, config: &Path) -> Child {
    Command::new(BIN)
        .args(["--db", &db.spec(), "follow", "--sink"])
        .arg(config)
        .env("HOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn a_killed_follow_resumes_from_its_cursor_and_loses_nothing(db: Db) {
    db.record("log-a", 120);
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], Duration::from_millis(20));
    let config = config(dir.path(), &receiver, "");

    let mut first = follow(&db, &config);
    receiver.wait_for("a few batches", |s| s.records.len() >= 30);
    first.kill().unwrap(); // SIGKILL: no chance to save anything
    first.wait().unwrap();
    let at_kill = receiver.count();
    assert!(
        at_kill < 120,
        "the kill should land mid-way ({at_kill} records)"
    );

    let second = follow(&db, &config);
    receiver.wait_for("every record", |s| {
        s.records
            .iter()
            .map(|r| &r.0)
            .collect::<BTreeSet<_>>()
            .len()
            >= 120
    });
    terminate(second);

    let firsts = receiver.first_arrivals();
    assert_eq!(firsts.len(), 1);
    let seqs = firsts.values().next().unwrap();
    assert_eq!(
        *seqs,
        (0..120).collect::<Vec<_>>(),
        "every record, in order"
    );
    let total = receiver.count();
    assert!(
        total - 120 <= 10,
        "only the batch in flight at the kill may come twice ({} duplicates)",
        total - 120
    );
    assert_eq!(receiver.seen.lock().unwrap().bad_signatures, 0);
}

fn a_record_refused_forever_shows_in_sink_status_and_the_rest_flows(db: Db) {
    db.record("log-a", 25);
    let log_id = match &db {
        Db::Sqlite(_) => SqliteStore::open(db.spec(), SqliteOptions::default())
            .unwrap()
            .log_id()
            .to_string(),
        Db::Postgres(_) => "log-a".to_string(),
    };
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[format!("{log_id}:7")], Duration::ZERO);
    let config = config(dir.path(), &receiver, "max_tries = 2\n");
    let child = follow(&db, &config);
    receiver.wait_for("the last record", |s| s.records.iter().any(|r| r.2 == 24));
    // Its cursor is written after the acknowledgement: wait for status to show it there.
    let status = || sink_status(&db.spec(), &config);
    let mut json = status();
    for _ in 0..200 {
        if json["sinks"][0]["cursor"] == 25 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        json = status();
    }
    terminate(child);

    let seqs = receiver.first_arrivals().into_values().next().unwrap();
    assert_eq!(seqs, (0..25).filter(|&s| s != 7).collect::<Vec<_>>());
    let sink = &json["sinks"][0];
    assert_eq!(sink["sink"], "hook");
    assert_eq!(sink["log_id"], log_id.as_str());
    assert_eq!(
        (sink["cursor"].as_u64(), sink["lag_records"].as_u64()),
        (Some(25), Some(0))
    );
    assert_eq!(sink["dead_letters"], 1);
    let letter = &json["dead_letters"][0];
    assert_eq!(
        (letter["seq"].as_u64(), letter["tries"].as_u64()),
        (Some(7), Some(2))
    );
    assert!(letter["last_error"].as_str().unwrap().contains("422"));

    let text = Command::new(BIN)
        .args(["--db", &db.spec(), "sink", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("SINK") && text.contains("DEAD") && text.contains("hook"),
        "{text}"
    );
}

fn follow_stdout_prints_each_record_as_a_json_line(db: Db) {
    db.record("log-a", 3);
    let mut child = Command::new(BIN)
        .args(["--db", &db.spec(), "follow", "--stdout", "--from-start"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut records = Vec::new();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        records.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    db.record("log-a", 1);
    let fourth: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    terminate(child);
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(fourth["seq"], 3, "new records follow as they are recorded");
    assert_eq!(records[1]["event"]["operation"], "tool1");
    assert_eq!(
        records[0]["key"],
        format!("{}:0", records[0]["log_id"].as_str().unwrap())
    );
}

impl Db {
    /// The id of the log `record(log, ..)` wrote to (a SQLite file names its own).
    fn log_id(&self, log: &str) -> String {
        match self {
            Db::Sqlite(_) => SqliteStore::open(self.spec(), SqliteOptions::default())
                .unwrap()
                .log_id()
                .to_string(),
            Db::Postgres(_) => log.to_string(),
        }
    }

    /// `mcp-audit --db DB ARGS...`: its output.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["--db", &self.spec()])
            .args(args)
            .output()
            .unwrap()
    }

    /// `sink status --json`.
    fn status(&self) -> Value {
        let out = self.run(&["sink", "status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `sink status --json` until `done`; fails after two minutes rather than hang.
    fn status_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..1_200 {
            let json = self.status();
            if done(&json) {
                return json;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sink status never showed {what}: {}", self.status());
    }
}

/// Kills the processes a test started if it fails half-way, so that none is left running
/// (only when panicking). Dropped before a process is stopped normally: once waited for, its
/// pid may be another process's.
struct Reaper(Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pid in &self.0 {
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// The seqs of the dead letters in a `sink status --json`.
fn letter_seqs(json: &Value) -> Vec<u64> {
    json["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect()
}

/// A follow that has dead-lettered `refused` of 25 records (max_tries = 2), still running.
fn dead_lettered(db: &Db, refused: &[u64]) -> (Receiver, Child, tempfile::TempDir, String) {
    db.record("log-a", 25);
    let log_id = db.log_id("log-a");
    let keys: Vec<String> = refused.iter().map(|s| format!("{log_id}:{s}")).collect();
    let receiver = Receiver::start(&keys, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &receiver, "max_tries = 2\n");
    let child = follow(db, &config);
    let reaper = Reaper(vec![child.id()]);
    db.status_until("every record sent or dead", |j| {
        j["sinks"][0]["cursor"] == 25 && letter_seqs(j) == refused
    });
    drop(reaper);
    (receiver, child, dir, log_id)
}

fn sink_retry_sends_dead_letters_again_in_seq_order_and_is_recorded(db: Db) {
    let (receiver, child, _dir, log_id) = dead_lettered(&db, &[7, 9]);
    let reaper = Reaper(vec![child.id()]);
    receiver.refuse.lock().unwrap().clear(); // the receiver is fixed

    let out = db.run(&["sink", "retry", "hook", "--all", "--actor", "ops-alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    receiver.wait_for("both dead letters", |s| {
        [7, 9].iter().all(|n| s.records.iter().any(|r| r.2 == *n))
    });
    let json = db.status_until("no dead letter left", |j| letter_seqs(j).is_empty());
    drop(reaper);
    terminate(child);

    let seen = receiver.seen.lock().unwrap();
    let replayed: Vec<u64> = seen
        .records
        .iter()
        .filter(|r| r.1 == log_id && (r.2 == 7 || r.2 == 9))
        .map(|r| r.2)
        .collect();
    assert_eq!(replayed, [7, 9], "sent again once each, in seq order");
    assert!(
        seen.records
            .iter()
            .filter(|r| r.1 == log_id && r.2 < 25)
            .all(|r| r.0 == format!("{log_id}:{}", r.2)),
        "each with its original key"
    );
    assert!(
        seen.operations
            .values()
            .any(|op| op == "UPDATE sink_dead_letters"),
        "the retry is an event of the log (which the sink then sends too): {:?}",
        seen.operations.values().collect::<BTreeSet<_>>()
    );
    assert_eq!(json["sinks"][0]["dead_letters"], 0);
}

fn a_dead_letter_refused_again_goes_back_with_its_tries_and_drop_removes_it(db: Db) {
    let (receiver, child, _dir, _log_id) = dead_lettered(&db, &[7]);
    let reaper = Reaper(vec![child.id()]);
    let out = db.run(&["sink", "retry", "hook", "--seq", "7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = db.status_until("the letter back, no longer queued, with 4 tries", |j| {
        j["dead_letters"][0]["tries"] == 4 && j["dead_letters"][0]["queued"] == false
    });
    assert_eq!(letter_seqs(&json), [7]);
    assert!(
        !receiver
            .seen
            .lock()
            .unwrap()
            .records
            .iter()
            .any(|r| r.2 == 7)
    );

    let out = db.run(&[
        "sink",
        "drop",
        "hook",
        "--seq",
        "7",
        "--reason",
        "refused by design",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = db.status();
    assert!(letter_seqs(&json).is_empty(), "{json}");
    receiver.wait_for("the drop's own record", |s| {
        s.operations
            .values()
            .any(|op| op == "DELETE sink_dead_letters")
    });
    drop(reaper);
    terminate(child);
}

fn sink_retry_refuses_an_unknown_sink_or_seq_and_changes_nothing(db: Db) {
    let (_receiver, child, _dir, _log_id) = dead_lettered(&db, &[7]);
    terminate(child);
    let before = db.run(&["query", "--json"]).stdout;
    for (args, expected) in [
        (
            vec!["sink", "retry", "nosuch", "--all"],
            "no sink named `nosuch` has followed this database (sinks: hook)",
        ),
        (
            vec!["sink", "retry", "hook", "--seq", "99"],
            "sink `hook` has no dead letter at seq 99",
        ),
        (
            vec!["sink", "drop", "hook", "--log", "no-such-log", "--all"],
            "sink `hook` has no dead letters in log `no-such-log`",
        ),
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = db.run(&["sink", "retry", "hook"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither --seq nor --all is a usage error"
    );
    let json = db.status();
    assert_eq!(letter_seqs(&json), [7]);
    assert_eq!(json["dead_letters"][0]["queued"], false);
    assert_eq!(
        db.run(&["query", "--json"]).stdout,
        before,
        "nothing recorded"
    );
}

fn a_second_follow_of_one_sink_waits_and_takes_over_when_the_first_is_killed(db: Db) {
    db.record("log-a", 300);
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], Duration::from_millis(100));
    let config = config(dir.path(), &receiver, "lease_ms = 1000\n");

    let mut first = follow(&db, &config);
    receiver.wait_for("a few batches", |s| s.records.len() >= 20);
    let second = follow(&db, &config);
    let mut reaper = Reaper(vec![first.id(), second.id()]);
    let json = db.status_until("a runner and a standby", |j| {
        j["sinks"][0]["runner"].is_string() && j["sinks"][0]["standby"].is_string()
    });
    let standby = json["sinks"][0]["standby"].clone();
    assert_ne!(json["sinks"][0]["runner"], standby);
    let mark = receiver.count();
    receiver.wait_for("more batches", |s| s.records.len() >= mark + 20);
    {
        let seen = receiver.seen.lock().unwrap();
        let keys: BTreeSet<_> = seen.records.iter().map(|r| &r.0).collect();
        assert_eq!(
            keys.len(),
            seen.records.len(),
            "while both run, only one sends: no record arrives twice"
        );
    }
    reaper.0.retain(|&pid| pid != first.id());
    first.kill().unwrap(); // SIGKILL: its lease is left to run out
    first.wait().unwrap();
    assert!(receiver.count() < 300, "the kill should land mid-way");

    receiver.wait_for("every record", |s| {
        s.records
            .iter()
            .map(|r| &r.0)
            .collect::<BTreeSet<_>>()
            .len()
            >= 300
    });
    let json = db.status_until("the second as the runner", |j| {
        j["sinks"][0]["runner"].is_string()
            && j["sinks"][0]["standby"].is_null()
            && j["sinks"][0]["cursor"] == 300
    });
    drop(reaper);
    terminate(second);

    let seqs = receiver.first_arrivals().into_values().next().unwrap();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>(), "every record, in order");
    assert!(
        receiver.count() - 300 <= 10,
        "only the batch in flight at the kill may come twice ({} duplicates)",
        receiver.count() - 300
    );
    assert_eq!(json["sinks"][0]["runner"], standby, "the standby took over");
    let after = db.status();
    assert!(
        after["sinks"][0]["runner"].is_null(),
        "a clean stop releases the lease: {after}"
    );
}

support::on_both_backends!(
    fixture;
    a_killed_follow_resumes_from_its_cursor_and_loses_nothing,
    a_record_refused_forever_shows_in_sink_status_and_the_rest_flows,
    follow_stdout_prints_each_record_as_a_json_line,
    sink_retry_sends_dead_letters_again_in_seq_order_and_is_recorded,
    a_dead_letter_refused_again_goes_back_with_its_tries_and_drop_removes_it,
    sink_retry_refuses_an_unknown_sink_or_seq_and_changes_nothing,
    a_second_follow_of_one_sink_waits_and_takes_over_when_the_first_is_killed,
);

#[test]
fn a_bad_sinks_file_is_refused_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[sink]]\nname = \"tail\"\ntype = \"stdout\"\n\n[[sink]]\nname = \"x\"\ntype = \"webhook\"\nurll = \"http://h/\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--db", db.to_str().unwrap(), "follow", "--sink"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:5: sink `x`: unknown field `urll`"),
        "{stderr}"
    );
    let out = Command::new(BIN).args(["follow"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither --sink nor --stdout is a usage error"
    );
}

/// `serve --sink`: the console runs the sinks inside its process, counts them in its
/// `/metrics`, and stops them with itself.
#[test]
fn serve_runs_the_sinks_of_its_sink_flag_and_shows_them_in_its_metrics() {
    let db = fixture(support::Backend::Sqlite).unwrap();
    db.record("log-a", 12);
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], Duration::ZERO);
    let config = config(dir.path(), &receiver, "");
    let mut command = Command::new(BIN);
    command
        .args(["--db", &db.spec()])
        .env("HOOK_SECRET", SECRET);
    let (child, base) = support::spawn_serve(command, &["--sink", config.to_str().unwrap()]);
    receiver.wait_for("the records", |s| s.records.len() >= 12);
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = support::http_get(port, "/metrics").2;
        if metrics.contains("mcp_audit_sink_delivered_total{sink=\"hook\"} 12") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(child);
    assert!(
        metrics.contains("mcp_audit_sink_delivered_total{sink=\"hook\"} 12")
            && metrics.contains("mcp_audit_sink_lag_records{sink=\"hook\"} 0")
            && metrics.contains("mcp_audit_sink_dead_letters_total{sink=\"hook\"} 0"),
        "{metrics}"
    );
    assert_eq!(
        receiver.first_arrivals().into_values().next().unwrap(),
        (0..12).collect::<Vec<_>>()
    );
}

/// `follow --stdout | head`: once the reader has gone, follow ends (it does not retry a write
/// nobody can read).
#[test]
fn follow_stdout_ends_when_its_reader_goes() {
    let db = fixture(support::Backend::Sqlite).unwrap();
    db.record("log-a", 2);
    let mut child = Command::new(BIN)
        .args(["--db", &db.spec(), "follow", "--stdout", "--from-start"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes before anything is read
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// `proxy --sink`: a stdio proxy runs the sinks inside its process; the call it records leaves
/// through them, and the proxy still ends cleanly with its client.
#[test]
fn a_stdio_proxy_runs_the_sinks_of_its_sink_flag() {
    let Some(peers) = support::peers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let receiver = Receiver::start(&[], Duration::ZERO);
    let config = dir.path().join("sinks.toml");
    std::fs::write(
        &config,
        format!(
            "[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\npoll_ms = 50\n",
            receiver.url
        ),
    )
    .unwrap();
    let mut client = support::RawClient::start(
        &db,
        &["--sink", config.to_str().unwrap()],
        &support::everything(&peers),
    );
    client.send(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"shipped"}}}"#);
    assert!(client.answer().get("result").is_some());
    let echo = loop {
        let trail = support::events(&db);
        if let Some(e) = trail.iter().find(|e| {
            e.event.operation == "echo" && e.event.outcome == mcp_audit_core::Outcome::Success
        }) {
            break e.seq;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    receiver.wait_for("the call's record", |s| {
        s.records.iter().any(|r| r.2 == echo)
    });
    client.close();
    assert_eq!(receiver.seen.lock().unwrap().bad_signatures, 0);
    let seqs = receiver.first_arrivals().into_values().next().unwrap();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "in order from the first"
    );
}
