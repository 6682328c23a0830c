//! A witness as a sink of the `[[sink]]` file: one task that calls [`Witness::step`] every
//! `poll` until stopped.
//!
//! A witness follows the log's signed checkpoints, not its records, so it has no batches, no
//! dead letters and no start: the target's own cursor ([`Witness::step`]'s) says what it has
//! not seen yet. What this task adds is the running: a round on a blocking thread (the round
//! blocks on the store and on its HTTP request), the next one soon after a checkpoint was sent
//! (the log may have signed another meanwhile), capped exponential backoff after a failure,
//! and the sink's row in the store's cursors, which `sink status` reads: its `next_seq` is the
//! size of the newest checkpoint the target has (sent, appended or co-signed), and a failed
//! round leaves its error and the count of failures in a row there. A refusal (a fork, a log
//! cut back) is retried with the same backoff and stays visible until the target takes a
//! checkpoint again, which for a tlog-witness means never: that is the alarm.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mcp_audit_store::{Append, Attempt, Audit, SinkState, StoreError, Witnessing};
use tokio_util::sync::CancellationToken;

use super::{Step, Witness, WitnessError};
use crate::runner::Backoff;
use crate::stats::SinkStats;

/// How one witness sink runs.
#[derive(Debug, Clone)]
pub struct WitnessSpec {
    /// Its row in the store's cursors (for `sink status`).
    pub name: String,
    /// How often to look for a new checkpoint once the target has the newest.
    pub poll: Duration,
    pub backoff: Backoff,
}

/// What one round on the blocking thread found.
struct Round {
    result: Result<Step, WitnessError>,
    /// The log's id, and the size of its newest stored checkpoint before the step (0: none).
    log_id: String,
    newest: u64,
    /// The log's size, for the lag.
    size: u64,
}

/// Runs one witness sink until `stop` is cancelled. `store` is the log's (it writes the
/// cosignatures and the targets' cursors), `state` the sinks' cursors. Failures never end it.
pub async fn run<S, T>(
    spec: WitnessSpec,
    witness: Witness,
    store: S,
    state: T,
    stop: CancellationToken,
    stats: Arc<SinkStats>,
) where
    S: Append + Audit + Witnessing + Send + 'static,
    T: SinkState,
{
    tracing::info!(sink = %spec.name, kind = "witness", "sink started");
    let mut held = Some((witness, store, state));
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let Some((mut witness, mut store, mut state)) = held.take() else {
            break;
        };
        let name = spec.name.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let round = round(&mut witness, &mut store);
            let kept = keep(&mut state, &name, &round);
            ((witness, store, state), round, kept)
        })
        .await;
        let (parts, round, kept) = match joined {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(sink = %spec.name, error = %e, "witness round failed; the sink stops");
                return;
            }
        };
        held = Some(parts);
        match kept {
            Ok(has) => stats
                .lag_records
                .store(round.size.saturating_sub(has), Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(sink = %spec.name, error = %e, "witness sink cannot keep its state in the store")
            }
        }
        let wait = match &round.result {
            Ok(Step::UpToDate) => {
                failures = 0;
                spec.poll
            }
            Ok(step) => {
                failures = 0;
                let count = match step {
                    Step::Appended { count, .. } | Step::Posted { count, .. } => *count,
                    _ => 1,
                };
                SinkStats::add(&stats.delivered, count as u64);
                tracing::info!(sink = %spec.name, ?step, "checkpoint sent");
                // Another checkpoint may have been signed meanwhile: look again at once.
                continue;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                SinkStats::add(&stats.retries, 1);
                tracing::warn!(sink = %spec.name, error = %e, failures, "witness round failed; will retry");
                spec.backoff.after(failures)
            }
        };
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

/// One step, and where the log stands after it.
fn round<S>(witness: &mut Witness, store: &mut S) -> Round
where
    S: Append + Audit + Witnessing,
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
