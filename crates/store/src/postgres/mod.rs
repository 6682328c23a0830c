//! The PostgreSQL backend: many writers (one log each) and their readers share one database.
//!
//! - Each writer appends to its own log (`log_id`), with its own dense seq and checkpoints; a
//!   session advisory lock on the log id refuses a second writer of the same log, and the seq
//!   check inside every append transaction would catch one anyway.
//! - Events are range-partitioned by month (`partitions`), so that retention drops whole months.
//! - While the server is unreachable, a writer either spools to a local file (`spool`, for
//!   `batch` durability) or waits up to a timeout (fail-closed, for `sync`). A spooling writer
//!   of a new log (or of one whose spool holds entries) even starts without the server: the
//!   schema is migrated and the spool replayed once it is reached.
//!
//! See `docs/storage.md` for the schema and why each index exists.

mod append;
mod bound;
mod errors;
mod expiry;
mod insert;
mod log;
mod migrations;
mod partitions;
mod pseudonyms;
mod read;
mod report;
mod sink_state;
mod spool;
mod statements;
mod witness;
mod write;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use mcp_audit_core::pseudonym::Link;
use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash};
use postgres::{Client, NoTls, Statement};

use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone};
use crate::query::{
    CleanupReport, Filter, Page, Payloads, Query, StoredEvent, Summary, SummaryScope, ToolStats,
};
use crate::store::{
    Append, Audit, Entry, LineageRow, Log, LogEntry, Maintain, ProofEntry, Read, Scrub,
};
pub(crate) use errors::map_err;
use errors::redact;
use partitions::Partitions;
use spool::Spool;
pub use spool::SpoolOptions;
use statements::Statements;

/// How to open a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The log this writer appends to. `None` starts a new log (a fresh UUIDv7). Give each
    /// writer its own: a second writer of a log that is being written is refused.
    pub log_id: Option<String>,
    /// How long a write waits for an unreachable server (reconnecting) before it fails with
    /// [`StoreError::Unavailable`]. With a spool, only a full spool waits.
    pub reconnect_timeout: Duration,
    /// Where batches wait while the server is unreachable (`batch` durability). `None`: writes
    /// wait for the server (fail-closed, `sync` durability).
    pub spool: Option<SpoolOptions>,
    /// How a batch's rows are sent. Binary `COPY` (the default) measured faster; the other is
    /// kept for the benchmark that compares them.
    pub write_method: WriteMethod,
}

/// How a batch's rows reach PostgreSQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriteMethod {
    /// Binary `COPY ... FROM STDIN`, one stream per table.
    #[default]
    Copy,
    /// One prepared multi-row `INSERT ... SELECT FROM unnest($1, ...)` per table.
    Insert,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            log_id: None,
            reconnect_timeout: Duration::from_secs(30),
            spool: None,
            write_method: WriteMethod::Copy,
        }
    }
}

/// How long to wait between two attempts to reach an unreachable server.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// How long a log held by another session is waited for before [`StoreError::LogInUse`].
const CLAIM_GRACE: Duration = Duration::from_millis(500);

/// Entries replayed from a spool per transaction.
const REPLAY_BATCH: usize = 4_096;

/// A connection to a PostgreSQL database holding any number of logs.
///
/// The client is synchronous (it runs its own small runtime): open and use it outside async
/// code, or in `spawn_blocking`, as with [`crate::Recorder::record`].
pub struct PgStore {
    config: postgres::Config,
    /// The URL without its password, for messages.
    display: String,
    client: Option<Client>,
    log_id: String,
    writable: bool,
    /// Whether this store holds `log_id`'s writer lock, and so may append to it: a writer
    /// does; a reader, a follower, an eraser and a witness sink (which writes cosignatures
    /// and cursors of whichever log it is pointed at, never its entries) do not.
    claims: bool,
    options: PgOptions,
    partitions: Partitions,
    spool: Option<Spool>,
    /// When the server was last tried while unreachable.
    last_attempt: Option<Instant>,
    /// The first seq and the leaf hashes of this writer's last appended batch: the writer's
    /// Merkle frontier asks for exactly these after each commit, and no one else appends to
    /// this log, so they need not be read back.
    last_batch: Option<(u64, Vec<Hash>)>,
    /// Whether the schema has `expired_entries`: a reader of an older schema, which it does
    /// not migrate, reads no tombstones.
    tombstones: bool,
    /// Whether the schema has `events.received_at`: a reader of an older schema reads every
    /// receive time as absent.
    received_at: bool,
    /// Whether the schema has the payloads' text index (and its functions), which a search
    /// reads.
    search: bool,
    /// Whether this writer has migrated the schema: at open, or (when it started without the
    /// server) on the first connection.
    migrated: bool,
    /// A log this writer started and has not appended to yet: its next seq is 0 even while
    /// the server can not say so (a writer that started without the server).
    new_log: bool,
    /// The statements the readers ask on every request, prepared once per connection.
    statements: Statements,
    /// Whether entries are being spooled in the outage under way: warned once per outage, not
    /// once per batch.
    spooling: bool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) for writing: migrates the schema,
    /// claims the log, and replays any spool left behind by an earlier run.
    pub fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let new_log = options.log_id.is_none();
        let mut store = PgStore::configure(url, options, true)?;
        store.new_log = new_log;
        let log_id = store.log_id.clone();
        let Some(options) = store.options.spool.clone() else {
            let connected = store.client().map(drop);
            connected.map_err(|e| store.open_error(e))?;
            return Ok(store);
        };
        match store.client().map(drop) {
            Ok(_) => {
                store.replay_others(&options)?;
                let mut own = Spool::open(&options, &log_id)?;
                if !own.is_empty() {
                    store.drain(&mut own)?;
                }
                store.spool = Some(own);
            }
            Err(StoreError::Unavailable { reason, .. }) => {
                // Without the server, the log's end is known only for a new log, or from
                // what the spool holds: an existing log with an empty spool can not start.
                let own = Spool::open(&options, &log_id)?;
                if own.is_empty() && !new_log {
                    return Err(store.open_error(StoreError::Unavailable {
                        waited_ms: 0,
                        reason: format!(
                            "{reason} (a writer of an existing log starts offline only on a \
                             spool that holds its end)"
                        ),
                    }));
                }
                tracing::warn!(
                    reason,
                    spool = %options.dir.display(),
                    "database unreachable at start: recording into the local spool until it is back"
                );
                store.spooling = true;
                store.last_attempt = Some(Instant::now());
                store.spool = Some(own);
            }
            Err(e) => return Err(store.open_error(e)),
        }
        Ok(store)
    }

    /// Connects for reading only: never migrates, and the session refuses writes.
    pub fn open_read_only(url: &str) -> Result<PgStore, StoreError> {
        let mut store = PgStore::connect(url, PgOptions::default(), false)?;
        store.log_id = String::new();
        let display = store.display.clone();
        let client = store.client()?;
        let version = migrations::current_version(client)?;
        if version > migrations::latest_version() {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: migrations::latest_version(),
            });
        }
        if version == 0 {
            return Err(StoreError::Corrupt {
                path: PathBuf::from(display),
                reason: "no mcp-audit schema in this database (was anything ever recorded here?)"
                    .into(),
            });
        }
        store.tombstones = version >= migrations::TOMBSTONES_VERSION;
        store.received_at = version >= migrations::RECEIVED_AT_VERSION;
        store.search = version >= migrations::SEARCH_VERSION;
        Ok(store)
    }

    /// A read-only store on `config`, pointed at no log yet.
    fn connect_with(config: postgres::Config, display: &str) -> Result<PgStore, StoreError> {
        let mut store = PgStore {
            config,
            display: display.to_string(),
            client: None,
            log_id: String::new(),
            writable: false,
            claims: false,
            options: PgOptions::default(),
            partitions: Partitions::default(),
            spool: None,
            last_attempt: None,
            last_batch: None,
            tombstones: true,
            received_at: true,
            search: true,
            migrated: false,
            new_log: false,
            spooling: false,
            statements: Statements::default(),
        };
        store.client()?;
        Ok(store)
    }

    fn connect(url: &str, options: PgOptions, writable: bool) -> Result<PgStore, StoreError> {
        let mut store = PgStore::configure(url, options, writable)?;
        let connected = store.client().map(drop);
        connected.map_err(|e| store.open_error(e))?;
        Ok(store)
    }

    /// A store on `url`, not connected yet.
    fn configure(url: &str, options: PgOptions, writable: bool) -> Result<PgStore, StoreError> {
        let display = redact(url);
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: PathBuf::from(&display),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A server that vanished without closing the connection (a host down, a network cut)
        // must fail a write within seconds, to be spooled or waited through, not hang it.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(10));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name("mcp-audit");
        Ok(PgStore {
            config,
            display,
            client: None,
            log_id: options
                .log_id
                .clone()
                .unwrap_or_else(|| EventId::new().to_string()),
            writable,
            claims: writable,
            options,
            partitions: Partitions::default(),
            spool: None,
            last_attempt: None,
            last_batch: None,
            tombstones: true,
            received_at: true,
            search: true,
            migrated: false,
            new_log: false,
            spooling: false,
            statements: Statements::default(),
        })
    }

    /// A failure to connect at open, as the open error it is.
    fn open_error(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Unavailable { reason, .. } => StoreError::Open {
                path: PathBuf::from(&self.display),
                reason,
            },
            other => other,
        }
    }

    /// The connection and `sql` prepared on it (once per connection: see [`Statements`]).
    pub(super) fn prepared(&mut self, sql: &str) -> Result<(&mut Client, Statement), StoreError> {
        self.client()?;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable {
                waited_ms: 0,
                reason: "not connected".into(),
            })?;
        let statement = self.statements.get(client, sql)?;
        Ok((client, statement))
    }

    /// The connection, reconnecting when it was lost. A writer re-claims its log on reconnect.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            self.statements.clear();
            let mut client = self.config.connect(NoTls).map_err(map_err)?;
            if !self.writable {
                client
                    .batch_execute("SET default_transaction_read_only = on")
                    .map_err(map_err)?;
            }
            if self.writable && !self.migrated {
                migrations::migrate(&mut client)?;
                self.migrated = true;
            }
            self.partitions.forget();
            self.client = Some(client);
            if self.claims && !self.log_id.is_empty() {
                let log_id = self.log_id.clone();
                if let Err(e) = self.claim(&log_id) {
                    self.client = None;
                    return Err(e);
                }
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Database("no connection".into()))
    }

    /// Runs `f` on the connection; a lost connection is dropped, to be re-made next time.
    fn with_client<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = f(self.client()?);
        if matches!(result, Err(StoreError::Unavailable { .. })) {
            self.client = None;
        }
        result
    }

    /// Takes the session advisory lock of `log_id`: refused while another session holds it.
    /// A session that just ended may still hold it for a moment (the server notices a closed
    /// connection asynchronously), hence a short grace period before refusing.
    fn claim(&mut self, log_id: &str) -> Result<(), StoreError> {
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Database("no connection".into()))?;
        let started = Instant::now();
        loop {
            let got: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))",
                    &[&log_id],
                )
                .map_err(map_err)?
                .get(0);
            if got {
                return Ok(());
            }
            if started.elapsed() >= CLAIM_GRACE {
                return Err(StoreError::LogInUse {
                    log_id: log_id.to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether no session holds `log_id` (its writer has stopped): takes and at once gives back
    /// its advisory lock.
    fn log_is_idle(&mut self, log_id: &str) -> Result<bool, StoreError> {
        self.with_client(|c| {
            let free: bool = c
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))",
                    &[&log_id],
                )
                .map_err(map_err)?
                .get(0);
            if free {
                c.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(current_schema() || '/' || $1, 0))",
                    &[&log_id],
                )
                .map_err(map_err)?;
            }
            Ok(free)
        })
    }

    /// The ids of every log in the database, in order.
    pub fn logs(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT log_id FROM logs ORDER BY log_id", &[])
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Points a store that claims no log (a reader, or one of [`PgStore::open_unclaimed`]) at
    /// one log: the log that verification, proofs and consistency proofs read, and whose
    /// cosignatures and witness cursors an unclaimed store writes (a reader starts at none;
    /// queries see every log regardless). Appending to it stays refused.
    pub fn read_log(&mut self, log_id: &str) -> Result<(), StoreError> {
        if self.claims {
            return Err(StoreError::Database(
                "a writer appends to its own log; open a reader to read another".into(),
            ));
        }
        self.log_id = log_id.to_string();
        Ok(())
    }

    /// The logs that hold an event expired before `now`: each needs a cleanup run of its own
    /// (see [`crate::expiry`]).
    pub fn logs_with_expired(&mut self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        expiry::logs_with_expired(self, now)
    }

    /// The URL this store was opened with, without its password.
    pub fn url(&self) -> &str {
        &self.display
    }
}

/// Gives the log back at once, rather than when the server notices the closed connection, so
/// that the next writer of the log can start right away.
impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(client) = self.client.as_mut()
            && self.claims
            && !client.is_closed()
        {
            let _ = client.execute(
                "SELECT pg_advisory_unlock(hashtextextended(current_schema() || '/' || $1, 0))",
                &[&self.log_id],
            );
        }
    }
}

impl Log for PgStore {
    fn log_id(&self) -> &str {
        &self.log_id
    }

    fn next_seq(&mut self) -> Result<u64, StoreError> {
        let spooled = self.spool.as_ref().and_then(Spool::next_seq);
        let log_id = self.log_id.clone();
        match (self.db_next_seq(&log_id), spooled) {
            (Ok(db), Some(s)) => Ok(db.max(s)),
            (Ok(db), None) => Ok(db),
            (Err(StoreError::Unavailable { .. }), Some(s)) => Ok(s),
            (Err(StoreError::Unavailable { .. }), None) if self.new_log => Ok(0),
            (Err(e), _) => Err(e),
        }
    }
}

impl PgStore {
    /// Appends `entries`, checking the erasure count against `erasures_seen` inside the
    /// transaction when given (see [`Append::append_unless_erased`]); spooled entries are not
    /// checked (the count is the server's, out of reach then).
    fn append_checked(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: Option<u64>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // A store that claims no log (a reader, a follower, an eraser) appends to none: with
        // no log id it would make a log without a name.
        if !self.claims || self.log_id.is_empty() {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from(&self.display),
            });
        }
        self.last_batch = None;
        self.append_or_wait(entries, erasures_seen)?;
        self.new_log = false;
        // Spooled entries are not in the database yet: only a batch written there is kept.
        if self.spool.as_ref().is_none_or(Spool::is_empty) {
            self.last_batch = Some((
                entries[0].seq,
                entries.iter().map(|e| e.leaf_hash).collect(),
            ));
        }
        Ok(())
    }
}

impl Append for PgStore {
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

    fn spool_bytes(&self) -> Option<u64> {
        self.spool.as_ref().map(Spool::bytes)
    }

    fn leaf_hashes(&mut self, from: u64) -> Result<Vec<Hash>, StoreError> {
        // Spooled entries are part of the log: get them in first when the server is back.
        // Until then the log, as far as the database holds it, has no new entries: the
        // writer's frontier catches up with them after the replay.
        if !self.try_drain(false)? {
            return Ok(Vec::new());
        }
        if let Some((first, hashes)) = &self.last_batch
            && from >= *first
        {
            let skip = ((from - first) as usize).min(hashes.len());
            return Ok(hashes[skip..].to_vec());
        }
        expiry::leaves(self, from, u64::MAX)
    }

    fn latest_checkpoint(&mut self) -> Result<Option<(u64, Hash)>, StoreError> {
        let log_id = self.log_id.clone();
        self.with_client(|c| {
            let row = c
                .query_opt(
                    "SELECT size, root FROM checkpoints WHERE log_id = $1
                      ORDER BY size DESC LIMIT 1",
                    &[&log_id],
                )
                .map_err(map_err)?;
            Ok(row.map(|r| {
                (
                    r.get::<_, i64>(0) as u64,
                    Hash::from_slice(r.get::<_, &[u8]>(1)).unwrap_or_default(),
                )
            }))
        })
    }

    fn put_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<(), StoreError> {
        let log_id = self.log_id.clone();
        self.with_client(|c| {
            c.execute(
                "INSERT INTO checkpoints (log_id, size, root, note, signed_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (log_id, size) DO UPDATE
                   SET root = EXCLUDED.root, note = EXCLUDED.note, signed_at = EXCLUDED.signed_at",
                &[
                    &log_id,
                    &(size as i64),
                    &root.0.as_slice(),
                    &note,
                    &Timestamp::now().as_microsecond(),
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
    }

    /// Intents without an outcome in this writer's own log and in logs no writer holds (their
    /// writer stopped): those of a live proxy are still in flight, not incomplete.
    fn pending_without_outcome(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        let pending = read::pending_without_outcome(self)?;
        let mut idle: std::collections::HashMap<String, bool> = Default::default();
        let mut out = Vec::with_capacity(pending.len());
        for event in pending {
            let stopped = match idle.get(&event.log_id) {
                Some(&known) => known,
                None => {
                    let known =
                        event.log_id == self.log_id || self.log_is_idle(&event.log_id.clone())?;
                    idle.insert(event.log_id.clone(), known);
                    known
                }
            };
            if stopped {
                out.push(event);
            }
        }
        Ok(out)
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

    fn pseudonym_links(&mut self) -> Result<Vec<Link>, StoreError> {
        match self.client() {
            Ok(client) => pseudonyms::links(client, None),
            // A writer that starts during an outage meets its identities afresh.
            Err(StoreError::Unavailable { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn pseudonym_erasures(&mut self) -> Result<u64, StoreError> {
        // On the connection the writer has, never a new one: during an outage the append
        // path decides when to try the server again (a spooling writer, every RETRY_EVERY),
        // and a connect per batch for this read would stall the spooling.
        match self.client.as_mut() {
            Some(client) if !client.is_closed() => pseudonyms::erasures(client),
            _ => Err(StoreError::Unavailable {
                waited_ms: 0,
                reason: "not connected".into(),
            }),
        }
    }
}

impl PgStore {
    /// A page of `query`, its payloads read or left out, its pseudonyms revealed.
    fn page(&mut self, query: &Query, payloads: Payloads) -> Result<Page, StoreError> {
        query.filter.check_received_at(self.received_at)?;
        query.filter.check_search(self.search)?;
        let mut page = read::query(self, query, payloads)?;
        let mut revealer = crate::reveal::Revealer::default();
        // One round trip for the page's pseudonyms, not one per user on it.
        let asked = revealer.unknown(page.events.iter().map(|s| &s.event));
        let found = if asked.is_empty() {
            Default::default()
        } else {
            let (client, statement) = self.prepared(pseudonyms::IDENTITIES)?;
            pseudonyms::identities(client, &statement, &asked)?
        };
        revealer.learn(asked, found);
        let client = self.client()?;
        for stored in &mut page.events {
            revealer.reveal(&mut stored.event, &mut |p| pseudonyms::identity(client, p))?;
        }
        Ok(page)
    }
}

impl Read for PgStore {
    fn identity_of(&mut self, pseudonym: &str) -> Result<Option<String>, StoreError> {
        pseudonyms::identity(self.client()?, pseudonym)
    }

    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        self.page(query, Payloads::Read)
    }

    fn list(&mut self, query: &Query) -> Result<Page, StoreError> {
        self.page(query, Payloads::LeftOut)
    }

    fn get(&mut self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        let mut found = read::get(self, id)?;
        if let Some(stored) = found.as_mut() {
            let client = self.client()?;
            crate::reveal::Revealer::default()
                .reveal(&mut stored.event, &mut |p| pseudonyms::identity(client, p))?;
        }
        Ok(found)
    }

    fn count(&mut self, filter: &Filter) -> Result<u64, StoreError> {
        filter.check_received_at(self.received_at)?;
        filter.check_search(self.search)?;
        read::count(self, filter)
    }

    fn count_each(&mut self, filter: &Filter, operations: &[&str]) -> Result<Vec<u64>, StoreError> {
        filter.check_received_at(self.received_at)?;
        filter.check_search(self.search)?;
        read::count_each(self, filter, operations)
    }

    fn for_each(
        &mut self,
        filter: &Filter,
        sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        filter.check_received_at(self.received_at)?;
        filter.check_search(self.search)?;
        read::for_each(self, filter, sink)
    }

    fn summary_of_log(
        &mut self,
        scope: &SummaryScope,
        log_id: Option<&str>,
    ) -> Result<Summary, StoreError> {
        crate::report::scope_filter(scope).check_received_at(self.received_at)?;
        let mut summary = report::summary(self, scope, log_id)?;
        let client = self.client()?;
        crate::reveal::Revealer::default()
            .reveal_users(&mut summary, &mut |p| pseudonyms::identity(client, p))?;
        Ok(summary)
    }

    fn tool_stats(&mut self, filter: &Filter) -> Result<Vec<ToolStats>, StoreError> {
        filter.check_received_at(self.received_at)?;
        filter.check_search(self.search)?;
        report::tool_stats(self, filter)
    }
}

impl Audit for PgStore {
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

    /// A reader of the same log on a connection of its own.
    fn another_reader(&self) -> Result<Option<Box<dyn Audit>>, StoreError> {
        let mut reader = PgStore::connect_with(self.config.clone(), &self.display)?;
        reader.log_id = self.log_id.clone();
        reader.tombstones = self.tombstones;
        reader.received_at = self.received_at;
        reader.search = self.search;
        Ok(Some(Box::new(reader)))
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

impl Maintain for PgStore {
    fn count_expired(&mut self, now: Timestamp) -> Result<CleanupReport, StoreError> {
        expiry::count_expired(self, now)
    }

    fn expired_entries(&mut self, now: Timestamp) -> Result<Vec<ExpiredEntry>, StoreError> {
        expiry::expired_entries(self, now)
    }

    fn remove_expired(&mut self, removal: &Removal<'_>) -> Result<CleanupReport, StoreError> {
        if !self.writable {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from(&self.display),
            });
        }
        let report = expiry::remove_expired(self, removal);
        self.partitions.forget();
        report
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
        pseudonyms::links(self.client()?, Some(identity))
    }

    fn forget_pseudonyms(&mut self, forgotten: &[String]) -> Result<u64, StoreError> {
        if !self.writable {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from(&self.display),
            });
        }
        pseudonyms::forget(self.client()?, forgotten)
    }
}
