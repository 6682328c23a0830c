//! Querying the trail (the MCP operation logger's `query_audit_logs`): filters that combine, a
//! time window, a count, and pages that follow each other with a cursor.
//!
//! Pages are newest first. A cursor continues after the last event of the previous page and
//! stays exact while new events arrive (an offset would skip or repeat rows), so a reader can
//! walk a live log.
//!
//! `cargo run --example query`

use std::error::Error;

use jiff::{Timestamp, ToSpan};
use mcp_audit_core::{AuditEvent, EventKind, Outcome};
use mcp_audit_store::{
    Filter, PageStart, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // Twelve calls by two users; every fourth fails.
    let started = Timestamp::now();
    for i in 0..12 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        let mut event = AuditEvent::tool_execution("read_file")
            .user(user)
            .server("filesystem")
            .input(json!({"path": format!("/srv/data/{i}.txt")}));
        if i % 4 == 3 {
            event = event.failed("file not found");
        }
        recorder.record(event.build()?)?;
    }
    recorder.shutdown()?;

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;

    // Filters combine with AND: bob's failed `read_file` calls since the start.
    let failures = Filter {
        kinds: vec![EventKind::ToolExecution],
        operation: Some("read_file".into()),
        user_id: Some("bob".into()),
        outcome: Some(Outcome::ToolError),
        since: Some(started - 1.second()),
        ..Filter::default()
    };
    let count = reader.count(&failures)?;
    println!("bob's failed read_file calls: {count}");
    assert_eq!(count, 3);

    // Every event, five per page, following the cursor to the end.
    let mut query = Query {
        limit: 5,
        ..Query::default()
    };
    let mut seqs = Vec::new();
    let mut pages = 0;
    loop {
        let page = reader.query(&query)?;
        pages += 1;
        seqs.extend(page.events.iter().map(|stored| stored.seq));
        let Some(next) = page.next else { break };
        query.start = PageStart::After(next);
    }
    println!(
        "{} events in {pages} pages, newest first: {seqs:?}",
        seqs.len()
    );
    assert_eq!(seqs, (0..12).rev().collect::<Vec<u64>>());
    Ok(())
}
