//! `mcp-audit query`: find events, newest first, one page at a time.
//!
//! The table is for a person scanning the trail: which server, which operation, with what
//! arguments, by whom, how it ended, and an id `show` takes. On a terminal it is fitted to the
//! terminal's width by cutting the long free-text columns (arguments, result, operation,
//! server, caller); elsewhere (a pipe, a file) nothing is cut but the argument and result
//! excerpts, which are excerpts everywhere: `--jsonl` and `show` have the whole event. `COLUMNS`,
//! when set, is the width to fit to, terminal or not.

use std::io::{self, BufWriter, IsTerminal, Write};

use mcp_audit_core::Actor;
use mcp_audit_store::{Cursor, PageStart, Query, StoredEvent};
use serde::Serialize;

use crate::db::Db;
use crate::filter_args::FilterArgs;
use crate::render;
use crate::table::{Align, Table, sanitize, truncate};

/// Find events, newest first
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit query --user alice --since 1h
  mcp-audit query --tool search --outcome tool_error --limit 20
  mcp-audit query --session s-42 --jsonl | jq .operation
  mcp-audit query --review --cursor <cursor printed by the previous page>
  mcp-audit query --columns seq,time,kind,operation,caller,session
  mcp-audit query --since 1h --time received
  mcp-audit query --skewed
  mcp-audit show 4                       (the seq of a row: its arguments and result in full)

Columns (--columns): seq, time, kind, action, server, operation, args, result, caller, outcome,
duration, session, correlation, log. The default leaves out kind, action, result, session,
correlation and log. `seq` is what `show` takes: on PostgreSQL, where several logs share the
database, it reads LOG:SEQ. `caller` is the user id, or `anonymous` (with how the call was
authenticated, when it says). On a terminal the table is cut to its width (COLUMNS, when set,
is the width everywhere); piped, it is printed whole, with excerpts of arguments and results.

Each event has the time it states (`timestamp`, given by whoever recorded it) and the time the
recorder received it (`received_at`, stamped by mcp-audit and hashed). The `time` column shows
the stated time, marked `!` when it is more than 5 minutes from the receive time.")]
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
    /// The table's columns, in order, separated by commas (listed below)
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_column,
        default_value = "seq,time,server,operation,args,caller,outcome,duration",
        conflicts_with_all = ["json", "jsonl"],
        value_name = "COLUMN,..."
    )]
    columns: Vec<Column>,
}

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Seq,
    Time,
    Kind,
    Action,
    Server,
    Operation,
    Args,
    Result,
    Caller,
    Outcome,
    Duration,
    Session,
    Correlation,
    Log,
}

impl Column {
    const ALL: [Column; 14] = [
        Column::Seq,
        Column::Time,
        Column::Kind,
        Column::Action,
        Column::Server,
        Column::Operation,
        Column::Args,
        Column::Result,
        Column::Caller,
        Column::Outcome,
        Column::Duration,
        Column::Session,
        Column::Correlation,
        Column::Log,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Seq => "seq",
            Column::Time => "time",
            Column::Kind => "kind",
            Column::Action => "action",
            Column::Server => "server",
            Column::Operation => "operation",
            Column::Args => "args",
            Column::Result => "result",
            Column::Caller => "caller",
            Column::Outcome => "outcome",
            Column::Duration => "duration",
            Column::Session => "session",
            Column::Correlation => "correlation",
            Column::Log => "log",
        }
    }

    /// How narrow a fitted table may cut the column; `None`: never cut.
    fn shrinks_to(self) -> Option<usize> {
        match self {
            Column::Args | Column::Result => Some(12),
            Column::Operation | Column::Server | Column::Caller => Some(10),
            Column::Session | Column::Correlation | Column::Log => Some(8),
            _ => None,
        }
    }
}

/// A `--columns` entry: one of [`Column::ALL`], by name.
fn parse_column(text: &str) -> Result<Column, String> {
    let text = text.trim();
    Column::ALL
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            format!(
                "unknown column `{text}`; the columns are {}",
                names.join(", ")
            )
        })
}

/// How much of the arguments or result a cell shows (display columns): enough to tell calls
/// apart; `show` has the rest.
const EXCERPT: usize = 60;

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
        filter: args.filter.to_filter(db.log_id()),
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
        let width = table_width();
        table(&page.events, &args.columns, db.is_postgres()).write_fitted(&mut out, width)?;
        // The table first, then the hints (on stderr, so that they never mix with the data):
        // a person reads the rows before wanting the next page.
        out.flush()?;
        if page.events.is_empty() {
            writeln!(io::stderr(), "no matching events")?;
        }
        if page.events.iter().any(|e| e.event.is_skewed()) {
            writeln!(
                io::stderr(),
                "!: the time the event states is more than {:#} from when it was received (see `show`)",
                mcp_audit_core::MAX_CLOCK_SKEW
            )?;
        }
        if let Some(cursor) = next_cursor {
            writeln!(io::stderr(), "next page: --cursor {cursor}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The width to fit the table to: `COLUMNS` when set, else the terminal's when stdout is one,
/// else none (printed whole, for a pipe or a file).
fn table_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(columns);
    }
    if !io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| usize::from(w.0))
}

fn table(events: &[StoredEvent], columns: &[Column], many_logs: bool) -> Table {
    let header: Vec<&str> = columns
        .iter()
        .map(|c| match c {
            Column::Seq if many_logs => "log:seq",
            c => c.name(),
        })
        .collect();
    let mut table = Table::new(&header);
    for (i, column) in columns.iter().enumerate() {
        if matches!(column, Column::Seq | Column::Duration) && !many_logs {
            table = table.align(i, Align::Right);
        }
        if let Some(min) = column.shrinks_to() {
            table = table.shrinkable(i, min);
        }
    }
    for stored in events {
        table.push(columns.iter().map(|c| cell(stored, *c, many_logs)));
    }
    table
}

/// One cell of the table (sanitised by the table).
fn cell(stored: &StoredEvent, column: Column, many_logs: bool) -> String {
    let event = &stored.event;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    match column {
        Column::Seq if many_logs => format!("{}:{}", stored.log_id, stored.seq),
        Column::Seq => stored.seq.to_string(),
        // The stated time, marked when it is far from the receive time.
        Column::Time if event.is_skewed() => format!("{} !", render::time(event.timestamp)),
        Column::Time => render::time(event.timestamp),
        Column::Kind => event.kind.to_string(),
        Column::Action => event.action.to_string(),
        Column::Server => text(&event.target.server_name),
        Column::Operation => event.operation.clone(),
        Column::Args => excerpt(event.payload.input.as_ref()),
        Column::Result => match (&event.payload.output, &event.payload.error_message) {
            (Some(output), _) => excerpt(Some(output)),
            (None, Some(error)) => truncate(&sanitize(error), EXCERPT).into_owned(),
            (None, None) => String::new(),
        },
        Column::Caller => caller(&event.actor),
        Column::Outcome => event.outcome.to_string(),
        Column::Duration => event.duration_us.map(render::micros).unwrap_or_default(),
        Column::Session => text(&event.session_id),
        Column::Correlation => text(&event.correlation_id),
        Column::Log => stored.log_id.clone(),
    }
}

/// Who called: the user id, else `anonymous`, with how the call was authenticated when the
/// record says (`anonymous (invalid_jwt)`), so that neither reads as a blank.
fn caller(actor: &Actor) -> String {
    match (&actor.user_id, &actor.auth_method) {
        (Some(user), _) => user.clone(),
        // The HTTP proxy labels a caller that presented nothing `anonymous` itself.
        (None, Some(method)) if !method.is_empty() && method != "anonymous" => {
            format!("anonymous ({method})")
        }
        (None, _) => "anonymous".to_string(),
    }
}

/// Compact JSON of `value`, cut to [`EXCERPT`] display columns (`{}` and absent: empty).
fn excerpt(value: Option<&serde_json::Value>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    if value.as_object().is_some_and(|o| o.is_empty()) || value.is_null() {
        return String::new();
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    // Sanitised before cutting, so that an escape is never cut in half into a raw character.
    truncate(&sanitize(&json), EXCERPT).into_owned()
}
