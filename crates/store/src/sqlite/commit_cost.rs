//! The fixed cost of a commit, counted: the statements the writer runs per event when every
//! event is its own commit (one call in flight: a `sync` caller waiting on each record). A
//! statement that creeps back into the per-commit path fails here, whatever the host's load.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mcp_audit_core::AuditEvent;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use serde_json::json;

use crate::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};

/// The statements run on `store`'s connection while `n` events are recorded one at a time,
/// each waited for: each statement's text (trigger programs apart) and how often it ran.
fn statements_while_recording(n: usize) -> BTreeMap<String, usize> {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        SqliteStore::open(dir.path().join("audit.db"), SqliteOptions::default()).unwrap();
    let seen: Arc<Mutex<Option<BTreeMap<String, usize>>>> = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    store
        .conn
        .trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: TraceEvent<'_>| {
                if let TraceEvent::Stmt(_, sql) = event
                    && !sql.starts_with("--")
                    && let Some(counts) = sink.lock().unwrap().as_mut()
                {
                    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
                    *counts.entry(sql).or_default() += 1;
                }
            }),
        )
        .unwrap();
    let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
    // Start-up reads are not a commit's: counting starts with the first record.
    *seen.lock().unwrap() = Some(BTreeMap::new());
    for i in 0..n {
        let event = AuditEvent::tool_execution("read_file")
            .user(format!("user-{}", i % 7))
            .session(format!("session-{}", i % 3))
            .input(json!({"path": format!("/srv/data/{i}.txt")}))
            .output(json!({"content": [{"type": "text", "text": "x".repeat(200)}]}))
            .build()
            .unwrap();
        recorder.record(event).unwrap();
    }
    let counts = seen.lock().unwrap().take().unwrap();
    recorder.shutdown().unwrap();
    counts
}

#[test]
fn a_commit_of_one_event_runs_few_statements() {
    let n = 300;
    let counts = statements_while_recording(n);
    let total: usize = counts.values().sum();
    let mut listing = String::new();
    for (sql, count) in &counts {
        listing.push_str(&format!("{:>6.2}  {sql}\n", *count as f64 / n as f64));
    }
    let per_event = total as f64 / n as f64;
    println!("statements per one-event commit: {per_event:.2}\n{listing}");
    // BEGIN, the counters (seq, lookup keys' reach, erasure count), the event, its payload,
    // its words, the counter moved, COMMIT: seven. The rest is the odd mapping row or upkeep.
    // Before this bound: 10.7 (the erasure count, the keys' reach and the leaf hash read each
    // with a statement of its own, the idle upkeep's two reads after every commit).
    assert!(
        per_event <= 7.5,
        "{per_event:.2} statements per event:\n{listing}"
    );
}
