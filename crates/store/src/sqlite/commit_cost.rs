//! The fixed cost of a commit, counted: the statements the writer runs per event when every
//! event is its own commit (one call in flight: a `sync` caller waiting on each record). A
//! statement that creeps back into the per-commit path fails here, whatever the host's load.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mcp_audit_core::AuditEvent;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use serde_json::json;

use crate::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};

/// What ran on the writer's connection while events were recorded one at a time.
#[derive(Default)]
struct Ran {
    /// Each statement's text (trigger programs apart, spaces squeezed) and how often it ran.
    statements: BTreeMap<String, usize>,
    /// The writer thread's CPU time over the records, in nanoseconds (`schedstat`).
    writer_cpu_ns: u64,
}

/// The writer thread's CPU time so far, in nanoseconds, from `/proc/self/task/*/schedstat`;
/// 0 where that is not to be read.
fn writer_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                // The kernel keeps 15 bytes of a thread's name: "mcp-audit-writer" loses its r.
                .is_ok_and(|comm| comm.trim() == "mcp-audit-write")
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn squeeze(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Records `n` events one at a time, each waited for, with every statement of the writer's
/// connection traced.
fn statements_while_recording(n: usize) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        SqliteStore::open(dir.path().join("audit.db"), SqliteOptions::default()).unwrap();
    type Seen = Arc<Mutex<Option<BTreeMap<String, usize>>>>;
    let seen: Seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    store
        .conn
        .trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: TraceEvent<'_>| {
                if let TraceEvent::Stmt(_, sql) = event
                    && !sql.starts_with("--")
                    && let Some(ran) = sink.lock().unwrap().as_mut()
                {
                    *ran.entry(squeeze(sql)).or_default() += 1;
                }
            }),
        )
        .unwrap();
    let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
    // Start-up reads are not a commit's: counting starts with the first record.
    *seen.lock().unwrap() = Some(BTreeMap::new());
    let cpu_before = writer_cpu_ns();
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
    let writer_cpu_ns = writer_cpu_ns() - cpu_before;
    let statements = seen.lock().unwrap().take().unwrap();
    recorder.shutdown().unwrap();
    Ran {
        statements,
        writer_cpu_ns,
    }
}

#[test]
fn a_commit_of_one_event_runs_few_statements() {
    // `COMMIT_COST_EVENTS`: more events for steadier CPU figures (see docs/benchmarks.md).
    let n = std::env::var("COMMIT_COST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let ran = statements_while_recording(n);
    let total: usize = ran.statements.values().sum();
    let mut listing = String::new();
    for (sql, count) in &ran.statements {
        let sql: String = sql.chars().take(100).collect();
        listing.push_str(&format!("{:>6.2}  {sql}\n", *count as f64 / n as f64));
    }
    let per_event = total as f64 / n as f64;
    println!(
        "statements per one-event commit: {per_event:.2}; writer CPU {:.1} µs per event\n\
         (statements per event)\n{listing}",
        ran.writer_cpu_ns as f64 / 1e3 / n as f64
    );
    // BEGIN, the counters (seq, the keys' and the words' reach, erasure count), the event, its
    // payload, the counter moved, COMMIT: six. The rest is the odd mapping row, or the words
    // and keys of a few hundred events at once when the writer is idle. Before this bound:
    // 10.7 (the erasure count, the keys' reach and the leaf hashes read each with a statement
    // of its own, the idle upkeep's two reads after every commit, the words of every commit).
    assert!(
        per_event <= 6.5,
        "{per_event:.2} statements per event:\n{listing}"
    );
}
