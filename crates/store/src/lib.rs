//! The mcp-audit storage layer: how audit events become durable rows, and how they are read back.
//!
//! - [`Recorder`]: the cheap, cloneable handle applications and the proxy record through.
//! - the writer (inside [`Recorder`]): one thread per log; group commit; sequence numbers.
//! - [`Store`]: the backend trait; [`SqliteStore`] is the embedded default.
//! - [`Query`], [`Filter`], [`Summary`], [`ToolStats`]: what readers ask and get.

mod error;
mod query;
mod recorder;
mod store;

pub use error::StoreError;
pub use query::{
    CleanupReport, Cursor, Filter, Page, PageStart, Query, StoredEvent, Summary, SummaryScope,
    ToolStats,
};
pub use recorder::{
    Durability, Receipt, RecordError, Recorder, RecorderConfig, RecorderStats, SessionGuard,
};
pub use store::{Entry, Store};
