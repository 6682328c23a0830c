//! What one record looks like when it leaves: the shape the webhook's batches and the JSON
//! lines of `follow --stdout` share.

use mcp_audit_core::{AuditEvent, Hash};
use mcp_audit_store::StoredEvent;
use serde::Serialize;

use crate::record_key;

/// One record as sent: its idempotency key, its place in its log, the event, and what ties it
/// to the log's Merkle tree.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// `LOG:SEQ` (see [`record_key`]): what a receiver deduplicates on.
    pub key: String,
    pub log_id: &'a str,
    pub seq: u64,
    pub event: &'a AuditEvent,
    pub leaf_hash: &'a Hash,
    pub payload_commitment: &'a Hash,
    /// The personal half was erased: the event's payload fields are absent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl<'a> Record<'a> {
    pub fn of(stored: &'a StoredEvent) -> Record<'a> {
        Record {
            key: record_key(stored),
            log_id: &stored.log_id,
            seq: stored.seq,
            event: &stored.event,
            leaf_hash: &stored.leaf_hash,
            payload_commitment: &stored.payload_commitment,
            redacted: stored.redacted,
        }
    }
}
