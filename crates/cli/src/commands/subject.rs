//! `mcp-audit subject`: a data subject's rights over the trail (GDPR Art. 15, 17, 20). A group
//! of subcommands, one per right, each a variant of [`SubjectCommand`] with its own function
//! here; the logic is `mcp_audit_store::subject` (and `erasure`, `hold`).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::Timestamp;
use mcp_audit_core::subject_export::SubjectExport;
use mcp_audit_store::subject::{export_event, export_subject};
use mcp_audit_store::{Store, StoreError, integrity};

use crate::db::Db;

/// A data subject's rights: export (access, portability)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit subject export cust-42 --output cust-42.json
  mcp-audit subject verify-export cust-42.json --key audit.key.pub   # anywhere, no database
An export holds every event whose data subject or user is SUBJECT (intents included), each with
its inclusion proof and the signed checkpoint that covers it: run `mcp-audit checkpoint` first
if the newest events are not covered yet. Each export is recorded in the log (who asked, when,
how many events).")]
pub struct SubjectArgs {
    #[command(subcommand)]
    command: SubjectCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SubjectCommand {
    /// Every event about a data subject, with proofs, as one JSON document
    Export(ExportArgs),
    /// Check an export offline with the log's public key
    VerifyExport(VerifyExportArgs),
    /// Erase every event about a subject, and the link from the log to them
    Erase(super::subject_erase::SubjectEraseArgs),
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The data-subject id, user id, or pseudonym
    subject: String,
    /// Write the export to this new file (mode 0600) instead of standard output
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Who asks for the export, as recorded (default: the OS user)
    #[arg(long, value_name = "USER")]
    actor: Option<String>,
}

#[derive(Debug, clap::Args)]
struct VerifyExportArgs {
    /// The export file (`-` for standard input)
    file: PathBuf,
    /// The verifier key: its text, or a file holding it
    #[arg(long)]
    key: String,
}

pub fn run(db: &Db, args: SubjectArgs) -> anyhow::Result<()> {
    match args.command {
        SubjectCommand::Export(args) => export(db, args),
        SubjectCommand::VerifyExport(args) => verify_export(args),
        SubjectCommand::Erase(args) => super::subject_erase::run(db, args),
    }
}

fn export(db: &Db, args: ExportArgs) -> anyhow::Result<()> {
    let subject = args.subject.trim();
    if subject.is_empty() {
        bail!("name the data subject to export");
    }
    let document = {
        // One store per log the subject's events are in, for their proofs.
        let mut logs: HashMap<String, Box<dyn Store>> = HashMap::new();
        let mut reader = db.open_read_only()?;
        export_subject(reader.as_mut(), subject, Timestamp::now(), &mut |stored| {
            if !logs.contains_key(&stored.log_id) {
                let store = db
                    .open_event_log(stored.event.id)
                    .map_err(|e| StoreError::Database(format!("{e:#}")))?;
                logs.insert(stored.log_id.clone(), store);
            }
            let store = logs
                .get_mut(&stored.log_id)
                .ok_or_else(|| StoreError::Database("the event's log is not open".into()))?;
            integrity::prove(store.as_mut(), stored.event.id)
        })
        .with_context(|| format!("cannot export subject `{subject}`"))?
    };
    // Recorded before it is handed out: an export nobody can account for is not served.
    let actor = args.actor.unwrap_or_else(crate::commands::proxy::os_user);
    let event = export_event(subject, &actor, &document)?;
    db.record_one(event, "the export's record")?;
    let text = serde_json::to_string_pretty(&document)?;
    match &args.output {
        Some(path) => write_private(path, &text)?,
        None => {
            let mut out = io::stdout().lock();
            writeln!(out, "{text}")?;
        }
    }
    eprintln!(
        "exported {} event(s) about {subject} (recorded in the log)",
        document.events.len()
    );
    Ok(())
}

/// Writes a new file only its owner can read: an export is the subject's personal data.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "writing {} (an existing file is never overwritten)",
                path.display()
            )
        })?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

fn verify_export(args: VerifyExportArgs) -> anyhow::Result<()> {
    let verifier = crate::commands::integrity::read_verifier(&args.key)?;
    let raw = if args.file.as_os_str() == "-" {
        io::read_to_string(io::stdin())?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let export: SubjectExport = serde_json::from_str(&raw).context("reading the export")?;
    let n = export
        .verify(&verifier)
        .context("the export does not hold")?;
    println!(
        "ok: {n} event(s) about {}, each in the signed log unchanged",
        export.subject
    );
    Ok(())
}
