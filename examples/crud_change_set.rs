//! Administrative CRUD actions with their change sets (the gateway audit trail's `log_action`
//! and `log_crud_operation`): who created, updated or deleted which managed resource, through
//! which API call, with the values before and after.
//!
//! For an UPDATE with old and new values the builder computes the change set
//! (`{field: {old, new}}`, only the fields that changed). The recorder's policy derives the
//! classification from the resource type and flags for review what a person should look at:
//! confidential data, and the deletion of a tool, server or gateway. The review queue is then
//! one filter.
//!
//! `cargo run --example crud_change_set`

use std::error::Error;

use mcp_audit_core::{Action, AuditEvent, Classification};
use mcp_audit_store::{Filter, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    recorder.record(
        AuditEvent::admin(Action::Create, "tool", "tool-42")
            .user("admin@example.com")
            .team("platform")
            .request("POST", "/tools")
            .new_values(json!({"name": "weather", "enabled": true, "timeout_s": 30}))
            .build()?,
    )?;
    let update = AuditEvent::admin(Action::Update, "tool", "tool-42")
        .user("admin@example.com")
        .team("platform")
        .request("PUT", "/tools/tool-42")
        .old_values(json!({"name": "weather", "enabled": true, "timeout_s": 30}))
        .new_values(json!({"name": "weather", "enabled": false, "timeout_s": 30}))
        .build()?;
    // Computed when the event was built, before anything was written.
    assert_eq!(
        update.payload.changes,
        Some(json!({"enabled": {"old": true, "new": false}}))
    );
    recorder.record(update)?;
    recorder.record(
        AuditEvent::admin(Action::Delete, "tool", "tool-42")
            .user("admin@example.com")
            .team("platform")
            .request("DELETE", "/tools/tool-42")
            .old_values(json!({"name": "weather", "enabled": false, "timeout_s": 30}))
            .build()?,
    )?;
    // A user record is confidential by its resource type, so its creation is reviewed too.
    recorder.record(
        AuditEvent::admin(Action::Create, "user", "user-7")
            .user("admin@example.com")
            .request("POST", "/users")
            .new_values(json!({"email": "erin@example.com", "role": "viewer"}))
            .build()?,
    )?;
    recorder.shutdown()?;

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    // The resource's history.
    let history = reader.query(&Query {
        filter: Filter {
            resource_type: Some("tool".into()),
            resource_id: Some("tool-42".into()),
            ..Filter::default()
        },
        ..Query::default()
    })?;
    for stored in history.events.iter().rev() {
        let target = &stored.event.target;
        println!(
            "{} via {} {}: changes {}",
            stored.event.operation,
            target.request_method.as_deref().unwrap_or("-"),
            target.request_path.as_deref().unwrap_or("-"),
            stored
                .event
                .payload
                .changes
                .as_ref()
                .map_or("none".to_string(), ToString::to_string)
        );
    }
    assert_eq!(history.events.len(), 3);

    // The review queue: the tool's deletion and the user's creation.
    let queue = reader.query(&Query {
        filter: Filter {
            requires_review: Some(true),
            ..Filter::default()
        },
        ..Query::default()
    })?;
    let mut flagged: Vec<(String, Option<Classification>)> = queue
        .events
        .iter()
        .map(|stored| {
            (
                stored.event.operation.clone(),
                stored.event.compliance.classification,
            )
        })
        .collect();
    flagged.sort();
    println!("to review: {flagged:?}");
    assert_eq!(
        flagged,
        [
            (
                "CREATE user".to_string(),
                Some(Classification::Confidential)
            ),
            ("DELETE tool".to_string(), Some(Classification::Internal)),
        ]
    );
    Ok(())
}
