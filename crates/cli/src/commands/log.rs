//! `mcp-audit log`: record one event given as JSON, or many as JSON lines on stdin.
//!
//! A batch is all or nothing: every line is read and checked first, every bad one is reported
//! as `line N: <problem>`, and if any is bad nothing is recorded and the command fails; the
//! good ones are then written in one transaction, so that a failed write leaves none of them
//! either. A caller that retries a refused batch after fixing a line never records a line
//! twice, and a reader never sees half a batch.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use mcp_audit_core::Policy;
use mcp_audit_core::redact::Redactor;
use mcp_audit_store::{Durability, Receipt, RecordError, Recorder, RecorderConfig, Store};

use mcp_audit_core::input::parse_event;
use mcp_audit_store::intake::{self, IdGuard};

use crate::db::Db;

/// Record audit events
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit log '{\"kind\":\"tool_execution\",\"action\":\"EXECUTE\",\"operation\":\"search\"}'
  mcp-audit log --file event.json
  mcp-audit log - < events.jsonl          (one event per line)
  mcp-audit log --retention 30d - < events.jsonl

With `-`, the input is one batch, all or nothing: every bad line is reported as `line N: ...`
and then nothing is recorded; otherwise every event is written in one transaction. The batch
is held in memory until then: split inputs of millions of lines into several runs.

The JSON form of an event is described by `mcp-audit schema`.

`log` records what it is given, the log's own records too (a `CREATE console_token` event is a
token of the console): it is for those with write access to the database, which is admin
already. Programs trusted less post to `serve`'s POST /api/v1/events with a writer token, which
refuses the log's own records.")]
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
    #[command(flatten)]
    record: crate::record_args::RecordArgs,
}

pub fn run(db: &Db, args: LogArgs) -> anyhow::Result<()> {
    let policy = args.record.load()?;
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
fn log_one(db: &Db, policy: (Policy, Arc<Redactor>), bytes: &[u8]) -> anyhow::Result<()> {
    let input = parse_event(bytes)?;
    let (store, mut reader) = open(db)?;
    if input.id_given {
        IdGuard::new(reader.as_mut()).claim(input.event.id, 1)?;
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

/// JSON lines, all or nothing: every line is parsed and checked before anything is written,
/// and the events go to the writer as one unit, committed in one transaction (one fsync) that
/// keeps line order in the seqs.
fn log_lines(db: &Db, policy: (Policy, Arc<Redactor>), input: impl BufRead) -> anyhow::Result<()> {
    let (store, mut reader) = open(db)?;
    let read = intake::read_batch(&mut IdGuard::new(reader.as_mut()), &policy.0, input).map_err(
        |(line_no, e)| {
            anyhow::Error::new(e).context(format!(
                "cannot read line {line_no} of stdin; nothing recorded"
            ))
        },
    )?;
    let mut stderr = io::stderr().lock();
    for (line_no, problem) in &read.problems {
        writeln!(stderr, "line {line_no}: {problem}")?;
    }
    let lines = read.lines();
    if !read.problems.is_empty() {
        bail!(
            "{} of {lines} lines rejected; nothing recorded (a batch is all or nothing)",
            read.problems.len()
        );
    }
    let recorder = start(store, policy, Durability::Sync)?;
    let (line_nos, events): (Vec<u64>, Vec<_>) = read.events.into_iter().unzip();
    let recorded = recorder.record_all(events);
    let shutdown = recorder.shutdown();
    let receipts = match recorded {
        Ok(receipts) => receipts,
        Err(RecordError::InvalidEvents(invalid)) => {
            for (index, problem) in &invalid {
                writeln!(stderr, "line {}: {problem}", line_nos[*index])?;
            }
            bail!(
                "{} of {lines} lines rejected; nothing recorded (a batch is all or nothing)",
                invalid.len()
            );
        }
        Err(error) => {
            return Err(error)
                .context("cannot record the events read from stdin; none was recorded");
        }
    };
    shutdown.context("cannot record the events read from stdin")?;
    let skipped = receipts
        .iter()
        .filter(|r| matches!(r, Receipt::Skipped))
        .count();
    let recorded = receipts.len() - skipped;
    let mut out = io::stdout().lock();
    if skipped > 0 {
        writeln!(
            out,
            "recorded {recorded} event(s); {skipped} left out by the audit level"
        )?;
    } else {
        writeln!(out, "recorded {recorded} event(s)")?;
    }
    Ok(())
}

/// The store to record into, and a reader to look the ids the input gives up in.
fn open(db: &Db) -> anyhow::Result<(Box<dyn Store>, Box<dyn Store>)> {
    // Never spooled: the exit status says the records are in the database itself.
    let store = db.open_writable(Durability::Sync)?;
    // Opened second: the writable open creates and migrates the database.
    let reader = db.open_read_only()?;
    Ok((store, reader))
}

fn start(
    store: Box<dyn Store>,
    (policy, redaction): (Policy, Arc<Redactor>),
    durability: Durability,
) -> anyhow::Result<Recorder> {
    let config = RecorderConfig {
        durability,
        policy,
        redaction,
        ..RecorderConfig::default()
    };
    Ok(Recorder::start(store, config)?)
}
