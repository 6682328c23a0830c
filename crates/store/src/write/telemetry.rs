//! What a recorder knows of its own work, kept where it is cheapest to keep and read on
//! demand: events written by kind and outcome, how long commits take, how many bytes wait in a
//! local spool. The writer thread is the only one that updates these (relaxed atomics, one add
//! per event and one per commit, no lock), so recording does not get slower for being watched;
//! a scrape reads a [`RecorderMetrics`] snapshot through [`crate::Recorder::metrics`].
//!
//! No metrics crate here: the store states what it knows as plain numbers, and the programs
//! that expose them (the proxy, the console) map them to their exposition format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_audit_core::{EventKind, Outcome};

use crate::recorder::RecorderStats;

/// The upper bounds of the commit latency buckets, in microseconds (0.5 ms to 10 s): from a
/// SQLite commit on a quiet disk to a PostgreSQL commit through an outage's timeout. A commit
/// slower than the last bound counts in the implicit `+Inf` bucket only.
pub const COMMIT_BUCKETS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Commit durations as a histogram of fixed buckets (see [`COMMIT_BUCKETS_MICROS`]).
#[derive(Default)]
pub(crate) struct CommitLatency {
    /// Commits per bucket, not cumulative; the last one counts those past every bound.
    buckets: [AtomicU64; COMMIT_BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl CommitLatency {
    /// Counts one commit (successful or not: a failing store's slowness is worth seeing).
    pub(crate) fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = COMMIT_BUCKETS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> CommitHistogram {
        let mut counts = [0; COMMIT_BUCKETS_MICROS.len() + 1];
        for (count, bucket) in counts.iter_mut().zip(&self.buckets) {
            *count = bucket.load(Ordering::Relaxed);
        }
        CommitHistogram {
            counts,
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// Events written, by kind and outcome: one counter per pair, indexed by their place in
/// [`EventKind::ALL`] and [`Outcome::ALL`].
#[derive(Default)]
pub(crate) struct WrittenCounts {
    counts: [[AtomicU64; Outcome::ALL.len()]; EventKind::ALL.len()],
}

impl WrittenCounts {
    pub(crate) fn count(&self, kind: EventKind, outcome: Outcome) {
        // A kind or outcome this table does not know of (added to core later) is not
        // counted here; `RecorderStats::recorded` still counts it.
        let (Some(k), Some(o)) = (
            EventKind::ALL.iter().position(|&x| x == kind),
            Outcome::ALL.iter().position(|&x| x == outcome),
        ) else {
            return;
        };
        self.counts[k][o].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(EventKind, Outcome, u64)> {
        let mut out = Vec::new();
        for (kind, row) in EventKind::ALL.iter().zip(&self.counts) {
            for (outcome, count) in Outcome::ALL.iter().zip(row) {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((*kind, *outcome, n));
                }
            }
        }
        out
    }
}

/// Bytes in a local spool, as the writer last saw them; `u64::MAX`: the store has no spool.
pub(crate) struct SpoolBytes(AtomicU64);

impl Default for SpoolBytes {
    fn default() -> SpoolBytes {
        SpoolBytes(AtomicU64::new(u64::MAX))
    }
}

impl SpoolBytes {
    pub(crate) fn set(&self, bytes: Option<u64>) {
        self.0.store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&b| b != u64::MAX)
    }
}

/// The writer's figures, updated by the writer thread only.
#[derive(Default)]
pub(crate) struct Telemetry {
    pub(crate) written: WrittenCounts,
    pub(crate) commit_latency: CommitLatency,
    pub(crate) spool_bytes: SpoolBytes,
}

impl Telemetry {
    pub(crate) fn snapshot(
        &self,
        stats: RecorderStats,
        queue_depth: usize,
        queue_capacity: usize,
    ) -> RecorderMetrics {
        RecorderMetrics {
            stats,
            queue_depth,
            queue_capacity,
            written: self.written.snapshot(),
            commit_latency: self.commit_latency.snapshot(),
            spool_bytes: self.spool_bytes.get(),
        }
    }
}

/// Commit durations: counts per bucket of [`COMMIT_BUCKETS_MICROS`] (not cumulative), the last
/// one past every bound, and their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitHistogram {
    pub counts: [u64; COMMIT_BUCKETS_MICROS.len() + 1],
    pub sum_micros: u64,
}

impl CommitHistogram {
    /// How many commits were timed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each bucket's upper bound in seconds (the last: infinity) with its own count, the shape
    /// exposition formats take.
    pub fn buckets_seconds(&self) -> Vec<(f64, u64)> {
        COMMIT_BUCKETS_MICROS
            .iter()
            .map(|&bound| bound as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}

/// A recorder's figures at one moment (see [`crate::Recorder::metrics`]).
#[derive(Debug, Clone)]
pub struct RecorderMetrics {
    pub stats: RecorderStats,
    /// Commands waiting for the writer now (records, flushes), out of `queue_capacity`.
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// Events written by kind and outcome (pairs never written are left out).
    pub written: Vec<(EventKind, Outcome, u64)>,
    pub commit_latency: CommitHistogram,
    /// Bytes waiting in the local spool of a PostgreSQL store in `batch` (0 when nothing
    /// waits); `None` for a store without a spool.
    pub spool_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_counts_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let latency = CommitLatency::default();
        for micros in [0, 500, 501, 10_000_000, 10_000_001] {
            latency.observe(Duration::from_micros(micros));
        }
        let h = latency.snapshot();
        assert_eq!(h.counts[0], 2, "0 and 500 µs: up to 0.5 ms");
        assert_eq!(h.counts[1], 1, "501 µs: up to 1 ms");
        assert_eq!(h.counts[COMMIT_BUCKETS_MICROS.len() - 1], 1, "10 s exactly");
        assert_eq!(h.counts[COMMIT_BUCKETS_MICROS.len()], 1, "past every bound");
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum_micros, 500 + 501 + 10_000_000 + 10_000_001);
        let buckets = h.buckets_seconds();
        assert_eq!(buckets[0], (0.0005, 2));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
    }

    #[test]
    fn every_kind_and_outcome_has_its_own_counter() {
        let written = WrittenCounts::default();
        for kind in EventKind::ALL {
            for outcome in Outcome::ALL {
                written.count(kind, outcome);
            }
        }
        written.count(EventKind::ToolExecution, Outcome::Denied);
        let snapshot = written.snapshot();
        assert_eq!(snapshot.len(), EventKind::ALL.len() * Outcome::ALL.len());
        assert!(snapshot.contains(&(EventKind::ToolExecution, Outcome::Denied, 2)));
        assert!(snapshot.contains(&(EventKind::Protocol, Outcome::Pending, 1)));
    }
}
