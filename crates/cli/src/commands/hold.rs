//! `mcp-audit hold`: legal holds, kept as events of the log (see `mcp_audit_store::hold`):
//! placing or releasing one is recorded, and `list` reads them back. A held event is never
//! removed by `cleanup` nor erased.

use std::io::{self, Write};

use anyhow::bail;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, civil};
use mcp_audit_store::hold::{HoldRequest, HoldScope, Holds, release_event};

use crate::db::Db;
use crate::table::Table;

/// Place, list and release legal holds
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit hold add --user alice --reason 'litigation 2026-17'
  mcp-audit hold add --subject cust-42 --until 2027-06-30 --reason 'regulator inquiry'
  mcp-audit hold list
  mcp-audit hold release 019a1b2c-3d4e-7f00-8a9b-0c1d2e3f4a5b --reason 'case closed'
A hold keeps every event of its subject, session or user (intents included) from `cleanup` and
from erasure until it is released or its --until passes. Holds and releases are events of the
log: `verify` holds them to the signed checkpoints. A subject's or a user's hold names them by
their pseudonym: `list` shows the identity until their erasure, and the pseudonym after.")]
pub struct HoldArgs {
    #[command(subcommand)]
    command: HoldCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HoldCommand {
    /// Place a hold on a data subject's, a session's or a user's events
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The hold lapses at this time: RFC 3339, a date, or a span from now (90d)
        #[arg(long, value_parser = parse_until, value_name = "TIME")]
        until: Option<Timestamp>,
        /// Why (the matter, the case): recorded, and quoted when a deletion is refused
        #[arg(long)]
        reason: String,
        /// Who places it, as recorded (default: the OS user)
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
    },
    /// List the holds: id, scope, placed, until, released, reason
    List {
        /// As a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Release a hold by its id
    Release {
        /// The hold's id (from `hold list`)
        id: String,
        /// Why it is released: recorded
        #[arg(long)]
        reason: String,
        /// Who releases it, as recorded (default: the OS user)
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
    },
}

/// Exactly one of the three scopes.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ScopeArgs {
    /// Hold the events of this data subject (compliance.data_subject_id)
    #[arg(long, value_name = "ID")]
    subject: Option<String>,
    /// Hold the events of this session
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Hold the events of this user
    #[arg(long, value_name = "ID")]
    user: Option<String>,
}

impl ScopeArgs {
    fn scope(self) -> anyhow::Result<HoldScope> {
        let scope = match (self.subject, self.session, self.user) {
            (Some(s), _, _) => HoldScope::Subject(s),
            (_, Some(s), _) => HoldScope::Session(s),
            (_, _, Some(u)) => HoldScope::User(u),
            _ => bail!("name what to hold: --subject, --session or --user"),
        };
        let (HoldScope::Subject(id) | HoldScope::Session(id) | HoldScope::User(id)) = &scope;
        if id.trim().is_empty() {
            bail!("the hold's --subject, --session or --user is empty");
        }
        Ok(scope)
    }
}

/// A time to come: RFC 3339, a date (midnight UTC), or a span from now.
fn parse_until(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let at = if let Ok(ts) = text.parse::<Timestamp>() {
        ts
    } else if let Ok(date) = text.parse::<civil::Date>() {
        date.to_zoned_datetime(TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{text}`: {e}"))?
    } else {
        let span: Span = text.parse().map_err(|_| {
            format!("`{text}` is neither an RFC 3339 time, a date (2027-06-30), nor a span from now (90d)")
        })?;
        Timestamp::now()
            .to_zoned_datetime(TimeZone::UTC)
            .checked_add(span)
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{text}`: {e}"))?
    };
    if at <= Timestamp::now() {
        return Err(format!(
            "`{text}` is not in the future: the hold would lapse at once"
        ));
    }
    Ok(at)
}

pub fn run(db: &Db, args: HoldArgs) -> anyhow::Result<()> {
    match args.command {
        HoldCommand::Add {
            scope,
            until,
            reason,
            actor,
        } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why the events are held");
            }
            let request = HoldRequest {
                scope: scope.scope()?,
                until,
                reason,
                actor: actor.unwrap_or_else(crate::commands::proxy::os_user),
            };
            let id = db.record_with("the hold event", |recorder| request.record(recorder))?;
            println!("{id}");
            eprintln!("placed legal hold {id} on {}", request.scope);
        }
        HoldCommand::List { json } => {
            let holds = Holds::load(db.open_read_only()?.as_mut())?;
            let mut out = io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &holds.holds)?;
                writeln!(out)?;
            } else {
                let mut rows =
                    Table::new(&["id", "scope", "placed", "until", "released", "reason"]);
                for h in &holds.holds {
                    rows.push([
                        h.id.clone(),
                        h.scope.to_string(),
                        crate::render::time(h.placed_at),
                        h.until.map(crate::render::time).unwrap_or_default(),
                        h.released
                            .as_ref()
                            .map(|r| crate::render::time(r.at))
                            .unwrap_or_default(),
                        h.reason.clone(),
                    ]);
                }
                rows.write(&mut out)?;
            }
        }
        HoldCommand::Release { id, reason, actor } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why the hold is released");
            }
            let holds = Holds::load(db.open_read_only()?.as_mut())?;
            match holds.get(&id) {
                None => bail!("no legal hold with id `{id}` (see `mcp-audit hold list`)"),
                Some(h) if h.released.is_some() => bail!("legal hold `{id}` is already released"),
                Some(_) => {}
            }
            let actor = actor.unwrap_or_else(crate::commands::proxy::os_user);
            db.record_one(release_event(&id, &actor, &reason)?, "the hold event")?;
            eprintln!("released legal hold {id}");
        }
    }
    Ok(())
}
