//! Summaries and per-tool statistics (the MCP operation logger's session and compliance
//! summaries): how many operations of each kind and outcome a session, a user or a time window
//! holds, how many await review, and each tool's calls, error rate and latency percentiles.
//!
//! The store computes these in SQL over the indexed columns, without reading any payload, so
//! a summary of a large log costs a grouped scan, not a decode of every event.
//!
//! `cargo run --example summary`

use std::error::Error;
use std::time::Duration;

use mcp_audit_core::{Action, AuditEvent, ContextOp};
use mcp_audit_store::{
    Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore, SummaryScope, TimeBasis,
};

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // One session of alice's: ten searches (one failed) taking 10 to 100 ms, two fetches, a
    // resource read and a context update.
    for i in 1..=10u64 {
        let mut event = AuditEvent::tool_execution("search")
            .user("alice")
            .session("session-9")
            .duration(Duration::from_millis(10 * i));
        if i == 10 {
            event = event.failed("upstream timeout");
        }
        recorder.record(event.build()?)?;
    }
    for _ in 0..2 {
        recorder.record(
            AuditEvent::tool_execution("fetch")
                .user("alice")
                .session("session-9")
                .duration(Duration::from_millis(5))
                .build()?,
        )?;
    }
    recorder.record(
        AuditEvent::resource_access("file:///srv/notes.md", Action::Read)
            .user("alice")
            .session("session-9")
            .build()?,
    )?;
    recorder.record(
        AuditEvent::context_operation("draft", ContextOp::Update)
            .user("alice")
            .session("session-9")
            .build()?,
    )?;
    // And bob, elsewhere.
    recorder.record(AuditEvent::tool_execution("search").user("bob").build()?)?;
    recorder.shutdown()?;

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;

    let session = reader.summary(&SummaryScope::Session("session-9".into()))?;
    println!("session-9: {session:#?}");
    assert_eq!(session.total_operations, 14);
    assert_eq!(session.tool_executions, 12);
    assert_eq!(session.resource_accesses, 1);
    assert_eq!(session.context_operations, 1);
    assert_eq!(session.by_outcome.get("tool_error"), Some(&1));
    assert_eq!(session.distinct_users, 1);

    let everything = reader.summary(&SummaryScope::Window {
        since: None,
        until: None,
        time: TimeBasis::Stated,
    })?;
    assert_eq!(everything.total_operations, 15);
    assert_eq!(everything.distinct_users, 2);

    // Per tool, most called first; percentiles over the calls that have a duration.
    let tools = reader.tool_stats(&Filter {
        user_id: Some("alice".into()),
        ..Filter::default()
    })?;
    for tool in &tools {
        println!(
            "{}: {} calls, {:.0}% errors, p50 {:?} us, p95 {:?} us",
            tool.tool,
            tool.calls,
            tool.error_rate * 100.0,
            tool.p50_us,
            tool.p95_us
        );
    }
    let search = &tools[0];
    assert_eq!(
        (search.tool.as_str(), search.calls, search.errors),
        ("search", 10, 1)
    );
    assert_eq!(search.p50_us, Some(50_000));
    assert_eq!(search.p95_us, Some(100_000));
    Ok(())
}
