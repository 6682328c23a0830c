//! Where each sink stands in each log: what `mcp-audit sink status` shows.

use jiff::Timestamp;
use mcp_audit_store::{SinkState, StoreError};
use serde::Serialize;

/// One sink in one log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogStatus {
    pub sink: String,
    pub log_id: String,
    /// The seq of the next record to send.
    pub cursor: u64,
    /// The log's size.
    pub size: u64,
    /// Records not sent yet.
    pub lag_records: u64,
    /// How old the oldest record not sent yet is, in seconds (by the time the recorder
    /// received it, else its stated time); 0 when caught up.
    pub lag_seconds: u64,
    /// Failed attempts at the cursor since it last moved.
    pub tries: u32,
    pub last_error: Option<String>,
    /// Records of this log the sink gave up on.
    pub dead_letters: u64,
    /// The runner holding the sink's lease now (`host:pid:random`), `None` when no runner
    /// does (stopped, or dead and its lease run out).
    pub runner: Option<String>,
    /// A runner waiting for the lease (a second process running a sink of this name).
    pub standby: Option<String>,
}

/// Every cursor's status (of the sinks named in `sinks` only, when given), by sink and log.
pub fn status(
    state: &mut dyn SinkState,
    sinks: Option<&[String]>,
) -> Result<Vec<LogStatus>, StoreError> {
    let sizes = state.logs()?;
    let letters = state.dead_letters(None)?;
    let leases = state.leases()?;
    let now = Timestamp::now();
    let mut out = Vec::new();
    for cursor in state.cursors(None)? {
        if sinks.is_some_and(|names| !names.contains(&cursor.sink)) {
            continue;
        }
        let size = sizes
            .iter()
            .find(|l| l.log_id == cursor.log_id)
            .map_or(0, |l| l.size);
        let lag_records = size.saturating_sub(cursor.next_seq);
        let lag_seconds = if lag_records == 0 {
            0
        } else {
            state
                .events_from(&cursor.log_id, cursor.next_seq, 1)?
                .first()
                .map_or(0, |oldest| {
                    let at = oldest.event.received_at.unwrap_or(oldest.event.timestamp);
                    now.duration_since(at).as_secs().max(0) as u64
                })
        };
        let dead_letters = letters
            .iter()
            .filter(|l| l.sink == cursor.sink && l.log_id == cursor.log_id)
            .count() as u64;
        let lease = leases.iter().find(|l| l.sink == cursor.sink);
        let runner = lease
            .filter(|l| l.expires_at > now)
            .map(|l| l.owner.clone());
        let standby = lease
            .filter(|l| l.standby_until.is_some_and(|t| t > now))
            .and_then(|l| l.standby.clone());
        out.push(LogStatus {
            sink: cursor.sink,
            log_id: cursor.log_id,
            cursor: cursor.next_seq,
            size,
            lag_records,
            lag_seconds,
            tries: cursor.tries,
            last_error: cursor.last_error,
            dead_letters,
            runner,
            standby,
        });
    }
    Ok(out)
}
