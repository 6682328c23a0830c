//! `mcp-audit report`: a compliance report (GDPR, CCPA, processing activities, privacy
//! impact assessment) over a window, as HTML, JSON or CSV.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use jiff::Timestamp;
use mcp_audit_server::compliance::{
    self, CheckpointInfo, Format, LogIntegrity, ReportKind, ReportOptions, VerifyStatus,
};
use mcp_audit_server::time::parse_time;
use mcp_audit_store::integrity;

use super::integrity::read_verifier;
use crate::db::Db;

/// Write a compliance report: gdpr, ccpa, activity (processing activities) or pia (privacy impact assessment)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit report gdpr --since 2026-11-01 --until 2026-12-01 > gdpr-november.html
  mcp-audit report pia --format json
  mcp-audit report activity --format csv --output activity.csv
  mcp-audit report ccpa --verify --key audit.key.pub")]
pub struct ReportArgs {
    /// Which report: gdpr, ccpa, activity or pia
    #[arg(value_parser = parse_kind, value_name = "REPORT")]
    report: ReportKind,
    /// Window start: RFC 3339, a date, or a span ago (1h, 7d) [default: the first event]
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    since: Option<Timestamp>,
    /// Window end (exclusive) [default: now]
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    until: Option<Timestamp>,
    /// html (one file that prints), json or csv (one row per figure)
    #[arg(long, value_parser = parse_format, default_value = "html", value_name = "FORMAT")]
    format: Format,
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Count events expiring within this many days as due
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    due_within: u16,
    /// Run `verify` over every log and put its result in the report (reads the whole log)
    #[arg(long)]
    verify: bool,
    /// With --verify: the verifier key (its text, or a file), so that signatures are checked
    #[arg(long, requires = "verify", value_name = "KEY")]
    key: Option<String>,
}

fn parse_kind(text: &str) -> Result<ReportKind, String> {
    text.parse()
        .map_err(|e: compliance::ReportError| e.to_string())
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
        .map_err(|e: compliance::ReportError| e.to_string())
}

pub fn run(db: &Db, args: ReportArgs) -> Result<()> {
    let now = Timestamp::now();
    let verifier = args.key.as_deref().map(read_verifier).transpose()?;
    let mut logs = Vec::new();
    let mut last_verify: Option<VerifyStatus> = None;
    for log_id in db.log_ids()? {
        let mut store = db.open_log(&log_id)?;
        let size = store.next_seq()?;
        let newest_checkpoint = store
            .checkpoints()?
            .pop()
            .map(|(size, note)| CheckpointInfo::from_note(size, &note));
        logs.push(LogIntegrity {
            log_id: store.log_id().to_string(),
            size,
            newest_checkpoint,
        });
        if args.verify {
            let report = integrity::verify(store.as_mut(), verifier.as_ref(), &[], &mut |_| {})?;
            let status = last_verify.get_or_insert(VerifyStatus {
                at: now,
                entries: 0,
                checkpoints_verified: 0,
                findings: 0,
                ok: true,
                signatures_checked: verifier.is_some(),
            });
            status.entries += report.entries;
            status.checkpoints_verified += report.checkpoints_verified;
            status.findings += report.findings.len() as u64;
            status.ok &= report.is_ok();
        }
    }
    let options = ReportOptions {
        kind: args.report,
        since: args.since,
        until: args.until,
        now,
        due_within_days: i64::from(args.due_within),
        logs,
        last_verify,
    };
    let report = compliance::build(db.open_read_only()?.as_mut(), options)?;
    match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            compliance::render(&report, args.format, &mut out)?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = io::stdout().lock();
            compliance::render(&report, args.format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
