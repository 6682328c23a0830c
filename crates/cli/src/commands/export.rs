//! `mcp-audit export`: every matching event, oldest first, as JSON lines, CSV, or one SIEM
//! record per line (CEF, LEEF, OCSF JSON; the same lines the syslog sink sends).
//!
//! Streams: the store hands events over one at a time, so an export of millions of events
//! needs no more memory than one. With `--output`, the file appears only once complete
//! (written beside it under a temporary name, then renamed), so a failed export never leaves a
//! half-written file that looks like a whole one.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcp_audit_server::csv_rows;
use mcp_audit_sinks::format::Format as Record;
use mcp_audit_store::{Filter, Read, StoreError};
use tempfile::NamedTempFile;

use crate::db::Db;
use crate::filter_args::FilterArgs;

/// Export events as JSON lines, CSV, or CEF/LEEF/OCSF records for a SIEM
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit export --format jsonl --output audit.jsonl
  mcp-audit export --format csv --since 30d --user alice > alice.csv
  mcp-audit export --format jsonl --session s-42 | gzip > s-42.jsonl.gz
  mcp-audit export --format cef --since 1d --output audit.cef
  mcp-audit export --format ocsf --kind tool_execution > api-activity.ocsf.jsonl")]
pub struct ExportArgs {
    /// jsonl (one event per line, the full JSON form), csv (a column per field of it; the
    /// personal payload, lineage and compliance events as JSON cells), or one SIEM record per
    /// line: cef (ArcSight CEF:0), leef (QRadar LEEF:2.0, tab-delimited) or ocsf (OCSF API
    /// Activity JSON, the payload under `unmapped`). CEF and LEEF carry the metadata only.
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
    Cef,
    Leef,
    Ocsf,
}

pub fn run(db: &Db, args: ExportArgs) -> anyhow::Result<()> {
    let mut store = db.open_read_only()?;
    let filter = args.filter.to_filter(db.log_id());
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
        Format::Cef | Format::Leef | Format::Ocsf => {
            let record = match format {
                Format::Cef => Record::Cef,
                Format::Leef => Record::Leef,
                _ => Record::Ocsf,
            };
            let mut out = out;
            let result = store.for_each(filter, &mut |event| {
                record
                    .render(&event)
                    .map_err(anyhow::Error::from)
                    .and_then(|line| Ok(writeln!(out, "{line}")?))
                    .map_err(&mut stop)?;
                progress.inc(1);
                Ok(())
            });
            (result, out)
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(csv_rows::header())?;
            let result = store.for_each(filter, &mut |event| {
                csv_rows::row(&event)
                    .map_err(anyhow::Error::from)
                    .and_then(|row| Ok(csv.write_record(row)?))
                    .map_err(&mut stop)?;
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
