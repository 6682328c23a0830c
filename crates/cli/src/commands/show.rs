//! `mcp-audit show`: one event in full.

use std::io::{self, Write};

use anyhow::{Context, anyhow};
use mcp_audit_core::EventId;

use crate::db::Db;

/// Show one event in full
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit show 01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e
  mcp-audit show --compact 01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e")]
pub struct ShowArgs {
    /// The event's id (as printed by `log` and `query`)
    #[arg(value_name = "ID")]
    id: String,
    /// One line of JSON instead of pretty-printed
    #[arg(long)]
    compact: bool,
}

pub fn run(db: &Db, args: ShowArgs) -> anyhow::Result<()> {
    let id: EventId = args
        .id
        .trim()
        .parse()
        .with_context(|| format!("invalid event id `{}`", args.id))?;
    let event = db
        .open_read_only()?
        .get(id)?
        .ok_or_else(|| anyhow!("no event with id {id} in {}", db.name()))?;
    let mut out = io::stdout().lock();
    if args.compact {
        serde_json::to_writer(&mut out, &event)?;
    } else {
        serde_json::to_writer_pretty(&mut out, &event)?;
    }
    writeln!(out)?;
    Ok(())
}
