//! `mcp-audit cleanup`: delete the events whose retention has run out.

use std::io::{self, Write};

use anyhow::Context;
use jiff::Timestamp;
use mcp_audit_store::Store;

use crate::db::Db;

/// Delete expired events (expires_at in the past) with their payloads and lineage rows
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit cleanup --dry-run     (count what would go)
  mcp-audit cleanup")]
pub struct CleanupArgs {
    /// Count what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(db: &Db, args: CleanupArgs) -> anyhow::Result<()> {
    let mut store = if args.dry_run {
        db.open_read_only()?
    } else {
        db.open_existing_writable()?
    };
    let report = store
        .delete_expired(Timestamp::now(), args.dry_run)
        .with_context(|| format!("cannot clean up {}", db.name()))?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(
            out,
            "{verb} {} expired event(s), {} payload(s), {} data source row(s), {} compliance event(s)",
            report.events, report.payloads, report.data_sources, report.compliance_events
        )?;
    }
    Ok(())
}
