//! `mcp-audit log`: record one event given as JSON, or many as JSON lines on stdin.
//!
//! A batch keeps going past bad lines: every good line is recorded, every bad one is reported
//! as `line N: <problem>`, and the command fails at the end, so that one typo never costs the
//! records around it and never passes unnoticed.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use mcp_audit_core::{AuditLevel, Policy, Retention};
use mcp_audit_store::{Durability, Receipt, RecordError, Recorder, RecorderConfig, Store};

use crate::db::Db;
use crate::event_input::parse_event;
use crate::id_guard::IdGuard;

/// Record audit events
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit log '{\"kind\":\"tool_execution\",\"action\":\"EXECUTE\",\"operation\":\"search\"}'
  mcp-audit log --file event.json
  mcp-audit log - < events.jsonl          (one event per line)
  mcp-audit log --retention 30d - < events.jsonl

The JSON form of an event is described by `mcp-audit schema`.")]
pub struct LogArgs {
    /// The event as JSON, or `-` to read JSON lines (one event each) from stdin
    #[arg(
        value_name = "EVENT",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    event: Option<String>,
    /// Read one event (JSON, may span lines) from this file
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// What to record: all, writes (writes and executions only), off
    #[arg(long, default_value_t = AuditLevel::All, value_name = "LEVEL")]
    level: AuditLevel,
    /// Retention of events that name none: a duration (30d, 6mo, 7y), `forever`, or a policy
    /// name (short, standard, extended)
    #[arg(long, value_name = "DURATION|NAME")]
    retention: Option<Retention>,
}

pub fn run(db: &Db, args: LogArgs) -> anyhow::Result<()> {
    let policy = Policy {
        level: args.level,
        default_retention: args.retention.clone(),
        ..Policy::default()
    };
    match (&args.event, &args.file) {
        (Some(dash), _) if dash == "-" => log_lines(db, policy, io::stdin().lock()),
        (Some(json), _) => log_one(db, policy, json.as_bytes()),
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            log_one(db, policy, &bytes)
        }
        (None, None) => bail!("give an event as JSON, `-` for JSON lines on stdin, or --file"),
    }
}

/// One event, recorded `sync`: when this returns Ok, the record is durable.
fn log_one(db: &Db, policy: Policy, bytes: &[u8]) -> anyhow::Result<()> {
    let input = parse_event(bytes)?;
    let (store, mut ids) = open(db)?;
    if input.id_given {
        ids.claim(input.event.id, 1)?;
    }
    let recorder = start(store, policy, Durability::Sync)?;
    let receipt = recorder.record(input.event);
    // Shut down either way; the record's own error is the precise one, so it goes first.
    let shutdown = recorder.shutdown();
    let receipt = receipt.context("cannot record the event")?;
    shutdown.context("cannot record the event")?;
    let mut out = io::stdout().lock();
    match receipt {
        Receipt::Durable { id, seq } => writeln!(out, "recorded {id} (seq {seq})")?,
        Receipt::Queued { id } => writeln!(out, "recorded {id}")?,
        Receipt::Skipped => writeln!(out, "skipped: the audit level leaves this event out")?,
    }
    Ok(())
}

/// JSON lines, recorded in `batch` mode and flushed at the end: the writer keeps line order
/// (seqs follow the input) and commits many lines per fsync, and the final flush makes the
/// exit status mean durable, as `sync` would, without one fsync per line.
fn log_lines(db: &Db, policy: Policy, input: impl BufRead) -> anyhow::Result<()> {
    let (store, ids) = open(db)?;
    let recorder = start(store, policy, Durability::Batch)?;
    let mut tally = Tally::default();
    let fed = feed(&recorder, ids, input, &mut tally);
    // Always shut down, even after a read error: it commits what was queued and reports what
    // could not be written, instead of leaving both to a thread the process exit would kill.
    let written = recorder.shutdown();
    match (fed, written) {
        (Ok(()), Ok(_)) => {}
        (Ok(()), Err(lost)) => {
            return Err(lost).context("cannot record the events read from stdin");
        }
        (Err(stop), Err(lost)) => {
            return Err(lost).context(format!(
                "cannot record the events read from stdin ({stop:#})"
            ));
        }
        (Err(stop), Ok(_)) => return Err(stop),
    }
    let mut out = io::stdout().lock();
    if tally.skipped > 0 {
        writeln!(
            out,
            "recorded {} event(s); {} left out by the audit level",
            tally.queued, tally.skipped
        )?;
    } else {
        writeln!(out, "recorded {} event(s)", tally.queued)?;
    }
    if tally.rejected > 0 {
        bail!("{} of {} lines rejected", tally.rejected, tally.lines);
    }
    Ok(())
}

/// What became of the input lines.
#[derive(Debug, Default)]
struct Tally {
    /// Non-blank lines read.
    lines: u64,
    queued: u64,
    /// Left out by the audit level.
    skipped: u64,
    /// Refused, each reported on stderr.
    rejected: u64,
}

/// Reads lines and records them until the input ends. Stops early when the store fails a
/// batch (locked, read-only, disk full): every later line would fail the same way, each after
/// waiting out the lock timeout.
fn feed(
    recorder: &Recorder,
    mut ids: IdGuard,
    mut input: impl BufRead,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut stderr = io::stderr().lock();
    let mut buf = Vec::new();
    for line_no in 1u64.. {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read line {line_no} of stdin"))?;
        if n == 0 {
            break;
        }
        let line = trim_line_end(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        tally.lines += 1;
        let recorded = parse_event(line).and_then(|input| {
            if input.id_given {
                ids.claim(input.event.id, line_no)?;
            }
            match recorder.record(input.event) {
                Err(RecordError::Invalid(problem)) => Err(problem.into()),
                other => Ok(other),
            }
        });
        match recorded {
            Ok(Ok(Receipt::Skipped)) => tally.skipped += 1,
            Ok(Ok(_)) => tally.queued += 1,
            Ok(Err(fatal)) => {
                return Err(fatal).context(format!("stopped at line {line_no}"));
            }
            Err(problem) => {
                tally.rejected += 1;
                writeln!(stderr, "line {line_no}: {problem:#}")?;
            }
        }
        if recorder.stats().failed > 0 {
            bail!("stopped reading at line {line_no}");
        }
    }
    Ok(())
}

/// The store to record into, and a guard over the ids the input gives.
fn open(db: &Db) -> anyhow::Result<(Box<dyn Store>, IdGuard)> {
    // Never spooled: the exit status says the records are in the database itself.
    let store = db.open_writable(Durability::Sync)?;
    // Opened second: the writable open creates and migrates the database.
    let ids = IdGuard::new(db.open_read_only()?);
    Ok((store, ids))
}

fn start(
    store: Box<dyn Store>,
    policy: Policy,
    durability: Durability,
) -> anyhow::Result<Recorder> {
    let config = RecorderConfig {
        durability,
        policy,
        // Two full batches waiting keep the writer busy; more only holds memory (a queued
        // sealed event is a few kilobytes, and the library default queue is 65,536 deep).
        queue_capacity: 2 * RecorderConfig::default().max_batch,
        ..RecorderConfig::default()
    };
    Ok(Recorder::start(store, config)?)
}

/// The line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
