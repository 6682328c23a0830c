//! Context operations: a set, get, update or delete of a key of an agent's context, with the
//! state before and after (the MCP operation logger's `log_context_operation`).
//!
//! Each operation maps to a standard action (set → CREATE, get → READ, update → UPDATE,
//! delete → DELETE), so the same filters and summaries that serve tools serve context keys.
//! The states are personal-data fields, erasable without breaking the log.
//!
//! `cargo run --example context_operation`

use std::error::Error;

use mcp_audit_core::{Action, AuditEvent, ContextOp, EventKind};
use mcp_audit_store::{Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    let key = "user_preferences";
    let steps = [
        (ContextOp::Set, None, Some(json!({"theme": "dark"}))),
        (ContextOp::Get, Some(json!({"theme": "dark"})), None),
        (
            ContextOp::Update,
            Some(json!({"theme": "dark"})),
            Some(json!({"theme": "light"})),
        ),
        (ContextOp::Delete, Some(json!({"theme": "light"})), None),
    ];
    for (op, before, after) in steps {
        let mut event = AuditEvent::context_operation(key, op)
            .user("carol")
            .session("session-7");
        if let Some(before) = before {
            event = event.state_before(before);
        }
        if let Some(after) = after {
            event = event.state_after(after);
        }
        recorder.record(event.build()?)?;
    }
    recorder.shutdown()?;

    // The key's history, oldest first (`for_each` reads in log order, as an export does).
    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    let mut history = Vec::new();
    reader.for_each(
        &Filter {
            kinds: vec![EventKind::ContextOperation],
            operation: Some(key.into()),
            ..Filter::default()
        },
        &mut |stored| {
            let state = |value: &Option<serde_json::Value>| {
                value.as_ref().map_or("-".to_string(), ToString::to_string)
            };
            println!(
                "seq {} {} {}: {} -> {}",
                stored.seq,
                stored.event.action,
                stored.event.operation,
                state(&stored.event.payload.state_before),
                state(&stored.event.payload.state_after)
            );
            history.push(stored.event.action.clone());
            Ok(())
        },
    )?;
    assert_eq!(
        history,
        [Action::Create, Action::Read, Action::Update, Action::Delete]
    );
    Ok(())
}
