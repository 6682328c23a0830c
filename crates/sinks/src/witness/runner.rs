//! A witness as a sink of the `[[sink]]` file: one task that makes a pass over every log it
//! follows ([`WitnessLogs`]) every `poll` until stopped, calling [`Witness::step`] once per
//! log.
//!
//! A witness follows the log's signed checkpoints, not its records, so it has no batches, no
//! dead letters and no start: the target's own cursor ([`Witness::step`]'s) says what it has
//! not seen yet. What this task adds is the running: a pass on a blocking thread (a round
//! blocks on the store and on its HTTP request), the next one soon after a checkpoint was sent
//! (the log may have signed another meanwhile), capped exponential backoff after a failure,
//! and the sink's row per log in the store's cursors, which `sink status` reads: its
//! `next_seq` is the size of the newest checkpoint of that log the target has (sent, appended
//! or co-signed), and a failed round leaves its error and the count of failures in a row
//! there. The backoff is per log: a log the target refuses waits, the others flow. A refusal
//! (a fork, a log cut back) is retried with the same backoff and stays visible until the
//! target takes a checkpoint of that log again, which for a tlog-witness means never: that is
//! the alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mcp_audit_store::{Append, Attempt, Audit, SinkState, StoreError, Witnessing};
use tokio_util::sync::CancellationToken;

use super::logs::WitnessLogs;
use super::{Step, Witness, WitnessError};
use crate::runner::Backoff;
use crate::stats::SinkStats;

/// How one witness sink runs.
#[derive(Debug, Clone)]
pub struct WitnessSpec {
    /// Its rows in the store's cursors (for `sink status`).
    pub name: String,
    /// How often to look for a new checkpoint once the target has the newest.
    pub poll: Duration,
    pub backoff: Backoff,
}

/// What one round on one log found.
struct Round {
    result: Result<Step, WitnessError>,
    /// The log's id, and the size of its newest stored checkpoint before the step (0: none).
    log_id: String,
    newest: u64,
    /// The log's size, for the lag.
    size: u64,
}

/// A log whose last round failed: how many failed in a row, and when to try it again.
struct Waiting {
    failures: u32,
    until: Instant,
}

/// Everything a pass needs, moved to the blocking thread and back.
struct Parts<L, T> {
    witness: Witness,
    logs: L,
    state: T,
    /// The logs that wait after a failure, by id.
    waiting: HashMap<String, Waiting>,
    /// Each log's lag in records as of its last round (a waiting log keeps its own).
    lags: HashMap<String, u64>,
}

/// Runs one witness sink until `stop` is cancelled. `logs` reaches each log's store (it writes
/// the cosignatures and the targets' cursors), `state` the sinks' cursors. Failures never end
/// it.
pub async fn run<L, T>(
    spec: WitnessSpec,
    witness: Witness,
    logs: L,
    state: T,
    stop: CancellationToken,
    stats: Arc<SinkStats>,
) where
    L: WitnessLogs + 'static,
    T: SinkState,
{
    tracing::info!(sink = %spec.name, kind = "witness", "sink started");
    let mut held = Some(Parts {
        witness,
        logs,
        state,
        waiting: HashMap::new(),
        lags: HashMap::new(),
    });
    while !stop.is_cancelled() {
        let Some(mut parts) = held.take() else {
            break;
        };
        let (pass_spec, pass_stats) = (spec.clone(), stats.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let wait = pass(&pass_spec, &mut parts, &pass_stats);
            (parts, wait)
        })
        .await;
        let wait = match joined {
            Ok((parts, wait)) => {
                held = Some(parts);
                wait
            }
            Err(e) => {
                tracing::error!(sink = %spec.name, error = %e, "witness round failed; the sink stops");
                return;
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    if let Some(parts) = held {
        // Dropped on a blocking thread: a PostgreSQL client shuts down a runtime of its own.
        let _ = tokio::task::spawn_blocking(move || drop(parts)).await;
    }
    tracing::info!(sink = %spec.name, "sink stopped");
}

/// One round on each log that is not waiting after a failure; how long to wait before the
/// next pass (zero: a checkpoint was sent, look again at once).
fn pass<L, T>(spec: &WitnessSpec, parts: &mut Parts<L, T>, stats: &SinkStats) -> Duration
where
    L: WitnessLogs,
    T: SinkState,
{
    let log_ids = match parts.logs.log_ids() {
        Ok(ids) => ids,
        Err(e) => {
            SinkStats::add(&stats.retries, 1);
            tracing::warn!(sink = %spec.name, error = %e, "witness sink cannot list the logs; will retry");
            return spec.backoff.after(1);
        }
    };
    let now = Instant::now();
    let mut sent = false;
    for log_id in log_ids {
        if parts.waiting.get(&log_id).is_some_and(|w| w.until > now) {
            continue;
        }
        let round = match parts.logs.log(&log_id) {
            Ok(store) => round(&mut parts.witness, store),
            Err(e) => Round {
                result: Err(WitnessError::Store(e)),
                log_id: log_id.clone(),
                newest: 0,
                size: 0,
            },
        };
        match keep(&mut parts.state, &spec.name, &round) {
            Ok(has) => {
                parts
                    .lags
                    .insert(log_id.clone(), round.size.saturating_sub(has));
            }
            Err(e) => {
                tracing::warn!(sink = %spec.name, log = %log_id, error = %e, "witness sink cannot keep its state in the store")
            }
        }
        match &round.result {
            Ok(Step::UpToDate) => {
                parts.waiting.remove(&log_id);
            }
            Ok(step) => {
                parts.waiting.remove(&log_id);
                let count = match step {
                    Step::Appended { count, .. } | Step::Posted { count, .. } => *count,
                    _ => 1,
                };
                SinkStats::add(&stats.delivered, count as u64);
                tracing::info!(sink = %spec.name, log = %log_id, ?step, "checkpoint sent");
                sent = true;
            }
            Err(e) => {
                let failures = parts
                    .waiting
                    .get(&log_id)
                    .map_or(1, |w| w.failures.saturating_add(1));
                SinkStats::add(&stats.retries, 1);
                tracing::warn!(sink = %spec.name, log = %log_id, error = %e, failures, "witness round failed; will retry");
                parts.waiting.insert(
                    log_id,
                    Waiting {
                        failures,
                        until: now + spec.backoff.after(failures),
                    },
                );
            }
        }
    }
    let lag = parts
        .lags
        .values()
        .fold(0u64, |sum, lag| sum.saturating_add(*lag));
    stats.lag_records.store(lag, Ordering::Relaxed);
    if sent {
        // Another checkpoint may have been signed meanwhile: look again at once.
        return Duration::ZERO;
    }
    let next_retry = parts
        .waiting
        .values()
        .map(|w| w.until.saturating_duration_since(now))
        .min();
    next_retry.map_or(spec.poll, |retry| retry.min(spec.poll))
}

/// One step, and where the log stands after it.
fn round<S>(witness: &mut Witness, store: &mut S) -> Round
where
    S: Append + Audit + Witnessing + ?Sized,
{
    // Read before the step: a checkpoint signed during it is not taken for one the target has.
    let newest = store
        .checkpoints()
        .ok()
        .and_then(|all| all.into_iter().next_back())
        .map_or(0, |(size, _)| size);
    let result = witness.step(store);
    let size = store.next_seq().unwrap_or(newest);
    Round {
        result,
        log_id: store.log_id().to_string(),
        newest,
        size,
    }
}

/// The sink's row: the size the target has on success, the failure otherwise; the size the
/// target has, as the row says.
fn keep<T: SinkState + ?Sized>(
    state: &mut T,
    name: &str,
    round: &Round,
) -> Result<u64, StoreError> {
    let sent = match &round.result {
        Ok(Step::UpToDate) => round.newest,
        Ok(Step::Cosigned { size, .. })
        | Ok(Step::Appended { size, .. })
        | Ok(Step::Posted { size, .. }) => *size,
        Err(e) => {
            if state.cursor(name, &round.log_id)?.is_none() {
                state.advance(name, &round.log_id, 0)?;
            }
            let attempt = match e {
                WitnessError::Refused { .. } | WitnessError::BadAnswer { .. } => Attempt::Refused,
                _ => Attempt::Unavailable,
            };
            return Ok(state
                .failed(name, &round.log_id, attempt, &e.to_string())?
                .next_seq);
        }
    };
    // `advance` moves forward only, and clears the failures: a round can fail only with a
    // newer checkpoint to send, so the success that follows a failure moves past it.
    match state.cursor(name, &round.log_id)? {
        Some(c) if c.next_seq >= sent => Ok(c.next_seq),
        _ => state.advance(name, &round.log_id, sent).map(|()| sent),
    }
}
