//! `mcp-audit show`: one event in full.

use std::io::{self, Write};

use anyhow::{Context, anyhow};
use mcp_audit_core::{EventId, MAX_CLOCK_SKEW};
use mcp_audit_store::{Store, StoredEvent};
use serde::Serialize;

use crate::db::Db;

/// Show one event in full
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The event has two times: `timestamp`, the time it states (the caller's), and
`received_at`, when the recorder received it (stamped by mcp-audit and hashed; absent on
events recorded before it was kept). `clock_skew_us` is the first minus the second; past 5
minutes either way the event is `skewed`, and a warning on stderr says so.

Examples:
  mcp-audit show 01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e
  mcp-audit show --compact 01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e"
)]
pub struct ShowArgs {
    /// The event's id (as printed by `log` and `query`)
    #[arg(value_name = "ID")]
    id: String,
    /// One line of JSON instead of pretty-printed
    #[arg(long)]
    compact: bool,
}

/// The stored event with how far its stated time lies from its receive time.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    stored: &'a StoredEvent,
    /// `timestamp - received_at` in microseconds; absent without a receive time.
    #[serde(skip_serializing_if = "Option::is_none")]
    clock_skew_us: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skewed: bool,
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
    let skew = event.event.clock_skew();
    let shown = Shown {
        stored: &event,
        clock_skew_us: skew.map(|s| s.as_micros().clamp(i64::MIN.into(), i64::MAX.into()) as i64),
        skewed: event.event.is_skewed(),
    };
    if let (true, Some(skew), Some(received)) = (shown.skewed, skew, event.event.received_at) {
        writeln!(
            io::stderr(),
            "warning: the event states {} but was received {}: {:#} {}, more than the {:#} allowed",
            event.event.timestamp,
            received,
            jiff::SignedDuration::from_secs(skew.abs().as_secs()),
            if skew.is_negative() {
                "before"
            } else {
                "after"
            },
            MAX_CLOCK_SKEW,
        )?;
    }
    let mut out = io::stdout().lock();
    if args.compact {
        serde_json::to_writer(&mut out, &shown)?;
    } else {
        serde_json::to_writer_pretty(&mut out, &shown)?;
    }
    writeln!(out)?;
    Ok(())
}
