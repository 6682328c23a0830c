//! One database of either backend for the behavioural suites, so that the same test bodies run
//! against SQLite and PostgreSQL and the two backends can not drift apart.
//!
//! PostgreSQL comes from `MCP_AUDIT_TEST_PG`; each database is a schema of its own, dropped at
//! the end. Without the variable the PostgreSQL variants say they were skipped, except under
//! `CI=true`, where a missing server is a failure.
//!
//! Built without the crate's `postgres` feature, only the SQLite half exists.
//!
//! It also holds what the SQLite-only and PostgreSQL-only twins of a suite share (the events of
//! the tamper-evidence suites), so that the twins test the same thing.

#![allow(dead_code)]

use std::path::PathBuf;

use mcp_audit_core::{AuditEvent, EventKind, Outcome, SealedEvent};
use mcp_audit_store::{Append, Entry, Maintain, SqliteOptions, SqliteStore, Store, Summary};
#[cfg(feature = "postgres")]
use mcp_audit_store::{PgOptions, PgStore};

/// Event `i` of a tamper-evidence log (`integrity.rs`, `postgres_integrity.rs`): a call of
/// `tool{i}` by alice whose output holds the secret `s{i}`. Both suites edit these fields
/// behind the store's back and expect the same findings, so both build the same events.
pub fn tool_event(i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool{i}"))
        .user("alice")
        .input(serde_json::json!({"n": i}))
        .output(serde_json::json!({"personal": format!("s{i}")}))
        .build()
        .unwrap()
}

/// The erasure request of the tests: who and why, as `mcp-audit erase` takes them.
pub fn request() -> mcp_audit_store::erasure::ErasureRequest {
    mcp_audit_store::erasure::ErasureRequest {
        actor: "dpo".into(),
        auth_method: "test".into(),
        reason: "erasure request 17".into(),
    }
}

/// An event with every column that copies a hashed field set (`IndexedColumns`), completing
/// the event `intent`: what the column-by-column tamper tests edit.
pub fn event_with_every_column(intent: mcp_audit_core::EventId) -> AuditEvent {
    AuditEvent::tool_execution("search")
        .user("alice")
        .session("s-1")
        .correlation_id("c-1")
        .completes(intent)
        .server("files")
        .resource_type("document")
        .resource_id("d-1")
        .classification(mcp_audit_core::Classification::Confidential)
        .requires_review(true)
        .data_subject("subject-1")
        .expires_at("2030-01-01T00:00:00Z".parse().unwrap())
        .duration_us(1_200)
        .build()
        .unwrap()
}

/// For each column of [`event_with_every_column`] that verify holds to the hashed metadata,
/// beyond the six the older suites edit, an edit of the row `at` (an SQL condition) that gives
/// it another value: the column's name and the statement.
pub fn column_edits(backend: Backend, at: &str) -> Vec<(&'static str, String)> {
    let (new_id, no) = match backend {
        Backend::Sqlite => ("randomblob(16)", "0"),
        #[cfg(feature = "postgres")]
        Backend::Postgres => ("gen_random_uuid()", "false"),
    };
    [
        ("id", new_id.to_string()),
        ("action", "'READ'".into()),
        ("correlation_id", "'c-2'".into()),
        ("server_name", "NULL".into()),
        ("resource_type", "'user'".into()),
        ("resource_id", "'d-2'".into()),
        ("classification", "'public'".into()),
        ("requires_review", no.into()),
        ("data_subject_id", "'subject-2'".into()),
        ("expires_at", "expires_at + 1".into()),
        ("duration_us", "NULL".into()),
        ("completes", "NULL".into()),
        ("received_at", "received_at + 1".into()),
    ]
    .into_iter()
    .map(|(column, value)| {
        (
            column,
            format!("UPDATE events SET {column} = {value} WHERE {at}"),
        )
    })
    .collect()
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The log id every writer of a test database uses, so that, as with a SQLite file, writers
/// opened one after the other continue one log.
pub const LOG_ID: &str = "test-log";

/// The base URL of the test server, or `None` (after saying so) when the tests are skipped.
pub fn pg_base_url() -> Option<String> {
    match std::env::var("MCP_AUDIT_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("MCP_AUDIT_TEST_PG is not set, and CI must run the PostgreSQL tests");
            }
            eprintln!("skipped: MCP_AUDIT_TEST_PG is not set");
            None
        }
    }
}

#[cfg(feature = "postgres")]
/// A schema of its own in the test database, dropped with this value.
pub struct PgSchema {
    base: String,
    pub name: String,
    /// The URL whose sessions see only this schema.
    pub url: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    pub fn create(base: &str) -> PgSchema {
        let name = format!(
            "t_{}",
            mcp_audit_core::EventId::new().to_string().replace('-', "")
        );
        let mut admin = postgres::Client::connect(base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to MCP_AUDIT_TEST_PG: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        PgSchema {
            base: base.to_string(),
            name,
            url,
        }
    }

    /// A plain connection to the schema, for what the tests check or break behind the store.
    pub fn raw(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A test database of either backend, with a temporary directory beside it.
pub struct Db {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// The SQLite file (unused by PostgreSQL).
    pub path: PathBuf,
    #[cfg(feature = "postgres")]
    pub pg: Option<PgSchema>,
}

impl Db {
    /// A fresh database, or `None` when the backend's tests are skipped.
    pub fn new(backend: Backend) -> Option<Db> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        #[cfg(feature = "postgres")]
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create(&pg_base_url()?)),
        };
        Some(Db {
            backend,
            dir,
            path,
            #[cfg(feature = "postgres")]
            pg,
        })
    }

    pub fn sqlite() -> Db {
        Db::new(Backend::Sqlite).unwrap()
    }

    #[cfg(feature = "postgres")]
    fn pg(&self) -> &PgSchema {
        self.pg.as_ref().expect("a PostgreSQL database")
    }

    /// PostgreSQL options of this database's writers: the shared test log id.
    #[cfg(feature = "postgres")]
    pub fn pg_options(&self) -> PgOptions {
        PgOptions {
            log_id: Some(LOG_ID.to_string()),
            ..PgOptions::default()
        }
    }

    /// A PostgreSQL writer with `options`.
    #[cfg(feature = "postgres")]
    pub fn open_pg(&self, options: PgOptions) -> Result<PgStore, mcp_audit_store::StoreError> {
        PgStore::open(&self.pg().url, options)
    }

    /// A writer.
    pub fn open(&self) -> Box<dyn Store> {
        match self.backend {
            Backend::Sqlite => {
                Box::new(SqliteStore::open(&self.path, SqliteOptions::default()).unwrap())
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => Box::new(self.open_pg(self.pg_options()).unwrap()),
        }
    }

    /// A reader.
    pub fn reader(&self) -> Box<dyn Store> {
        match self.backend {
            Backend::Sqlite => {
                Box::new(SqliteStore::open_read_only(&self.path, SqliteOptions::default()).unwrap())
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => Box::new(PgStore::open_read_only(&self.pg().url).unwrap()),
        }
    }

    /// The one integer `sql` returns, read behind the store's back.
    pub fn count(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(&self.path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            #[cfg(feature = "postgres")]
            Backend::Postgres => self.pg().raw().query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// Runs `sql` behind the store's back (to break things on purpose).
    pub fn exec(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(&self.path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            #[cfg(feature = "postgres")]
            Backend::Postgres => self.pg().raw().batch_execute(sql).unwrap(),
        }
    }
}

/// Generates, for each named test body `fn name(db: Db)`, a `sqlite::name` and a
/// `postgres::name` test (the latter only with the `postgres` feature).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::backend::Db::new($crate::backend::Backend::Sqlite) {
                        super::$name(db);
                    }
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::backend::Db::new($crate::backend::Backend::Postgres) {
                        super::$name(db);
                    }
                }
            )*
        }
    };
}

/// Appends events sealed by the test straight to `store`, in one transaction, with the
/// consecutive seqs from `from` on: for suites that build a log without a recorder.
pub fn append_sealed(store: &mut impl Append, from: u64, sealed: &[SealedEvent]) {
    let entries: Vec<Entry<'_>> = sealed
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let seq = from + k as u64;
            Entry {
                seq,
                leaf_hash: s.leaf_hash(seq),
                sealed: s,
            }
        })
        .collect();
    store.append(&entries).unwrap();
}

/// `verify`'s findings on the SQLite file at `path`, opened as a reader opens it.
pub fn sqlite_findings(path: &std::path::Path) -> Vec<mcp_audit_store::integrity::Finding> {
    let mut reader = SqliteStore::open_read_only(path, SqliteOptions::default()).unwrap();
    mcp_audit_store::integrity::verify(&mut reader, None, &[], &mut |_| {})
        .unwrap()
        .findings
}

/// Copies the SQLite file at `path` to `copy` (`VACUUM INTO`) and applies `edit` to the copy
/// behind the store's back, so that each edit of a suite is judged alone against the same
/// clean file. Returns how many rows the edit changed.
pub fn edited_copy(path: &std::path::Path, copy: &std::path::Path, edit: &str) -> usize {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    rusqlite::Connection::open(copy)
        .unwrap()
        .execute(edit, [])
        .unwrap()
}

/// One cleanup run of the test log as `mcp-audit cleanup` makes it: plan, record through a
/// recorder of the log, then remove through a writer opened after it (see
/// `mcp_audit_store::expiry::Plan`). Returns the run's seq and what it deleted; `None` when
/// nothing had expired.
pub fn clean_up(db: &Db) -> Option<(u64, mcp_audit_store::CleanupReport)> {
    clean_up_log(&|| db.open())
}

/// [`clean_up`] of the log that `open` opens writers of.
pub fn clean_up_log(
    open: &dyn Fn() -> Box<dyn Store>,
) -> Option<(u64, mcp_audit_store::CleanupReport)> {
    use mcp_audit_store::{Recorder, RecorderConfig, expiry::Plan};
    let now = jiff::Timestamp::now();
    let plan = Plan::of(&mut open(), now).unwrap()?;
    let recorder = Recorder::start(open(), RecorderConfig::default()).unwrap();
    let seq = plan.record_in(&recorder).unwrap();
    recorder.shutdown().unwrap();
    let deleted = plan.remove(&mut open(), seq).unwrap();
    Some((seq, deleted))
}

/// A cleanup run of the SQLite file at `path` that removes through `store` (a writer held open
/// on it), recorded through a recorder of its own on the same file.
pub fn sqlite_clean_up(
    path: &std::path::Path,
    store: &mut (impl Maintain + mcp_audit_store::Read),
) -> mcp_audit_store::CleanupReport {
    use mcp_audit_store::{Recorder, RecorderConfig, expiry::Plan};
    let Some(plan) = Plan::of(store, jiff::Timestamp::now()).unwrap() else {
        return Default::default();
    };
    let writer = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    let recorder = Recorder::start(writer, RecorderConfig::default()).unwrap();
    let seq = plan.record_in(&recorder).unwrap();
    recorder.shutdown().unwrap();
    plan.remove(store, seq).unwrap()
}

/// The summary of `events` computed here, one by one, as an auditor would count them: every
/// operation once, so a pending intent (whose outcome is another event) not at all.
pub fn summary_of<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Summary {
    let mut s = Summary::default();
    let mut users = std::collections::BTreeSet::new();
    for e in events.into_iter().filter(|e| e.outcome != Outcome::Pending) {
        s.total_operations += 1;
        *s.by_kind.entry(e.kind).or_default() += 1;
        *s.by_outcome
            .entry(e.outcome.as_str().to_string())
            .or_default() += 1;
        s.requires_review += u64::from(e.compliance.requires_review == Some(true));
        users.extend(e.actor.user_id.clone());
        if let Some(user) = &e.actor.user_id {
            *s.by_user.entry(user.clone()).or_default() += 1;
        }
        s.first_activity = Some(s.first_activity.map_or(e.timestamp, |t| t.min(e.timestamp)));
        s.last_activity = Some(s.last_activity.map_or(e.timestamp, |t| t.max(e.timestamp)));
    }
    let count = |k: EventKind| s.by_kind.get(&k).copied().unwrap_or(0);
    s.tool_executions = count(EventKind::ToolExecution);
    s.resource_accesses = count(EventKind::ResourceAccess);
    s.context_operations = count(EventKind::ContextOperation);
    s.prompt_executions = count(EventKind::PromptExecution);
    s.admin_actions = count(EventKind::Admin);
    s.distinct_users = users.len() as u64;
    s
}

/// Whether any of the SQLite file's files (database, WAL, shared memory) holds `needle`.
pub fn files_hold(path: &std::path::Path, needle: &str) -> Vec<String> {
    let mut holding = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let bytes = std::fs::read(&file).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            holding.push(file);
        }
    }
    holding
}
