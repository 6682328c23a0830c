//! One runner at a time per sink name: the runner's side of the store's lease (see
//! `mcp_audit_store::sinks`).
//!
//! A runner asks for the lease before it sends, and again every third of the lease's length,
//! so a held lease is renewed twice before it could run out. It counts its lease from the
//! moment it *asked* (not when the answer came), on its own monotonic clock, and sends
//! nothing past that: a runner that stalls (a paused process, a database that stopped
//! answering) stops sending before a standby may take the name over. What remains is
//! at-least-once: a delivery under way at a takeover may be sent again by the new holder,
//! with the same idempotency keys.

use std::time::Duration;

use mcp_audit_store::SinkState;
use tokio::time::Instant;

use crate::blocking::Blocking;

/// Whether this runner may send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// It holds the lease; `fresh`: it did not hold it at the previous look (it must read its
    /// cursors again: another runner may have moved them).
    Holder { fresh: bool },
    /// Another runner holds it, or the store could not be asked: wait.
    Standby,
}

/// This runner's lease on its sink's name.
pub(crate) struct Lease {
    /// This runner's id: host, process and a random part (two runners of one process differ).
    pub(crate) owner: String,
    ttl: Duration,
    /// Until when this runner may send (its last successful ask plus `ttl`).
    held_until: Option<Instant>,
    /// When to ask again.
    renew_at: Instant,
    /// Whether the last look found another holder (to log the change once).
    waiting: bool,
}

impl Lease {
    /// A lease of length `ttl` (at least 3 ms, so that a third of it is not zero).
    pub(crate) fn new(ttl: Duration) -> Lease {
        Lease {
            owner: owner_id(),
            ttl: ttl.max(Duration::from_millis(3)),
            held_until: None,
            renew_at: Instant::now(),
            waiting: false,
        }
    }

    /// How often a standby asks, and a holder renews.
    pub(crate) fn interval(&self) -> Duration {
        self.ttl / 3
    }

    /// Asks for (or renews) the lease when due; whether this runner may send now.
    pub(crate) async fn check<S: SinkState>(
        &mut self,
        store: &mut Blocking<S>,
        sink: &str,
    ) -> Standing {
        let now = Instant::now();
        let held = self.held_until.is_some_and(|t| t > now);
        if held && now < self.renew_at {
            return Standing::Holder { fresh: false };
        }
        let (name, owner, ttl) = (sink.to_string(), self.owner.clone(), self.ttl);
        let answer = store.call(move |s| s.take_lease(&name, &owner, ttl)).await;
        self.renew_at = now + self.interval();
        match answer {
            Ok(lease) if lease.held_by(&self.owner) => {
                self.held_until = Some(now + self.ttl);
                if !held {
                    tracing::info!(sink, owner = %self.owner, "sink holds its lease: sending");
                }
                self.waiting = false;
                Standing::Holder { fresh: !held }
            }
            Ok(lease) => {
                self.held_until = None;
                if !self.waiting {
                    tracing::info!(sink, holder = %lease.owner, until = %lease.expires_at, "sink standby: another runner holds its lease; waiting");
                }
                self.waiting = true;
                Standing::Standby
            }
            Err(e) => {
                tracing::warn!(sink, error = %e, "sink cannot renew its lease; trying again");
                if held {
                    Standing::Holder { fresh: false }
                } else {
                    Standing::Standby
                }
            }
        }
    }

    /// Gives the lease up (a clean stop), so a standby takes over at its next ask.
    pub(crate) async fn release<S: SinkState>(&mut self, store: &mut Blocking<S>, sink: &str) {
        if self.held_until.take().is_none() {
            return;
        }
        let (name, owner) = (sink.to_string(), self.owner.clone());
        if let Err(e) = store.call(move |s| s.release_lease(&name, &owner)).await {
            tracing::warn!(sink, error = %e, "sink could not release its lease; it runs out by itself");
        }
    }
}

/// `host:pid:random`: which machine and process runs a sink, for `sink status`, and a random
/// part so that two runners of one name in one process are two owners.
fn owner_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let random = RandomState::new().hash_one(std::process::id()) as u32;
    format!("{host}:{}:{random:08x}", std::process::id())
}
