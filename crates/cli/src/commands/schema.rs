//! `mcp-audit schema`: the JSON Schema of an event's JSON form, generated from the Rust types.
//!
//! The same text is checked in as `schema/audit-event.v1.schema.json`; a test regenerates it,
//! so the published schema can not drift from what `log` accepts.

use std::io::{self, Write};

/// Print the JSON Schema of the event JSON form (what `log` reads)
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  mcp-audit schema > audit-event.v1.schema.json")]
pub struct SchemaArgs {}

pub fn run(_args: SchemaArgs) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &mcp_audit_core::event_json_schema())?;
    writeln!(out)?;
    Ok(())
}
