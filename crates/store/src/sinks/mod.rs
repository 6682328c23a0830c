//! What a sink keeps in the store: a durable cursor per (sink, log), and the records it gave
//! up on (dead letters).
//!
//! A sink (see the `mcp-audit-sinks` crate) follows each log in seq order and moves its cursor
//! only after its destination acknowledged: the cursor is the seq of the next record to send,
//! so a sink that stops, however it stops, resumes where the acknowledgements ended (records
//! sent but not acknowledged are sent again: at-least-once). The cursor row also counts the
//! failed attempts at its position (kept across restarts, so a record a destination refuses
//! forever reaches the dead letters after the configured number of tries even when the
//! process is restarted in between), and the last error, for `mcp-audit sink status`.
//!
//! Sinks read the log as any reader does ([`SinkState::events_from`]: the reader's view, an
//! erased payload absent, a removed entry's seq simply skipped), so they never touch the
//! recording path; their own writes are to their two tables only.
//!
//! What keeps the cursor correct: [`SinkState::advance`] only moves forward (a slow process
//! that acknowledged older records never moves back a cursor another one moved on), and the
//! counters reset only when the position changes.

use jiff::Timestamp;
use mcp_audit_core::EventId;
use serde::Serialize;

use crate::error::StoreError;
use crate::query::StoredEvent;

/// A log and its size (the seq its next entry gets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSize {
    pub log_id: String,
    pub size: u64,
}

/// Where one sink stands in one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkCursor {
    pub sink: String,
    pub log_id: String,
    /// The seq of the next record to send: every record before it was acknowledged or
    /// dead-lettered.
    pub next_seq: u64,
    /// Failed attempts at this position since it was reached (unavailable and refused alike),
    /// for backoff and status.
    pub tries: u32,
    /// How many of those the destination refused the record at `next_seq` itself: what
    /// decides the dead letter.
    pub refusals: u32,
    /// The last failure at this position, `None` once the position moved.
    pub last_error: Option<String>,
    /// When the cursor last changed (moved or counted a failure).
    pub updated_at: Timestamp,
}

/// A record a sink gave up on after its destination refused it `tries` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub sink: String,
    pub log_id: String,
    pub seq: u64,
    pub event_id: EventId,
    pub tries: u32,
    pub last_error: String,
    pub at: Timestamp,
}

/// What a failed attempt was, for [`SinkState::failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The destination could not take anything (down, timed out, overloaded).
    Unavailable,
    /// The destination refused the record at the cursor itself.
    Refused,
}

/// What a sink runner may do to the store: read the logs, keep its cursors and dead letters.
/// Synchronous like every role of the store (async callers use `spawn_blocking`).
pub trait SinkState: Send + 'static {
    /// Every log the store holds, by id, with its size (SQLite: its one log; PostgreSQL:
    /// every log of the database).
    fn logs(&mut self) -> Result<Vec<LogSize>, StoreError>;

    /// At most `limit` events of `log_id` with seq at or after `from`, in seq order, as readers
    /// see them (identities shown for pseudonyms the mapping still has, an erased payload
    /// absent and the event marked `redacted`). Removed (expired) entries are not there: their
    /// seqs are skipped.
    fn events_from(
        &mut self,
        log_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The cursor of `sink` in `log_id`, `None` before its first [`SinkState::advance`].
    fn cursor(&mut self, sink: &str, log_id: &str) -> Result<Option<SinkCursor>, StoreError>;

    /// Every cursor (of `sink` only, when given), by sink and log.
    fn cursors(&mut self, sink: Option<&str>) -> Result<Vec<SinkCursor>, StoreError>;

    /// Moves the cursor of `sink` in `log_id` to `next_seq`, creating it there if it is new.
    /// Never moves it back: a `next_seq` at or before the stored one changes nothing. Moving
    /// resets the failure counters and the last error.
    fn advance(&mut self, sink: &str, log_id: &str, next_seq: u64) -> Result<(), StoreError>;

    /// Counts a failed attempt at the cursor's position (which must exist) and keeps `error`
    /// as its last error; returns the cursor as it now is.
    fn failed(
        &mut self,
        sink: &str,
        log_id: &str,
        attempt: Attempt,
        error: &str,
    ) -> Result<SinkCursor, StoreError>;

    /// Keeps a dead letter; one already kept for the same sink, log and seq is replaced.
    fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError>;

    /// The dead letters (of `sink` only, when given), by sink, log and seq.
    fn dead_letters(&mut self, sink: Option<&str>) -> Result<Vec<DeadLetter>, StoreError>;
}

impl<T: SinkState + ?Sized> SinkState for Box<T> {
    fn logs(&mut self) -> Result<Vec<LogSize>, StoreError> {
        (**self).logs()
    }

    fn events_from(
        &mut self,
        log_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        (**self).events_from(log_id, from, limit)
    }

    fn cursor(&mut self, sink: &str, log_id: &str) -> Result<Option<SinkCursor>, StoreError> {
        (**self).cursor(sink, log_id)
    }

    fn cursors(&mut self, sink: Option<&str>) -> Result<Vec<SinkCursor>, StoreError> {
        (**self).cursors(sink)
    }

    fn advance(&mut self, sink: &str, log_id: &str, next_seq: u64) -> Result<(), StoreError> {
        (**self).advance(sink, log_id, next_seq)
    }

    fn failed(
        &mut self,
        sink: &str,
        log_id: &str,
        attempt: Attempt,
        error: &str,
    ) -> Result<SinkCursor, StoreError> {
        (**self).failed(sink, log_id, attempt, error)
    }

    fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        (**self).add_dead_letter(letter)
    }

    fn dead_letters(&mut self, sink: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        (**self).dead_letters(sink)
    }
}

/// Microseconds since the Unix epoch, as both backends keep times.
pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// A stored time back; a value out of range (an edited row) reads as the epoch.
pub(crate) fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A failure counted before the cursor existed: the runner creates it first.
pub(crate) fn no_cursor(sink: &str, log_id: &str) -> StoreError {
    StoreError::Database(format!(
        "sink `{sink}` has no cursor in log `{log_id}` to count a failure at"
    ))
}
