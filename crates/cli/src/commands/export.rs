//! `mcp-audit export`: every matching event, oldest first, as JSON lines or CSV.
//!
//! Streams: the store hands events over one at a time, so an export of millions of events
//! needs no more memory than one. With `--output`, the file appears only once complete
//! (written beside it under a temporary name, then renamed), so a failed export never leaves a
//! half-written file that looks like a whole one.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcp_audit_store::{Filter, Read, StoreError, StoredEvent};
use serde::Serialize;
use tempfile::NamedTempFile;

use crate::db::Db;
use crate::filter_args::FilterArgs;

/// Export events as JSON lines or CSV
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit export --format jsonl --output audit.jsonl
  mcp-audit export --format csv --since 30d --user alice > alice.csv
  mcp-audit export --format jsonl --session s-42 | gzip > s-42.jsonl.gz")]
pub struct ExportArgs {
    /// jsonl (one event per line, the full JSON form) or csv (the main columns, payload as JSON)
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

pub fn run(db: &Db, args: ExportArgs) -> anyhow::Result<()> {
    let mut store = db.open_read_only()?;
    let filter = args.filter.to_filter();
    let progress = progress_bar(store.as_mut(), &filter)?;
    let exported = match &args.output {
        None => {
            let out = BufWriter::new(io::stdout().lock());
            let (n, out) = write_events(store.as_mut(), &filter, args.format, out, &progress)?;
            // Flushes; an error here (a full disk, a closed pipe) must not pass as success.
            out.into_inner().map_err(|e| e.into_error())?.flush()?;
            n
        }
        Some(path) => export_to_file(store.as_mut(), &filter, args.format, path, &progress)
            .with_context(|| format!("cannot export to {}", path.display()))?,
    };
    progress.finish_and_clear();
    let target = args
        .output
        .as_ref()
        .map(|p| format!(" to {}", p.display()))
        .unwrap_or_default();
    writeln!(io::stderr(), "exported {exported} event(s){target}")?;
    Ok(())
}

/// A bar on a terminal, counting against `count()`; hidden otherwise (pipes, CI logs).
fn progress_bar(store: &mut dyn Read, filter: &Filter) -> anyhow::Result<ProgressBar> {
    if !io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let total = store.count(filter)?;
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    Ok(bar)
}

fn export_to_file(
    store: &mut dyn Read,
    filter: &Filter,
    format: Format,
    path: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = NamedTempFile::new_in(dir).context("cannot create a temporary file beside it")?;
    let out = BufWriter::new(temp);
    let (n, out) = write_events(store, filter, format, out, progress)?;
    let temp = out.into_inner().map_err(|e| e.into_error())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(n)
}

/// Streams every matching event into `out` in `format`; gives `out` back for the caller to
/// finish (flush, sync, rename).
fn write_events<W: Write>(
    store: &mut dyn Read,
    filter: &Filter,
    format: Format,
    out: W,
    progress: &ProgressBar,
) -> anyhow::Result<(u64, W)> {
    // The sink can only return a StoreError; the real I/O error is kept here and reported
    // in its place.
    let mut io_error: Option<anyhow::Error> = None;
    let mut stop = |e: anyhow::Error| {
        io_error = Some(e);
        StoreError::Database("export interrupted".to_string())
    };
    let (result, out) = match format {
        Format::Jsonl => {
            let mut out = out;
            let result = store.for_each(filter, &mut |event| {
                serde_json::to_writer(&mut out, &event)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| out.write_all(b"\n").map_err(anyhow::Error::from))
                    .map_err(&mut stop)?;
                progress.inc(1);
                Ok(())
            });
            (result, out)
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            let result = store.for_each(filter, &mut |event| {
                csv.serialize(CsvRow::from(&event))
                    .map_err(|e| stop(e.into()))?;
                progress.inc(1);
                Ok(())
            });
            let out = csv.into_inner().map_err(|e| e.into_error())?;
            (result, out)
        }
    };
    match (result, io_error) {
        (_, Some(error)) => Err(error),
        (Err(error), None) => Err(error.into()),
        (Ok(n), None) => Ok((n, out)),
    }
}

/// One CSV row: the columns people sort and filter on, and the personal payload as JSON.
#[derive(Serialize)]
struct CsvRow<'a> {
    seq: u64,
    id: String,
    timestamp: String,
    kind: &'a str,
    action: &'a str,
    operation: &'a str,
    outcome: &'a str,
    duration_us: Option<u64>,
    error_code: Option<i64>,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    correlation_id: Option<&'a str>,
    server_name: Option<&'a str>,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    classification: Option<&'a str>,
    requires_review: Option<bool>,
    data_subject_id: Option<&'a str>,
    expires_at: Option<String>,
    redacted: bool,
    leaf_hash: String,
    payload: String,
}

impl<'a> From<&'a StoredEvent> for CsvRow<'a> {
    fn from(stored: &'a StoredEvent) -> Self {
        let event = &stored.event;
        CsvRow {
            seq: stored.seq,
            id: event.id.to_string(),
            timestamp: event.timestamp.to_string(),
            kind: event.kind.as_str(),
            action: event.action.as_str(),
            operation: &event.operation,
            outcome: event.outcome.as_str(),
            duration_us: event.duration_us,
            error_code: event.error_code,
            user_id: event.actor.user_id.as_deref(),
            session_id: event.session_id.as_deref(),
            correlation_id: event.correlation_id.as_deref(),
            server_name: event.target.server_name.as_deref(),
            resource_type: event.target.resource_type.as_deref(),
            resource_id: event.target.resource_id.as_deref(),
            classification: event.compliance.classification.map(|c| c.as_str()),
            requires_review: event.compliance.requires_review,
            data_subject_id: event.compliance.data_subject_id.as_deref(),
            expires_at: event.compliance.expires_at.map(|t| t.to_string()),
            redacted: stored.redacted,
            leaf_hash: stored.leaf_hash.to_string(),
            payload: if event.payload.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&event.payload).unwrap_or_default()
            },
        }
    }
}
