//! Sinks: the trail leaves the box.
//!
//! A sink follows one or more logs in sequence order from a durable cursor, hands batches of
//! records to a [`Destination`], and moves its cursor only after the destination acknowledged
//! them (at-least-once; each record carries its log id and seq, the idempotency key a receiver
//! deduplicates on). Sinks read the store as any reader does, so they never slow or block the
//! recording path, and what they send is what the store keeps: redacted before it was written,
//! and without the payload of an erased event.
//!
//! - [`Destination`]: where records go (one module per kind of receiver: [`webhook`],
//!   [`stdout`], [`otlp`], [`syslog`]); [`witness`] follows the signed checkpoints instead,
//!   run by [`witness::runner`] as a sink of the same file (`type = "witness"`).
//! - [`Failure`]: how a destination says a batch did not (wholly) arrive, which decides between
//!   a retry with backoff and a dead letter.
//! - [`format`]: CEF, LEEF and OCSF renderings of a record, for SIEMs and `export --format`.
//! - [`syslog`]: RFC 5424 over TCP or TLS to a SIEM's syslog listener.
//! - [`runner`]: the loop that owns the cursors, the retries and the dead letters, over the
//!   store's [`mcp_audit_store::SinkState`].
//! - [`config`]: the `[[sink]]` file, and [`config::Kind`], every kind of destination as one
//!   enum (dispatch without `dyn`).
//! - [`status`]: where each sink stands, for `mcp-audit sink status`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mcp_audit_store::{SqliteOptions, SqliteStore};
//! use mcp_audit_sinks::config::{self, Built};
//! use mcp_audit_sinks::{runner, stats::SinkStats};
//! use tokio_util::sync::CancellationToken;
//!
//! let stop = CancellationToken::new();
//! for (sink, built) in config::load("sinks.toml".as_ref())? {
//!     // Witness sinks follow the checkpoints instead (`witness::runner`).
//!     let Built::Records(destination) = built else { continue };
//!     let state = SqliteStore::open("audit.db", SqliteOptions::default())?;
//!     let stats = Arc::new(SinkStats::default());
//!     tokio::spawn(runner::run(sink.spec, destination, state, stop.clone(), stats));
//! }
//! # Ok(()) }
//! ```

pub mod config;
pub mod format;
pub mod otlp;
pub mod record;
pub mod runner;
pub mod stats;
pub mod status;
pub mod stdout;
pub mod syslog;
pub mod webhook;
pub mod witness;

mod blocking;
mod lease;

use mcp_audit_store::StoredEvent;

/// The idempotency key of a record: its log id and seq, as `LOG:SEQ`. Unique across every log
/// of a database, stable across retries and restarts.
pub fn record_key(event: &StoredEvent) -> String {
    format!("{}:{}", event.log_id, event.seq)
}

/// Why a batch (or part of it) was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The destination could not be reached, timed out, or answered with a transient error
    /// (connection refused, HTTP 5xx/429, a gRPC `UNAVAILABLE`): nothing of the batch counts as
    /// delivered, and the runner retries the whole batch with exponential backoff.
    #[error("destination unavailable: {0}")]
    Unavailable(String),
    /// The destination acknowledged the first `accepted` records of the batch and refuses the
    /// record at index `accepted` itself (HTTP 4xx other than 429, a record the receiver cannot
    /// parse): the runner moves its cursor past the accepted ones and retries the refused one
    /// alone; after the configured number of tries it goes to the dead letters and the rest
    /// flows on.
    #[error("record refused: {reason}")]
    Refused { accepted: usize, reason: String },
}

/// Where a sink's records go. Each kind of receiver (webhook, OTLP, syslog, stdout) implements
/// it; the runner owns the cursor, the retries and the dead letters, so a destination only
/// delivers.
///
/// `deliver` returns `Ok(())` only once the receiver acknowledged every record of the batch
/// (an HTTP 2xx, a gRPC OK, a syslog TCP write flushed), in order: records of one log are
/// given in seq order and must arrive in that order.
#[allow(async_fn_in_trait)] // used by the runner's own enum, never as `dyn`
pub trait Destination: Send {
    /// A short name of the kind, for logs, `sink status` and metrics (`webhook`, `otlp`, ...).
    fn kind(&self) -> &'static str;

    /// Delivers `batch` (non-empty; records of one log in seq order).
    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure>;
}
