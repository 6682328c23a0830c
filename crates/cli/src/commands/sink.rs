//! `sink status`: where each sink stands in each log (cursor, lag, last error, dead letters),
//! read from the cursors the sinks keep in the database.

use std::io::Write;
use std::path::PathBuf;

use mcp_audit_sinks::status::status;

use crate::db::Db;
use crate::table::{Align, Table};

/// The sinks that follow the log
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit sink status
  mcp-audit sink status --json | jq '.dead_letters'

Sinks run with `mcp-audit follow --sink FILE`, or inside proxy and serve (--sink FILE).")]
pub struct SinkArgs {
    #[command(subcommand)]
    pub command: SinkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SinkCommand {
    Status(StatusArgs),
}

/// Where each sink stands: cursor, lag in records and seconds, last error, dead letters
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit sink status
  mcp-audit sink status --sink sinks.toml --json

LAG is how many records of the log the sink has not delivered yet, LAG_S how old the oldest
of them is. For a witness sink, CURSOR is the size of the newest checkpoint its target has
(co-signed, appended or acknowledged) and LAST_ERROR its last failure (a refusal: a fork). DEAD counts the records the sink gave up on after max_tries refusals; --json
lists them (log, seq, event id, tries, last error).")]
pub struct StatusArgs {
    /// Only the sinks of this configuration file
    #[arg(long, value_name = "FILE")]
    pub sink: Option<PathBuf>,
    /// JSON: {"sinks": [...], "dead_letters": [...]}
    #[arg(long)]
    pub json: bool,
}

pub fn run(db: &Db, args: SinkArgs) -> anyhow::Result<()> {
    match args.command {
        SinkCommand::Status(args) => run_status(db, args),
    }
}

fn run_status(db: &Db, args: StatusArgs) -> anyhow::Result<()> {
    let names = match &args.sink {
        Some(path) => Some(
            mcp_audit_sinks::config::parse(
                path,
                &std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read the sinks configuration {}: {e}",
                        path.display()
                    )
                })?,
            )?
            .into_iter()
            .map(|s| s.spec.name)
            .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let mut state = db.open_follower()?;
    let rows = status(&mut *state, names.as_deref())?;
    let letters: Vec<_> = state
        .dead_letters(None)?
        .into_iter()
        .filter(|l| names.as_ref().is_none_or(|n| n.contains(&l.sink)))
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"sinks": rows, "dead_letters": letters}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no sink has followed this database yet")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "SINK",
        "LOG",
        "CURSOR",
        "SIZE",
        "LAG",
        "LAG_S",
        "TRIES",
        "DEAD",
        "LAST_ERROR",
    ]);
    for column in 2..8 {
        table = table.align(column, Align::Right);
    }
    table = table.shrinkable(8, 20);
    for row in &rows {
        table.push([
            row.sink.clone(),
            row.log_id.clone(),
            row.cursor.to_string(),
            row.size.to_string(),
            row.lag_records.to_string(),
            row.lag_seconds.to_string(),
            row.tries.to_string(),
            row.dead_letters.to_string(),
            row.last_error.clone().unwrap_or_default(),
        ]);
    }
    table.write_fitted(
        &mut out,
        terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0)),
    )?;
    Ok(())
}
