//! The writer: one named thread per log that turns queued events into durable batches.
//!
//! It takes one command, then whatever else is already queued (up to `max_batch`), gives the
//! records consecutive sequence numbers, appends them in ONE transaction (group commit: one
//! fsync for the whole batch), and only then answers the callers waiting on them. A flush or
//! shutdown request commits what is queued before it, so "everything recorded before the call
//! is durable" holds when it answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mcp_audit_core::SealedEvent;
use tokio::sync::{mpsc, oneshot};

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
    /// Answer once everything queued before is durable, with any loss since the last flush.
    Flush {
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
    /// As `Flush`, then stop.
    Shutdown {
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
}

type Waiter = Option<oneshot::Sender<Result<u64, StoreError>>>;

/// Runs until a shutdown command, or until every sender is gone (after draining the queue).
pub(crate) fn run(
    mut store: impl Store,
    mut next_seq: u64,
    mut commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    max_batch: usize,
) {
    let mut batch: Vec<(Box<SealedEvent>, Waiter)> = Vec::with_capacity(max_batch);
    while let Some(first) = commands.blocking_recv() {
        let mut pending = Some(first);
        let mut stop = false;
        while let Some(command) = pending.take() {
            match command {
                Command::Record { sealed, reply } => batch.push((sealed, reply)),
                Command::Flush { reply } => {
                    commit(&mut store, &mut next_seq, &mut batch, &shared);
                    let _ = reply.send(shared.take_losses());
                }
                Command::Shutdown { reply } => {
                    commit(&mut store, &mut next_seq, &mut batch, &shared);
                    let _ = reply.send(shared.take_losses());
                    stop = true;
                    break;
                }
            }
            if batch.len() < max_batch {
                pending = commands.try_recv().ok();
            }
        }
        commit(&mut store, &mut next_seq, &mut batch, &shared);
        if stop {
            return;
        }
    }
}

fn commit(
    store: &mut impl Store,
    next_seq: &mut u64,
    batch: &mut Vec<(Box<SealedEvent>, Waiter)>,
    shared: &Shared,
) {
    if batch.is_empty() {
        return;
    }
    let first_seq = *next_seq;
    let entries: Vec<Entry<'_>> = batch
        .iter()
        .enumerate()
        .map(|(i, (sealed, _))| {
            let seq = first_seq + i as u64;
            Entry {
                seq,
                leaf_hash: sealed.leaf_hash(seq),
                sealed,
            }
        })
        .collect();
    let result = store.append(&entries);
    drop(entries);
    let n = batch.len() as u64;
    shared.batches.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(()) => {
            *next_seq += n;
            shared.recorded.fetch_add(n, Ordering::Relaxed);
            for (i, (_, reply)) in batch.drain(..).enumerate() {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(first_seq + i as u64));
                }
            }
        }
        Err(error) => {
            // Nothing of the batch was written, so its seqs were not consumed. Re-read the
            // counter anyway, in case the failure was in the commit itself.
            if let Ok(seq) = store.next_seq() {
                *next_seq = seq;
            }
            tracing::error!(%error, events = n, "audit batch failed to be written");
            shared.count_failed(n);
            // Callers that wait get the error now; only the others learn of it from a flush.
            let unseen = batch.iter().filter(|(_, reply)| reply.is_none()).count() as u64;
            shared.report_later(unseen, &error);
            for (_, reply) in batch.drain(..) {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
