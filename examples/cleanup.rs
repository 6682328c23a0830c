//! Retention and cleanup (the MCP operation logger's `cleanup_expired_logs`): each event says
//! how long it is kept, the recorder's policy turns that into an expiry time, and a cleanup
//! deletes what has expired, with its payload, lineage and compliance rows.
//!
//! A retention is a duration (`30d`, `6mo`, `7y`), `forever`, or the name of a policy of the
//! deployment (`short`, `standard`, `extended` by default); `Policy::default_retention` covers
//! events that name none. Cleanup takes "now" as an argument, which is what lets this example
//! run it as it would run a month from today; `count_expired` counts without deleting.
//!
//! `cargo run --example cleanup`

use std::error::Error;

use jiff::{Timestamp, ToSpan};
use mcp_audit_core::{AuditEvent, DataSource};
use mcp_audit_store::expiry::Plan;
use mcp_audit_store::{
    Filter, Maintain, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore, integrity,
};
use serde_json::json;

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // Kept 7 days: a debugging trace.
    recorder.record(
        AuditEvent::tool_execution("debug_dump")
            .user("ops")
            .retention("7d")
            .input(json!({"verbose": true}))
            .data_source(DataSource::input("file:///var/log/app.log").source_type("file"))
            .build()?,
    )?;
    // Kept 30 days, through the named policy `short`.
    recorder.record(
        AuditEvent::tool_execution("search")
            .user("alice")
            .retention("short")
            .build()?,
    )?;
    // Kept for good: no retention, and the default policy keeps such events forever.
    recorder.record(
        AuditEvent::tool_execution("approve_invoice")
            .user("bob")
            .build()?,
    )?;
    recorder.shutdown()?;

    let mut store = SqliteStore::open(&path, SqliteOptions::default())?;
    // Fourteen days of 24 hours: a timestamp is an instant, so its arithmetic takes no
    // calendar units (the retentions above do, and the policy resolves them in UTC).
    let in_two_weeks = Timestamp::now() + (14 * 24).hours();

    let dry = store.count_expired(in_two_weeks)?;
    println!("in two weeks, a cleanup would delete: {dry:?}");
    assert_eq!((dry.events, dry.data_sources), (1, 1));
    assert_eq!(
        store.count(&Filter::default())?,
        3,
        "counting deletes nothing"
    );

    // A cleanup run keeps the log provable: it plans what has expired, records itself as an
    // event of the log (durably, so the record exists before any row goes), then removes the
    // entries, keeping each one's leaf hash (and nothing personal) as a tombstone.
    let plan = Plan::of(&mut store, in_two_weeks)?.ok_or("one event has expired")?;
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;
    let cleanup_seq = plan.record_in(&recorder)?;
    recorder.shutdown()?;
    let done = plan.remove(&mut store, cleanup_seq)?;
    println!("deleted: {done:?}, recorded as the event at seq {cleanup_seq}");
    assert_eq!((done.events, done.data_sources), (1, 1));

    let mut left = Vec::new();
    store.for_each(&Filter::default(), &mut |stored| {
        left.push((stored.event.operation, stored.event.compliance.expires_at));
        Ok(())
    })?;
    println!("left: {left:?}");
    assert_eq!(left.len(), 3, "two events and the cleanup run's own");
    assert_eq!(left[0].0, "search");
    assert!(left[0].1.is_some());
    assert_eq!(left[1], ("approve_invoice".to_string(), None));

    // `verify` counts the removed entry as expired by that run, not as missing.
    let report = integrity::verify(&mut store, None, &[], &mut |_| {})?;
    println!(
        "verify: {} entries, {} expired, findings {:?}",
        report.entries, report.expired, report.findings
    );
    assert!(report.is_ok());
    assert_eq!(report.expired, 1);
    Ok(())
}
