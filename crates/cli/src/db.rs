//! Where the database is and how to open it: the `--db`, `--lock-timeout` and `--log-id`
//! flags of every command, and the `--spool-dir` and `--reconnect-timeout` flags of the
//! commands that write (a read command's `--help` does not list them).
//!
//! `--db` is a SQLite file, or a `postgres://` URL: every command works on both, through the
//! store trait (`Box<dyn Store>`). What only PostgreSQL needs is in [`pg`], which a build
//! without the `postgres` feature replaces by a clear refusal.

mod pg;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use mcp_audit_core::EventId;
use mcp_audit_store::{Durability, Log, SqliteOptions, SqliteStore, Store};

use mcp_audit_server::time as time_arg;

/// Where to find the database: every command's flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// The audit database: a SQLite file, or a PostgreSQL URL (`postgres://user@host/db`)
    /// shared by many proxies
    #[arg(
        long,
        global = true,
        env = "MCP_AUDIT_DB",
        default_value = "./mcp-audit.db",
        value_name = "PATH|URL"
    )]
    pub db: PathBuf,

    /// Which log: a PostgreSQL database holds one per writer. A command that writes appends to
    /// it (default: a new log per run; a log another process is writing is refused); `show`,
    /// `verify`, `checkpoint`, `consistency` and `cleanup` read it alone; `query`, `summary`,
    /// `stats` and `export` read only its events (every log without it). A SQLite file holds
    /// one log: naming another is an error
    #[arg(long, global = true, env = "MCP_AUDIT_LOG_ID", value_name = "ID")]
    pub log_id: Option<String>,

    /// How long to wait for another process's lock on the database before failing
    /// (`500ms`, `5s`)
    #[arg(long, global = true, default_value = "5s", value_parser = time_arg::parse_duration, value_name = "DURATION")]
    pub lock_timeout: Duration,
}

/// The PostgreSQL writer's flags of a command that may record with `batch` durability (the
/// proxy): where records wait while the server is away, and how long a write waits for it.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Writing to PostgreSQL")]
pub struct WritingArgs {
    /// PostgreSQL: how long a write waits for an unreachable server before failing (`sync`
    /// durability, or a full spool) [default: 30s]
    #[arg(long, value_parser = time_arg::parse_duration, value_name = "DURATION")]
    pub reconnect_timeout: Option<Duration>,

    /// PostgreSQL with `batch` durability: where records wait while the server is unreachable
    /// (env MCP_AUDIT_SPOOL_DIR) [default: ./mcp-audit-spool]
    // The variable is read in `Db::from_args`, not by clap: these flags are accepted both
    // before and after the command, and a variable read at both places would override a flag.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

impl WritingArgs {
    /// These flags where given, else `other`'s: a command's own flag wins over one given
    /// before the command.
    pub fn or(self, other: WritingArgs) -> WritingArgs {
        WritingArgs {
            reconnect_timeout: self.reconnect_timeout.or(other.reconnect_timeout),
            spool_dir: self.spool_dir.or(other.spool_dir),
        }
    }
}

/// The PostgreSQL writer's flag of a command that writes with `sync` durability.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Writing to PostgreSQL")]
pub struct ReconnectArgs {
    /// PostgreSQL: how long a write waits for an unreachable server before failing
    /// [default: 30s]
    #[arg(long, value_parser = time_arg::parse_duration, value_name = "DURATION")]
    pub reconnect_timeout: Option<Duration>,
}

impl From<ReconnectArgs> for WritingArgs {
    fn from(args: ReconnectArgs) -> WritingArgs {
        WritingArgs {
            reconnect_timeout: args.reconnect_timeout,
            spool_dir: None,
        }
    }
}

/// How long a PostgreSQL write waits for the server when no flag says.
const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Where `batch` records wait for the server when no flag says.
const DEFAULT_SPOOL_DIR: &str = "./mcp-audit-spool";

/// The database the user pointed at.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    lock_timeout: Duration,
    log_id: Option<String>,
    /// PostgreSQL only (unread in a build without the `postgres` feature).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    spool_dir: PathBuf,
    /// PostgreSQL only, as `spool_dir`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    reconnect_timeout: Duration,
}

impl Db {
    pub fn new(
        path: PathBuf,
        lock_timeout: Duration,
        log_id: Option<String>,
        spool_dir: PathBuf,
        reconnect_timeout: Duration,
    ) -> Db {
        Db {
            path,
            lock_timeout,
            log_id,
            spool_dir,
            reconnect_timeout,
        }
    }

    /// The database of the command line's flags.
    pub fn from_args(database: DatabaseArgs, writing: WritingArgs) -> Db {
        Db::new(
            database.db,
            database.lock_timeout,
            database.log_id,
            writing
                .spool_dir
                .or_else(|| std::env::var_os("MCP_AUDIT_SPOOL_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL_DIR)),
            writing
                .reconnect_timeout
                .unwrap_or(DEFAULT_RECONNECT_TIMEOUT),
        )
    }

    /// The database for messages: the path, or the URL without its password.
    pub fn name(&self) -> String {
        let Some(url) = self.postgres_url() else {
            return self.path.display().to_string();
        };
        match url.split_once("://").and_then(|(scheme, rest)| {
            let (user, host) = rest.split_once('@')?;
            let user = user.split(':').next().unwrap_or_default();
            Some(format!("{scheme}://{user}@{host}"))
        }) {
            Some(redacted) => redacted,
            None => url.to_string(),
        }
    }

    /// What `proxy` and `serve` say at start about each existing file that holds records, or
    /// a key, and that group or others may read or write: the SQLite database and its `-wal`,
    /// `-shm` and `-writers` files, the PostgreSQL spool's files, and `keys` (a signing key).
    /// New files are created `0600`, but one made before (or by hand) keeps its mode, and it
    /// holds what tools were given and returned, or what signs the log.
    pub fn exposure_warnings(&self, keys: &[PathBuf]) -> Vec<String> {
        let mut files = if self.postgres_url().is_some() {
            mcp_audit_store::files::files_under(&self.spool_dir)
        } else {
            mcp_audit_store::files::sqlite_files(&self.path)
        };
        files.extend(keys.iter().cloned());
        mcp_audit_store::files::exposed_files(&files)
            .into_iter()
            .map(|(path, mode)| {
                format!(
                    "{} is open to other users (mode {mode:03o}); the audit trail belongs to its owner alone: chmod 600 {}",
                    path.display(),
                    path.display()
                )
            })
            .collect()
    }

    /// The PostgreSQL URL, when `--db` is one.
    fn postgres_url(&self) -> Option<&str> {
        let text = self.path.to_str()?;
        (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
    }

    fn options(&self) -> SqliteOptions {
        SqliteOptions {
            lock_timeout: self.lock_timeout,
        }
    }

    /// Opens (creating and migrating as needed) for commands that write. On PostgreSQL, a
    /// writer that records with `batch` durability spools to `--spool-dir` while the server
    /// is unreachable; any other waits for it (fail-closed).
    pub fn open_writable(&self, durability: Durability) -> anyhow::Result<Box<dyn Store>> {
        self.open_writable_log(durability, self.log_id.clone())
    }

    /// A second writer in the same process (`serve`'s ingest recorder beside the console's):
    /// on SQLite the same file, whose one log keeps its sequence in the database; on
    /// PostgreSQL a new log of its own, since two writers of one log would race for its seqs.
    pub fn open_another_writable(&self) -> anyhow::Result<Box<dyn Store>> {
        self.open_writable_log(Durability::Sync, None)
    }

    /// Records one event durably, for a command whose whole effect is that record (a token, a
    /// legal hold, an export served): a record the audit level leaves out is an error, since
    /// the command would otherwise have done nothing while saying it had. `what` names it in
    /// errors ("the hold event").
    pub fn record_one(&self, event: mcp_audit_core::AuditEvent, what: &str) -> anyhow::Result<()> {
        self.record_with(what, |recorder| {
            recorder.record(event).map(|receipt| ((), receipt))
        })
    }

    /// As [`Db::record_one`], for a caller that records through the recorder itself (a hold,
    /// whose scope is named by a pseudonym the recorder draws): `record` returns what it
    /// made and the receipt of its one event.
    pub fn record_with<T>(
        &self,
        what: &str,
        record: impl FnOnce(
            &mcp_audit_store::Recorder,
        )
            -> Result<(T, mcp_audit_store::Receipt), mcp_audit_store::RecordError>,
    ) -> anyhow::Result<T> {
        use anyhow::Context;
        use mcp_audit_store::{Receipt, Recorder, RecorderConfig};
        let recorder = Recorder::start(
            self.open_writable(Durability::Sync)?,
            RecorderConfig::default(),
        )?;
        let recorded = record(&recorder);
        let stopped = recorder.shutdown();
        let (made, receipt) = recorded.with_context(|| format!("recording {what}"))?;
        match receipt {
            Receipt::Durable { .. } | Receipt::Queued { .. } => {}
            Receipt::Skipped => bail!("the audit level leaves {what} out: nothing was done"),
        }
        stopped.with_context(|| format!("recording {what}"))?;
        Ok(made)
    }

    /// As [`Db::open_writable`], appending to the PostgreSQL log `log_id` (a new one if `None`).
    fn open_writable_log(
        &self,
        durability: Durability,
        log_id: Option<String>,
    ) -> anyhow::Result<Box<dyn Store>> {
        Ok(match self.postgres_url() {
            Some(url) => pg::writer(self, url, durability, log_id)?,
            None => self.sqlite_log(SqliteStore::open(&self.path, self.options())?)?,
        })
    }

    /// Opens an existing database for writing, for commands that change what is there
    /// (`cleanup`): they have nothing to do in a new, empty database.
    pub fn open_existing_writable(&self) -> anyhow::Result<Box<dyn Store>> {
        self.must_exist()?;
        self.open_writable(Durability::Sync)
    }

    /// The store `erase` deletes payloads with, beside the recorder that records the
    /// erasures, and `serve --witness-key` keeps its witness state in: on PostgreSQL a
    /// connection that claims no log (`--log-id`'s log is the recorder's, and a log has one
    /// writer), since neither appends anything.
    pub fn open_eraser(&self) -> anyhow::Result<Box<dyn Store>> {
        self.must_exist()?;
        match self.postgres_url() {
            Some(url) => pg::eraser(url),
            None => self.open_writable_log(Durability::Sync, None),
        }
    }

    /// A writer for a command's own record of what it did (`verify`'s result): on PostgreSQL
    /// the log `pg_log_id` (not `--log-id`, which names the log it read and which a proxy may
    /// be writing: a log has one writer); on SQLite the file's one log.
    pub fn open_own_log(&self, pg_log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        self.must_exist()?;
        self.open_writable_log(Durability::Sync, Some(pg_log_id.to_string()))
    }

    /// Opens an existing database for commands that only read.
    pub fn open_read_only(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(url) = self.postgres_url() {
            return pg::reader(url);
        }
        self.open_sqlite_read_only()
    }

    /// What a sink reads the logs and keeps its cursors with (`follow`, `sink status`, the
    /// sinks of `proxy` and `serve`): the SQLite file's one log, or every log of the
    /// PostgreSQL database. It writes only the sinks' own tables.
    pub fn open_follower(&self) -> anyhow::Result<Box<dyn mcp_audit_store::SinkState>> {
        if let Some(url) = self.postgres_url() {
            return pg::follower(url);
        }
        self.must_exist()?;
        Ok(Box::new(SqliteStore::open(&self.path, self.options())?))
    }

    /// What a witness sink reaches its logs through: the SQLite file's one log (opened as any
    /// other writer of it is), or every log of the PostgreSQL database through a connection
    /// that claims none (a log's writer lock stays with the proxy that records into it).
    pub fn open_witness_logs(
        &self,
    ) -> anyhow::Result<Box<dyn mcp_audit_sinks::witness::logs::WitnessLogs>> {
        if let Some(url) = self.postgres_url() {
            return pg::witness_logs(url);
        }
        Ok(Box::new(mcp_audit_sinks::witness::logs::OneLog(
            self.open_existing_writable()?,
        )))
    }

    /// The log `--log-id` (or `MCP_AUDIT_LOG_ID`) names, if any: what the read commands
    /// (`query`, `summary`, `stats`, `export`) narrow to. On PostgreSQL they read every log
    /// without it; a SQLite file holds one log, and [`Db::open_read_only`] refuses a
    /// `--log-id` naming another.
    pub fn log_id(&self) -> Option<&str> {
        self.log_id.as_deref()
    }

    fn open_sqlite_read_only(&self) -> anyhow::Result<Box<dyn Store>> {
        self.must_exist()?;
        self.sqlite_log(SqliteStore::open_read_only(&self.path, self.options())?)
    }

    /// A SQLite file holds one log: `--log-id` naming it is honoured (a no-op), naming any
    /// other is refused rather than ignored, which would show one log's events as another's.
    fn sqlite_log(&self, store: SqliteStore) -> anyhow::Result<Box<dyn Store>> {
        if let Some(asked) = &self.log_id
            && asked != store.log_id()
        {
            let holds = match store.log_id() {
                "" => "no log yet".to_string(),
                id => format!("one log, {id}"),
            };
            bail!(
                "--log-id {asked} is not the log of {}, which holds {holds} (a SQLite file holds one log: leave --log-id out, and MCP_AUDIT_LOG_ID unset)",
                self.path.display(),
            );
        }
        Ok(Box::new(store))
    }

    /// A reader of one log, for an event named by seq: `log` (as `LOG:SEQ` names it), else
    /// `--log-id`'s, else the database's only log. A SQLite file's one log must be the one named.
    pub fn open_seq_log(&self, log: Option<&str>) -> anyhow::Result<Box<dyn Store>> {
        let Some(url) = self.postgres_url() else {
            let store = self.open_read_only()?;
            if let Some(log) = log
                && log != store.log_id()
            {
                bail!(
                    "{} holds one log, {}, not {log}",
                    self.path.display(),
                    store.log_id()
                );
            }
            return Ok(store);
        };
        let log = match log {
            Some(log) => log.to_string(),
            None => self.required_log_id().map_err(|e| {
                anyhow::anyhow!("{e:#}, or name the event as LOG:SEQ (as `query` prints it)")
            })?,
        };
        pg::log_reader(url, &log)
    }

    /// Whether `--db` is a PostgreSQL URL (many logs) rather than a SQLite file (one log).
    pub fn is_postgres(&self) -> bool {
        self.postgres_url().is_some()
    }

    /// The logs `verify` checks: the one log of a SQLite file (named `""` here); each log of a
    /// PostgreSQL database, or only `--log-id`'s when given. Open each with [`Db::open_log`].
    pub fn log_ids(&self) -> anyhow::Result<Vec<String>> {
        let Some(url) = self.postgres_url() else {
            return Ok(vec![String::new()]);
        };
        Ok(match &self.log_id {
            Some(id) => vec![id.clone()],
            None => pg::logs(url)?,
        })
    }

    /// A reader of one log of [`Db::log_ids`] (one connection at a time, however many logs).
    pub fn open_log(&self, log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        let Some(url) = self.postgres_url() else {
            return self.open_read_only();
        };
        pg::log_reader(url, log_id)
    }

    /// A reader of one log, for proofs between checkpoints: PostgreSQL needs `--log-id`.
    pub fn open_log_reader(&self) -> anyhow::Result<Box<dyn Store>> {
        let Some(url) = self.postgres_url() else {
            return self.open_read_only();
        };
        let log_id = self.required_log_id()?;
        pg::log_reader(url, &log_id)
    }

    /// A store on the log that holds event `id`, for its inclusion proof.
    pub fn open_event_log(&self, id: EventId) -> anyhow::Result<Box<dyn Store>> {
        let Some(url) = self.postgres_url() else {
            // Writable, so that tree nodes a proof had to recompute are stored again.
            return self.open_existing_writable();
        };
        match pg::event_log_reader(url, id)? {
            Some(store) => Ok(store),
            None => bail!("no event with id {id} in {}", self.name()),
        }
    }

    /// The writer of one existing log, for `checkpoint`: on PostgreSQL `--log-id`'s, or the
    /// database's only log (a log that a running proxy writes is refused: it signs its own with
    /// `--checkpoint-key`).
    pub fn open_log_writer(&self) -> anyhow::Result<Box<dyn Store>> {
        if !self.is_postgres() {
            return self.open_existing_writable();
        }
        let log_id = self.required_log_id()?;
        self.open_writable_log(Durability::Sync, Some(log_id))
    }

    /// The logs a cleanup at `now` visits: the one log of a SQLite file (named `""`); on
    /// PostgreSQL `--log-id`'s, or every log that holds an expired event.
    pub fn logs_with_expired(&self, now: jiff::Timestamp) -> anyhow::Result<Vec<String>> {
        let Some(url) = self.postgres_url() else {
            return Ok(vec![String::new()]);
        };
        Ok(match &self.log_id {
            Some(id) => vec![id.clone()],
            None => pg::logs_with_expired(url, now)?,
        })
    }

    /// A store to plan the cleanup of one log of [`Db::logs_with_expired`] with: on PostgreSQL a
    /// reader (the writer lock is taken only to record and to remove); a SQLite file is opened
    /// for writing, so that a file cleanup could not change is refused before anything is done.
    pub fn open_cleanup_planner(&self, log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        if self.is_postgres() {
            return self.open_log(log_id);
        }
        self.open_existing_writable()
    }

    /// The writer of the existing log `log_id` of [`Db::logs_with_expired`].
    pub fn open_writer_of(&self, log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        if !self.is_postgres() {
            return self.open_existing_writable();
        }
        self.open_writable_log(Durability::Sync, Some(log_id.to_string()))
    }

    /// The one PostgreSQL log a command works on: `--log-id`'s, or, when the database holds
    /// exactly one, that one. With several, the error lists them.
    fn required_log_id(&self) -> anyhow::Result<String> {
        if let Some(id) = &self.log_id {
            return Ok(id.clone());
        }
        let logs = match self.postgres_url() {
            Some(url) => pg::logs(url)?,
            None => Vec::new(),
        };
        match logs.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!(
                "no log in {} yet: nothing has been recorded there",
                self.name()
            ),
            many => {
                const SHOWN: usize = 10;
                let mut names = many
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if many.len() > SHOWN {
                    names.push_str(&format!(" and {} more", many.len() - SHOWN));
                }
                bail!(
                    "{} holds {} logs ({names}): name one with --log-id (or MCP_AUDIT_LOG_ID)",
                    self.name(),
                    many.len()
                )
            }
        }
    }

    /// Only `log` creates a database: anywhere else a mistyped `--db` must be an error, not an
    /// empty answer (and a stray new file). A PostgreSQL database is checked by opening it.
    fn must_exist(&self) -> anyhow::Result<()> {
        if self.postgres_url().is_none() && !self.path.exists() {
            bail!(
                "database {} does not exist (record events with `mcp-audit log`, or point --db or MCP_AUDIT_DB at one)",
                self.path.display()
            );
        }
        Ok(())
    }
}
