//! The writer's side of the Merkle tree: keeps its right edge, stores the interior nodes that
//! proofs read (see `mcp_audit_core::tiles`), and, given a policy, signs a checkpoint of the
//! log every N entries and every T seconds (and at shutdown), stores it, and appends it to an
//! outside file if asked.
//!
//! The writer keeps the tree's right edge (`merkle::Frontier`) and catches it up after every
//! commit: with the leaf hashes the writer just appended when they follow the edge, from the
//! store otherwise, so entries appended by other processes are included. At start it checks
//! that the log still extends the last stored checkpoint and refuses to run otherwise: it never
//! signs a checkpoint inconsistent with one signed before.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner};
use mcp_audit_core::merkle::Frontier;
use mcp_audit_core::tiles::{self, Node};

use crate::error::StoreError;
use crate::integrity::OutsideCheckpoint;
use crate::store::Append;
use crate::tree::TreeSource;
use crate::writer::Appended;

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::checkpointer";

/// Receives each checkpoint the writer signs (see [`CheckpointPolicy::publish`]).
pub type Publisher = Arc<dyn Fn(&OutsideCheckpoint) + Send + Sync>;

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
    /// Also hand every checkpoint to this, after it is stored (and written to `out`): to post
    /// it to a witness or a monitor. It runs on the writer's thread, so it must only queue the
    /// work (a channel send), never wait on the network.
    pub publish: Option<Publisher>,
}

impl fmt::Debug for CheckpointPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointPolicy")
            .field("key", &self.signer.verifier().to_text())
            .field("origin", &self.origin)
            .field("every_entries", &self.every_entries)
            .field("every", &self.every)
            .field("out", &self.out)
            .field("publish", &self.publish.is_some())
            .finish()
    }
}

pub(crate) struct Checkpointer {
    policy: Option<CheckpointPolicy>,
    frontier: Frontier,
    /// Interior nodes completed since they were last stored.
    nodes: Vec<Node>,
    last_size: u64,
    last_at: Instant,
}

/// Completed nodes are stored in groups of this many (one small transaction per 8,192
/// entries); ones lost in a crash are recomputed when a proof needs them.
const NODES_PER_WRITE: usize = 32;

impl Checkpointer {
    /// Builds the tree's right edge from the store's nodes (recomputing missing ones). With a
    /// policy, refuses a log that no longer extends its last checkpoint.
    pub(crate) fn start(
        policy: Option<CheckpointPolicy>,
        store: &mut impl Append,
    ) -> Result<Checkpointer, StoreError> {
        let size = store.next_seq()?;
        let latest = store.latest_checkpoint()?;
        let signing = policy.is_some();
        let mut source = TreeSource::new(store);
        let built = (|| {
            let mut subtree = |start, height| source.subtree(start, height);
            let mut last_size = 0;
            if let (true, Some((old, root))) = (signing, latest) {
                let extends = old <= size && tiles::range_root(0, old, &mut subtree)? == root;
                if !extends {
                    return Err(StoreError::Database(format!(
                        "the log no longer extends its checkpoint of size {old}: refusing to sign more (run `mcp-audit verify`)"
                    )));
                }
                last_size = old;
            }
            Ok((Frontier::from_source(size, &mut subtree)?, last_size))
        })();
        source.finish();
        let (frontier, last_size) = built?;
        Ok(Checkpointer {
            policy,
            frontier,
            nodes: Vec::new(),
            last_size,
            last_at: Instant::now(),
        })
    }

    /// How often the writer should be woken to sign on a quiet log, if it signs at all.
    pub(crate) fn tick_every(&self) -> Option<Duration> {
        self.policy.as_ref().map(|p| p.every)
    }

    /// Catches up with the store, stores completed nodes, then signs if due (or, with `force`,
    /// if anything is new).
    pub(crate) fn after_commit(
        &mut self,
        store: &mut impl Append,
        force: bool,
        appended: &mut Appended,
    ) {
        if let Err(error) = self.try_after_commit(store, force, appended) {
            tracing::error!(
                target: LOG_TARGET,
                %error,
                "could not keep the Merkle tree or sign a checkpoint",
            );
        }
    }

    fn try_after_commit(
        &mut self,
        store: &mut impl Append,
        force: bool,
        appended: &mut Appended,
    ) -> Result<(), StoreError> {
        let nodes = &mut self.nodes;
        // The writer's own entries, when they follow the tree's edge, need not be read back;
        // anything else (another process's entries in between, a tick) is read from the store.
        let leaves = if appended.from == self.frontier.size() && !appended.leaves.is_empty() {
            std::mem::take(&mut appended.leaves)
        } else {
            appended.leaves.clear();
            store.leaf_hashes(self.frontier.size())?
        };
        appended.from = self.frontier.size() + leaves.len() as u64;
        for leaf in leaves {
            self.frontier
                .push_reporting(leaf, &mut |node| nodes.push(node));
        }
        if self.nodes.len() >= NODES_PER_WRITE || (force && !self.nodes.is_empty()) {
            store.put_tree_nodes(&self.nodes)?;
            self.nodes.clear();
        }
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let size = self.frontier.size();
        let new = size - self.last_size;
        let due = new >= policy.every_entries.max(1) || self.last_at.elapsed() >= policy.every;
        if new == 0 || !(force || due) {
            return Ok(());
        }
        let checkpoint = Checkpoint {
            origin: policy.origin.clone(),
            size,
            root: self.frontier.root(),
        };
        let note = policy.signer.sign(&checkpoint);
        store.put_checkpoint(size, &checkpoint.root, &note)?;
        let outside = OutsideCheckpoint { size, note };
        if let Some(path) = &policy.out {
            let line =
                serde_json::to_string(&outside).map_err(|e| StoreError::Database(e.to_string()))?;
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
        if let Some(publish) = &policy.publish {
            publish(&outside);
        }
        self.last_size = size;
        self.last_at = Instant::now();
        Ok(())
    }
}
