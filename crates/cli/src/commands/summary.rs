//! `mcp-audit summary`: counts over a session, a user, or a time window.

use std::io::{self, Write};

use jiff::Timestamp;
use mcp_audit_store::{Summary, SummaryScope, TimeBasis};

use crate::db::Db;
use crate::render;
use crate::table::Table;
use mcp_audit_server::time::parse_time;

/// Count what happened in a session, for a user, or in a time window
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit summary --session s-42
  mcp-audit summary --user alice --json
  mcp-audit summary --since 7d
  mcp-audit summary                       (everything)")]
pub struct SummaryArgs {
    /// Summarise this session
    #[arg(long, conflicts_with_all = ["user", "since", "until"], value_name = "SESSION")]
    session: Option<String>,
    /// Summarise this user's events
    #[arg(long, conflicts_with_all = ["since", "until"], value_name = "USER")]
    user: Option<String>,
    /// Window start: RFC 3339, a date, or a span ago (1h, 7d)
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    since: Option<Timestamp>,
    /// Window end (exclusive)
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    until: Option<Timestamp>,
    /// Which time the window bounds: `stated`, the time each event gives for itself, or
    /// `received`, when the recorder received it (first and last activity stay stated times)
    #[arg(long, value_name = "stated|received", default_value = "stated", conflicts_with_all = ["session", "user"])]
    time: TimeBasis,
    /// Print the counts as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(db: &Db, args: SummaryArgs) -> anyhow::Result<()> {
    let scope = match (args.session, args.user) {
        (Some(session), _) => SummaryScope::Session(session),
        (None, Some(user)) => SummaryScope::User(user),
        (None, None) => SummaryScope::Window {
            since: args.since,
            until: args.until,
            time: args.time,
        },
    };
    let summary = db.open_read_only()?.summary_of_log(&scope, db.log_id())?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", describe(&scope))?;
        table(&summary).write(&mut out)?;
    }
    Ok(())
}

fn describe(scope: &SummaryScope) -> String {
    let bound = |ts: Option<Timestamp>| ts.map(render::time).unwrap_or_else(|| "…".to_string());
    match scope {
        SummaryScope::Session(session) => format!("session {session}"),
        SummaryScope::User(user) => format!("user {user}"),
        SummaryScope::Window {
            since: None,
            until: None,
            ..
        } => "all events".to_string(),
        SummaryScope::Window {
            since,
            until,
            time: TimeBasis::Stated,
        } => {
            format!("from {} until {}", bound(*since), bound(*until))
        }
        SummaryScope::Window {
            since,
            until,
            time: TimeBasis::Received,
        } => {
            format!("received from {} until {}", bound(*since), bound(*until))
        }
    }
}

fn table(summary: &Summary) -> Table {
    let mut table = Table::headless(2);
    let counts = [
        ("total operations", summary.total_operations),
        ("tool executions", summary.tool_executions),
        ("resource accesses", summary.resource_accesses),
        ("context operations", summary.context_operations),
        ("prompt executions", summary.prompt_executions),
        ("admin actions", summary.admin_actions),
        ("requiring review", summary.requires_review),
        ("distinct users", summary.distinct_users),
    ];
    for (label, n) in counts {
        table.push([label.to_string(), n.to_string()]);
    }
    for (kind, n) in &summary.by_kind {
        table.push([format!("  kind {kind}"), n.to_string()]);
    }
    for (outcome, n) in &summary.by_outcome {
        table.push([format!("  outcome {outcome}"), n.to_string()]);
    }
    let when = |ts: Option<Timestamp>| ts.map(render::time).unwrap_or_else(|| "-".to_string());
    table.push(["first activity".to_string(), when(summary.first_activity)]);
    table.push(["last activity".to_string(), when(summary.last_activity)]);
    table
}
