//! The writer: one named thread per log that turns queued events into durable batches.
//!
//! It takes one command, then whatever else is already queued (up to `max_batch`), gives the
//! records consecutive sequence numbers, appends them in ONE transaction (group commit: one
//! fsync for the whole batch), and only then answers the callers waiting on them. A flush or
//! shutdown request commits what is queued before it, so "everything recorded before the call
//! is durable" holds when it answers.
//!
//! With a `linger`, a batch that nobody waits for is held open that long for more records to
//! join it, unless a record somebody waits for, a flush or a shutdown comes first. The `sync`
//! proxy uses it: each call is a durable intent then an outcome nobody waits for, and
//! committing the outcome at once put a second fsync in front of the next call's intent. Held
//! open, the outcome goes out with that intent, in one commit. The HTTP proxy in `batch` uses
//! it too: its calls, from many clients to a real server, arrive a few hundred microseconds
//! apart, and a commit of one or two records rewrote as many pages as one of dozens.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mcp_audit_core::SealedEvent;
use tokio::sync::{mpsc, oneshot};

use crate::checkpointer::Checkpointer;
use crate::error::StoreError;
use crate::recorder::{RecordError, Shared};
use crate::store::{Entry, Store};

/// What the writer is asked to do.
pub(crate) enum Command {
    /// Append an event; answer with its seq once durable, when `reply` is given.
    Record {
        sealed: Box<SealedEvent>,
        reply: Option<oneshot::Sender<Result<u64, StoreError>>>,
    },
    /// Append these events in one transaction of their own, all or none, after what was
    /// queued before them; answer with their seqs.
    RecordAll {
        sealed: Vec<SealedEvent>,
        reply: oneshot::Sender<Result<Vec<u64>, StoreError>>,
    },
    /// Answer once everything queued before is durable, with any loss since the last flush.
    Flush {
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
    /// As `Flush`, then stop.
    Shutdown {
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
    /// Time passed: sign a checkpoint if one is due.
    Tick,
}

type Waiter = Option<oneshot::Sender<Result<u64, StoreError>>>;

/// Runs until a shutdown command, or until every sender is gone (after draining the queue).
pub(crate) fn run(
    mut store: impl Store,
    mut next_seq: u64,
    mut commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    max_batch: usize,
    linger: Duration,
    mut checkpointer: Option<Checkpointer>,
) {
    let mut batch: Vec<(Box<SealedEvent>, Waiter)> = Vec::with_capacity(max_batch);
    let timer = linger_timer(linger);
    loop {
        let first = match commands.try_recv() {
            Ok(command) => command,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing queued: a moment for the store's upkeep, then wait.
                if let Err(error) = store.settle() {
                    tracing::warn!(%error, "store upkeep failed; it is retried when next idle");
                }
                match commands.blocking_recv() {
                    Some(command) => command,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let mut pending = Some(first);
        let mut stop = false;
        // Somebody waits for a record of the batch: it is committed without lingering.
        let mut waited = false;
        let deadline = Instant::now() + linger;
        loop {
            while let Some(command) = pending.take() {
                match command {
                    Command::Record { sealed, reply } => {
                        waited |= reply.is_some();
                        batch.push((sealed, reply));
                    }
                    Command::RecordAll { sealed, reply } => {
                        commit(&mut store, &mut next_seq, &mut batch, &shared);
                        let _ = reply.send(commit_all(&mut store, &mut next_seq, &sealed, &shared));
                    }
                    Command::Flush { reply } => {
                        commit(&mut store, &mut next_seq, &mut batch, &shared);
                        let _ = reply.send(shared.take_losses());
                    }
                    Command::Shutdown { reply } => {
                        commit(&mut store, &mut next_seq, &mut batch, &shared);
                        if let Some(c) = checkpointer.as_mut() {
                            c.after_commit(&mut store, true);
                        }
                        let _ = reply.send(shared.take_losses());
                        stop = true;
                        break;
                    }
                    Command::Tick => {}
                }
                if batch.len() < max_batch {
                    pending = commands.try_recv().ok();
                }
            }
            if stop || waited || batch.is_empty() || batch.len() >= max_batch {
                break;
            }
            match &timer {
                Some(timer) => pending = next_before(timer, &mut commands, deadline),
                None => break,
            }
            if pending.is_none() {
                break;
            }
        }
        commit(&mut store, &mut next_seq, &mut batch, &shared);
        if stop {
            return;
        }
        if let Some(c) = checkpointer.as_mut() {
            c.after_commit(&mut store, false);
        }
    }
}

/// What a lingering batch waits with: waiting on the queue with a time limit takes a timer.
/// `None` when nothing lingers, or (logged) when no timer could be made.
fn linger_timer(linger: Duration) -> Option<tokio::runtime::Runtime> {
    if linger.is_zero() {
        return None;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .inspect_err(
            |error| tracing::warn!(%error, "no timer for the writer: batches are not held open"),
        )
        .ok()
}

/// The next command, if one comes before `deadline`; `None` once time is up or every sender
/// is gone.
fn next_before(
    timer: &tokio::runtime::Runtime,
    commands: &mut mpsc::Receiver<Command>,
    deadline: Instant,
) -> Option<Command> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    // The timeout is made inside `block_on`: its timer needs the runtime's context.
    timer
        .block_on(async { tokio::time::timeout(left, commands.recv()).await })
        .ok()
        .flatten()
}

/// How often a batch is renumbered after another process appended first, before giving up.
const MAX_SEQ_CONFLICTS: usize = 16;

fn commit(
    store: &mut impl Store,
    next_seq: &mut u64,
    batch: &mut Vec<(Box<SealedEvent>, Waiter)>,
    shared: &Shared,
) {
    if batch.is_empty() {
        return;
    }
    shared.batches.fetch_add(1, Ordering::Relaxed);
    let sealed: Vec<&SealedEvent> = batch.iter().map(|(s, _)| s.as_ref()).collect();
    let result = match append(store, next_seq, &sealed) {
        // One bad event (a duplicate id, say) must not take the good ones of its batch down
        // with it: retry them one by one, so that only the bad one fails.
        Err(error) if sealed.len() > 1 && is_per_event(&error) => sealed
            .iter()
            .map(|one| append(store, next_seq, std::slice::from_ref(one)).map(|seqs| seqs[0]))
            .collect::<Vec<_>>(),
        Err(error) => vec![Err(error); sealed.len()],
        Ok(seqs) => seqs.into_iter().map(Ok).collect(),
    };
    drop(sealed);
    for ((_, reply), outcome) in batch.drain(..).zip(result) {
        match &outcome {
            Ok(_) => {
                shared.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(%error, "audit event failed to be written");
                shared.count_failed(1);
                // A caller that waits gets the error now; the others learn of it from a flush.
                if reply.is_none() {
                    shared.report_later(1, error);
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
}

/// Appends `sealed` in one transaction, without the event-by-event retry of [`commit`]: the
/// caller asked for all or none.
fn commit_all(
    store: &mut impl Store,
    next_seq: &mut u64,
    sealed: &[SealedEvent],
    shared: &Shared,
) -> Result<Vec<u64>, StoreError> {
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    shared.batches.fetch_add(1, Ordering::Relaxed);
    let events: Vec<&SealedEvent> = sealed.iter().collect();
    let result = append(store, next_seq, &events);
    match &result {
        Ok(_) => {
            shared
                .recorded
                .fetch_add(events.len() as u64, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::error!(%error, events = events.len(), "audit batch failed to be written");
            shared.count_failed(events.len() as u64);
        }
    }
    result
}

/// Appends `events` as consecutive entries from `next_seq`, renumbering when another process
/// appended first; returns their seqs.
fn append(
    store: &mut impl Store,
    next_seq: &mut u64,
    events: &[&SealedEvent],
) -> Result<Vec<u64>, StoreError> {
    for _ in 0..MAX_SEQ_CONFLICTS {
        let first = *next_seq;
        let entries: Vec<Entry<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, sealed)| {
                let seq = first + i as u64;
                Entry {
                    seq,
                    leaf_hash: sealed.leaf_hash(seq),
                    sealed,
                }
            })
            .collect();
        match store.append(&entries) {
            Ok(()) => {
                *next_seq = first + events.len() as u64;
                return Ok((first..*next_seq).collect());
            }
            Err(StoreError::SeqConflict { next }) => *next_seq = next,
            Err(error) => {
                // Nothing was written, so no seq was consumed; re-read in case the failure
                // came from the commit itself.
                if let Ok(seq) = store.next_seq() {
                    *next_seq = seq;
                }
                return Err(error);
            }
        }
    }
    Err(StoreError::SeqConflict { next: *next_seq })
}

/// Whether an error may concern one event of a batch rather than the whole store.
fn is_per_event(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(_) | StoreError::Model(_))
}
