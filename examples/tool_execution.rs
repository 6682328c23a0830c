//! Tool executions: who ran which tool, with which arguments, what came back, how long it took,
//! and whether it failed (the MCP operation logger's `log_tool_execution`).
//!
//! Two ways to record one. Build the event yourself when you timed the call already; or hand
//! the call to [`Recorder::observe`], which times it, records a failure as a `tool_error` with
//! its message, and gives the call's own result back untouched, so that recording can never
//! hide the tool's real error.
//!
//! `cargo run --example tool_execution`

use std::error::Error;
use std::time::Duration;

use mcp_audit_core::{AuditEvent, Outcome};
use mcp_audit_store::{
    Filter, Query, Read, Receipt, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    // The default durability is `Sync`: `record` returns once the event is committed and
    // synced, so a tool must not run before its record exists.
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // A call timed by the caller.
    let receipt = recorder.record(
        AuditEvent::tool_execution("search_docs")
            .user("alice")
            .session("session-1")
            .server("docs")
            .input(json!({"query": "retention policy"}))
            .output(json!({"hits": 3}))
            .duration(Duration::from_millis(42))
            .build()?,
    )?;
    let Receipt::Durable { seq, .. } = receipt else {
        return Err(format!("a sync recorder answers durable, got {receipt:?}").into());
    };
    println!("search_docs is durable at seq {seq}");

    // A call timed by the recorder. The closure's error comes back as it was.
    let result: Result<u32, String> = recorder.observe(
        AuditEvent::tool_execution("delete_file")
            .user("alice")
            .session("session-1")
            .server("docs")
            .input(json!({"path": "/srv/docs/handbook.md"})),
        || Err("permission denied".to_string()),
    );
    assert_eq!(result, Err("permission denied".to_string()));

    // `shutdown` drains the queue and says whether everything was written.
    let stats = recorder.shutdown()?;
    assert_eq!(stats.recorded, 2);

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    let page = reader.query(&Query {
        filter: Filter {
            session_id: Some("session-1".into()),
            ..Filter::default()
        },
        ..Query::default()
    })?;
    for stored in &page.events {
        println!(
            "seq {} {} by {:?}: {:?} in {:?} us",
            stored.seq,
            stored.event.operation,
            stored.event.actor.user_id,
            stored.event.outcome,
            stored.event.duration_us
        );
    }
    assert_eq!(page.events.len(), 2);
    let failed = page
        .events
        .iter()
        .find(|stored| stored.event.operation == "delete_file")
        .ok_or("the failed call was not recorded")?;
    assert_eq!(failed.event.outcome, Outcome::ToolError);
    assert_eq!(
        failed.event.payload.error_message.as_deref(),
        Some("permission denied")
    );
    assert!(failed.event.duration_us.is_some());
    Ok(())
}
