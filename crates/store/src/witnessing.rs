//! What witnessing keeps in the database, on both sides of the C2SP tlog-witness protocol.
//!
//! - The **witness** side (`mcp-audit serve --witness-key`): per log origin, the latest
//!   checkpoint it co-signed ([`Witnessed`]), moved forward only by a compare-and-swap on the
//!   size the submission says it extends ([`Witnessing::advance_witnessed`]). Two submissions
//!   that both extend size N race on that swap: one wins, the other is answered with a
//!   conflict and the winner's size, so the witness can never roll back what it co-signed.
//! - The **log** side (`mcp-audit witness push`, the witness sink): the cosignatures the
//!   witnesses returned, kept next to the log's checkpoints ([`StoredCosignature`]), which
//!   `verify --witness` checks. A witness's newest co-signed size is also where the next
//!   consistency proof to it starts, so no separate cursor is needed.

use mcp_audit_core::Hash;

use crate::error::StoreError;
use crate::store::Log;

/// The latest checkpoint a witness co-signed for one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: Hash,
    /// The signed note as submitted (the log's signatures with it), kept as evidence.
    pub note: String,
}

/// The outcome of [`Witnessing::advance_witnessed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The state now holds the new checkpoint.
    Advanced,
    /// The stored size was not the expected old size (another submission won): it is `size`.
    Conflict { size: u64 },
}

/// A witness's cosignature of one of this log's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCosignature {
    /// The size of the checkpoint it co-signs.
    pub size: u64,
    /// The witness key as `<name>+<key id hex>`: one row per witness key and size.
    pub witness: String,
    /// The signature line as the witness sent it (`— <name> <base64>\n`).
    pub line: String,
}

/// The witness tables, for both roles (a database may be a log, a witness, or both).
pub trait Witnessing: Log {
    /// The latest checkpoint co-signed for `origin`, if any.
    fn witnessed(&mut self, origin: &str) -> Result<Option<Witnessed>, StoreError>;

    /// Stores `new` as the latest co-signed checkpoint of `origin` if, and only if, the stored
    /// size is still `old_size` (none stored counts as 0), in one statement: the
    /// compare-and-swap that keeps concurrent submissions from rolling the state back.
    fn advance_witnessed(
        &mut self,
        origin: &str,
        old_size: u64,
        new: &Witnessed,
    ) -> Result<Advance, StoreError>;

    /// Keeps a witness's cosignature of this log's checkpoint of `size` (replacing that
    /// witness key's earlier one for the same size).
    fn put_cosignature(&mut self, cosignature: &StoredCosignature) -> Result<(), StoreError>;

    /// Every cosignature of this log, by size then witness. Empty on a database whose schema
    /// predates them.
    fn cosignatures(&mut self) -> Result<Vec<StoredCosignature>, StoreError>;

    /// The largest checkpoint size `target` acknowledged for this log (0: none yet), for
    /// targets that return nothing to keep.
    fn sent_size(&mut self, target: &str) -> Result<u64, StoreError>;

    /// Moves `target`'s cursor to `size` (never back: a smaller size leaves it).
    fn put_sent_size(&mut self, target: &str, size: u64) -> Result<(), StoreError>;
}

impl<T: Witnessing + ?Sized> Witnessing for Box<T> {
    fn witnessed(&mut self, origin: &str) -> Result<Option<Witnessed>, StoreError> {
        (**self).witnessed(origin)
    }

    fn advance_witnessed(
        &mut self,
        origin: &str,
        old_size: u64,
        new: &Witnessed,
    ) -> Result<Advance, StoreError> {
        (**self).advance_witnessed(origin, old_size, new)
    }

    fn put_cosignature(&mut self, cosignature: &StoredCosignature) -> Result<(), StoreError> {
        (**self).put_cosignature(cosignature)
    }

    fn cosignatures(&mut self) -> Result<Vec<StoredCosignature>, StoreError> {
        (**self).cosignatures()
    }

    fn sent_size(&mut self, target: &str) -> Result<u64, StoreError> {
        (**self).sent_size(target)
    }

    fn put_sent_size(&mut self, target: &str, size: u64) -> Result<(), StoreError> {
        (**self).put_sent_size(target, size)
    }
}
