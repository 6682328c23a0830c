//! `mcp-audit cleanup`: remove the events whose retention has run out, keeping the log provable
//! (a tombstone per removed entry, and the run recorded as an event of its log: see
//! `mcp_audit_store::expiry`).

use std::io::{self, Write};

use anyhow::Context;
use jiff::Timestamp;
use mcp_audit_store::expiry::{Plan, SeqRange};
use mcp_audit_store::{CleanupReport, Recorder, RecorderConfig, Store, StoreError};
use serde::Serialize;

use crate::db::Db;

/// Delete expired events (expires_at in the past) with their payloads and lineage rows
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each run that removes events records itself as an event of the log it cleans \
(`DELETE expired_events`: when, how many, which seqs, which retentions) and keeps each removed \
entry's leaf hash, so that `verify`, `prove`, `checkpoint` and `consistency` go on working and \
`verify` reports the removed entries as expired.

Examples:
  mcp-audit cleanup --dry-run     (count what would go)
  mcp-audit cleanup"
)]
pub struct CleanupArgs {
    /// Count what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

/// What `cleanup` did, in every log it visited: the totals first (what a dry run reports too).
#[derive(Debug, Default, Serialize)]
struct Outcome {
    #[serde(flatten)]
    total: CleanupReport,
    runs: Vec<Run>,
    /// Logs whose expired events stay for a later run: another process writes them.
    busy: Vec<String>,
}

/// One log's cleanup run.
#[derive(Debug, Serialize)]
struct Run {
    log_id: String,
    /// The seq of the run's own event in the log.
    cleanup_seq: u64,
    ranges: Vec<SeqRange>,
    retentions: Vec<String>,
    deleted: CleanupReport,
}

pub fn run(db: &Db, args: CleanupArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let outcome = if args.dry_run {
        let total = db
            .open_read_only()?
            .count_expired(now)
            .with_context(|| format!("cannot count expired events in {}", db.name()))?;
        Outcome {
            total,
            ..Outcome::default()
        }
    } else {
        clean_up(db, now).with_context(|| format!("cannot clean up {}", db.name()))?
    };
    print(&outcome, args.json)
}

/// Runs a cleanup of each log that holds expired events: plan, record, remove (see
/// `mcp_audit_store::expiry::Plan` for why in that order, each with its own handle).
fn clean_up(db: &Db, now: Timestamp) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    for log_id in db.logs_with_expired(now)? {
        let plan = {
            let mut planner = db.open_cleanup_planner(&log_id)?;
            Plan::of(&mut planner, now)?
        };
        let Some(plan) = plan else { continue };
        let Some(writer) = writer_of(db, &log_id)? else {
            outcome.busy.push(log_id);
            continue;
        };
        let recorder = Recorder::start(writer, RecorderConfig::default())?;
        let recorded = plan.record_in(&recorder);
        recorder.shutdown()?;
        let cleanup_seq = recorded?;
        let Some(mut store) = writer_of(db, &log_id)? else {
            // Recorded, but taken by another writer since: the entries it lists are all still
            // there, and the next run removes them.
            outcome.busy.push(log_id);
            continue;
        };
        let deleted = plan.remove(&mut store, cleanup_seq)?;
        outcome.total.events += deleted.events;
        outcome.total.payloads += deleted.payloads;
        outcome.total.data_sources += deleted.data_sources;
        outcome.total.compliance_events += deleted.compliance_events;
        outcome.runs.push(Run {
            log_id,
            cleanup_seq,
            ranges: plan.record().ranges.clone(),
            retentions: plan.record().retentions.clone(),
            deleted,
        });
    }
    Ok(outcome)
}

/// A writer of `log_id`, or `None` while another process writes it (a proxy: its expired
/// events wait for a run while it is stopped).
fn writer_of(db: &Db, log_id: &str) -> anyhow::Result<Option<Box<dyn Store>>> {
    match db.open_writer_of(log_id) {
        Ok(store) => Ok(Some(store)),
        Err(e)
            if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::LogInUse { .. })
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn print(outcome: &Outcome, json: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, outcome)?;
        writeln!(out)?;
        return Ok(());
    }
    let total = &outcome.total;
    let verb = if total.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    writeln!(
        out,
        "{verb} {} expired event(s), {} payload(s), {} data source row(s), {} compliance event(s)",
        total.events, total.payloads, total.data_sources, total.compliance_events
    )?;
    for run in &outcome.runs {
        let ranges: Vec<String> = run
            .ranges
            .iter()
            .map(|r| format!("{}..{}", r.start, r.end))
            .collect();
        let log = if run.log_id.is_empty() {
            String::new()
        } else {
            format!("log {}: ", run.log_id)
        };
        writeln!(
            out,
            "{log}removed seqs {} (retention {}), recorded as the event at seq {}",
            ranges.join(", "),
            if run.retentions.is_empty() {
                "by expires_at".to_string()
            } else {
                run.retentions.join(", ")
            },
            run.cleanup_seq
        )?;
    }
    for log in &outcome.busy {
        writeln!(
            out,
            "log {log} is being written by another process: its expired events stay until a run while it is free"
        )?;
    }
    Ok(())
}
