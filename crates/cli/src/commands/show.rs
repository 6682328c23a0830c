//! `mcp-audit show`: one event in full.
//!
//! Reached from the `query` table: by the seq it prints (`4`), by `LOG:SEQ` where several logs
//! share a PostgreSQL database (the table then prints that form), or by the event's UUID.

use std::io::{self, Write};

use anyhow::{anyhow, bail};
use mcp_audit_core::{EventId, MAX_CLOCK_SKEW};
use mcp_audit_store::{Store, StoredEvent};
use serde::Serialize;

use crate::db::Db;

/// Show one event in full
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The event has two times: `timestamp`, the time it states (the caller's), and
`received_at`, when the recorder received it (stamped by mcp-audit and hashed; absent on
events recorded before it was kept). `clock_skew_us` is the first minus the second; past 5
minutes either way the event is `skewed`, and a warning on stderr says so.

Examples:
  mcp-audit show 4                     (the seq `query` prints)
  mcp-audit show proxy-a:4             (LOG:SEQ, as `query` prints it on PostgreSQL)
  mcp-audit show --compact 01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e"
)]
pub struct ShowArgs {
    /// The event: the id `query` prints in its `seq` column (a seq such as `4`, or `LOG:SEQ`
    /// when several logs share a PostgreSQL database: a bare seq then needs --log-id), or the
    /// event's UUID (as `log` and `query --json` print it)
    #[arg(value_name = "SEQ|LOG:SEQ|UUID")]
    id: String,
    /// One line of JSON instead of pretty-printed
    #[arg(long)]
    compact: bool,
}

/// The stored event with how far its stated time lies from its receive time.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    stored: &'a StoredEvent,
    /// `timestamp - received_at` in microseconds; absent without a receive time.
    #[serde(skip_serializing_if = "Option::is_none")]
    clock_skew_us: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skewed: bool,
}

/// What the user named an event by.
#[derive(Debug, PartialEq, Eq)]
enum EventRef {
    Id(EventId),
    /// A seq, in the named log or else in the one `--log-id` (or the database) implies.
    Seq {
        log: Option<String>,
        seq: u64,
    },
}

/// Reads `text` as a UUID, a seq, or `LOG:SEQ` (split at the last `:`, so that a log id may
/// hold colons).
fn parse_ref(text: &str) -> anyhow::Result<EventRef> {
    let text = text.trim();
    if let Ok(id) = text.parse::<EventId>() {
        return Ok(EventRef::Id(id));
    }
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(EventRef::Seq { log: None, seq });
    }
    if let Some((log, seq)) = text.rsplit_once(':')
        && !log.is_empty()
        && let Ok(seq) = seq.parse::<u64>()
    {
        return Ok(EventRef::Seq {
            log: Some(log.to_string()),
            seq,
        });
    }
    bail!(
        "`{text}` names no event: give the seq `query` prints (`4`), LOG:SEQ (`proxy-a:4`), or the event's UUID"
    )
}

pub fn run(db: &Db, args: ShowArgs) -> anyhow::Result<()> {
    let event = match parse_ref(&args.id)? {
        EventRef::Id(id) => db
            .open_read_only()?
            .get(id)?
            .ok_or_else(|| anyhow!("no event with id {id} in {}", db.name()))?,
        EventRef::Seq { log, seq } => {
            let mut store = db.open_seq_log(log.as_deref())?;
            by_seq(store.as_mut(), seq)?.ok_or_else(|| {
                anyhow!(
                    "no event at seq {seq} in log {} of {} (removed by a cleanup, or not yet recorded)",
                    store.log_id(),
                    db.name()
                )
            })?
        }
    };
    let skew = event.event.clock_skew();
    let shown = Shown {
        stored: &event,
        clock_skew_us: skew.map(|s| s.as_micros().clamp(i64::MIN.into(), i64::MAX.into()) as i64),
        skewed: event.event.is_skewed(),
    };
    if let (true, Some(skew), Some(received)) = (shown.skewed, skew, event.event.received_at) {
        writeln!(
            io::stderr(),
            "warning: the event states {} but was received {}: {:#} {}, more than the {:#} allowed",
            event.event.timestamp,
            received,
            jiff::SignedDuration::from_secs(skew.abs().as_secs()),
            if skew.is_negative() {
                "before"
            } else {
                "after"
            },
            MAX_CLOCK_SKEW,
        )?;
    }
    let mut out = io::stdout().lock();
    if args.compact {
        serde_json::to_writer(&mut out, &shown)?;
    } else {
        serde_json::to_writer_pretty(&mut out, &shown)?;
    }
    writeln!(out)?;
    Ok(())
}

/// The event at `seq` of the store's log: its entry names its id, by which it is read whole.
fn by_seq(store: &mut dyn Store, seq: u64) -> anyhow::Result<Option<StoredEvent>> {
    let mut id = None;
    store.scan_log(seq, seq.saturating_add(1), &mut |entry| {
        id = serde_json::from_str::<serde_json::Value>(entry.meta)
            .ok()
            .and_then(|meta| meta["id"].as_str().and_then(|s| s.parse::<EventId>().ok()));
        Ok(())
    })?;
    match id {
        Some(id) => Ok(store.get(id)?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_named_by_seq_log_and_seq_or_uuid() {
        assert_eq!(
            parse_ref(" 4 ").unwrap(),
            EventRef::Seq { log: None, seq: 4 }
        );
        assert_eq!(
            parse_ref("host:proxy-a:17").unwrap(),
            EventRef::Seq {
                log: Some("host:proxy-a".into()),
                seq: 17
            }
        );
        let id = EventId::new();
        assert_eq!(parse_ref(&id.to_string()).unwrap(), EventRef::Id(id));
        for bad in ["", "-1", "four", ":4", "log:", "log:x", "4.5"] {
            let error = parse_ref(bad).unwrap_err().to_string();
            assert!(error.contains("names no event"), "{bad}: {error}");
        }
    }
}
