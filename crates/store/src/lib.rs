//! The mcp-audit storage layer: how audit events become durable rows, and how they are read back.
//!
//! - [`Recorder`]: the cheap, cloneable handle that applications and the proxy record through,
//!   from threads or async code. It runs the policy and seals each event in the caller's thread.
//! - the writer (behind [`Recorder`]): one thread per log; group commit (one durable transaction
//!   per batch); dense sequence numbers that are the Merkle leaf indices.
//! - [`Store`]: the backend trait; [`SqliteStore`] is the embedded default.
//! - [`Query`], [`Filter`], [`Summary`], [`ToolStats`]: what readers ask for and get.
//!
//! ```
//! use mcp_audit_core::AuditEvent;
//! use mcp_audit_store::{Filter, Query, Recorder, RecorderConfig, SqliteOptions, SqliteStore, Store};
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

mod backlog;
mod boxed;
mod checkpointer;
mod columns;
mod error;
mod indexed;
pub mod integrity;
mod postgres;
mod query;
mod recorder;
mod report;
mod sql;
mod sqlite;
mod store;
mod tree;
mod writer;

pub use backlog::{GAP_OPERATION, gap_size};
pub use checkpointer::{CheckpointPolicy, Publisher};
pub use error::StoreError;
pub use postgres::{PgOptions, PgStore, SpoolOptions, WriteMethod};
pub use query::{
    CleanupReport, Cursor, Filter, Page, PageStart, Query, StoredEvent, Summary, SummaryScope,
    ToolStats,
};
pub use recorder::{
    Durability, Receipt, RecordError, Recorder, RecorderConfig, RecorderStats, SessionGuard,
};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::{
    Entry, GroupUsers, IndexedColumns, KeyGroup, KeyTotals, LogEntry, LookupField, ProofEntry,
    Store, lookup_key_hash,
};
