//! `subject erase`: a data subject's erasure (GDPR Art. 17) from the command line. The work is
//! `mcp_audit_store::subject::erase_subject`; this parses, opens and prints.

use anyhow::{Context, Result, bail};
use mcp_audit_store::erasure::ErasureRequest;
use mcp_audit_store::subject::erase_subject;
use mcp_audit_store::{Durability, Recorder, RecorderConfig, Scrub};

use crate::db::Db;

/// Erase every event about a data subject, and the link from the log to them.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit subject erase alice@example.com --reason 'erasure request #4711'
SUBJECT is a user id, a data-subject id or an e-mail address: every event whose user, data
subject or actor's e-mail it is has its personal data erased (every record of its call, each
erasure recorded first, as `erase` does). One more event records the request: who (--actor,
default the OS user), when, why (--reason) and how many events, naming the subject only by a
pseudonym. Then the pseudonym -> identity mapping of SUBJECT is deleted, so that the log keeps
nothing that points at them (see docs/privacy.md); `verify` still passes. On PostgreSQL the
events go to --log-id's log (default: a new log).")]
pub struct SubjectEraseArgs {
    /// The user id, data-subject id or e-mail address.
    subject: String,
    /// Why the data is erased (the request, the legal ground): recorded with the erasure.
    #[arg(long)]
    reason: String,
    /// Who erases, as recorded (default: the OS user).
    #[arg(long, value_name = "USER")]
    actor: Option<String>,
}

pub fn run(db: &Db, args: SubjectEraseArgs) -> Result<()> {
    if args.subject.trim().is_empty() {
        bail!("the subject must not be empty");
    }
    if args.reason.trim().is_empty() {
        bail!("--reason must say why the data is erased");
    }
    let (actor, auth_method) = match args.actor {
        Some(actor) => (actor, "cli_flag"),
        None => (crate::commands::proxy::os_user(), "os_user"),
    };
    let request = ErasureRequest {
        actor,
        auth_method: auth_method.into(),
        reason: args.reason,
    };
    let mut store = db.open_eraser()?;
    let config = RecorderConfig {
        durability: Durability::Sync,
        ..RecorderConfig::default()
    };
    let recorder = Recorder::start(db.open_writable(Durability::Sync)?, config)?;
    let erased = erase_subject(store.as_mut(), &recorder, &args.subject, &request);
    // Shut down either way; the erasure's own error is the precise one, so it goes first.
    let shutdown = recorder.shutdown();
    let erased = erased?;
    shutdown.context("cannot record the erasure")?;
    // The recorder's connection is closed now: a second scrub clears what it kept open.
    let scrub = match erased.scrub {
        Scrub::Done => Scrub::Done,
        _ => store.scrub()?,
    };
    println!(
        "erased {} record(s) of {} event(s) about the subject ({} already erased); \
         {} pseudonym link(s) deleted; request recorded as event {} (subject {})",
        erased.erased,
        erased.events,
        erased.already_erased,
        erased.links_forgotten,
        erased.request_event,
        erased.pseudonym
    );
    if let Scrub::Pending(why) = &scrub {
        eprintln!("warning: {why}");
    }
    Ok(())
}
