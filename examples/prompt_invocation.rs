//! Prompt invocations: which prompt ran, with which arguments, what it generated, and from which
//! sources (the MCP operation logger's `log_prompt_invocation`), inside a session whose start
//! and end are recorded too.
//!
//! [`Recorder::session`] writes the session's start now and its end when the guard is ended or
//! dropped, so a session cut short by an early return still has an end in the log.
//!
//! `cargo run --example prompt_invocation`

use std::error::Error;

use mcp_audit_core::{AuditEvent, DataSource, EventKind};
use mcp_audit_store::{Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    let session = recorder.session("session-3", Some("dave"))?;
    recorder.record(
        AuditEvent::prompt_execution("summarize_ticket")
            .user("dave")
            .session("session-3")
            .server("helpdesk")
            .input(json!({"ticket_id": "T-981", "tone": "neutral"}))
            .output(json!([{"role": "user", "content": "Summarize ticket T-981 ..."}]))
            .data_source(DataSource::input("helpdesk://tickets/T-981").source_type("api"))
            .build()?,
    )?;
    session.end()?;
    recorder.shutdown()?;

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    let mut kinds = Vec::new();
    reader.for_each(
        &Filter {
            session_id: Some("session-3".into()),
            ..Filter::default()
        },
        &mut |stored| {
            println!(
                "seq {} {:?} {}",
                stored.seq, stored.event.kind, stored.event.operation
            );
            kinds.push(stored.event.kind);
            Ok(())
        },
    )?;
    assert_eq!(
        kinds,
        [
            EventKind::Session,
            EventKind::PromptExecution,
            EventKind::Session
        ]
    );
    Ok(())
}
