//! The embedded SQLite backend: one database file is one log.
//!
//! WAL mode with `synchronous = FULL`: every committed batch is durable, and readers in other
//! connections (or processes) never block the writer. See `docs/storage.md` for the schema and
//! why each index exists.

mod append;
#[cfg(test)]
mod commit_cost;
mod derived;
mod expiry;
mod keys;
mod log;
pub(crate) mod migrations;
mod packed;
mod pseudonyms;
mod read;
mod report;
mod schema;
mod sink_state;
mod text_tail;
mod totals;
mod witness;
mod writers;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use mcp_audit_core::pseudonym::Link;
use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone};
use crate::query::{
    CleanupReport, Filter, Page, Payloads, Query, StoredEvent, Summary, SummaryScope, ToolStats,
};
use crate::store::{
    Append, Audit, DerivedCheck, Entry, LineageRow, Log, LogEntry, Maintain, ProofEntry, Read,
    Scrub,
};

/// How to open a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long to wait for another process's lock before failing with
    /// [`StoreError::Locked`].
    pub lock_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            lock_timeout: Duration::from_secs(5),
        }
    }
}

/// How much of the database file a read-only connection maps into memory (SQLite's own
/// build caps it at 2 GiB).
const READER_MMAP: i64 = 1 << 30;

/// A SQLite database holding one audit log.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    log_id: String,
    lock_timeout: Duration,
    /// What the schema this connection works with has. A reader of an older file, which it
    /// may not migrate, reads it with what that file has.
    layout: Layout,
    /// Held once this writer has looked for intents to recover: tells later recoveries that
    /// its calls are in flight (see `writers`).
    writer_lock: Option<writers::WriterLock>,
    /// Whether no other recovering writer was alive when this one took its lock: then the
    /// pending intents are a crashed writer's, to recover.
    recovers: bool,
    /// Whether this store may write (a reader recovers nothing, and takes no writer's lock).
    writable: bool,
    /// How many events this store's last commit left past the lookup keys' reach (`None`: not
    /// known, as after opening or after an upkeep): lets [`Append::settle`] skip its look at
    /// the file when the tail is surely too short.
    known_tail: Option<u64>,
}

/// The parts of the schema that later versions added and that reads and writes use when they
/// are there.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Layout {
    /// `event_keys` (version 5 on): keyed reads go through it and the writer fills it; without
    /// it, the indexes such a file still has on `events` serve them.
    pub(super) bulk_keys: bool,
    /// `key_totals` (version 6 on): the writer keeps them with `event_keys`, and a session's
    /// or a user's summary reads them instead of every event (see `totals.rs`).
    pub(super) key_totals: bool,
    /// `expired_entries` (version 7 on): cleanup keeps a tombstone of every entry it removes,
    /// and the tree reads removed entries' leaves from there (see `crate::expiry`).
    pub(super) tombstones: bool,
    /// `events.received_at` (version 8 on): the writer fills it, `verify` compares it; a
    /// reader of an older file reads it as absent.
    pub(super) received_at: bool,
    /// `payload_text` (version 9 on): the full-text index searches read; kept by triggers on
    /// `payloads` and, from version 14, the writer's one insert per commit.
    pub(super) search: bool,
    /// `pseudonyms` (version 10 on): the writer stores the links its events carry.
    pub(super) pseudonyms: bool,
    /// `pseudonym_epoch` (version 12 on): erasures of the mapping count there.
    pub(super) pseudonym_epoch: bool,
    /// `witnessed` and `cosignatures` (version 13 on): a reader of an older file has none.
    pub(super) witness: bool,
    /// Version 14 on: the writer adds each commit's payloads to `payload_text` itself, in one
    /// statement; before, a trigger on `payloads` did (and still does in such a file).
    pub(super) text_in_bulk: bool,
    /// Version 17 on: the writer adds the words a few hundred events at a time, below
    /// `text_indexed_to`; searches read the tail past it apart (see `text_tail`).
    pub(super) text_behind: bool,
    /// Version 18 on: the writer stores `meta` in its dense form (`packed.rs`); readers decode
    /// either form in any file.
    pub(super) packed: bool,
    /// How many indexed events the writer lets gather past the totals before it adds them.
    pub(super) totals_every: u64,
}

impl Layout {
    fn of(version: i64) -> Layout {
        Layout {
            bulk_keys: version >= migrations::BULK_KEYS_VERSION,
            key_totals: version >= migrations::KEY_TOTALS_VERSION,
            tombstones: version >= migrations::TOMBSTONES_VERSION,
            received_at: version >= migrations::RECEIVED_AT_VERSION,
            search: version >= migrations::SEARCH_VERSION,
            pseudonyms: version >= migrations::PSEUDONYMS_VERSION,
            pseudonym_epoch: version >= migrations::PSEUDONYM_EPOCH_VERSION,
            witness: version >= migrations::WITNESS_VERSION,
            text_in_bulk: version >= migrations::TEXT_IN_BULK_VERSION,
            text_behind: version >= migrations::TEXT_BEHIND_VERSION,
            packed: version >= migrations::PACKED_VERSION,
            totals_every: totals::EVERY,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for writing, and migrates its schema
    /// to the latest version.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        Self::open_with(path.as_ref(), options, true, None)
    }

    /// Opens an existing database for reading only: works on read-only files, never migrates.
    pub fn open_read_only(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        Self::open_with(path.as_ref(), options, false, None)
    }

    /// Opens for writing but migrates only up to schema `version`: for tests of migrations
    /// from an older database.
    #[doc(hidden)]
    pub fn open_at_schema_version(
        path: impl AsRef<Path>,
        version: i64,
    ) -> Result<SqliteStore, StoreError> {
        Self::open_with(path.as_ref(), SqliteOptions::default(), true, Some(version))
    }

    fn open_with(
        path: &Path,
        options: SqliteOptions,
        writable: bool,
        schema_version: Option<i64>,
    ) -> Result<SqliteStore, StoreError> {
        let open_error = |e: rusqlite::Error| match map_err_at(path, e) {
            StoreError::Database(reason) => StoreError::Open {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        };
        let common = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let mut conn = if writable {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | common;
            // 0600 whatever the umask (see `files`); a failure here fails SQLite's open too,
            // which then says why in its words.
            let _ = crate::files::create_private_file(path);
            Connection::open_with_flags(path, flags).map_err(open_error)?
        } else {
            // A reader still opens read-write when it may (never creating the file) and is made
            // read-only by `query_only`: WAL recovery after a crashed writer needs write access
            // to the WAL index, which a connection opened read-only can not always get. A file
            // it may not write falls back to a read-only open.
            if !path.exists() {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    reason: "no such file".into(),
                });
            }
            let read_write = OpenFlags::SQLITE_OPEN_READ_WRITE | common;
            let read_only = OpenFlags::SQLITE_OPEN_READ_ONLY | common;
            let conn = Connection::open_with_flags(path, read_write)
                .or_else(|_| Connection::open_with_flags(path, read_only))
                .map_err(open_error)?;
            conn.pragma_update(None, "query_only", true)
                .map_err(open_error)?;
            conn
        };
        conn.busy_timeout(options.lock_timeout)
            .map_err(open_error)?;
        let mut store = SqliteStore {
            conn: Connection::open_in_memory().map_err(open_error)?,
            path: path.to_path_buf(),
            log_id: String::new(),
            lock_timeout: options.lock_timeout,
            layout: Layout::default(),
            writer_lock: None,
            recovers: false,
            writable,
            known_tail: None,
        };
        // The first real read: a file that is not a database fails here.
        let version = migrations::current_version(&conn).map_err(|e| store.map(e))?;
        if writable {
            // Rows are about 1.5 KB (metadata and payload JSON): larger pages keep them off
            // overflow pages. Takes effect only while the file is still empty.
            if version == 0 {
                conn.pragma_update(None, "page_size", 16_384)
                    .map_err(|e| store.map(e))?;
            }
            switch_to_wal(&conn, options.lock_timeout).map_err(|e| store.map(e))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| store.map(e))?;
            let target = schema_version.unwrap_or(migrations::latest_version());
            migrations::migrate_to(&mut conn, target).map_err(|e| store.refine(e))?;
            store.layout = Layout::of(target);
        } else if version > migrations::latest_version() {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: migrations::latest_version(),
            });
        } else if version == 0 {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: "no mcp-audit schema in this file (was anything ever recorded here?)"
                    .into(),
            });
        }
        if !writable {
            store.layout = Layout::of(version);
            // Readers map the file instead of copying each page out of the kernel with a
            // system call: `verify` of 300,000 events spent 0.15-0.5 s of system time in those
            // copies, 0.04 s mapped. SQLite maps no more than the file's size, and nothing of
            // ours shrinks the file (no VACUUM), so a mapped page is never cut away beneath it.
            conn.pragma_update(None, "mmap_size", READER_MMAP)
                .map_err(|e| store.map(e))?;
        }
        if !store.layout.pseudonyms {
            conn.pragma_update(None, "query_only", false)
                .and_then(|()| conn.execute_batch(pseudonyms::EMPTY_FOR_READERS))
                .and_then(|()| conn.pragma_update(None, "query_only", !writable))
                .map_err(|e| store.map(e))?;
        }
        conn.pragma_update(None, "cache_size", -32_000)
            .map_err(|e| store.map(e))?;
        store.conn = conn;
        store.log_id = store.load_or_create_log_id(writable)?;
        Ok(store)
    }

    fn load_or_create_log_id(&mut self, writable: bool) -> Result<String, StoreError> {
        match self.stored_log_id().map_err(|e| self.map(e))? {
            Some(id) => Ok(id),
            None if writable => {
                // Another process opening the new file at the same moment may insert its own
                // id first: the first one stays, and both read it back.
                let id = EventId::new().to_string();
                self.conn
                    .execute(
                        "INSERT OR IGNORE INTO log_state (key, value)
                         VALUES ('log_id', ?1), ('next_seq', '0')",
                        [&id],
                    )
                    .map_err(|e| self.map(e))?;
                let id = self.stored_log_id().map_err(|e| self.map(e))?;
                Ok(id.unwrap_or_default())
            }
            None => Ok(String::new()),
        }
    }

    /// The log id the file holds, if any yet.
    fn stored_log_id(&self) -> Result<Option<String>, rusqlite::Error> {
        self.conn
            .query_row(
                "SELECT value FROM log_state WHERE key = 'log_id'",
                [],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
    }

    /// Has this writer add the indexed events to the running totals once `events` of them
    /// have gathered, instead of [`totals::EVERY`]: for tests, which would otherwise need
    /// 65,536 events to see the totals move. Any value is correct: the bound that says how far
    /// the totals reach is in the file, moved with them.
    #[doc(hidden)]
    pub fn set_totals_every(&mut self, events: u64) {
        self.layout.totals_every = events;
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current_version(&self.conn).map_err(|e| self.map(e))
    }
    /// Registers on a connection of one's own two SQL functions: `mcp_audit_text(value)`, the
    /// text of a stored `meta` in either form, and `mcp_audit_pack(text)`, its dense form as the
    /// writer stores it. For tests that read or alter rows by hand, as someone with the file
    /// would; the store's own connections need neither.
    #[doc(hidden)]
    pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
        packed::register(conn)?;
        packed::register_pack(conn)
    }

    /// Bytes used by each table and index (`dbstat`), largest first: for the benchmark's
    /// index-size report.
    pub fn space_used(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            .map_err(|e| self.map(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| map_err_at(&self.path, e))
    }

    fn map(&self, e: rusqlite::Error) -> StoreError {
        match map_err_at(&self.path, e) {
            StoreError::Locked { .. } => StoreError::Locked {
                waited_ms: self.lock_timeout.as_millis() as u64,
            },
            other => other,
        }
    }

    /// Adds the path and wait time to errors mapped without them.
    fn refine(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Locked { .. } => StoreError::Locked {
                waited_ms: self.lock_timeout.as_millis() as u64,
            },
            StoreError::ReadOnly { .. } => StoreError::ReadOnly {
                path: self.path.clone(),
            },
            StoreError::Corrupt { reason, .. } => StoreError::Corrupt {
                path: self.path.clone(),
                reason,
            },
            other => other,
        }
    }
}

/// Puts the file in WAL mode (a no-op once it is). Switching a new file takes an exclusive
/// lock, and when other processes open the same new file at that moment SQLite can report
/// `SQLITE_BUSY` at once rather than through the busy handler (seen with eight processes on one
/// new file, about one start in 300): the switch is tried again until `timeout` has passed.
fn switch_to_wal(conn: &Connection, timeout: Duration) -> Result<(), rusqlite::Error> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Maps a SQLite error to the store's vocabulary, without a path.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    map_err_at(Path::new(""), e)
}

pub(crate) fn map_err_at(path: &Path, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        match code.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Locked { waited_ms: 0 };
            }
            ErrorCode::ReadOnly => {
                return StoreError::ReadOnly {
                    path: path.to_path_buf(),
                };
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return StoreError::Corrupt {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                };
            }
            ErrorCode::DiskFull | ErrorCode::SystemIoFailure => {
                return StoreError::Storage {
                    reason: e.to_string(),
                };
            }
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                return StoreError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                };
            }
            _ => {}
        }
    }
    StoreError::Database(e.to_string())
}

impl Log for SqliteStore {
    fn log_id(&self) -> &str {
        &self.log_id
    }

    fn next_seq(&mut self) -> Result<u64, StoreError> {
        schema::next_seq(&self.conn).map_err(|e| self.map(e))
    }
}

impl SqliteStore {
    /// Runs `read` with the reader's copy of the text index's tail filled, in one read
    /// transaction with it (see `text_tail`), when `filter` searches; as it is otherwise.
    fn searching<T>(
        &mut self,
        filter: &Filter,
        read: impl FnOnce(&mut SqliteStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if filter.search.is_none() || !self.layout.search {
            return read(self);
        }
        let own = self.conn.is_autocommit();
        if own {
            self.conn.execute_batch("BEGIN").map_err(|e| self.map(e))?;
        }
        // A reader is `query_only`, which refuses writes to its own `temp` tables too: lifted
        // for the statements that fill and empty the tail's copy and end the transaction,
        // never for the read.
        let result = self
            .on_temp(text_tail::fill_search_tail)
            .map_err(|e| self.map(e))
            .and_then(|()| read(self));
        let cleared = self.on_temp(|conn, _| text_tail::clear_search_tail(conn));
        // The transaction wrote the `temp` copy: its end is a write too.
        let ended = match (own, result.is_ok()) {
            (false, _) => Ok(()),
            (true, true) => self.on_temp(|conn, _| conn.execute_batch("COMMIT")),
            (true, false) => self.on_temp(|conn, _| conn.execute_batch("ROLLBACK")),
        };
        let value = result?;
        cleared.map_err(|e| self.map(e))?;
        ended.map_err(|e| self.map(e))?;
        Ok(value)
    }

    /// Runs `write`, which writes only this connection's `temp` tables, with `query_only`
    /// lifted on a reader.
    fn on_temp(
        &self,
        write: impl FnOnce(&Connection, bool) -> Result<(), rusqlite::Error>,
    ) -> Result<(), rusqlite::Error> {
        if self.writable {
            return write(&self.conn, self.layout.text_behind);
        }
        self.conn.pragma_update(None, "query_only", false)?;
        let result = write(&self.conn, self.layout.text_behind);
        self.conn.pragma_update(None, "query_only", true)?;
        result
    }

    /// Appends `entries`, checking the erasure count against `erasures_seen` when given (see
    /// [`Append::append_unless_erased`]), and notes the tail it left for [`Append::settle`].
    fn append_checked(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: Option<u64>,
    ) -> Result<(), StoreError> {
        match append::append(&mut self.conn, entries, self.layout, erasures_seen) {
            Ok(Ok(tail)) => {
                self.known_tail = Some(tail);
                Ok(())
            }
            Ok(Err(append::Refused::SeqTaken(next))) => Err(StoreError::SeqConflict { next }),
            Ok(Err(append::Refused::ErasedSince(count))) => Err(StoreError::ErasedSince { count }),
            Err(e) => Err(self.map(e)),
        }
    }

    /// Shows the identities behind the pseudonyms of `events` (see `crate::reveal`).
    fn reveal<'a>(
        &self,
        events: impl IntoIterator<Item = &'a mut StoredEvent>,
    ) -> Result<(), StoreError> {
        let mut revealer = crate::reveal::Revealer::default();
        for stored in events {
            revealer.reveal(&mut stored.event, &mut |p| {
                pseudonyms::identity(&self.conn, p).map_err(map_err)
            })?;
        }
        Ok(())
    }
}

impl Append for SqliteStore {
    fn append(&mut self, entries: &[Entry<'_>]) -> Result<(), StoreError> {
        self.append_checked(entries, None)
    }

    fn append_unless_erased(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: u64,
    ) -> Result<(), StoreError> {
        self.append_checked(entries, Some(erasures_seen))
    }

    fn pseudonym_links(&mut self) -> Result<Vec<Link>, StoreError> {
        pseudonyms::links(&self.conn, None).map_err(|e| self.map(e))
    }

    fn pseudonym_erasures(&mut self) -> Result<u64, StoreError> {
        if !self.layout.pseudonym_epoch {
            return Ok(0);
        }
        pseudonyms::erasures(&self.conn).map_err(|e| self.map(e))
    }

    fn settle(&mut self) -> Result<(), StoreError> {
        // What this writer's last commit left unindexed: too short a tail needs no look at the
        // file (two reads, each a transaction of its own, after every commit of one event).
        // Another process's appends can make the tail longer than known; they only delay the
        // upkeep, which the next look past the bound catches up.
        if !self.layout.bulk_keys || self.known_tail.is_some_and(|tail| tail < keys::SETTLE) {
            return Ok(());
        }
        // Upkeep never waits for another process's write lock: the writer is idle only until
        // its next event, which must not queue behind it. Busy now means later.
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| self.map(e))?;
        let result = append::settle(&mut self.conn, self.layout, append::Least::IDLE);
        self.conn
            .busy_timeout(self.lock_timeout)
            .map_err(|e| self.map(e))?;
        match result {
            Ok(_) => {
                self.known_tail = None;
                Ok(())
            }
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(()),
            Err(e) => Err(self.map(e)),
        }
    }

    fn settle_all(&mut self) -> Result<(), StoreError> {
        if !self.layout.text_behind {
            return Ok(());
        }
        self.known_tail = None;
        append::settle(&mut self.conn, self.layout, append::Least::STOPPING)
            .map(drop)
            .map_err(|e| self.map(e))
    }

    /// Intents without an outcome, when no other process that recovers is recording into
    /// this file; none when one is (its calls are in flight: see `writers`). A writer that
    /// asks holds its own share of that lock from then on.
    fn pending_without_outcome(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        if !self.writable {
            return read::pending_without_outcome(self);
        }
        if self.writer_lock.is_none() {
            match writers::claim(&self.path)? {
                writers::Claim::Alone(lock) => {
                    // The query runs before the lock is shared: no other writer starts (and
                    // no other recovery reads the same intents) in between.
                    let pending = read::pending_without_outcome(self);
                    self.writer_lock = Some(lock.share()?);
                    self.recovers = true;
                    return pending;
                }
                writers::Claim::Shared(lock) => {
                    self.writer_lock = Some(lock);
                    tracing::warn!(
                        "other proxies are recording into this file: their calls in flight are \
                         left alone, and intents left pending by a crash wait for a recovery \
                         that runs alone"
                    );
                }
            }
        }
        if self.recovers {
            read::pending_without_outcome(self)
        } else {
            Ok(Vec::new())
        }
    }

    fn leaf_range(&mut self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        expiry::leaves(self, from, to)
    }

    fn tree_nodes(
        &mut self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        log::tree_nodes(self, level, from, to)
    }

    fn put_tree_nodes(&mut self, nodes: &[Node]) -> Result<(), StoreError> {
        log::put_tree_nodes(self, nodes)
    }

    fn leaf_hashes(&mut self, from: u64) -> Result<Vec<Hash>, StoreError> {
        expiry::leaves(self, from, u64::MAX)
    }

    fn latest_checkpoint(&mut self) -> Result<Option<(u64, Hash)>, StoreError> {
        use rusqlite::OptionalExtension;
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)?;
        Ok(row.map(|(size, root)| (size as u64, Hash::from_slice(&root).unwrap_or_default())))
    }

    fn put_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO checkpoints (size, root, note, signed_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![size as i64, root.0.as_slice(), note, Timestamp::now().as_microsecond()],
            )
            .map(|_| ())
            .map_err(|e| self.map(e))
    }
}

impl SqliteStore {
    /// `filter` as this file's events table can answer it: a SQLite file holds one log and its
    /// events have no log column, so a filter naming this log narrows nothing (`Some` without
    /// the log), and one naming another log matches no event here (`None`).
    fn in_this_log<'f>(&self, filter: &'f Filter) -> Option<Cow<'f, Filter>> {
        match filter.log_id.as_deref() {
            None => Some(Cow::Borrowed(filter)),
            Some(log) if log == self.log_id => Some(Cow::Owned(Filter {
                log_id: None,
                ..filter.clone()
            })),
            Some(_) => None,
        }
    }
}

impl SqliteStore {
    /// A page of `query`, its payloads read or left out.
    fn page(&mut self, query: &Query, payloads: Payloads) -> Result<Page, StoreError> {
        query.filter.check_received_at(self.layout.received_at)?;
        query.filter.check_search(self.layout.search)?;
        let Some(filter) = self.in_this_log(&query.filter) else {
            return Ok(Page {
                events: Vec::new(),
                next: None,
            });
        };
        let mut page = match filter {
            Cow::Borrowed(_) => {
                self.searching(&query.filter, |store| read::query(store, query, payloads))
            }
            Cow::Owned(filter) => {
                let query = Query {
                    filter,
                    ..query.clone()
                };
                self.searching(&query.filter, |store| read::query(store, &query, payloads))
            }
        }?;
        self.reveal(&mut page.events)?;
        Ok(page)
    }
}

impl Read for SqliteStore {
    fn identity_of(&mut self, pseudonym: &str) -> Result<Option<String>, StoreError> {
        pseudonyms::identity(&self.conn, pseudonym).map_err(|e| self.map(e))
    }

    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        self.page(query, Payloads::Read)
    }

    fn list(&mut self, query: &Query) -> Result<Page, StoreError> {
        self.page(query, Payloads::LeftOut)
    }

    fn get(&mut self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        let mut found = read::get(self, id)?;
        self.reveal(found.as_mut())?;
        Ok(found)
    }

    fn count(&mut self, filter: &Filter) -> Result<u64, StoreError> {
        filter.check_received_at(self.layout.received_at)?;
        filter.check_search(self.layout.search)?;
        let Some(filter) = self.in_this_log(filter) else {
            return Ok(0);
        };
        self.searching(&filter, |store| read::count(store, &filter))
    }

    fn count_each(&mut self, filter: &Filter, operations: &[&str]) -> Result<Vec<u64>, StoreError> {
        filter.check_received_at(self.layout.received_at)?;
        filter.check_search(self.layout.search)?;
        let Some(filter) = self.in_this_log(filter) else {
            return Ok(vec![0; operations.len()]);
        };
        read::count_each(self, &filter, operations)
    }

    fn for_each(
        &mut self,
        filter: &Filter,
        sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        filter.check_received_at(self.layout.received_at)?;
        filter.check_search(self.layout.search)?;
        let Some(filter) = self.in_this_log(filter) else {
            return Ok(0);
        };
        self.searching(&filter, |store| {
            let conn = &store.conn;
            let mut revealer = crate::reveal::Revealer::default();
            read::for_each(store, &filter, &mut |mut stored| {
                revealer.reveal(&mut stored.event, &mut |p| {
                    pseudonyms::identity(conn, p).map_err(map_err)
                })?;
                sink(stored)
            })
        })
    }

    fn summary_of_log(
        &mut self,
        scope: &SummaryScope,
        log_id: Option<&str>,
    ) -> Result<Summary, StoreError> {
        crate::report::scope_filter(scope).check_received_at(self.layout.received_at)?;
        if log_id.is_some_and(|log| log != self.log_id) {
            return Ok(Summary::default());
        }
        let mut summary = report::summary(self, scope)?;
        crate::reveal::Revealer::default().reveal_users(&mut summary, &mut |p| {
            pseudonyms::identity(&self.conn, p).map_err(map_err)
        })?;
        Ok(summary)
    }

    fn tool_stats(&mut self, filter: &Filter) -> Result<Vec<ToolStats>, StoreError> {
        filter.check_received_at(self.layout.received_at)?;
        filter.check_search(self.layout.search)?;
        let Some(filter) = self.in_this_log(filter) else {
            return Ok(Vec::new());
        };
        self.searching(&filter, |store| report::tool_stats(store, &filter))
    }
}

impl Audit for SqliteStore {
    fn derived_check(
        &mut self,
        parallel: bool,
    ) -> Result<Option<Box<dyn DerivedCheck>>, StoreError> {
        let options = SqliteOptions {
            lock_timeout: self.lock_timeout,
        };
        let check = derived::Check::new(
            &self.conn,
            &self.layout,
            parallel,
            || SqliteStore::open_read_only(&self.path, options),
            |e| self.map(e),
        )?;
        Ok(Some(Box::new(check)))
    }

    fn tombstones(&mut self, from: u64, to: u64) -> Result<Vec<Tombstone>, StoreError> {
        expiry::tombstones(self, from, to)
    }

    fn scan_log(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LogEntry<'_>) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        log::scan_log(self, from, to, sink)
    }

    fn another_reader(&self) -> Result<Option<Box<dyn Audit>>, StoreError> {
        let options = SqliteOptions {
            lock_timeout: self.lock_timeout,
        };
        Ok(Some(Box::new(SqliteStore::open_read_only(
            &self.path, options,
        )?)))
    }

    fn checkpoints(&mut self) -> Result<Vec<(u64, String)>, StoreError> {
        log::checkpoints(self)
    }

    fn proof_entry(&mut self, id: EventId) -> Result<Option<ProofEntry>, StoreError> {
        log::proof_entry(self, id)
    }

    fn scan_lineage(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LineageRow<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        log::scan_lineage(self, from, to, sink)
    }
}

impl Maintain for SqliteStore {
    fn count_expired(&mut self, now: Timestamp) -> Result<CleanupReport, StoreError> {
        expiry::count_expired(self, now)
    }

    fn expired_entries(&mut self, now: Timestamp) -> Result<Vec<ExpiredEntry>, StoreError> {
        expiry::expired_entries(self, now)
    }

    fn remove_expired(&mut self, removal: &Removal<'_>) -> Result<CleanupReport, StoreError> {
        expiry::remove_expired(self, removal)
    }

    fn erase_payload(&mut self, id: EventId) -> Result<bool, StoreError> {
        log::erase_payload(self, id)
    }

    fn scrub(&mut self) -> Result<Scrub, StoreError> {
        log::scrub(self)
    }

    fn outcomes_of(&mut self, intent: EventId) -> Result<Vec<EventId>, StoreError> {
        log::outcomes_of(self, intent)
    }

    fn links_of(&mut self, identity: &str) -> Result<Vec<Link>, StoreError> {
        pseudonyms::links(&self.conn, Some(identity)).map_err(|e| self.map(e))
    }

    fn forget_pseudonyms(&mut self, pseudonyms: &[String]) -> Result<u64, StoreError> {
        if !self.layout.pseudonyms {
            return Ok(0);
        }
        pseudonyms::forget(&mut self.conn, pseudonyms, self.layout.pseudonym_epoch).map_err(map_err)
    }
}
