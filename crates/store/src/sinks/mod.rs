//! What a sink keeps in the store: a durable cursor per (sink, log), the records it gave
//! up on (dead letters, which an operator may queue to be sent again or drop), and a lease
//! per sink name that lets one runner at a time send.
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
//!
//! Why a lease: two processes running a sink of the same name (a `follow` left running, a
//! second host started from the same configuration) would both send every record and move
//! one cursor between them. [`SinkState::take_lease`] lets one of them hold the name for a
//! while; it renews the lease well before it ends and sends nothing once it could have ended.
//! The other waits as a standby (named in the lease's row, for `sink status`) and takes the
//! name over when the lease is released (a clean stop) or runs out (a crash). The lease's
//! times are the database's clock where there is one to share (PostgreSQL: runners on several
//! hosts), the host's on SQLite (one file, one host).
//!
//! Dead letters: [`SinkState::queue_dead_letters`] marks some to be sent again (`mcp-audit
//! sink retry`); the runner of that sink sends the queued ones, in seq order per log, and
//! removes each once delivered, or, refused `max_tries` times again, leaves it a dead letter
//! (its tries added up, no longer queued) with [`SinkState::replay_refused`].

use std::time::Duration;

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
    /// Queued to be sent again (`mcp-audit sink retry`), not sent yet.
    pub queued: bool,
}

/// Who runs a sink of a given name: the runner holding its lease, and one waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkLease {
    pub sink: String,
    /// The holder's id (`host:pid:random`, see the runner).
    pub owner: String,
    /// When the lease ends unless renewed; a later runner may take it from then on.
    pub expires_at: Timestamp,
    /// The last runner that asked for the lease while it was held, and until when its ask
    /// counts (it asks again at every renewal interval while it waits).
    pub standby: Option<String>,
    pub standby_until: Option<Timestamp>,
}

impl SinkLease {
    /// Whether `owner` holds the lease (as of the attempt that returned it).
    pub fn held_by(&self, owner: &str) -> bool {
        self.owner == owner
    }
}

/// Which dead letters of one sink an operator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterChoice<'a> {
    pub sink: &'a str,
    /// Only those of this log (`None`: every log).
    pub log_id: Option<&'a str>,
    /// Only those at these seqs (`None`: every seq).
    pub seqs: Option<&'a [u64]>,
}

impl LetterChoice<'_> {
    /// Whether `letter` is one of the chosen.
    pub fn contains(&self, letter: &DeadLetter) -> bool {
        letter.sink == self.sink
            && self.log_id.is_none_or(|l| l == letter.log_id)
            && self.seqs.is_none_or(|s| s.contains(&letter.seq))
    }
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

    /// Queues the dead letters of `choice` to be sent again by the sink's runner (their
    /// refusals since queued start at 0); returns how many.
    fn queue_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError>;

    /// Removes the dead letters of `choice` (delivered, or discarded); returns how many.
    fn drop_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError>;

    /// The queued dead letters of `sink`, by log and seq.
    fn queued_letters(&mut self, sink: &str) -> Result<Vec<DeadLetter>, StoreError>;

    /// Counts a refusal of the queued dead letter of `sink` at `log_id`/`seq` (its tries and
    /// last error); the `max_tries`-th refusal since it was queued unqueues it. Returns the
    /// letter as it now is, `None` if it is no longer there (dropped meanwhile).
    fn replay_refused(
        &mut self,
        sink: &str,
        log_id: &str,
        seq: u64,
        error: &str,
        max_tries: u32,
    ) -> Result<Option<DeadLetter>, StoreError>;

    /// Takes or renews the lease of `sink` for `owner` for `ttl`, if it is free, ran out, or is
    /// `owner`'s already; otherwise names `owner` its standby. Returns the lease as it now is
    /// (see [`SinkLease::held_by`]).
    fn take_lease(
        &mut self,
        sink: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<SinkLease, StoreError>;

    /// Gives up the lease of `sink` if `owner` holds it (a clean stop: a standby takes over at
    /// its next try, not after the lease would have run out).
    fn release_lease(&mut self, sink: &str, owner: &str) -> Result<(), StoreError>;

    /// Every sink's lease row, by sink (expired ones too: the caller compares the times).
    fn leases(&mut self) -> Result<Vec<SinkLease>, StoreError>;
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

    fn queue_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        (**self).queue_dead_letters(choice)
    }

    fn drop_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        (**self).drop_dead_letters(choice)
    }

    fn queued_letters(&mut self, sink: &str) -> Result<Vec<DeadLetter>, StoreError> {
        (**self).queued_letters(sink)
    }

    fn replay_refused(
        &mut self,
        sink: &str,
        log_id: &str,
        seq: u64,
        error: &str,
        max_tries: u32,
    ) -> Result<Option<DeadLetter>, StoreError> {
        (**self).replay_refused(sink, log_id, seq, error, max_tries)
    }

    fn take_lease(
        &mut self,
        sink: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<SinkLease, StoreError> {
        (**self).take_lease(sink, owner, ttl)
    }

    fn release_lease(&mut self, sink: &str, owner: &str) -> Result<(), StoreError> {
        (**self).release_lease(sink, owner)
    }

    fn leases(&mut self) -> Result<Vec<SinkLease>, StoreError> {
        (**self).leases()
    }
}

/// The SQL of a lease taken or renewed: `$1` sink, `$2` owner, `$3` its new end, `$4` now
/// (numbered placeholders, which both backends read). The row changes hands only when it is
/// the owner's or has run out; otherwise the asker is kept as the standby. Every `SET`
/// expression reads the row as it was before the update.
pub(crate) const TAKE_LEASE_SQL: &str = "
    INSERT INTO sink_leases (sink, owner, expires_at, standby, standby_until)
    VALUES ($1, $2, $3, NULL, NULL)
    ON CONFLICT (sink) DO UPDATE SET
        owner = CASE WHEN sink_leases.owner = excluded.owner OR sink_leases.expires_at <= $4
                     THEN excluded.owner ELSE sink_leases.owner END,
        expires_at = CASE WHEN sink_leases.owner = excluded.owner OR sink_leases.expires_at <= $4
                          THEN excluded.expires_at ELSE sink_leases.expires_at END,
        standby = CASE WHEN sink_leases.owner = excluded.owner OR sink_leases.expires_at <= $4
                       THEN (CASE WHEN sink_leases.standby = excluded.owner
                                  THEN NULL ELSE sink_leases.standby END)
                       ELSE excluded.owner END,
        standby_until = CASE WHEN sink_leases.owner = excluded.owner OR sink_leases.expires_at <= $4
                             THEN (CASE WHEN sink_leases.standby = excluded.owner
                                        THEN NULL ELSE sink_leases.standby_until END)
                             ELSE excluded.expires_at END
    RETURNING sink, owner, expires_at, standby, standby_until";

/// The columns of a lease, in the order both backends read them.
pub(crate) const LEASE_COLUMNS: &str = "sink, owner, expires_at, standby, standby_until";

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
