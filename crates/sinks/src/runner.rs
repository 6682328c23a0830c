//! The runner: one task per sink that follows every log (or the configured ones) from its
//! cursor and hands batches to the sink's destination.
//!
//! For each log, in turn: read up to `batch` records from the cursor, deliver them, and only
//! once the destination acknowledged move the cursor past them (at-least-once: a crash between
//! the acknowledgement and the cursor's write sends those records again, with the same keys).
//!
//! - [`Failure::Unavailable`]: nothing moves; the failure is counted at the cursor and the
//!   log waits `backoff_initial × 2^(tries−1)`, at most `backoff_max`, then the batch is read
//!   and sent again. However long the destination is down, nothing is skipped.
//! - [`Failure::Refused`]: the cursor moves past the records the destination accepted; the
//!   refused one is sent again alone (after the same backoff), and once it has been refused
//!   `max_tries` times it goes to the dead letters and the cursor moves past it: the rest
//!   flows on. The rest of the refused batch goes one record at a time, so that a receiver
//!   that does not say which record it refuses (OTLP) has it found in one pass. The refusals are counted in the store, so a restart does not reset them.
//!
//! A durable sink sends only while it holds its name's lease (see [`crate::lease`]): a second
//! runner of the same name waits as a standby and takes over, from the cursors in the store,
//! when the first stops or dies. Dead letters an operator queued again (`mcp-audit sink
//! retry`) are sent before the live records of their log (see [`replay`]).
//!
//! A log waiting out a backoff does not hold up the others. With nothing new to send the
//! runner looks again every `poll`: it only reads the store, so the recording path never
//! waits for a sink. Stopping (the token) is seen between deliveries: a delivery under way
//! finishes (each destination bounds its own time), and its acknowledgement is kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mcp_audit_core::redact::Redactor;
use mcp_audit_store::{Attempt, DeadLetter, LogSize, SinkState, StoreError, StoredEvent};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::blocking::Blocking;
use crate::lease::{Lease, Standing};
use crate::stats::SinkStats;
use crate::{Destination, Failure};

/// Where a sink's cursor starts in a log it has never followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// From the log's first record: a new SIEM gets the whole trail.
    #[default]
    Beginning,
    /// From the log's end when the sink first sees it: only what is recorded from then on.
    End,
}

/// The wait after a failure: doubled at each failure in a row at the same position, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `tries`-th failure in a row (1 or more).
    pub fn after(&self, tries: u32) -> Duration {
        let doublings = tries.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// How one sink runs.
#[derive(Clone)]
pub struct SinkSpec {
    /// The cursor's name in the store.
    pub name: String,
    /// Records per delivery (1 to 10,000).
    pub batch: u32,
    /// Refusals of one record before it goes to the dead letters (1 or more).
    pub max_tries: u32,
    pub backoff: Backoff,
    /// How often to look for new records once caught up.
    pub poll: Duration,
    pub start: Start,
    /// Only these logs (`None`: every log the store holds).
    pub logs: Option<Vec<String>>,
    /// A redaction applied to each record before it leaves, beyond what the store keeps.
    pub redactor: Option<Arc<Redactor>>,
    /// Whether cursors, failures and dead letters are kept in the store (`false`: in memory
    /// only, for `follow --stdout`, which starts afresh each time; no lease either).
    pub durable: bool,
    /// The length of the lease on the sink's name: how long a standby waits, at most, after
    /// the holder died (it renews every third of it).
    pub lease: Duration,
}

/// A sink's place in one log, as this runner knows it.
#[derive(Debug, Clone, Copy)]
struct Position {
    next: u64,
    tries: u32,
    refusals: u32,
    /// Not before this may the log be tried again (a backoff under way).
    not_before: Option<Instant>,
    /// The last seq of a batch that was refused: the records up to it go one at a time. A
    /// receiver may not say which record it refuses (OTLP answers a count, or refuses a whole
    /// request), so the runner finds it by sending them alone; going back to whole batches after
    /// each record taken would send the rest of the batch again for every record before the
    /// refused one (quadratic, and as many duplicates at a receiver that keeps what it did not
    /// refuse). Kept in memory only: after a restart the refused record is still sent alone
    /// (its refusals are in the store).
    alone_through: Option<u64>,
}

/// What one look at a log did.
enum Step {
    /// Records were delivered or dead-lettered: look again at once.
    Moved,
    /// Nothing to send, or waiting out a backoff.
    Idle,
}

/// Runs one sink until `stop` is cancelled. Store failures (a database restarting) are logged
/// and tried again after `poll`; they never end the sink.
pub async fn run<D: Destination, S: SinkState>(
    spec: SinkSpec,
    destination: D,
    state: S,
    stop: CancellationToken,
    stats: Arc<SinkStats>,
) {
    let mut runner = Runner {
        lease: Lease::new(spec.lease),
        spec,
        destination,
        store: Blocking::new(state),
        positions: HashMap::new(),
        listed: false,
        replay_waits: HashMap::new(),
        stats,
        stop,
    };
    tracing::info!(sink = %runner.spec.name, kind = runner.destination.kind(), owner = %runner.lease.owner, "sink started");
    while !runner.stop.is_cancelled() {
        if runner.spec.durable && !runner.may_send().await {
            let wait = runner.lease.interval().min(runner.spec.poll);
            tokio::select! {
                () = runner.stop.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let moved = match runner.round().await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(sink = %runner.spec.name, error = %e, "sink cannot read the store; trying again");
                false
            }
        };
        if !moved {
            let wait = runner.idle_wait();
            tokio::select! {
                () = runner.stop.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
    if runner.spec.durable {
        let name = runner.spec.name.clone();
        runner.lease.release(&mut runner.store, &name).await;
    }
    tracing::info!(sink = %runner.spec.name, "sink stopped");
}

struct Runner<D, S: SinkState> {
    spec: SinkSpec,
    destination: D,
    store: Blocking<S>,
    positions: HashMap<String, Position>,
    /// Whether a round has listed the logs: a log first seen after that is new since the
    /// sink started, and [`Start::End`] starts it at its beginning (nothing of it is older).
    listed: bool,
    lease: Lease,
    /// Per log, the replay of a queued dead letter waiting out a backoff: failures in a row,
    /// and not before when.
    replay_waits: HashMap<String, (u32, Instant)>,
    stats: Arc<SinkStats>,
    stop: CancellationToken,
}

impl<D: Destination, S: SinkState> Runner<D, S> {
    /// Asks for or renews the lease when due; whether this runner may send. A runner that
    /// has just taken the name over forgets the positions it knew: the cursors in the store
    /// are where the previous holder left them.
    async fn may_send(&mut self) -> bool {
        let name = self.spec.name.clone();
        match self.lease.check(&mut self.store, &name).await {
            Standing::Holder { fresh } => {
                if fresh {
                    self.positions.clear();
                    self.replay_waits.clear();
                }
                true
            }
            Standing::Standby => false,
        }
    }

    /// One look at every log followed; whether anything moved.
    async fn round(&mut self) -> Result<bool, StoreError> {
        let mut logs = self.store.call(|s| s.logs()).await?;
        if let Some(only) = &self.spec.logs {
            logs.retain(|l| only.contains(&l.log_id));
        }
        let mut moved = self.spec.durable && self.replay().await?;
        let listed = self.listed;
        self.listed = true;
        for log in &logs {
            if self.stop.is_cancelled() || (self.spec.durable && !self.may_send().await) {
                break;
            }
            if let Step::Moved = self.follow(log, listed).await? {
                moved = true;
            }
        }
        let lag = logs
            .iter()
            .map(|l| {
                let next = self.positions.get(&l.log_id).map_or(0, |p| p.next);
                l.size.saturating_sub(next)
            })
            .sum();
        self.stats
            .lag_records
            .store(lag, std::sync::atomic::Ordering::Relaxed);
        Ok(moved)
    }

    /// How long to sleep when nothing moved: the poll interval, or less when a backoff ends
    /// sooner.
    fn idle_wait(&self) -> Duration {
        let now = Instant::now();
        self.positions
            .values()
            .filter_map(|p| p.not_before)
            .chain(self.replay_waits.values().map(|w| w.1))
            .map(|t| t.saturating_duration_since(now))
            .fold(self.idle_most(), Duration::min)
    }

    /// The longest idle sleep: the poll interval, and no longer than the lease's renewal
    /// interval, so that a holder renews before its lease runs out.
    fn idle_most(&self) -> Duration {
        if self.spec.durable {
            self.spec.poll.min(self.lease.interval())
        } else {
            self.spec.poll
        }
    }

    /// One delivery (at most) from `log`; `listed`: the logs were listed before this round.
    async fn follow(&mut self, log: &LogSize, listed: bool) -> Result<Step, StoreError> {
        let position = self.position(log, listed).await?;
        if position.not_before.is_some_and(|t| t > Instant::now()) || position.next >= log.size {
            return Ok(Step::Idle);
        }
        // A record refused before is sent alone, so that its refusals are its own, and so are
        // the rest of the batch it was refused in.
        let narrowing = position
            .alone_through
            .is_some_and(|last| position.next <= last);
        let limit = if position.refusals > 0 || narrowing {
            1
        } else {
            self.spec.batch
        };
        let (log_id, from) = (log.log_id.clone(), position.next);
        let mut batch = self
            .store
            .call(move |s| s.events_from(&log_id, from, limit))
            .await?;
        if batch.is_empty() {
            // The records before the log's end were removed (expired) before they were sent.
            return Ok(Step::Idle);
        }
        self.prepare(&mut batch);
        match self.destination.deliver(&batch).await {
            Ok(()) => {
                let last = batch[batch.len() - 1].seq;
                self.moved(&log.log_id, last + 1).await?;
                SinkStats::add(&self.stats.delivered, batch.len() as u64);
                Ok(Step::Moved)
            }
            Err(Failure::Unavailable(reason)) => {
                tracing::warn!(sink = %self.spec.name, log = %log.log_id, seq = from, %reason, "destination unavailable; will retry");
                self.failed(&log.log_id, Attempt::Unavailable, &reason)
                    .await?;
                Ok(Step::Idle)
            }
            Err(Failure::Refused { accepted, reason }) => {
                self.refused(&log.log_id, &batch, accepted, reason).await
            }
        }
    }

    /// What leaves: each record with the sink's own redaction applied (beyond the store's).
    fn prepare(&self, batch: &mut [StoredEvent]) {
        if let Some(redactor) = &self.spec.redactor {
            for stored in batch {
                redactor.redact(&mut stored.event);
            }
        }
    }

    /// The destination took the first `accepted` records of `batch` and refused the next.
    async fn refused(
        &mut self,
        log_id: &str,
        batch: &[StoredEvent],
        accepted: usize,
        reason: String,
    ) -> Result<Step, StoreError> {
        let accepted = accepted.min(batch.len() - 1);
        let refused = &batch[accepted];
        if accepted > 0 {
            self.moved(log_id, refused.seq).await?;
            SinkStats::add(&self.stats.delivered, accepted as u64);
        }
        let mut position = self.failed(log_id, Attempt::Refused, &reason).await?;
        position.alone_through = Some(batch[batch.len() - 1].seq);
        self.positions.insert(log_id.to_string(), position);
        tracing::warn!(sink = %self.spec.name, log = log_id, seq = refused.seq, refusals = position.refusals, %reason, "record refused");
        if position.refusals < self.spec.max_tries {
            return Ok(if accepted > 0 {
                Step::Moved
            } else {
                Step::Idle
            });
        }
        let letter = DeadLetter {
            sink: self.spec.name.clone(),
            log_id: log_id.to_string(),
            seq: refused.seq,
            event_id: refused.event.id,
            tries: position.refusals,
            last_error: reason,
            at: Timestamp::now(),
            queued: false,
        };
        tracing::error!(sink = %self.spec.name, log = log_id, seq = refused.seq, "record refused {} times: moved to the dead letters", position.refusals);
        if self.spec.durable {
            self.store.call(move |s| s.add_dead_letter(&letter)).await?;
        }
        SinkStats::add(&self.stats.dead_letters, 1);
        self.moved(log_id, refused.seq + 1).await?;
        Ok(Step::Moved)
    }

    /// The sink's position in `log`: as known, else from the store, else a new cursor where
    /// [`Start`] says (a log that appeared while the sink ran starts at its beginning).
    async fn position(&mut self, log: &LogSize, listed: bool) -> Result<Position, StoreError> {
        if let Some(p) = self.positions.get(&log.log_id) {
            return Ok(*p);
        }
        let start = match self.spec.start {
            Start::End if !listed => log.size,
            _ => 0,
        };
        let position = if self.spec.durable {
            let (name, log_id) = (self.spec.name.clone(), log.log_id.clone());
            let cursor = self
                .store
                .call(move |s| {
                    if let Some(c) = s.cursor(&name, &log_id)? {
                        return Ok(c);
                    }
                    s.advance(&name, &log_id, start)?;
                    s.cursor(&name, &log_id)?
                        .ok_or_else(|| StoreError::Database("a new cursor was not kept".into()))
                })
                .await?;
            Position {
                next: cursor.next_seq,
                tries: cursor.tries,
                refusals: cursor.refusals,
                not_before: None,
                alone_through: None,
            }
        } else {
            Position {
                next: start,
                tries: 0,
                refusals: 0,
                not_before: None,
                alone_through: None,
            }
        };
        self.positions.insert(log.log_id.clone(), position);
        Ok(position)
    }

    /// Moves the cursor in `log_id` to `next` (kept first, then known).
    async fn moved(&mut self, log_id: &str, next: u64) -> Result<(), StoreError> {
        if self.spec.durable {
            let (name, log) = (self.spec.name.clone(), log_id.to_string());
            self.store
                .call(move |s| s.advance(&name, &log, next))
                .await?;
        }
        let alone_through = self
            .positions
            .get(log_id)
            .and_then(|p| p.alone_through)
            .filter(|&last| next <= last);
        self.positions.insert(
            log_id.to_string(),
            Position {
                next,
                tries: 0,
                refusals: 0,
                not_before: None,
                alone_through,
            },
        );
        Ok(())
    }

    /// Counts a failure at the position in `log_id` and starts its backoff.
    async fn failed(
        &mut self,
        log_id: &str,
        attempt: Attempt,
        reason: &str,
    ) -> Result<Position, StoreError> {
        SinkStats::add(&self.stats.retries, 1);
        let mut position = *self
            .positions
            .get(log_id)
            .ok_or_else(|| StoreError::Database("no position to count a failure at".into()))?;
        if self.spec.durable {
            let (name, log, reason) = (
                self.spec.name.clone(),
                log_id.to_string(),
                reason.to_string(),
            );
            let cursor = self
                .store
                .call(move |s| s.failed(&name, &log, attempt, &reason))
                .await?;
            position.tries = cursor.tries;
            position.refusals = cursor.refusals;
        } else {
            position.tries += 1;
            position.refusals += u32::from(attempt == Attempt::Refused);
        }
        position.not_before = Some(Instant::now() + self.spec.backoff.after(position.tries));
        self.positions.insert(log_id.to_string(), position);
        Ok(position)
    }
}

mod replay;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_start_and_stops_at_its_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        };
        let waits: Vec<u128> = (1..=6).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(b.after(u32::MAX), b.max);
        assert_eq!(b.after(0), b.initial);
    }
}
