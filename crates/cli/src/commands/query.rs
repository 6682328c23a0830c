//! `mcp-audit query`: find events, newest first, one page at a time.

use std::io::{self, BufWriter, Write};

use mcp_audit_store::{Cursor, PageStart, Query, StoredEvent};
use serde::Serialize;

use crate::db::Db;
use crate::filter_args::FilterArgs;
use crate::render;
use crate::table::{Align, Table};

/// Find events, newest first
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit query --user alice --since 1h
  mcp-audit query --tool search --outcome tool_error --limit 20
  mcp-audit query --session s-42 --jsonl | jq .operation
  mcp-audit query --review --cursor <cursor printed by the previous page>")]
pub struct QueryArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// At most this many events (1 to 10000)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Skip this many matching events (a cursor is stable while events arrive; this is not)
    #[arg(long, conflicts_with = "cursor", value_name = "N")]
    offset: Option<u64>,
    /// Continue after the page that printed this cursor
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
    /// One JSON object: {"events": [...], "next_cursor": ...}
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// One event per line, as JSON
    #[arg(long)]
    jsonl: bool,
}

/// The `--json` document: the page and where the next one starts.
#[derive(Serialize)]
struct JsonPage<'a> {
    events: &'a [StoredEvent],
    next_cursor: Option<&'a str>,
}

pub fn run(db: &Db, args: QueryArgs) -> anyhow::Result<()> {
    let start = match (&args.cursor, args.offset) {
        (Some(cursor), _) => PageStart::After(Cursor(cursor.clone())),
        (None, Some(offset)) => PageStart::Offset(offset),
        (None, None) => PageStart::Newest,
    };
    let query = Query {
        filter: args.filter.to_filter(),
        start,
        limit: args.limit,
    };
    let page = db.open_read_only()?.query(&query)?;
    let next_cursor = page.next.as_ref().map(|c| c.0.as_str());
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        let doc = JsonPage {
            events: &page.events,
            next_cursor,
        };
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
    } else if args.jsonl {
        for event in &page.events {
            serde_json::to_writer(&mut out, event)?;
            writeln!(out)?;
        }
    } else {
        table(&page.events).write(&mut out)?;
        if page.events.is_empty() {
            writeln!(io::stderr(), "no matching events")?;
        }
        if let Some(cursor) = next_cursor {
            writeln!(io::stderr(), "next page: --cursor {cursor}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn table(events: &[StoredEvent]) -> Table {
    let mut table = Table::new(&[
        "time",
        "seq",
        "kind",
        "action",
        "operation",
        "user",
        "outcome",
        "duration",
    ])
    .align(1, Align::Right)
    .align(7, Align::Right);
    for stored in events {
        let event = &stored.event;
        table.push([
            render::time(event.timestamp),
            stored.seq.to_string(),
            event.kind.to_string(),
            event.action.to_string(),
            event.operation.clone(),
            event.actor.user_id.clone().unwrap_or_default(),
            event.outcome.to_string(),
            event.duration_us.map(render::micros).unwrap_or_default(),
        ]);
    }
    table
}
