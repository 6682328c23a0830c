//! `mcp-audit cleanup`: remove the events whose retention has run out, keeping the log provable
//! (a tombstone per removed entry, and the run recorded as an event of its log: see
//! `mcp_audit_store::expiry`).

use std::collections::BTreeMap;
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

Events under a legal hold (`mcp-audit hold`) stay, whatever their retention; `--dry-run` says
how many each hold keeps, and what would go by retention class, changing nothing.

Examples:
  mcp-audit cleanup --dry-run     (what would go, by class, and what a hold keeps)
  mcp-audit cleanup"
)]
pub struct CleanupArgs {
    /// Report what would be deleted (count, seq ranges, by retention class) and what a legal
    /// hold keeps; delete nothing
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

/// What a cleanup would do, changing nothing.
#[derive(Debug, Default, Serialize)]
struct DryRun {
    dry_run: bool,
    /// How many events would go, in every log.
    events: u64,
    /// How many expired events a legal hold keeps, in every log.
    held: u64,
    logs: Vec<DryLog>,
}

/// One log's part of a dry run.
#[derive(Debug, Serialize)]
struct DryLog {
    log_id: String,
    events: u64,
    ranges: Vec<SeqRange>,
    /// What would go, by the retention (class) each event was recorded with.
    by_retention: BTreeMap<String, u64>,
    /// What stays though expired, by legal hold id.
    held: BTreeMap<String, u64>,
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
        let dry = survey(db, now)
            .with_context(|| format!("cannot survey expired events in {}", db.name()))?;
        return print_dry(&dry, args.json);
    } else {
        clean_up(db, now).with_context(|| format!("cannot clean up {}", db.name()))?
    };
    print(&outcome, args.json)
}

/// What a cleanup at `now` would do in each log, read only.
fn survey(db: &Db, now: Timestamp) -> anyhow::Result<DryRun> {
    let mut dry = DryRun {
        dry_run: true,
        ..DryRun::default()
    };
    for log_id in db.logs_with_expired(now)? {
        let mut reader = db.open_log(&log_id)?;
        let survey = Plan::survey(reader.as_mut(), now)?;
        let (events, ranges) = match &survey.plan {
            Some(plan) => (plan.record().entries, plan.record().ranges.clone()),
            None => (0, Vec::new()),
        };
        dry.events += events;
        dry.held += survey.held.values().sum::<u64>();
        if events > 0 || !survey.held.is_empty() {
            dry.logs.push(DryLog {
                log_id: reader.log_id().to_string(),
                events,
                ranges,
                by_retention: survey.by_retention,
                held: survey.held,
            });
        }
    }
    Ok(dry)
}

fn print_dry(dry: &DryRun, json: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, dry)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "would delete {} expired event(s); {} expired event(s) kept by a legal hold",
        dry.events, dry.held
    )?;
    for log in &dry.logs {
        let name = if log.log_id.is_empty() {
            String::new()
        } else {
            format!("log {}: ", log.log_id)
        };
        let ranges: Vec<String> = log
            .ranges
            .iter()
            .map(|r| format!("{}..{}", r.start, r.end))
            .collect();
        let classes: Vec<String> = log
            .by_retention
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        writeln!(
            out,
            "{name}would remove seqs {} (by retention: {})",
            if ranges.is_empty() {
                "none".to_string()
            } else {
                ranges.join(", ")
            },
            if classes.is_empty() {
                "none".to_string()
            } else {
                classes.join(", ")
            },
        )?;
        for (hold, n) in &log.held {
            writeln!(out, "{name}legal hold {hold} keeps {n} expired event(s)")?;
        }
    }
    Ok(())
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
