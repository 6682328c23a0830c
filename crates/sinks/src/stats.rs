//! What a running sink counts, for the metrics of the process that hosts it (`proxy`, `serve`,
//! `follow`): plain atomics, read by whichever registry exports them.

use std::sync::atomic::{AtomicU64, Ordering};

/// One sink's counters since the process started.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records the destination acknowledged.
    pub delivered: AtomicU64,
    /// Failed deliveries (each retried later, or dead-lettered).
    pub retries: AtomicU64,
    /// Records given up on.
    pub dead_letters: AtomicU64,
    /// Records not delivered yet, over every log followed, as of the last look.
    pub lag_records: AtomicU64,
}

impl SinkStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters' values now: (delivered, retries, dead letters, lag in records).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.dead_letters.load(Ordering::Relaxed),
            self.lag_records.load(Ordering::Relaxed),
        )
    }
}
