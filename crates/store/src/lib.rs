//! The mcp-audit storage layer: how audit events become durable rows, and how they are read back.
//!
//! - [`Recorder`]: the cheap, cloneable handle that applications and the proxy record through,
//!   from threads or async code. It runs the policy and seals each event in the caller's thread.
//! - the writer (behind [`Recorder`]): one thread per log; group commit (one durable transaction
//!   per batch); dense sequence numbers that are the Merkle leaf indices.
//! - [`Store`]: a backend, which is each of its roles: [`Append`] (the writer), [`Read`] (the
//!   readers), [`Audit`] (`verify`, `prove`) and [`Maintain`] (cleanup, erasure), on one
//!   [`Log`]; [`SqliteStore`] is the embedded default, `PgStore` the shared one (many writers,
//!   one database).
//! - [`Query`], [`Filter`], [`Summary`], [`ToolStats`]: what readers ask for and get.
//! - [`expiry`]: cleanup that removes expired events and keeps the log provable (a tombstone per
//!   removed entry, the run recorded in the log).
//! - [`integrity`]: checkpoints, `verify`, `prove`; [`erasure`]: erasing a call's personal data,
//!   each erasure recorded in the log.
//! - [`SinkState`]: what a sink that follows the log keeps here (a cursor per sink and log,
//!   dead letters) and how it reads each log from a seq (see [`sinks`]).
//!
//! ```
//! use mcp_audit_core::AuditEvent;
//! use mcp_audit_store::{Filter, Query, Recorder, RecorderConfig, Read, SqliteOptions, SqliteStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("audit.db");
//! let recorder = Recorder::start(
//!     SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
//!     RecorderConfig::default(),
//! ).unwrap();
//! recorder.record(AuditEvent::tool_execution("search").user("alice").build().unwrap()).unwrap();
//! recorder.shutdown().unwrap();
//!
//! let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
//! let page = reader.query(&Query {
//!     filter: Filter { user_id: Some("alice".into()), ..Filter::default() },
//!     ..Query::default()
//! }).unwrap();
//! assert_eq!(page.events[0].event.operation, "search");
//! ```
//!
//! The repository's `examples/` has a program for each group of the API (tool, resource,
//! context and prompt events, CRUD with change sets, data access, queries, summaries, cleanup).
//!
//! # Features
//!
//! - `postgres` (default): the PostgreSQL backend, `PgStore`. Without it (`default-features =
//!   false`) the crate is SQLite-only and the PostgreSQL client is not compiled.

mod audit;
mod boxed;
mod error;
pub mod files;
#[cfg(feature = "postgres")]
mod postgres;
mod read;
pub mod sinks;
mod sqlite;
mod store;
mod witnessing;
mod write;

// The public modules keep their paths; the crate's own code reaches every module at the root too.
pub use audit::{cosigned, erasure, expiry, hold, integrity, subject};
use audit::{indexed, lineage, tree};
pub use read::search;
use read::{query, report, reveal, sql};
pub use write::intake;
use write::{
    backlog, checkpointer, columns, erasure_watch, event_columns, recorder, telemetry, writer,
};

pub use backlog::{GAP_OPERATION, gap_size};
pub use checkpointer::{CheckpointPolicy, Publisher};
pub use error::StoreError;
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore, SpoolOptions, WriteMethod};
pub use query::{
    CleanupReport, Cursor, Filter, Page, PageStart, Payloads, Query, StoredEvent, Summary,
    SummaryScope, TimeBasis, ToolStats,
};
pub use recorder::{
    Durability, Receipt, RecordError, Recorder, RecorderConfig, RecorderStats, SessionGuard,
};
pub use search::{SearchError, TextSearch};
pub use sinks::{Attempt, DeadLetter, LetterChoice, LogSize, SinkCursor, SinkLease, SinkState};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::{
    Append, Audit, Cell, DerivedCheck, Entry, IndexedColumns, LineageRow, LineageTable, Log,
    LogEntry, Maintain, ProofEntry, Read, Scrub, Store, Tally,
};
pub use telemetry::{COMMIT_BUCKETS_MICROS, CommitHistogram, RecorderMetrics};
pub use witnessing::{Advance, StoredCosignature, Witnessed, Witnessing};
