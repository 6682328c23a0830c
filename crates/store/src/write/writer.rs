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
//!
//! When a commit fails for a reason that concerns the store (locked, unreachable, a full
//! disk), the records of the batch that nobody waits for are not dropped: they wait in the
//! [`Backlog`] and go first in the next commit that works, behind a gap event if the backlog
//! overflowed in between (see `backlog`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mcp_audit_core::{Hash, SealedEvent};
use tokio::sync::{mpsc, oneshot};

use crate::backlog::Backlog;
use crate::checkpointer::Checkpointer;
use crate::error::StoreError;
use crate::recorder::{RecordError, Shared};
use crate::store::{Append, Entry};

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::writer";

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

/// How the writer batches: the recorder's settings it runs with.
pub(crate) struct Batching {
    /// At most this many records per transaction (at least 1).
    pub(crate) max_batch: usize,
    pub(crate) linger: Duration,
    /// At most this many records wait in the backlog through an outage.
    pub(crate) backlog: usize,
    /// Keeps the recorder's pseudonym cache in step with erasures (`None`: pseudonyms off).
    pub(crate) erasures: Option<crate::erasure_watch::ErasureWatch>,
}

/// Runs until a shutdown command, or until every sender is gone (after draining the queue).
pub(crate) fn run(
    mut store: impl Append,
    next_seq: u64,
    mut commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    batching: Batching,
    mut checkpointer: Option<Checkpointer>,
) {
    let max_batch = batching.max_batch;
    let linger = batching.linger;
    let mut log = Log {
        next_seq,
        backlog: Backlog::new(batching.backlog),
        erasures: batching.erasures,
        appended: Appended::new(checkpointer.is_some()),
    };
    let mut batch: Vec<(Box<SealedEvent>, Waiter)> = Vec::with_capacity(max_batch);
    // Waiting on the queue with a time limit (a lingering batch, a retry due) takes a timer.
    let timer = timer();
    let lingers = !linger.is_zero() && timer.is_some();
    shared.telemetry.spool_bytes.set(store.spool_bytes());
    loop {
        let first = match commands.try_recv() {
            Ok(command) => command,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing queued: a moment for the store's upkeep, then wait (only until the
                // next retry when records wait in the backlog).
                if log.backlog.is_empty()
                    && let Err(error) = store.settle()
                {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %error,
                        "store upkeep failed; it is retried when next idle",
                    );
                }
                match (log.backlog.retry_in(), &timer) {
                    (Some(left), Some(timer)) => {
                        match next_before(timer, &mut commands, Instant::now() + left) {
                            Some(command) => command,
                            None if commands.is_closed() && commands.is_empty() => break,
                            None => {
                                log.commit(&mut store, &mut batch, &shared, Try::IfDue);
                                continue;
                            }
                        }
                    }
                    _ => match commands.blocking_recv() {
                        Some(command) => command,
                        None => break,
                    },
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
                        // What came before it is written first (and the backlog of an
                        // outage), so that the log keeps the order the records came in.
                        log.commit(&mut store, &mut batch, &shared, Try::Now);
                        let _ = reply.send(commit_all(&mut store, &mut log, &sealed, &shared));
                    }
                    Command::Flush { reply } => {
                        log.commit(&mut store, &mut batch, &shared, Try::Now);
                        let _ = reply.send(shared.take_losses().and_then(|()| log.held()));
                    }
                    Command::Shutdown { reply } => {
                        log.commit(&mut store, &mut batch, &shared, Try::Now);
                        log.give_up(&shared);
                        settle_all(&mut store);
                        if let Some(c) = checkpointer.as_mut() {
                            c.after_commit(&mut store, true, &mut log.appended);
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
            if stop || waited || batch.is_empty() || batch.len() >= max_batch || !lingers {
                break;
            }
            pending = timer
                .as_ref()
                .and_then(|timer| next_before(timer, &mut commands, deadline));
            if pending.is_none() {
                break;
            }
        }
        log.commit(&mut store, &mut batch, &shared, Try::IfDue);
        if stop {
            return;
        }
        if let Some(c) = checkpointer.as_mut() {
            c.after_commit(&mut store, false, &mut log.appended);
        }
    }
    // Every sender is gone: whatever still waits is lost, and said so.
    log.commit(&mut store, &mut batch, &shared, Try::Now);
    log.give_up(&shared);
    settle_all(&mut store);
}

/// The store's upkeep before the writer stops (see [`Append::settle_all`]); a failure is
/// logged, as the upkeep is never needed for correctness.
fn settle_all(store: &mut impl Append) {
    if let Err(error) = store.settle_all() {
        tracing::warn!(target: LOG_TARGET, %error, "store upkeep before stopping failed");
    }
}

/// A timer for waits on the queue with a time limit. `None` (logged) when none could be made:
/// batches are then not held open, and a backlog is retried with the next record.
fn timer() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .inspect_err(|error| {
            tracing::warn!(
                target: LOG_TARGET,
                %error,
                "no timer for the writer: batches are not held open",
            )
        })
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

/// Whether a commit of records nobody waits for tries a failing store before its retry is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Try {
    /// Only when due (see `backlog::RETRY_EVERY`): records join the backlog meanwhile.
    IfDue,
    /// Now: a flush or a shutdown must know.
    Now,
}

/// How often a batch is named afresh and committed again because erasures were made since its
/// last try, before it is committed without the check (as when the count can not be read).
const MAX_ERASURE_RETRIES: usize = 4;

/// The writer's place in the log and what waits through an outage.
struct Log {
    next_seq: u64,
    backlog: Backlog,
    erasures: Option<crate::erasure_watch::ErasureWatch>,
    /// The leaf hashes this writer appended since the checkpointer last took them.
    appended: Appended,
}

/// The leaf hashes of the entries this writer appended since the checkpointer last took them,
/// consecutive from seq `from`. The checkpointer takes them instead of reading them back after
/// each commit (a statement per commit, the only one outside the commit's transaction); when
/// they do not follow its tree's edge (another process appended in between) it reads the store
/// as before.
#[derive(Debug, Default)]
pub(crate) struct Appended {
    pub(crate) from: u64,
    pub(crate) leaves: Vec<Hash>,
    /// Whether a checkpointer takes them: without one (no tree kept, no signing) nothing would,
    /// and they would pile up for as long as the writer runs.
    kept: bool,
}

impl Appended {
    pub(crate) fn new(kept: bool) -> Appended {
        Appended {
            kept,
            ..Appended::default()
        }
    }

    /// Notes the entries just committed from `first` on; a gap since the last ones starts afresh
    /// (the checkpointer then reads the store, which has what lies in between).
    fn push(&mut self, first: u64, leaves: impl Iterator<Item = Hash>) {
        if !self.kept {
            return;
        }
        if self.from + self.leaves.len() as u64 != first {
            self.leaves.clear();
            self.from = first;
        }
        self.leaves.extend(leaves);
    }
}

impl Log {
    /// Commits the backlog (a gap event first, then the held records) and `batch`, in one
    /// transaction; answers the callers that wait. Records nobody waits for go back to the
    /// backlog when the store failed. While the store fails, a batch nobody waits for is not
    /// tried before the retry is due: it joins the backlog at once, so that the queue keeps
    /// moving and the callers never block on a store that is down.
    fn commit<S: Append>(
        &mut self,
        store: &mut S,
        batch: &mut Vec<(Box<SealedEvent>, Waiter)>,
        shared: &Shared,
        when: Try,
    ) {
        if batch.is_empty() && self.backlog.is_empty() {
            return;
        }
        let waited = batch.iter().any(|(_, reply)| reply.is_some());
        if !waited && when == Try::IfDue && !self.backlog.may_try() {
            let error = self.backlog.last_error().to_string();
            for (sealed, _) in batch.drain(..) {
                self.keep(sealed, &error, shared);
            }
            return;
        }
        let (gap, held) = self.backlog.take();
        let has_gap = gap.is_some();
        let mut records: Vec<(Box<SealedEvent>, Waiter)> =
            Vec::with_capacity(usize::from(has_gap) + held.len() + batch.len());
        records.extend(gap.into_iter().chain(held).map(|s| (s, None)));
        records.append(batch);
        shared.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(erasures) = &self.erasures {
            erasures.rename_all(records.iter_mut().map(|(sealed, _)| &mut **sealed));
        }
        let started = Instant::now();
        let outcomes = self.write(store, &mut records);
        shared.telemetry.commit_latency.observe(started.elapsed());
        shared.telemetry.spool_bytes.set(store.spool_bytes());
        let gap_written = has_gap && outcomes.first().is_some_and(|o| o.is_ok());
        let wide = outcomes.iter().find_map(|o| match o {
            Err(Failure::Store(error)) => Some(error.clone()),
            _ => None,
        });
        match &wide {
            Some(error) => self.backlog.failed(error),
            None => self.backlog.written(gap_written),
        }
        shared.set_failing_since(self.backlog.failing_since());
        for (index, ((sealed, reply), outcome)) in records.into_iter().zip(outcomes).enumerate() {
            let is_gap = has_gap && index == 0;
            match outcome {
                Ok(seq) => {
                    // The gap event is the writer's own: not one of the callers' records.
                    if !is_gap {
                        shared.recorded.fetch_add(1, Ordering::Relaxed);
                        let event = &sealed.event;
                        shared.telemetry.written.count(event.kind, event.outcome);
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(seq));
                    }
                }
                // Rebuilt from the tally at the next try.
                Err(Failure::Store(_)) if is_gap => {}
                Err(Failure::Record(error)) if is_gap => self.backlog.gap_refused(&error),
                Err(Failure::Store(error)) => match reply {
                    Some(reply) => {
                        shared.count_failed(1);
                        let _ = reply.send(Err(error));
                    }
                    None => self.keep(sealed, &error, shared),
                },
                Err(Failure::Record(error)) => {
                    tracing::error!(target: LOG_TARGET, %error, "audit event failed to be written");
                    shared.count_failed(1);
                    // A caller that waits gets the error now; the others learn of it from a
                    // flush.
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(error));
                        }
                        None => shared.report_later(1, &error),
                    }
                }
            }
        }
    }

    /// Holds a record nobody waits for until the store is back; one the backlog has no room
    /// for is lost, counted, and reported by the next flush (and by the gap event).
    fn keep(&mut self, sealed: Box<SealedEvent>, error: &dyn std::fmt::Display, shared: &Shared) {
        if !self.backlog.hold(sealed, error) {
            shared.count_failed(1);
            shared.report_later(1, error);
        }
    }

    /// A flush's answer about the backlog: records still waiting for the store are not durable.
    fn held(&self) -> Result<(), RecordError> {
        match self.backlog.held() {
            0 => Ok(()),
            held => Err(RecordError::Held {
                held: held as u64,
                last_error: self.backlog.last_error().to_string(),
            }),
        }
    }

    /// The writer stops with the store still failing: what waits in the backlog is lost.
    fn give_up(&mut self, shared: &Shared) {
        let lost = self.backlog.abandon();
        if lost > 0 {
            let error = "the audit store still refused writes when the recorder stopped";
            tracing::error!(target: LOG_TARGET, lost, "{error}");
            shared.count_failed(lost);
            shared.report_later(lost, &error);
        }
    }

    /// Appends `records` in one transaction; when that fails for a reason that may concern one
    /// record, one by one, so that only the bad one fails. Each record's seq, or why not.
    ///
    /// The transaction checks that no erasure was made since the records were named; when one
    /// was, the writer learns which pseudonyms went, names the records afresh and tries again.
    fn write<S: Append>(
        &mut self,
        store: &mut S,
        records: &mut [(Box<SealedEvent>, Waiter)],
    ) -> Vec<Result<u64, Failure>> {
        let mut retries = 0;
        let whole = loop {
            let seen = match &self.erasures {
                Some(erasures) if retries < MAX_ERASURE_RETRIES => Some(erasures.seen()),
                _ => None,
            };
            let sealed: Vec<&SealedEvent> = records.iter().map(|(s, _)| s.as_ref()).collect();
            match append(store, &mut self.next_seq, &mut self.appended, &sealed, seen) {
                Err(StoreError::ErasedSince { count }) => {
                    retries += 1;
                    if let Some(erasures) = &mut self.erasures {
                        erasures.refresh(store, count);
                        erasures.rename_all(records.iter_mut().map(|(sealed, _)| &mut **sealed));
                    }
                }
                other => break other,
            }
        };
        // A record refused on its own is retried without the erasure check: the whole batch's
        // transaction just passed it.
        let sealed: Vec<&SealedEvent> = records.iter().map(|(s, _)| s.as_ref()).collect();
        match whole {
            Ok(seqs) => seqs.into_iter().map(Ok).collect(),
            Err(error) if sealed.len() > 1 && is_per_event(&error) => sealed
                .iter()
                .map(|one| {
                    let one = std::slice::from_ref(one);
                    append(store, &mut self.next_seq, &mut self.appended, one, None)
                        .map(|seqs| seqs[0])
                        .map_err(Failure::of)
                })
                .collect(),
            Err(error) => {
                let failure = Failure::of(error);
                sealed.iter().map(|_| Err(failure.clone())).collect()
            }
        }
    }
}

/// Why a record was not written.
#[derive(Debug, Clone)]
enum Failure {
    /// The store refused every record (locked, unreachable, full): worth trying again.
    Store(StoreError),
    /// This record was refused where others were not (a duplicate id): trying again would
    /// fail again.
    Record(StoreError),
}

impl Failure {
    /// Whether `error` concerns the store (locked, unreachable, out of space, or another writer
    /// kept taking the seqs) and may pass, or the record (a duplicate id, a schema the record
    /// does not fit), which trying again would not change.
    fn of(error: StoreError) -> Failure {
        match error {
            StoreError::Locked { .. }
            | StoreError::Unavailable { .. }
            | StoreError::Storage { .. }
            | StoreError::SeqConflict { .. } => Failure::Store(error),
            _ => Failure::Record(error),
        }
    }
}

/// Appends `sealed` in one transaction, without the event-by-event retry of [`Log::commit`]: the
/// caller asked for all or none.
fn commit_all(
    store: &mut impl Append,
    log: &mut Log,
    sealed: &[SealedEvent],
    shared: &Shared,
) -> Result<Vec<u64>, StoreError> {
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    shared.batches.fetch_add(1, Ordering::Relaxed);
    let events: Vec<&SealedEvent> = sealed.iter().collect();
    let started = Instant::now();
    let result = append(store, &mut log.next_seq, &mut log.appended, &events, None);
    shared.telemetry.commit_latency.observe(started.elapsed());
    shared.telemetry.spool_bytes.set(store.spool_bytes());
    match &result {
        Ok(_) => {
            shared
                .recorded
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            for one in &events {
                shared
                    .telemetry
                    .written
                    .count(one.event.kind, one.event.outcome);
            }
        }
        Err(error) => {
            tracing::error!(
                target: LOG_TARGET,
                %error,
                events = events.len(),
                "audit batch failed to be written",
            );
            shared.count_failed(events.len() as u64);
        }
    }
    result
}

/// Appends `events` as consecutive entries from `next_seq`, renumbering when another process
/// appended first, and notes their leaf hashes in `appended`; returns their seqs. With
/// `erasures_seen`, writes nothing and fails with [`StoreError::ErasedSince`] when the erasure
/// count moved from it.
fn append(
    store: &mut impl Append,
    next_seq: &mut u64,
    appended: &mut Appended,
    events: &[&SealedEvent],
    erasures_seen: Option<u64>,
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
        let written = match erasures_seen {
            Some(seen) => store.append_unless_erased(&entries, seen),
            None => store.append(&entries),
        };
        match written {
            Ok(()) => {
                appended.push(first, entries.iter().map(|e| e.leaf_hash));
                *next_seq = first + events.len() as u64;
                return Ok((first..*next_seq).collect());
            }
            Err(StoreError::SeqConflict { next }) => *next_seq = next,
            Err(error @ StoreError::ErasedSince { .. }) => return Err(error),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(range: std::ops::Range<u8>) -> impl Iterator<Item = Hash> {
        range.map(|b| Hash([b; 32]))
    }

    #[test]
    fn appended_leaves_follow_on_and_a_gap_starts_them_afresh() {
        let mut appended = Appended::new(true);
        appended.push(0, hashes(0..3));
        appended.push(3, hashes(3..5));
        assert_eq!((appended.from, appended.leaves.len()), (0, 5));
        // Another process appended 5..9: what this writer has from 9 on starts afresh.
        appended.push(9, hashes(9..10));
        assert_eq!(appended.from, 9);
        assert_eq!(appended.leaves, vec![Hash([9; 32])]);
    }

    #[test]
    fn without_a_checkpointer_to_take_them_no_leaves_are_kept() {
        let mut appended = Appended::new(false);
        for first in 0..100u8 {
            appended.push(u64::from(first), hashes(first..first + 1));
        }
        assert!(appended.leaves.is_empty());
    }
}
