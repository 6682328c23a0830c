//! The `Recorder`: the handle through which events are recorded, from threads or async code.
//!
//! SKELETON: signatures are the contract other crates code against; bodies are being written.

use std::time::Duration;

use mcp_audit_core::{AuditEvent, EventBuilder, EventId, Policy};

use crate::error::StoreError;
use crate::store::Store;

/// When `record` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the record is durable (committed and synced). Fail-closed.
    #[default]
    Sync,
    /// At once; the writer commits within a few milliseconds. Failures show in `flush`,
    /// `shutdown`, the error counter and the log.
    Batch,
}

/// How a recorder behaves.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub durability: Durability,
    pub policy: Policy,
    /// Events that may wait for the writer; a full queue makes `record` wait (backpressure).
    pub queue_capacity: usize,
    /// At most this many events per transaction.
    pub max_batch: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            durability: Durability::Sync,
            policy: Policy::default(),
            queue_capacity: 65_536,
            max_batch: 4_096,
        }
    }
}

/// What became of a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Durable, at this place in the log.
    Durable { id: EventId, seq: u64 },
    /// Queued for the writer (`batch` durability).
    Queued { id: EventId },
    /// Not recorded: the audit level leaves it out.
    Skipped,
}

/// Why an event was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The event failed the model's or the policy's checks.
    #[error("invalid event: {0}")]
    Invalid(#[from] mcp_audit_core::ModelError),
    /// The store refused the batch the event was in.
    #[error("audit write failed: {0}")]
    Store(#[from] StoreError),
    /// `batch` mode: this many events failed to be written since the last flush.
    #[error("{failed} audit record(s) failed to be written since the last flush; last error: {last_error}")]
    Lost { failed: u64, last_error: String },
    /// The writer has stopped (shut down, or its thread died).
    #[error("the audit writer has stopped")]
    Closed,
}

/// Counters of a recorder's life so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub recorded: u64,
    pub skipped: u64,
    pub failed: u64,
    pub batches: u64,
}

/// The handle. Cheap to clone; every clone feeds the same writer thread.
#[derive(Clone)]
pub struct Recorder {
    _private: (),
}

impl Recorder {
    /// Starts the writer thread on `store`; fails at once if the store can not be written.
    pub fn start(store: impl Store, config: RecorderConfig) -> Result<Recorder, StoreError> {
        let _ = (store, config);
        todo!()
    }

    /// Records `event` with the configured durability; blocks while the queue is full. Do not
    /// call from inside an async runtime: use [`Recorder::record_async`] there.
    pub fn record(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        let _ = event;
        todo!()
    }

    /// As [`Recorder::record`], for async code.
    pub async fn record_async(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        let _ = event;
        todo!()
    }

    /// Records `event` and waits until it is durable, whatever the configured durability (the
    /// proxy's record of intent).
    pub async fn record_durable_async(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        let _ = event;
        todo!()
    }

    /// Waits until everything recorded before the call is durable. Errors if any event failed
    /// to be written since the previous flush.
    pub fn flush(&self) -> Result<(), RecordError> {
        todo!()
    }

    pub async fn flush_async(&self) -> Result<(), RecordError> {
        todo!()
    }

    /// Drains the queue, stops the writer, and reports whether everything was written.
    pub fn shutdown(self) -> Result<RecorderStats, RecordError> {
        todo!()
    }

    pub fn stats(&self) -> RecorderStats {
        todo!()
    }

    /// Runs `operation`, records its outcome with `event` (success, or `tool_error` with the
    /// error's message and the elapsed time), and returns the operation's own result untouched.
    /// A failure to record is logged and counted, never returned in place of that result.
    pub fn observe<T, E: std::fmt::Display>(
        &self,
        event: EventBuilder,
        operation: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let _ = event;
        operation()
    }

    /// Writes a session-start event now and a session-end event when the guard is dropped or
    /// ended.
    pub fn session(&self, session_id: &str, user_id: Option<&str>) -> Result<SessionGuard, RecordError> {
        let _ = (session_id, user_id);
        todo!()
    }
}

/// Ends a session when dropped; see [`Recorder::session`].
pub struct SessionGuard {
    _private: (),
}

impl SessionGuard {
    /// Ends the session now and reports whether its end was recorded.
    pub fn end(self) -> Result<Receipt, RecordError> {
        todo!()
    }
}

#[allow(dead_code)]
const FLUSH_EVERY: Duration = Duration::from_millis(5);
