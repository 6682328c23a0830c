//! `sink status`: where each sink stands in each log (cursor, lag, last error, dead letters,
//! who runs it), read from the cursors the sinks keep in the database; `sink retry` and `sink
//! drop`: the dead letters an operator sends again or discards, each action recorded as an
//! event of the log before it is done.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use mcp_audit_core::{Action, AuditEvent, Classification};
use mcp_audit_sinks::status::status;
use mcp_audit_store::{DeadLetter, LetterChoice};

use crate::db::Db;
use crate::table::{Align, Table};

/// The sinks that follow the log
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit sink status
  mcp-audit sink status --json | jq '.dead_letters'
  mcp-audit sink retry siem --all            # after fixing the receiver
  mcp-audit sink drop siem --seq 812         # discard one after review

Sinks run with `mcp-audit follow --sink FILE`, or inside proxy and serve (--sink FILE).")]
pub struct SinkArgs {
    #[command(subcommand)]
    pub command: SinkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SinkCommand {
    Status(StatusArgs),
    /// Send dead letters again, once the receiver is fixed (the running sink sends them)
    Retry(LettersArgs),
    /// Discard dead letters after review
    Drop(LettersArgs),
}

/// Which dead letters of a sink (send them again / discard them)
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("which").required(true).args(["seq", "all"]),
    after_help = "Examples:
  mcp-audit sink retry siem --all
  mcp-audit sink retry siem --seq 7 --seq 12
  mcp-audit --db postgres://audit@db/audit sink retry siem --log proxy-a --seq 7
  mcp-audit sink drop siem --seq 7 --reason 'test record, refused by design'

retry queues the dead letters again: the running sink (or the next `follow --sink`) sends
them, in seq order within a log and before its live records, each with its original
log_id:seq key, as it sends any record (erased payloads stay absent, the sink's redaction
applies). Delivered, a letter leaves the dead letters; refused max_tries times again, it
stays there with its tries added up. drop removes them for good. Each retry or drop is
recorded as an event of the log (admin, sink_dead_letters) before it is done. `sink status
--json` lists the dead letters and whether each is queued.")]
pub struct LettersArgs {
    /// The sink's name (`name` in its [[sink]] table)
    pub name: String,
    /// Only the dead letters of this log (needed with --seq when the sink has dead letters
    /// in several logs)
    #[arg(long, value_name = "LOG")]
    pub log: Option<String>,
    /// The seq of a dead letter (repeatable)
    #[arg(long, value_name = "N")]
    pub seq: Vec<u64>,
    /// Every dead letter of the sink (of --log only, with it)
    #[arg(long)]
    pub all: bool,
    /// Who acts, as recorded (default: the OS user)
    #[arg(long, value_name = "USER")]
    pub actor: Option<String>,
    /// Why, as recorded
    #[arg(long)]
    pub reason: Option<String>,
}

/// Where each sink stands: cursor, lag in records and seconds, last error, dead letters, runner
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit sink status
  mcp-audit sink status --sink sinks.toml --json

LAG is how many records of the log the sink has not delivered yet, LAG_S how old the oldest
of them is. For a witness sink, CURSOR is the size of the newest checkpoint its target has
(co-signed, appended or acknowledged) and LAST_ERROR its last failure (a refusal: a fork). DEAD counts the records the sink gave up on after max_tries refusals; --json
lists them (log, seq, event id, tries, last error, queued: sent again by `sink retry`).
RUNNER is the process holding the sink's lease (host:pid:id; one runner per sink name sends),
with `+standby` when a second one waits to take over; `-` when none runs.")]
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
        SinkCommand::Retry(args) => run_letters(db, args, Letters::Retry),
        SinkCommand::Drop(args) => run_letters(db, args, Letters::Drop),
    }
}

/// What an operator does to dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Letters {
    Retry,
    Drop,
}

fn run_letters(db: &Db, args: LettersArgs, what: Letters) -> anyhow::Result<()> {
    let mut state = db.open_follower()?;
    let chosen = choose(&mut *state, &args)?;
    let seqs = (!args.all).then_some(args.seq.as_slice());
    let choice = LetterChoice {
        sink: &args.name,
        log_id: args.log.as_deref(),
        seqs,
    };
    let actor = args.actor.unwrap_or_else(crate::commands::proxy::os_user);
    db.record_one(
        letters_event(what, &args.name, &chosen, &actor, args.reason.as_deref())?,
        "the dead letters' event",
    )?;
    let n = match what {
        Letters::Retry => state.queue_dead_letters(&choice)?,
        Letters::Drop => state.drop_dead_letters(&choice)?,
    };
    match what {
        Letters::Retry => eprintln!(
            "queued {n} dead letter(s) of sink `{}` to be sent again: the running sink (or the next `follow --sink`) sends them",
            args.name
        ),
        Letters::Drop => eprintln!("dropped {n} dead letter(s) of sink `{}`", args.name),
    }
    Ok(())
}

/// The dead letters `args` names, or an error that says what is not there: a sink no runner
/// ever kept anything for, a seq that is no dead letter of it, a --seq that needs a --log.
fn choose(
    state: &mut dyn mcp_audit_store::SinkState,
    args: &LettersArgs,
) -> anyhow::Result<Vec<DeadLetter>> {
    let letters = state.dead_letters(Some(&args.name))?;
    if letters.is_empty() {
        let known = state.cursors(Some(&args.name))?;
        if known.is_empty() {
            let mut names: Vec<String> = state.cursors(None)?.into_iter().map(|c| c.sink).collect();
            names.dedup();
            bail!(
                "no sink named `{}` has followed this database (sinks: {})",
                args.name,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            );
        }
        bail!("sink `{}` has no dead letters", args.name);
    }
    if let Some(log) = &args.log
        && !letters.iter().any(|l| &l.log_id == log)
    {
        bail!("sink `{}` has no dead letters in log `{log}`", args.name);
    }
    if !args.seq.is_empty() && args.log.is_none() {
        let mut logs: Vec<&str> = letters.iter().map(|l| l.log_id.as_str()).collect();
        logs.dedup();
        if logs.len() > 1 {
            bail!(
                "sink `{}` has dead letters in several logs ({}): say which with --log",
                args.name,
                logs.join(", ")
            );
        }
    }
    let choice = LetterChoice {
        sink: &args.name,
        log_id: args.log.as_deref(),
        seqs: (!args.all).then_some(args.seq.as_slice()),
    };
    let chosen: Vec<DeadLetter> = letters.into_iter().filter(|l| choice.contains(l)).collect();
    if let Some(missing) = args
        .seq
        .iter()
        .find(|&&n| !chosen.iter().any(|l| l.seq == n))
    {
        bail!(
            "sink `{}` has no dead letter at seq {missing} (see `mcp-audit sink status --json`)",
            args.name
        );
    }
    Ok(chosen)
}

/// The event a retry or a drop is recorded as: who, which sink, which letters, why.
fn letters_event(
    what: Letters,
    sink: &str,
    chosen: &[DeadLetter],
    actor: &str,
    reason: Option<&str>,
) -> anyhow::Result<AuditEvent> {
    let (action, verb) = match what {
        Letters::Retry => (Action::Update, "retry"),
        Letters::Drop => (Action::Delete, "drop"),
    };
    let letters: Vec<_> = chosen
        .iter()
        .map(|l| serde_json::json!({"log_id": l.log_id, "seq": l.seq, "event_id": l.event_id}))
        .collect();
    // Not for review: an operator's housekeeping of the sinks, like a token's.
    Ok(AuditEvent::admin(action, "sink_dead_letters", sink)
        .user(actor)
        .classification(Classification::Internal)
        .requires_review(false)
        .details(serde_json::json!({
            "command": format!("sink {verb}"),
            "sink": sink,
            "letters": letters,
            "reason": reason,
        }))
        .build()?)
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
        "RUNNER",
        "LAST_ERROR",
    ]);
    for column in 2..8 {
        table = table.align(column, Align::Right);
    }
    table = table.shrinkable(9, 20);
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
            runner_cell(row.runner.as_deref(), row.standby.as_deref()),
            row.last_error.clone().unwrap_or_default(),
        ]);
    }
    table.write_fitted(
        &mut out,
        terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0)),
    )?;
    Ok(())
}

/// The RUNNER cell: the holder, and whether a standby waits.
fn runner_cell(runner: Option<&str>, standby: Option<&str>) -> String {
    match (runner, standby) {
        (Some(r), Some(_)) => format!("{r} +standby"),
        (Some(r), None) => r.to_string(),
        (None, Some(s)) => format!("- (standby {s})"),
        (None, None) => "-".into(),
    }
}
