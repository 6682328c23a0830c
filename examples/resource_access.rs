//! Resource accesses: a read or a write of a resource by URI, with the start of its content and
//! where the data came from or went (the MCP operation logger's `log_resource_access`, with its
//! data lineage).
//!
//! The content preview and the access metadata are personal-data fields: they live in the
//! erasable half of the record. The data sources are lineage rows that queries and exports
//! read without the payload.
//!
//! `cargo run --example resource_access`

use std::error::Error;

use mcp_audit_core::{Action, AuditEvent, DataSource, FlowDirection};
use mcp_audit_store::{Filter, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::json;

const REPORT: &str = "file:///srv/reports/q3.csv";

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // A read: the resource URI is both the operation and the resource id, so one filter finds
    // every access to it.
    recorder.record(
        AuditEvent::resource_access(REPORT, Action::Read)
            .user("bob")
            .server("filesystem")
            .content_preview("region,revenue\nemea,1200\n")
            .metadata(json!({"mime_type": "text/csv", "size_bytes": 2048}))
            .data_source(DataSource::input(REPORT).source_type("file"))
            .build()?,
    )?;
    // A write of the same resource, produced from a database query: the lineage says so.
    recorder.record(
        AuditEvent::resource_access(REPORT, Action::Update)
            .user("report-bot")
            .server("filesystem")
            .data_source(
                DataSource::input("postgres://warehouse/sales")
                    .source_type("database")
                    .transformation("quarterly aggregate"),
            )
            .data_source(
                DataSource::input(REPORT)
                    .source_type("file")
                    .direction(FlowDirection::Output),
            )
            .build()?,
    )?;
    recorder.shutdown()?;

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    let page = reader.query(&Query {
        filter: Filter {
            resource_id: Some(REPORT.into()),
            ..Filter::default()
        },
        ..Query::default()
    })?;
    for stored in &page.events {
        let event = &stored.event;
        println!(
            "{} {} by {:?}, lineage: {:?}",
            event.action,
            event.operation,
            event.actor.user_id,
            event
                .data_sources
                .iter()
                .map(|source| (&source.uri, source.direction))
                .collect::<Vec<_>>()
        );
    }
    // Newest first: the write, then the read.
    assert_eq!(page.events.len(), 2);
    let (write, read) = (&page.events[0].event, &page.events[1].event);
    assert_eq!(write.action, Action::Update);
    assert_eq!(write.data_sources.len(), 2);
    assert_eq!(read.action, Action::Read);
    assert_eq!(
        read.payload.content_preview.as_deref(),
        Some("region,revenue\nemea,1200\n")
    );
    Ok(())
}
