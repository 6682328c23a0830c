//! `verify --witness`: the log's checkpoints as its witnesses co-signed them.
//!
//! For each witness key, every cosignature the log keeps by that key must verify against the
//! stored checkpoint of its size, and the newest stored checkpoint must carry one. Together
//! with `verify`'s own checks (each checkpoint's root recomputed from the entries), this says
//! that the witness saw this very log up to the newest checkpoint, and, since a witness
//! co-signs only trees that extend what it co-signed before, that no other history of the
//! log was co-signed by it up to then.
//!
//! What this offline check cannot see: a whole copy of the database rolled back to an older
//! state whose newest checkpoint was itself co-signed. The witness can: the next push from
//! that copy is refused (409 with the larger size the witness co-signed), and so is any
//! other history that does not extend it.

use mcp_audit_core::cosignature::{CosignatureVerifier, note_body};
use serde::Serialize;

use crate::error::StoreError;
use crate::store::Audit;
use crate::witnessing::Witnessing;

/// A way the log's checkpoints fail a witness's cosignatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WitnessFinding {
    /// The log has no checkpoint for a witness to have co-signed.
    NoCheckpoint { witness: String },
    /// The newest checkpoint carries no valid cosignature by this witness.
    NewestNotCosigned { witness: String, size: u64 },
    /// A kept cosignature does not verify against the stored checkpoint of its size (the
    /// checkpoint was replaced, or the line edited).
    BadCosignature {
        witness: String,
        size: u64,
        reason: String,
    },
    /// A cosignature is kept for a size the log has no checkpoint of (the checkpoint was
    /// deleted: the log was cut back).
    CheckpointMissing { witness: String, size: u64 },
}

impl std::fmt::Display for WitnessFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WitnessFinding::NoCheckpoint { witness } => {
                write!(f, "witness {witness}: the log has no checkpoint")
            }
            WitnessFinding::NewestNotCosigned { witness, size } => write!(
                f,
                "witness {witness}: the newest checkpoint ({size} entries) is not co-signed"
            ),
            WitnessFinding::BadCosignature {
                witness,
                size,
                reason,
            } => write!(
                f,
                "witness {witness}: the cosignature of checkpoint {size} does not verify: {reason}"
            ),
            WitnessFinding::CheckpointMissing { witness, size } => write!(
                f,
                "witness {witness}: co-signed checkpoint {size} is missing from the log"
            ),
        }
    }
}

/// The findings of every witness key in `witnesses` on `store`'s log (empty: all co-signed).
pub fn check<S>(
    store: &mut S,
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<WitnessFinding>, StoreError>
where
    S: Audit + Witnessing + ?Sized,
{
    let checkpoints = store.checkpoints()?;
    let cosignatures = store.cosignatures()?;
    let mut findings = Vec::new();
    for key in witnesses {
        let witness = format!("{}+{}", key.name(), hex::encode(key.key_id()));
        let Some((newest, _)) = checkpoints.last() else {
            findings.push(WitnessFinding::NoCheckpoint { witness });
            continue;
        };
        let mut newest_cosigned = false;
        for c in cosignatures.iter().filter(|c| c.witness == witness) {
            let Some((_, note)) = checkpoints.iter().find(|(size, _)| *size == c.size) else {
                findings.push(WitnessFinding::CheckpointMissing {
                    witness: witness.clone(),
                    size: c.size,
                });
                continue;
            };
            let verified = note_body(note)
                .ok_or_else(|| "the checkpoint note has no body".to_string())
                .and_then(|body| key.find(body, &c.line).map_err(|e| e.to_string()));
            match verified {
                Ok(_) => newest_cosigned |= c.size == *newest,
                Err(reason) => findings.push(WitnessFinding::BadCosignature {
                    witness: witness.clone(),
                    size: c.size,
                    reason,
                }),
            }
        }
        if !newest_cosigned {
            findings.push(WitnessFinding::NewestNotCosigned {
                witness,
                size: *newest,
            });
        }
    }
    Ok(findings)
}
