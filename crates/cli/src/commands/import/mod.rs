//! `mcp-audit import`: the seed loggers' SQLite databases (MockLoop, ContextForge) read into
//! the log, through the same recorder as `log` (policy, redaction and pseudonyms apply).
//!
//! The order of work, and why:
//! 1. every row is read and mapped (`mcp_audit_core::import`), its content hash checked; every
//!    row that cannot be imported is reported (`<table> row <id>: ...`) and then nothing is
//!    written, as `log -` refuses a batch: fixing the input and running again loses nothing;
//! 2. a row whose event is already in the log (its id is derived from the row, so this is one
//!    lookup by primary key) is skipped: importing twice imports nothing new;
//! 3. the rest is recorded `sync` in chunks of [`CHUNK`] events, each one transaction: an
//!    interrupted import keeps whole chunks, and running it again imports only what is missing.

mod read;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcp_audit_core::import::{ImportError, contextforge, mockloop};
use mcp_audit_core::redact::Redactor;
use mcp_audit_core::{AuditEvent, AuditLevel, HashCheck, Policy};
use mcp_audit_store::{Durability, Receipt, RecordError, Recorder, RecorderConfig};

use crate::db::Db;
use read::SeedDb;

/// Events per transaction.
const CHUNK: usize = 500;

/// Import a seed logger's database into the log
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit import mockloop mcp_audit.db
  mcp-audit import contextforge mcp.db --db audit.db
  mcp-audit import mockloop old.db --on-mismatch flag

Each event keeps the row's time as its stated time and is marked with its origin (system, file
name, table, original id, the row's content hash and whether it held). Importing the same rows
again imports nothing new. See docs/import.md for what maps to what.")]
pub struct ImportArgs {
    #[command(subcommand)]
    seed: Seed,
}

#[derive(Debug, clap::Subcommand)]
enum Seed {
    /// MockLoop's MCPAuditLogger database: mcp_audit_logs, mcp_data_lineage,
    /// mcp_compliance_events
    Mockloop(SeedArgs),
    /// IBM ContextForge's gateway database: audit_trails
    Contextforge(SeedArgs),
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// The seed's SQLite database (read only; never written)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// A row whose content_hash does not match its content: `refuse` (the import stops
    /// before writing anything and names each such row) or `flag` (imported, its origin
    /// marked `mismatched` and the event marked for review)
    #[arg(long, value_enum, default_value_t = OnMismatch::Refuse, value_name = "WHAT")]
    on_mismatch: OnMismatch,
    #[command(flatten)]
    redaction: crate::redact_arg::RedactArgs,
    #[command(flatten)]
    retention_policy: crate::retention_arg::RetentionPolicyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnMismatch {
    Refuse,
    Flag,
}

pub fn run(db: &Db, args: ImportArgs) -> anyhow::Result<()> {
    let (seed, args) = match args.seed {
        Seed::Mockloop(a) => ("MockLoop", a),
        Seed::Contextforge(a) => ("ContextForge", a),
    };
    let file_name = file_name(&args.file)?;
    let source = SeedDb::open(&args.file)?;
    let mapped = if seed == "MockLoop" {
        read_mockloop(&source, &file_name)?
    } else {
        read_contextforge(&source, &file_name)?
    };
    let policy = args.retention_policy.apply_to(Policy {
        // Every row: the seed already chose what to keep.
        level: AuditLevel::All,
        ..Policy::default()
    })?;
    let redaction = args.redaction.load()?;

    let store = db.open_writable(Durability::Sync)?;
    // Opened second: the writable open creates and migrates the database.
    let mut reader = db.open_read_only()?;
    let rows = mapped.len();
    let mut problems = Vec::new();
    let mut events = Vec::new();
    let (mut already, mut flagged) = (0u64, 0u64);
    for row in mapped {
        let mut event = match row {
            Ok(event) => event,
            Err(problem) => {
                problems.push(problem.to_string());
                continue;
            }
        };
        if let Some(problem) = mismatch(&event) {
            match args.on_mismatch {
                OnMismatch::Refuse => {
                    problems.push(format!("{problem} (--on-mismatch flag imports it marked)"));
                    continue;
                }
                OnMismatch::Flag => {
                    event.compliance.requires_review = Some(true);
                    flagged += 1;
                }
            }
        }
        // Checked as the recorder will check it, so that a refusal names its row.
        let mut checked = event.clone();
        if let Err(problem) = checked
            .normalize()
            .and_then(|()| policy.apply(&mut checked))
        {
            problems.push(format!("{}: {problem}", row_name(&event)));
            continue;
        }
        if reader.get(event.id)?.is_some() {
            already += 1;
            continue;
        }
        events.push(event);
    }
    if !problems.is_empty() {
        let mut stderr = io::stderr().lock();
        for problem in &problems {
            writeln!(stderr, "{problem}")?;
        }
        bail!(
            "{} of {rows} rows of {file_name} cannot be imported; nothing imported",
            problems.len()
        );
    }
    let imported = record(store, (policy, redaction), events)?;
    let mut out = io::stdout().lock();
    write!(
        out,
        "imported {imported} event(s) from {file_name} ({seed})"
    )?;
    if already > 0 {
        write!(out, "; {already} already imported")?;
    }
    if flagged > 0 {
        write!(
            out,
            "; {flagged} with a content_hash that does not match, marked for review"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn read_mockloop(
    source: &SeedDb,
    file: &str,
) -> anyhow::Result<Vec<Result<AuditEvent, ImportError>>> {
    source.require("MockLoop", mockloop::AUDIT_LOGS)?;
    let mut events: Vec<_> = source
        .mockloop_entries()?
        .iter()
        .map(|(entry, lineage)| mockloop::entry_event(file, entry, lineage))
        .collect();
    events.extend(
        source
            .mockloop_compliance()?
            .iter()
            .map(|row| mockloop::compliance_event(file, row)),
    );
    Ok(events)
}

fn read_contextforge(
    source: &SeedDb,
    file: &str,
) -> anyhow::Result<Vec<Result<AuditEvent, ImportError>>> {
    source.require("ContextForge", contextforge::AUDIT_TRAILS)?;
    Ok(source
        .contextforge_trails()?
        .iter()
        .map(|row| contextforge::trail_event(file, row))
        .collect())
}

/// The problem of an event whose original content hash did not match, if it did not.
fn mismatch(event: &AuditEvent) -> Option<String> {
    let origin = event.origin.as_ref()?;
    let hash = origin.content_hash.as_ref()?;
    (hash.check == HashCheck::Mismatched).then(|| {
        format!(
            "{}: content_hash {} does not match the row's content (changed after it was logged?)",
            row_name(event),
            hash.value
        )
    })
}

/// `<table> row <id>`, as problems name a row.
fn row_name(event: &AuditEvent) -> String {
    match &event.origin {
        Some(origin) => format!("{} row {}", origin.table, origin.original_id),
        None => format!("event {}", event.id),
    }
}

/// The file's name without its directories: what the origin mark keeps.
fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} names no file", path.display()))
}

/// Records `events` in chunks, one transaction each, with a bar on a terminal.
fn record(
    store: Box<dyn mcp_audit_store::Store>,
    (policy, redaction): (Policy, Arc<Redactor>),
    events: Vec<AuditEvent>,
) -> anyhow::Result<u64> {
    let config = RecorderConfig {
        durability: Durability::Sync,
        policy,
        redaction,
        ..RecorderConfig::default()
    };
    let recorder = Recorder::start(store, config)?;
    let bar = progress_bar(events.len() as u64);
    let mut imported = 0u64;
    let mut result = Ok(());
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<AuditEvent> = events.by_ref().take(CHUNK).collect();
        let n = chunk.len() as u64;
        match recorder.record_all(chunk) {
            Ok(receipts) => {
                imported += receipts
                    .iter()
                    .filter(|r| !matches!(r, Receipt::Skipped))
                    .count() as u64;
                bar.inc(n);
            }
            Err(RecordError::InvalidEvents(invalid)) => {
                result = Err(anyhow::anyhow!(
                    "{} event(s) refused by the recorder: {}",
                    invalid.len(),
                    invalid
                        .iter()
                        .map(|(_, p)| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                break;
            }
            Err(error) => {
                result = Err(error.into());
                break;
            }
        }
    }
    bar.finish_and_clear();
    let shutdown = recorder.shutdown();
    result.with_context(|| {
        format!("import stopped after {imported} event(s); run it again to import the rest")
    })?;
    shutdown.context("cannot record the imported events")?;
    Ok(imported)
}

/// A bar on a terminal; hidden otherwise (pipes, CI logs).
fn progress_bar(total: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events imported ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar
}
