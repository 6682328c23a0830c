//! Errors of the storage layer.

use std::path::PathBuf;

use mcp_audit_core::ModelError;

/// Why a store operation failed. Every variant names the problem in one line a person can act on.
/// `Clone`, because one failed batch is reported to every caller that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened at all (missing directory, permissions).
    #[error("cannot open database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// The file exists but is not a database of ours (or is corrupt).
    #[error("database {path} is corrupt or not an mcp-audit database: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The database was written by a newer mcp-audit.
    #[error(
        "database schema version {found} is newer than this mcp-audit supports ({supported}); upgrade mcp-audit"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database is read-only and a write was asked for.
    #[error("database {path} is read-only")]
    ReadOnly { path: PathBuf },
    /// Another process held the database lock past the timeout.
    #[error("database is locked by another process (waited {waited_ms} ms)")]
    Locked { waited_ms: u64 },
    /// An event failed the model's checks.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A cursor that this store did not hand out, or that was damaged.
    #[error("invalid cursor `{0}`")]
    InvalidCursor(String),
    /// A stored row could not be decoded.
    #[error("stored event {seq} can not be decoded: {reason}")]
    Decode { seq: u64, reason: String },
    /// Another process appended to the same log first: the batch's sequence numbers are taken.
    /// The writer renumbers the batch from `next` and tries again.
    #[error("sequence conflict: another writer appended to this log (next seq is {next})")]
    SeqConflict { next: u64 },
    /// Subject erasures were made since the writer last looked (the pseudonym mapping's
    /// erasure count is now `count`): nothing was written. The writer renames the batch's
    /// erased pseudonyms and tries again (see `crate::erasure_watch`); no caller sees it.
    #[error("the pseudonym mapping was erased from since the batch was named (count {count})")]
    ErasedSince { count: u64 },
    /// The database server can not be reached (stopped, restarting, network down). The
    /// PostgreSQL backend spools or waits through this; it reaches callers only when the wait
    /// timed out or the spool is full.
    #[error("database unreachable (waited {waited_ms} ms): {reason}")]
    Unavailable { waited_ms: u64, reason: String },
    /// Another process is already writing this log (two writers configured with one log id).
    /// Refused, because two writers must never interleave inside one log.
    #[error(
        "log `{log_id}` is already being written by another process; give each writer its own log id"
    )]
    LogInUse { log_id: String },
    /// The database's storage failed: a full disk, an I/O error, or (PostgreSQL) the server out
    /// of resources. Store-wide and usually passing: the writer keeps records nobody waits for
    /// and tries again.
    #[error("the database's storage failed: {reason}")]
    Storage { reason: String },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}
