//! The writer's checkpointing: signs a checkpoint of the log every N entries and every T
//! seconds (and at shutdown), stores it, and appends it to an outside file if asked.
//!
//! The writer keeps the tree's right edge (`merkle::Frontier`) and catches it up from the store
//! after every commit, so entries appended by other processes are included. At start it checks
//! that the log still extends the last stored checkpoint and refuses to run otherwise: it never
//! signs a checkpoint inconsistent with one signed before.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner};
use mcp_audit_core::merkle::Frontier;

use crate::error::StoreError;
use crate::integrity::OutsideCheckpoint;
use crate::store::Store;

/// When and how the writer signs checkpoints.
#[derive(Clone)]
pub struct CheckpointPolicy {
    pub signer: Arc<NoteSigner>,
    /// The log's name in its checkpoints.
    pub origin: String,
    /// Sign once this many entries were added since the last checkpoint (at least 1).
    pub every_entries: u64,
    /// Sign once this much time has passed since the last checkpoint, if entries were added.
    pub every: Duration,
    /// Also append each checkpoint to this file, one JSON object per line.
    pub out: Option<PathBuf>,
}

impl fmt::Debug for CheckpointPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointPolicy")
            .field("key", &self.signer.verifier().to_text())
            .field("origin", &self.origin)
            .field("every_entries", &self.every_entries)
            .field("every", &self.every)
            .field("out", &self.out)
            .finish()
    }
}

pub(crate) struct Checkpointer {
    policy: CheckpointPolicy,
    frontier: Frontier,
    last_size: u64,
    last_at: Instant,
}

impl Checkpointer {
    pub(crate) fn start(
        policy: CheckpointPolicy,
        store: &mut impl Store,
    ) -> Result<Checkpointer, StoreError> {
        let leaves = store.leaf_hashes(0)?;
        let mut last_size = 0;
        if let Some((size, root)) = store.latest_checkpoint()? {
            let extends = (size as usize) <= leaves.len()
                && Frontier::from_leaves(&leaves[..size as usize]).root() == root;
            if !extends {
                return Err(StoreError::Database(format!(
                    "the log no longer extends its checkpoint of size {size}: refusing to sign more (run `mcp-audit verify`)"
                )));
            }
            last_size = size;
        }
        Ok(Checkpointer {
            policy,
            frontier: Frontier::from_leaves(&leaves),
            last_size,
            last_at: Instant::now(),
        })
    }

    pub(crate) fn tick_every(&self) -> Duration {
        self.policy.every
    }

    /// Catches up with the store, then signs if due (or, with `force`, if anything is new).
    pub(crate) fn after_commit(&mut self, store: &mut impl Store, force: bool) {
        if let Err(error) = self.try_after_commit(store, force) {
            tracing::error!(%error, "could not sign a checkpoint");
        }
    }

    fn try_after_commit(&mut self, store: &mut impl Store, force: bool) -> Result<(), StoreError> {
        for leaf in store.leaf_hashes(self.frontier.size())? {
            self.frontier.push(leaf);
        }
        let size = self.frontier.size();
        let new = size - self.last_size;
        let due =
            new >= self.policy.every_entries.max(1) || self.last_at.elapsed() >= self.policy.every;
        if new == 0 || !(force || due) {
            return Ok(());
        }
        let checkpoint = Checkpoint {
            origin: self.policy.origin.clone(),
            size,
            root: self.frontier.root(),
        };
        let note = self.policy.signer.sign(&checkpoint);
        store.put_checkpoint(size, &checkpoint.root, &note)?;
        if let Some(path) = &self.policy.out {
            let line = serde_json::to_string(&OutsideCheckpoint { size, note })
                .map_err(|e| StoreError::Database(e.to_string()))?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    writeln!(f, "{line}")
                        .and_then(|()| f.sync_data())
                        .map(|()| f)
                });
            if let Err(e) = file.as_mut() {
                return Err(StoreError::Database(format!(
                    "appending to {}: {e}",
                    path.display()
                )));
            }
        }
        self.last_size = size;
        self.last_at = Instant::now();
        Ok(())
    }
}
