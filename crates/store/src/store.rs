//! The storage traits every backend implements (SQLite and PostgreSQL), split by who calls
//! what:
//!
//! - [`Log`]: which log, and how long it is: every role but reading needs it.
//! - [`Append`]: the writer thread (`Recorder`, group commit, checkpointer, crash recovery).
//! - [`Read`]: the readers (query, show, summary, stats, export, the proxies' lookups).
//! - [`Audit`]: `verify` and `prove`, which read every entry and the backend's derived data.
//! - [`Maintain`]: cleanup and erasure, which delete from the stored log.
//!
//! [`Store`] is all of them (with a blanket impl), for callers that need everything or pick
//! the backend at run time (`Box<dyn Store>`). A function takes the narrowest role it uses, so
//! that what it may do to the log reads from its signature.
//!
//! The trait is synchronous on purpose: the writer runs on its own thread, readers in async code
//! use `spawn_blocking`, and a synchronous trait keeps both backends free of runtime choices.

use jiff::Timestamp;
use mcp_audit_core::pseudonym::Link;
use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash, SealedEvent};

use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone};
use crate::integrity::Finding;
pub use crate::lineage::{LineageRow, LineageTable};
use crate::query::{
    CleanupReport, Filter, Page, Query, StoredEvent, Summary, SummaryScope, ToolStats,
};
use crate::witnessing::Witnessing;

/// An event with its place in the log, as the writer hands it to [`Append::append`].
#[derive(Debug)]
pub struct Entry<'a> {
    pub seq: u64,
    pub leaf_hash: Hash,
    pub sealed: &'a SealedEvent,
}

/// One entry as verification reads it, borrowed from the backend's row: everything its leaf is
/// computed from, and the indexed copies of hashed fields that queries filter on (which verify
/// compares with the hashed metadata, so that a query cannot be misled by an edited column).
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    pub seq: u64,
    /// The canonical metadata JSON (hashed into the leaf).
    pub meta: &'a str,
    pub commitment: &'a [u8],
    /// The leaf hash as stored.
    pub leaf_hash: &'a [u8],
    /// Salt and canonical personal JSON (as stored bytes: only hashed, never parsed, so not
    /// checked for UTF-8 on verification's hot path); `None` once erased.
    pub payload: Option<(&'a [u8], &'a [u8])>,
    pub columns: IndexedColumns<'a>,
}

/// The columns of an entry that repeat hashed metadata fields: every one a query filters,
/// groups or sorts on, or that `show` and `cleanup` find an event by. One cell per column of
/// the column table (`write/event_columns.rs`), at its position there, so that a column added
/// to the table is read and compared without a field here. Text as stored, unchecked for
/// UTF-8: it is only compared with the metadata's, and checking it cost verification's hot
/// path more than the comparison.
#[derive(Debug, Clone, Copy)]
pub struct IndexedColumns<'a> {
    pub(crate) cells: [Cell<'a>; crate::event_columns::EVENT_COLUMNS.len()],
    /// The first of these columns whose stored value has a type no writer gives it (SQLite
    /// keeps whatever it is given): reported as that column's edit.
    pub malformed: Option<&'static str>,
}

/// One column's value as a log scan read it, borrowed from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Not read: a column verify checks otherwise (`seq`, `meta`, the hashes), or one the
    /// schema read has no such column for (a reader of a file or database not migrated yet,
    /// e.g. `received_at`): then there is no copy to compare.
    Absent,
    Null,
    /// Integers, times in microseconds since the Unix epoch, booleans as 0 and 1.
    Int(i64),
    /// Text and bytes (an id's 16 bytes).
    Bytes(&'a [u8]),
}

impl<'a> IndexedColumns<'a> {
    /// No column read yet.
    pub(crate) const EMPTY: IndexedColumns<'static> = IndexedColumns {
        cells: [Cell::Absent; crate::event_columns::EVENT_COLUMNS.len()],
        malformed: None,
    };

    fn cell(&self, at: usize) -> Cell<'a> {
        self.cells[at]
    }

    fn bytes(&self, at: usize) -> Option<&'a [u8]> {
        match self.cell(at) {
            Cell::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn int(&self, at: usize) -> Option<i64> {
        match self.cell(at) {
            Cell::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The event id's 16 bytes.
    pub fn id(&self) -> &'a [u8] {
        self.bytes(const { position("id") }).unwrap_or_default()
    }

    pub fn kind(&self) -> &'a [u8] {
        self.bytes(const { position("kind") }).unwrap_or_default()
    }

    pub fn operation(&self) -> &'a [u8] {
        self.bytes(const { position("operation") })
            .unwrap_or_default()
    }

    pub fn outcome(&self) -> &'a [u8] {
        self.bytes(const { position("outcome") })
            .unwrap_or_default()
    }

    pub fn user_id(&self) -> Option<&'a [u8]> {
        self.bytes(const { position("user_id") })
    }

    pub fn session_id(&self) -> Option<&'a [u8]> {
        self.bytes(const { position("session_id") })
    }

    pub fn resource_id(&self) -> Option<&'a [u8]> {
        self.bytes(const { position("resource_id") })
    }

    /// Microseconds since the Unix epoch.
    pub fn ts(&self) -> i64 {
        self.int(const { position("ts") }).unwrap_or_default()
    }

    /// Anything but a stored zero is true, as the writers' readers take it.
    pub fn requires_review(&self) -> bool {
        self.cell(const { position("requires_review") }) != Cell::Int(0)
    }
}

/// The position of a column in the column table, fixed at compile time (each use is in a
/// `const` block: no search on the hot path).
const fn position(name: &str) -> usize {
    crate::event_columns::position(name)
}

/// An event's row as an inclusion proof needs it.
#[derive(Debug, Clone)]
pub struct ProofEntry {
    pub seq: u64,
    pub meta: String,
    pub commitment: Hash,
    /// Salt and canonical personal JSON; `None` once erased.
    pub payload: Option<(Vec<u8>, String)>,
}

/// What [`Maintain::scrub`] could do about the erased bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scrub {
    /// They are gone from every file the backend keeps.
    Done,
    /// They may remain somewhere until later: where, and until when, in a sentence.
    Pending(String),
}

/// A backend's check of its derived data (see [`Audit::derived_check`]), made before the
/// entries are read: it holds what the backend had derived up to then.
pub trait DerivedCheck: Send {
    /// A fresh tally for one range of the log, which `verify` feeds that range's entries in seq
    /// order on one thread.
    fn tally(&self) -> Box<dyn Tally>;

    /// The findings, once every range's tally is complete: the derived data as stored compared
    /// with what the tallies derived from the entries' own columns.
    fn finish(self: Box<Self>, tallies: Vec<Box<dyn Tally>>) -> Result<Vec<Finding>, StoreError>;
}

/// One range's part of a [`DerivedCheck`].
pub trait Tally: Send {
    /// Adds one entry, as read (its columns are held to its hashed metadata by `verify`).
    fn entry(&mut self, entry: &LogEntry<'_>);

    /// For the check that made it, to take its sums back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// What every role but reading works on: one log, by id and size. A backend value is one
/// connection's worth of state; the writer owns one, and each reader opens its own.
pub trait Log: Send + 'static {
    /// The id of the log this store appends to.
    fn log_id(&self) -> &str;

    /// The sequence number the next appended entry gets (the log's size).
    fn next_seq(&mut self) -> Result<u64, StoreError>;
}

/// What the writer thread needs (the recorder, group commit, the checkpointer and crash
/// recovery): appending, the store's idle upkeep, and the tree and checkpoints it extends. The
/// tree's reads are here because the writer reads them too, to check that the log still
/// extends its last checkpoint before signing the next.
pub trait Append: Log {
    /// Appends `entries` (consecutive seqs from [`Log::next_seq`]) in one durable transaction:
    /// all or none. When another process appended to the log first, writes nothing and returns
    /// [`StoreError::SeqConflict`] with the log's next seq, for the writer to renumber.
    fn append(&mut self, entries: &[Entry<'_>]) -> Result<(), StoreError>;

    /// As [`Append::append`], after checking that the pseudonym mapping's erasure count (see
    /// [`Append::pseudonym_erasures`]) is still `erasures_seen`: when it moved, writes nothing
    /// and returns [`StoreError::ErasedSince`]. The backends read the count inside the
    /// commit's own transaction, with the statement that reads the log's counter: a commit of
    /// one event (one call in flight) paid a statement, and on PostgreSQL a round trip, of its
    /// own for it. This default reads it first; a count it can not read is not checked (the
    /// batch's own write reports the store's failure).
    fn append_unless_erased(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: u64,
    ) -> Result<(), StoreError> {
        match self.pseudonym_erasures() {
            Ok(count) if count != erasures_seen => Err(StoreError::ErasedSince { count }),
            _ => self.append(entries),
        }
    }

    /// Upkeep for a moment when the writer has nothing queued: SQLite adds the lookup keys of
    /// its most recent events to their index (see the `sqlite::keys` module). Never needed for
    /// correctness; a failure is logged by the writer and the next append goes on as usual.
    fn settle(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Upkeep before the writer stops: SQLite adds the words of the events its text index does
    /// not reach yet (see the `sqlite::text_tail` module), so that a file at rest has its whole
    /// index. Never needed for correctness (searches read the tail apart); a failure is logged.
    fn settle_all(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Bytes waiting in a local spool for the database to come back (0: none wait); `None`
    /// for a store that never spools. Read by the writer after each commit, for metrics: it
    /// must not do I/O.
    fn spool_bytes(&self) -> Option<u64> {
        None
    }

    /// The leaf hashes from seq `from` on, in order (the writer's Merkle frontier catches up
    /// with them, including entries other processes appended), a removed entry's from its
    /// tombstone.
    fn leaf_hashes(&mut self, from: u64) -> Result<Vec<Hash>, StoreError>;

    /// The size and root of the latest stored checkpoint.
    fn latest_checkpoint(&mut self) -> Result<Option<(u64, Hash)>, StoreError>;

    /// Stores a signed checkpoint of `size` entries with root `root`.
    fn put_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<(), StoreError>;

    /// The leaf hashes of seqs `from..to` that exist, in order, a removed entry's from its
    /// tombstone (fewer than asked when entries are missing).
    fn leaf_range(&mut self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError>;

    /// The stored interior nodes of `level` (a multiple of [`mcp_audit_core::tiles::TILE_HEIGHT`])
    /// with index in `from..to`, as (index, hash), in order; missing ones are left out.
    fn tree_nodes(
        &mut self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError>;

    /// Stores interior nodes (replacing equal keys). They are a cache that proofs read instead
    /// of rehashing the log; one lost in a crash is recomputed when next needed.
    fn put_tree_nodes(&mut self, nodes: &[Node]) -> Result<(), StoreError>;

    /// `pending` events (recorded intents) that no outcome event completes: operations that
    /// were in flight when a recorder stopped. Crash recovery records them as `incomplete`.
    fn pending_without_outcome(&mut self) -> Result<Vec<StoredEvent>, StoreError>;

    /// Every row of the pseudonym mapping (of every log: the mapping is the database's), for
    /// the recorder's cache at start (see `mcp_audit_core::pseudonym`).
    fn pseudonym_links(&mut self) -> Result<Vec<Link>, StoreError>;

    /// How many times rows of the pseudonym mapping were deleted (subject erasures), read by
    /// the writer before each batch to keep its recorder's cache in step (see
    /// `crate::erasure_watch`). A store without the count answers 0 (nothing to follow).
    fn pseudonym_erasures(&mut self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// What readers need: queries, summaries and export. Not tied to one log (on PostgreSQL
/// queries read every log), so no [`Log`] bound: a read-only server holds a `Read` only.
pub trait Read: Send + 'static {
    /// One page of events, newest first.
    fn query(&mut self, query: &Query) -> Result<Page, StoreError>;

    /// As [`Read::query`], each event's payload left out and not decoded (see
    /// [`crate::Payloads::LeftOut`]), `payload_left_out` telling where a stored one was: for a
    /// list that shows no payload. A backend that cannot leave them out reads them.
    fn list(&mut self, query: &Query) -> Result<Page, StoreError> {
        self.query(query)
    }

    /// One event by id.
    fn get(&mut self, id: EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// How many events match.
    fn count(&mut self, filter: &Filter) -> Result<u64, StoreError>;

    /// How many events match `filter` with each of `operations` (in their order; the
    /// filter's own `operation` is replaced): in one statement where the backend can, for a
    /// check asked on every request (the console's tokens).
    fn count_each(&mut self, filter: &Filter, operations: &[&str]) -> Result<Vec<u64>, StoreError> {
        operations
            .iter()
            .map(|operation| {
                self.count(&Filter {
                    operation: Some(operation.to_string()),
                    ..filter.clone()
                })
            })
            .collect()
    }

    /// Every matching event, oldest first, handed to `sink` one at a time (for export).
    fn for_each(
        &mut self,
        filter: &Filter,
        sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;

    fn summary(&mut self, scope: &SummaryScope) -> Result<Summary, StoreError> {
        self.summary_of_log(scope, None)
    }

    /// As [`Read::summary`], of the events of the log `log_id` only (`None`: every log). A
    /// scope names no log, and on PostgreSQL a session or window often spans several writers'
    /// logs, of which a reader may want one.
    fn summary_of_log(
        &mut self,
        scope: &SummaryScope,
        log_id: Option<&str>,
    ) -> Result<Summary, StoreError>;

    /// Per-tool statistics over the matching `tool_execution` events, most called first.
    fn tool_stats(&mut self, filter: &Filter) -> Result<Vec<ToolStats>, StoreError>;

    /// The identity `pseudonym` stands for, while the mapping has it (`None` once erased):
    /// for readers of a pseudonym outside the user and data-subject ids (a hold's scope).
    fn identity_of(&mut self, pseudonym: &str) -> Result<Option<String>, StoreError>;
}

/// What `verify` and `prove` read beyond the tree: every entry with its column copies, the
/// tombstones, the stored checkpoints, the lineage rows, and the backend's own derived data
/// (indexes and totals it keeps beside the events).
pub trait Audit: Log {
    /// A check of the data the backend derives from its entries and keeps beside them (SQLite:
    /// its lookup index and running totals per session and user), which queries and summaries
    /// trust: `verify` feeds it every entry it reads and adds its findings. `parallel` says
    /// that `verify` reads the log on several threads, so the check may take one of its own.
    /// `None` when the backend keeps no such data. Each backend checks its own, so that the
    /// verifier knows nothing of how a backend speeds up its reads.
    fn derived_check(
        &mut self,
        _parallel: bool,
    ) -> Result<Option<Box<dyn DerivedCheck>>, StoreError> {
        Ok(None)
    }

    /// The tombstones of this log with seq in `from..to`, by seq.
    fn tombstones(&mut self, from: u64, to: u64) -> Result<Vec<Tombstone>, StoreError>;

    /// Every entry of this log with seq in `from..to`, by seq, handed to `sink` one at a time
    /// (verification reads the whole log, so rows are lent, not copied). Returns how many.
    fn scan_log(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LogEntry<'_>) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;

    /// Another read-only handle on the same log, for work split across threads (verification
    /// reads the two halves of a large log at once). `None` where the backend cannot.
    fn another_reader(&self) -> Result<Option<Box<dyn Audit>>, StoreError> {
        Ok(None)
    }

    /// Every stored checkpoint of this log as (size, signed note), smallest first.
    fn checkpoints(&mut self) -> Result<Vec<(u64, String)>, StoreError>;

    /// The entry of event `id`, as an inclusion proof needs it.
    fn proof_entry(&mut self, id: EventId) -> Result<Option<ProofEntry>, StoreError>;

    /// Every lineage and compliance row of this log (the `data_sources` and
    /// `compliance_events` tables, copies of the hashed metadata's lists) with seq in
    /// `from..to`, each table's rows by seq and ordinal, handed to `sink` one at a time.
    fn scan_lineage(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LineageRow<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// What changes the stored log without appending to it: cleanup of expired events and erasure
/// of payloads (each also records itself through the writer, see [`crate::expiry`] and
/// [`crate::erasure`]).
pub trait Maintain: Log {
    /// Counts what a cleanup at `now` would delete: the events whose `expires_at` is before it,
    /// with their payload, lineage and compliance rows (on PostgreSQL, of every log).
    fn count_expired(&mut self, now: Timestamp) -> Result<CleanupReport, StoreError>;

    /// This log's entries whose `expires_at` is before `now`, by seq: what a cleanup run
    /// removes (see [`crate::expiry`]).
    fn expired_entries(&mut self, now: Timestamp) -> Result<Vec<ExpiredEntry>, StoreError>;

    /// In one transaction: for every entry of this log in `removal.ranges` whose `expires_at` is
    /// still before `removal.now`, keeps a [`Tombstone`] (seq, leaf hash, `removal.removed_by`)
    /// and deletes the event with its payload, lineage and compliance rows. Nothing else is
    /// ever deleted, so that every removed entry has a tombstone naming the cleanup event that
    /// lists it.
    fn remove_expired(&mut self, removal: &Removal<'_>) -> Result<CleanupReport, StoreError>;

    /// Deletes the payload (salt and personal fields) of event `id`; the leaf stays valid.
    /// Returns whether there was one to delete. The bytes are overwritten where the backend
    /// can (SQLite: `secure_delete`); [`Maintain::scrub`] then clears the copies a journal keeps.
    fn erase_payload(&mut self, id: EventId) -> Result<bool, StoreError>;

    /// After erasures: makes the erased bytes leave the backend's files as far as it can, and
    /// says where they may remain.
    fn scrub(&mut self) -> Result<Scrub, StoreError>;

    /// The ids of the events that complete the intent `intent` (its outcomes; normally one),
    /// whichever log they are in: the records of one call that an erasure erases together.
    fn outcomes_of(&mut self, intent: EventId) -> Result<Vec<EventId>, StoreError>;

    /// The rows of the pseudonym mapping whose identity is `identity` (in any field).
    fn links_of(&mut self, identity: &str) -> Result<Vec<Link>, StoreError>;

    /// Deletes the mapping's rows of `pseudonyms` (the bytes overwritten where the backend
    /// can; [`Maintain::scrub`] clears a journal's copies); returns how many there were.
    fn forget_pseudonyms(&mut self, pseudonyms: &[String]) -> Result<u64, StoreError>;
}

/// A whole backend: every role. Callers that need all of them, or choose the backend at run
/// time (`Box<dyn Store>`), hold a `Store`; functions that need one role take only that one.
pub trait Store: Append + Read + Audit + Maintain + Witnessing {}

impl<T: Append + Read + Audit + Maintain + Witnessing + ?Sized> Store for T {}
