//! `mcp-audit stats`: per tool, how often it was called, how often it failed, how long it took.

use std::io::{self, Write};

use mcp_audit_store::ToolStats;

use crate::db::Db;
use crate::filter_args::FilterArgs;
use crate::render;
use crate::table::{Align, Table};

/// Per-tool statistics: calls, errors, error rate, p50 and p95 latency
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit stats
  mcp-audit stats --since 24h --server github
  mcp-audit stats --user alice --json")]
pub struct StatsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print the statistics as a JSON array
    #[arg(long)]
    json: bool,
}

pub fn run(db: &Db, args: StatsArgs) -> anyhow::Result<()> {
    let stats = db
        .open_read_only()?
        .tool_stats(&args.filter.to_filter(db.log_id()))?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &stats)?;
        writeln!(out)?;
    } else {
        table(&stats).write(&mut out)?;
        if stats.is_empty() {
            writeln!(io::stderr(), "no tool executions match")?;
        }
    }
    Ok(())
}

fn table(stats: &[ToolStats]) -> Table {
    let mut table = Table::new(&["tool", "calls", "errors", "error rate", "p50", "p95"]);
    for column in 1..=5 {
        table = table.align(column, Align::Right);
    }
    let latency = |us: Option<u64>| us.map(render::micros).unwrap_or_else(|| "-".to_string());
    for tool in stats {
        table.push([
            tool.tool.clone(),
            tool.calls.to_string(),
            tool.errors.to_string(),
            render::percent(tool.error_rate),
            latency(tool.p50_us),
            latency(tool.p95_us),
        ]);
    }
    table
}
