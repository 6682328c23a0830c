//! A self-contained inclusion proof of one event: everything a third party needs to check,
//! with nothing but the log's verifier key, that the event is in the signed log unchanged.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{NoteError, NoteVerifier};
use crate::event::AuditEvent;
use crate::hash::Hash;
use crate::merkle::verify_inclusion;
use crate::seal::{leaf_hash, meta_digest, payload_commitment, unseal};

/// The proof, as `mcp-audit prove` prints it and `mcp-audit verify-proof` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The event's position in the log (its leaf index).
    pub seq: u64,
    /// The event's canonical metadata, exactly as hashed.
    pub meta: String,
    pub commitment: Hash,
    /// The personal half and its salt, unless erased: with them the payload is proven too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<ProvenPayload>,
    pub tree_size: u64,
    /// Sibling hashes from the leaf up (RFC 9162 §2.1.3).
    pub path: Vec<Hash>,
    /// The signed checkpoint of `tree_size` entries.
    pub checkpoint: String,
}

/// An event's personal half with the salt of its commitment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenPayload {
    /// The salt, hex.
    pub salt: String,
    /// The canonical personal JSON, exactly as committed.
    pub body: String,
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the proof is for a tree of {proof} entries, the checkpoint for {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("the payload does not match the event's commitment")]
    PayloadMismatch,
    #[error("the event is not in the log at position {0} under the signed root")]
    NotIncluded(u64),
    #[error("the event can not be read: {0}")]
    Unreadable(String),
}

impl InclusionProof {
    /// The event the proof carries, read without checking anything: for showing it beside the
    /// proof (a subject's export), never as evidence; [`InclusionProof::verify`] is that.
    pub fn event(&self) -> Result<AuditEvent, ProofError> {
        let body = self.payload.as_ref().map(|p| p.body.as_bytes());
        unseal(self.meta.as_bytes(), body).map_err(|e| ProofError::Unreadable(e.to_string()))
    }

    /// Checks the proof and returns the event it proves (without personal fields when erased).
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<AuditEvent, ProofError> {
        let checkpoint = verifier.open(&self.checkpoint)?;
        if checkpoint.size != self.tree_size {
            return Err(ProofError::SizeMismatch {
                proof: self.tree_size,
                checkpoint: checkpoint.size,
            });
        }
        if let Some(p) = &self.payload {
            let mut salt = [0u8; 32];
            hex::decode_to_slice(&p.salt, &mut salt).map_err(|_| ProofError::PayloadMismatch)?;
            if payload_commitment(&salt, p.body.as_bytes()) != self.commitment {
                return Err(ProofError::PayloadMismatch);
            }
        }
        let leaf = leaf_hash(
            self.seq,
            &meta_digest(self.meta.as_bytes()),
            &self.commitment,
        );
        if !verify_inclusion(
            &leaf,
            self.seq,
            self.tree_size,
            &self.path,
            &checkpoint.root,
        ) {
            return Err(ProofError::NotIncluded(self.seq));
        }
        let body = self.payload.as_ref().map(|p| p.body.as_bytes());
        unseal(self.meta.as_bytes(), body).map_err(|e| ProofError::Unreadable(e.to_string()))
    }
}
