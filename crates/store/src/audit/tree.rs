//! Subtree roots for proofs and checkpoints, read from any backend ([`Append`]): stored
//! interior nodes where there are some, the leaves below them where not.
//!
//! A missing node (a database from before nodes were kept, or nodes lost in a crash before
//! the writer stored them) is recomputed from the level below and written back, so whatever
//! first needs it (the writer building its right edge at start, or a proof) pays for the rehash
//! once, and every later read is O(log n).

use mcp_audit_core::tiles::{Node, TILE_HEIGHT};
use mcp_audit_core::{Hash, merkle};

use crate::error::StoreError;
use crate::store::Append;

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::tree";

/// Answers "the root of the `2^height` leaves from `start`" for [`mcp_audit_core::tiles`].
pub(crate) struct TreeSource<'s, S: Append + ?Sized> {
    store: &'s mut S,
    /// Nodes recomputed because they were missing: to be stored by [`TreeSource::finish`].
    healed: Vec<Node>,
}

impl<'s, S: Append + ?Sized> TreeSource<'s, S> {
    pub(crate) fn new(store: &'s mut S) -> TreeSource<'s, S> {
        TreeSource {
            store,
            healed: Vec::new(),
        }
    }

    /// The root of the perfect subtree of `2^height` leaves from `start`.
    pub(crate) fn subtree(&mut self, start: u64, height: u32) -> Result<Hash, StoreError> {
        let level = height - height % TILE_HEIGHT;
        let hashes = self.gather(level, start >> level, 1 << (height - level))?;
        Ok(merkle::root(&hashes))
    }

    /// The `count` hashes of `level` (0: leaves) from index `first`, computing missing nodes.
    fn gather(&mut self, level: u32, first: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        if level == 0 {
            let leaves = self.store.leaf_range(first, first + count)?;
            if leaves.len() as u64 != count {
                return Err(StoreError::Database(format!(
                    "the log lacks entries between seq {first} and {}: run `mcp-audit verify`",
                    first + count
                )));
            }
            return Ok(leaves);
        }
        let stored = self.store.tree_nodes(level, first, first + count)?;
        let mut stored = stored.into_iter().peekable();
        let mut hashes = Vec::with_capacity(count as usize);
        for index in first..first + count {
            if let Some((_, hash)) = stored.next_if(|(i, _)| *i == index) {
                hashes.push(hash);
                continue;
            }
            let below = level - TILE_HEIGHT;
            let children = self.gather(below, index << TILE_HEIGHT, 1 << TILE_HEIGHT)?;
            let hash = merkle::root(&children);
            self.healed.push(Node { level, index, hash });
            hashes.push(hash);
        }
        Ok(hashes)
    }

    /// Stores the nodes that had to be recomputed. Best effort: a read-only store keeps
    /// answering, only slower.
    pub(crate) fn finish(self) {
        if self.healed.is_empty() {
            return;
        }
        if let Err(error) = self.store.put_tree_nodes(&self.healed) {
            tracing::debug!(
                target: LOG_TARGET,
                %error,
                nodes = self.healed.len(),
                "could not store recomputed tree nodes",
            );
        }
    }
}
