//! Keeps a running recorder's pseudonyms in step with subject erasures, whichever process
//! makes them.
//!
//! The recorder learns an identity's pseudonym from its cache, not from the database (see
//! `mcp_audit_core::pseudonym`). When `subject erase` in another process deletes a person's
//! mapping rows, a long-running proxy still has them cached: its next event about the person
//! would record the erased pseudonym, which nothing resolves any more (the event unreadable by
//! identity) and which ties the new event to the erased ones. So each erasure adds one to a
//! count kept beside the mapping (`pseudonym_epoch`, in the erasure's own transaction), and
//! each commit reads that count inside its own transaction, with the statement that reads the
//! log's counter ([`Append::append_unless_erased`]): no statement (on PostgreSQL, no round
//! trip) of its own, which a commit of one event paid before. When it has moved, the commit
//! writes nothing; the writer reads the mapping again, drops from the cache every identity
//! whose pseudonym is gone, so the person's next events draw a fresh pseudonym, stored with a
//! row of its own, names the batch afresh and commits it again.
//!
//! Events already sealed with an erased pseudonym (the batch being committed, and those still
//! queued, sealed in their callers' threads before the writer looked) are named afresh by the
//! writer before they are written: the identifier replaced by the new pseudonym, its link
//! added, and the metadata encoded again ([`SealedEvent::reseal_metadata`]; the personal
//! half and its commitment are untouched). The erased pseudonyms are remembered for that, as
//! random strings that name nobody; while there are none, this costs nothing per event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mcp_audit_core::SealedEvent;
use mcp_audit_core::pseudonym::{IdentityField, Link, Pseudonyms};

use crate::store::Append;

/// Where this module logs.
const LOG_TARGET: &str = "mcp_audit_store::recorder";

/// The writer's side of the check: the cache it corrects, the erasure count it last saw, and
/// the erased pseudonyms it forgot, with whom they stood for.
#[derive(Debug)]
pub(crate) struct ErasureWatch {
    cache: Arc<Pseudonyms>,
    seen: u64,
    erased: HashMap<String, (IdentityField, String)>,
}

impl ErasureWatch {
    /// A watch of `cache`, loaded when the erasure count was `seen`.
    pub(crate) fn new(cache: Arc<Pseudonyms>, seen: u64) -> ErasureWatch {
        ErasureWatch {
            cache,
            seen,
            erased: HashMap::new(),
        }
    }

    /// The erasure count the cache is in step with: what a commit checks the store's against.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// Names afresh the events of `batch` that carry a pseudonym forgotten after an erasure:
    /// before every batch (events sealed before the writer learnt of the erasure), and again
    /// after a commit found the count moved. Nothing to do, and no cost, while none was.
    pub(crate) fn rename_all<'a>(&self, batch: impl Iterator<Item = &'a mut SealedEvent>) {
        if self.erased.is_empty() {
            return;
        }
        for sealed in batch {
            self.rename(sealed);
        }
    }

    /// A commit found the erasure count at `count`: forgets the identities whose mapping rows
    /// the erasures deleted. A mapping that can not be read now leaves the count as it was, so
    /// that the next commit finds it moved again and asks again.
    pub(crate) fn refresh(&mut self, store: &mut impl Append, count: u64) {
        match store.pseudonym_links() {
            Ok(links) => {
                let mapped: HashSet<String> = links.into_iter().map(|l| l.pseudonym).collect();
                let forgotten = self.cache.retain_mapped(|p| mapped.contains(p));
                tracing::info!(
                    target: LOG_TARGET,
                    forgotten = forgotten.len(),
                    "identities erased by a subject erasure: their next events get fresh pseudonyms",
                );
                self.erased.extend(
                    forgotten
                        .into_iter()
                        .map(|l| (l.pseudonym, (l.field, l.identity))),
                );
                self.seen = count;
            }
            Err(error) => tracing::warn!(
                target: LOG_TARGET,
                %error,
                "could not read the pseudonym mapping after an erasure; tried again next batch",
            ),
        }
    }

    /// Replaces the forgotten pseudonyms of `sealed` by fresh ones (links added), unless the
    /// event carries the link itself (a pseudonym drawn for it and not stored yet, which the
    /// cache let go with the erased ones: still the identity's own).
    fn rename(&self, sealed: &mut SealedEvent) {
        let mut changed = false;
        let mut links: Vec<Link> = Vec::new();
        let event = &mut sealed.event;
        for value in [
            event.actor.user_id.as_mut(),
            event.compliance.data_subject_id.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            let Some((field, identity)) = self.erased.get(value.as_str()) else {
                continue;
            };
            if sealed.links.iter().any(|l| &l.pseudonym == value) {
                continue;
            }
            *value = self.cache.pseudonym(*field, identity, &mut links);
            changed = true;
        }
        if !changed {
            return;
        }
        sealed.links.append(&mut links);
        if let Err(error) = sealed.reseal_metadata() {
            // Not reachable: the same event encoded a moment ago. Written as sealed.
            tracing::error!(target: LOG_TARGET, %error, "could not name an event afresh");
        }
    }
}
