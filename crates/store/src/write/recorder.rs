//! The `Recorder`: the handle through which events are recorded, from threads or async code.
//!
//! Recording runs the policy and seals the event in the CALLER's thread (the expensive part:
//! canonical JSON and SHA-256 of a kilobyte), then queues it for the single writer thread. The
//! queue is bounded: when it is full, `record` waits. Nothing is ever dropped silently: a failed
//! write reaches a `sync` caller as an error; in `batch` mode the record waits in the writer's
//! backlog until the store takes writes again, and one the backlog has no room for is logged,
//! counted, put on record as a gap event, and returned by the next [`Recorder::flush`] or
//! [`Recorder::shutdown`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mcp_audit_core::pseudonym::{IdentityField, Link, Pseudonyms};
use mcp_audit_core::redact::Redactor;
use mcp_audit_core::{AuditEvent, EventBuilder, Policy, SealedEvent, seal};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::store::Append;
use crate::writer::{self, Command};

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::recorder";

/// When `record` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the record is durable (committed and synced). Fail-closed.
    #[default]
    Sync,
    /// At once; the writer commits what is queued as soon as it can (after the `linger`, when
    /// one is set). A crash loses at most what is queued and being committed: see
    /// [`RecorderConfig::queue_capacity`] and [`RecorderConfig::max_batch`]. Through an outage
    /// of the store, records wait in the writer's backlog; what it has no room for shows as a
    /// gap event, in `flush`, `shutdown`, the `failed` counter and the log.
    Batch,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Durability::Sync),
            "batch" => Ok(Durability::Batch),
            _ => Err(format!("unknown durability `{s}` (expected sync or batch)")),
        }
    }
}

/// How a recorder behaves.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub durability: Durability,
    pub policy: Policy,
    /// Events that may wait for the writer (at least 1); a full queue makes `record` wait.
    /// With `max_batch`, it bounds what a crash of a `batch` recorder can lose: at most
    /// `queue_capacity + max_batch` records are ever acknowledged and not yet durable.
    pub queue_capacity: usize,
    /// At most this many events per transaction (at least 1).
    pub max_batch: usize,
    /// How long a batch that nobody waits for is held open for more events to join it, unless
    /// an event somebody waits for, a flush or a shutdown comes first. Zero (the default)
    /// commits whatever is queued at once. The `sync` proxy holds its outcomes so, to commit
    /// each with the next call's intent (see `writer`); the HTTP proxy in `batch` holds every
    /// record so, as its calls come too far apart to share commits otherwise. For the stdio
    /// proxy's `batch` traffic, one pipe hop apart, it measured worse.
    pub linger: std::time::Duration,
    /// Sign checkpoints as the log grows; `None` leaves it to `mcp-audit checkpoint`.
    pub checkpoints: Option<crate::checkpointer::CheckpointPolicy>,
    /// Store the Merkle tree's interior nodes as the log grows (the default), so that proofs
    /// and checkpoints read O(log n) hashes. Off, they are recomputed from the leaves the first
    /// time a proof needs them; the integrity benchmark turns it off for its baseline. Ignored
    /// (always on) when `checkpoints` is set.
    pub tree_nodes: bool,
    /// At most this many records nobody waits for are kept in memory while the store refuses
    /// writes (at least 1); each one past it is lost and counted in a gap event (see
    /// `backlog`).
    pub backlog: usize,
    /// How long the store may refuse writes before [`Recorder::outage_refusal`] tells callers
    /// to stop the operations they record (a `batch` proxy stops forwarding calls); `None`:
    /// never.
    pub max_outage: Option<Duration>,
    /// What is taken out of each event's payload before it is sealed (so that neither the
    /// database nor any hash holds it): the built-in secrets policy by default;
    /// [`Redactor::none`] records payloads as given. See `docs/privacy.md`.
    pub redaction: Arc<Redactor>,
    /// Replace the user id and the data-subject id by pseudonyms before sealing, with the
    /// mapping in the store's erasable `pseudonyms` table (the default). Off, they are hashed
    /// as given, as before pseudonyms existed; see `docs/privacy.md`.
    pub pseudonyms: bool,
    /// At most this many identities are kept in the identity → pseudonym cache (at least 2;
    /// see `mcp_audit_core::pseudonym::Pseudonyms`): one met again after it was dropped gets
    /// a fresh pseudonym and another mapping row.
    pub pseudonym_cache: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            durability: Durability::Sync,
            policy: Policy::default(),
            queue_capacity: 65_536,
            max_batch: 4_096,
            linger: std::time::Duration::ZERO,
            checkpoints: None,
            tree_nodes: true,
            backlog: 65_536,
            max_outage: None,
            redaction: Redactor::shared_secrets(),
            pseudonyms: true,
            pseudonym_cache: mcp_audit_core::pseudonym::DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// What became of a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Durable, at this place in the log.
    Durable {
        id: mcp_audit_core::EventId,
        seq: u64,
    },
    /// Queued for the writer (`batch` durability).
    Queued { id: mcp_audit_core::EventId },
    /// Not recorded: the audit level leaves it out.
    Skipped,
}

/// Why an event was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The event failed the model's or the policy's checks.
    #[error("invalid event: {0}")]
    Invalid(mcp_audit_core::ModelError),
    /// Events of a [`Recorder::record_all`] that failed the model's or the policy's checks,
    /// each with its place in the input; none of the input was recorded.
    #[error("{}", describe_invalid(.0))]
    InvalidEvents(Vec<(usize, mcp_audit_core::ModelError)>),
    /// The store refused the batch the event was in.
    #[error("audit write failed: {0}")]
    Store(StoreError),
    /// `batch` mode: this many events failed to be written since the last flush.
    #[error(
        "{failed} audit record(s) failed to be written since the last flush; last error: {last_error}"
    )]
    Lost { failed: u64, last_error: String },
    /// `batch` mode: this many records wait in memory for a store that refuses writes; not
    /// durable, not lost (see `backlog`).
    #[error(
        "{held} audit record(s) wait in memory for the store, which refuses writes: {last_error}"
    )]
    Held { held: u64, last_error: String },
    /// The writer has stopped (shut down, or its thread died).
    #[error("the audit writer has stopped")]
    Closed,
    /// The store has refused writes for longer than the recorder's `max_outage`: what would be
    /// recorded now could only wait in memory, so the caller should not run it.
    #[error("the audit store has refused writes for {for_ms} ms, past the limit of {limit_ms} ms")]
    Outage { for_ms: u64, limit_ms: u64 },
}

fn describe_invalid(invalid: &[(usize, mcp_audit_core::ModelError)]) -> String {
    match invalid.first() {
        Some((index, error)) => format!(
            "{} invalid event(s), nothing recorded; the first is event {index}: {error}",
            invalid.len()
        ),
        None => "invalid events, nothing recorded".to_string(),
    }
}

// Hand-written rather than `#[from]`: the message already carries the cause, and `#[from]`
// would make it the `source()` too, so that error chains printed it twice.
impl From<mcp_audit_core::ModelError> for RecordError {
    fn from(e: mcp_audit_core::ModelError) -> Self {
        RecordError::Invalid(e)
    }
}

impl From<StoreError> for RecordError {
    fn from(e: StoreError) -> Self {
        RecordError::Store(e)
    }
}

/// Counters of a recorder's life so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events durably written.
    pub recorded: u64,
    /// Events the audit level left out.
    pub skipped: u64,
    /// Events that failed to be written (or, for `observe`, to be recorded at all).
    pub failed: u64,
    /// Transactions attempted.
    pub batches: u64,
}

/// State shared by the handles and the writer thread.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) recorded: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) batches: AtomicU64,
    /// Losses not yet reported by a flush: (count, last error). A std `Mutex`: held for a few
    /// instructions, never across an await.
    losses: Mutex<(u64, String)>,
    /// Since when the store has refused writes, as the writer last saw it; `None` while it
    /// takes them. Read by adapters that stop forwarding past a limit.
    failing_since: Mutex<Option<Instant>>,
    /// Events by kind and outcome, commit latency, spool size: see `telemetry`.
    pub(crate) telemetry: crate::telemetry::Telemetry,
}

impl Shared {
    /// Counts `n` events that failed to be written.
    pub(crate) fn count_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Remembers `n` failures that no caller has seen, for the next flush to report.
    pub(crate) fn report_later(&self, n: u64, error: &dyn std::fmt::Display) {
        if n == 0 {
            return;
        }
        let mut losses = self.losses.lock().unwrap_or_else(|p| p.into_inner());
        losses.0 += n;
        losses.1 = error.to_string();
    }

    /// Publishes the writer's view of the outage under way, if any.
    pub(crate) fn set_failing_since(&self, since: Option<Instant>) {
        *self.failing_since.lock().unwrap_or_else(|p| p.into_inner()) = since;
    }

    /// The losses since the previous call, as a flush result.
    pub(crate) fn take_losses(&self) -> Result<(), RecordError> {
        let mut losses = self.losses.lock().unwrap_or_else(|p| p.into_inner());
        let (failed, last_error) = std::mem::take(&mut *losses);
        if failed == 0 {
            Ok(())
        } else {
            Err(RecordError::Lost { failed, last_error })
        }
    }
}

/// The handle. Cheap to clone; every clone feeds the same writer thread. Dropping the last
/// handle lets the writer drain the queue and stop; call [`Recorder::shutdown`] to also learn
/// whether everything was written.
#[derive(Clone)]
pub struct Recorder {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    config: Arc<RecorderConfig>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    log_id: Arc<str>,
    /// The identity → pseudonym cache, loaded from the store's mapping at start; `None` with
    /// [`RecorderConfig::pseudonyms`] off.
    pseudonyms: Option<Arc<Pseudonyms>>,
}

impl Recorder {
    /// Starts the writer thread on `store`; fails at once if the store can not be read.
    pub fn start(mut store: impl Append, config: RecorderConfig) -> Result<Recorder, StoreError> {
        let next_seq = store.next_seq()?;
        let log_id: Arc<str> = Arc::from(store.log_id());
        // The erasure count before the mapping: an erasure between the two reads is seen by
        // the writer's first check.
        let erasures = match config.pseudonyms.then(|| store.pseudonym_erasures()) {
            None => None,
            Some(Ok(count)) => Some(count),
            // A writer that starts during an outage (on its spool) has an empty cache; the
            // writer's first look once the server is back reads the count then.
            Some(Err(StoreError::Unavailable { .. })) => Some(0),
            Some(Err(error)) => return Err(error),
        };
        let pseudonyms = match erasures {
            Some(_) => Some(Arc::new(Pseudonyms::with_links(
                store.pseudonym_links()?,
                config.pseudonym_cache,
            ))),
            None => None,
        };
        let keep_tree = config.tree_nodes || config.checkpoints.is_some();
        let started = keep_tree.then(|| {
            crate::checkpointer::Checkpointer::start(config.checkpoints.clone(), &mut store)
        });
        let checkpointer = match started {
            None => None,
            Some(Ok(c)) => Some(c),
            // Signing must not start on a log it cannot extend; without signing, a damaged
            // log is still recorded into (and `verify` will say what is wrong with it).
            Some(Err(error)) if config.checkpoints.is_none() => {
                tracing::warn!(
                    target: LOG_TARGET,
                    %error,
                    "not keeping Merkle tree nodes for this log",
                );
                None
            }
            Some(Err(error)) => return Err(error),
        };
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        if let Some(every) = checkpointer.as_ref().and_then(|c| c.tick_every()) {
            spawn_ticker(tx.downgrade(), every);
        }
        let shared = Arc::new(Shared::default());
        let batching = writer::Batching {
            max_batch: config.max_batch.max(1),
            linger: config.linger,
            backlog: config.backlog.max(1),
            erasures: pseudonyms
                .clone()
                .zip(erasures)
                .map(|(cache, seen)| crate::erasure_watch::ErasureWatch::new(cache, seen)),
        };
        let thread = std::thread::Builder::new()
            .name("mcp-audit-writer".into())
            .spawn({
                let shared = shared.clone();
                move || writer::run(store, next_seq, rx, shared, batching, checkpointer)
            })
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Recorder {
            commands: tx,
            shared,
            config: Arc::new(config),
            thread: Arc::new(Mutex::new(Some(thread))),
            log_id,
            pseudonyms,
        })
    }

    /// The id of the log this recorder writes.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// The durability this recorder was configured with.
    pub fn durability(&self) -> Durability {
        self.config.durability
    }

    /// Checks, applies the policy, stamps the receive time and seals; `None` when the audit
    /// level leaves it out.
    fn prepare(
        &self,
        mut event: AuditEvent,
        mut links: Vec<Link>,
    ) -> Result<Option<Box<SealedEvent>>, RecordError> {
        event.normalize()?;
        if !self.config.policy.admits(&event) {
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        self.config.policy.apply(&mut event)?;
        self.config.redaction.redact(&mut event);
        // The receive time is the recorder's, never the caller's: a value the input carried
        // is replaced, and it is set before sealing so that the leaf covers it.
        event.received_at = Some(mcp_audit_core::now_micros());
        if let Some(pseudonyms) = &self.pseudonyms {
            links.append(&mut pseudonyms.apply(&mut event));
        }
        let mut sealed = seal(event)?;
        sealed.links = links;
        // The payload travels as `personal_json`; backends never read it from the event. Freed
        // here, its many small values die in the thread that built them rather than in the
        // writer's (cross-thread frees are what slows glibc's allocator down here).
        drop(std::mem::take(&mut sealed.event.payload));
        Ok(Some(Box::new(sealed)))
    }

    /// Records `event` with the configured durability; blocks while the queue is full.
    ///
    /// Do not call from inside an async runtime: use [`Recorder::record_async`] there.
    pub fn record(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        self.record_linked(event, Vec::new())
    }

    /// The pseudonym of `identity` in `field`, for an event that names a person outside its
    /// user and data-subject ids (a legal hold's scope), so that the person's erasure can
    /// unlink that event too; `None` with pseudonyms off (the identity is then recorded as
    /// given). A link drawn now is pushed on `links`: record the event with
    /// [`Recorder::record_linked`], which stores them in its transaction.
    pub fn pseudonym(
        &self,
        field: IdentityField,
        identity: &str,
        links: &mut Vec<Link>,
    ) -> Option<String> {
        self.pseudonyms
            .as_ref()
            .map(|p| p.pseudonym(field, identity, links))
    }

    /// As [`Recorder::record`], storing `links` (drawn by [`Recorder::pseudonym`]) in the
    /// event's transaction.
    pub fn record_linked(
        &self,
        event: AuditEvent,
        links: Vec<Link>,
    ) -> Result<Receipt, RecordError> {
        let wait = self.config.durability == Durability::Sync;
        let Some(sealed) = self.prepare(event, links)? else {
            return Ok(Receipt::Skipped);
        };
        let id = sealed.event.id;
        let (reply, answer) = waiter(wait);
        self.commands
            .blocking_send(Command::Record { sealed, reply })
            .map_err(|_| RecordError::Closed)?;
        match answer {
            None => Ok(Receipt::Queued { id }),
            Some(answer) => {
                let seq = answer.blocking_recv().map_err(|_| RecordError::Closed)??;
                Ok(Receipt::Durable { id, seq })
            }
        }
    }

    /// Records `events` all or none, in one transaction of their own, and waits until they
    /// are durable, whatever the configured durability: for a caller whose input is one unit
    /// (`mcp-audit log -`), so that a bad event or a failed write never leaves part of it in
    /// the log. Every event is checked first; [`RecordError::InvalidEvents`] names each one
    /// that fails (by its place in `events`), and nothing is queued then. Returns a receipt per
    /// event, in order ([`Receipt::Skipped`] for those the audit level leaves out).
    ///
    /// Do not call from inside an async runtime.
    pub fn record_all(&self, events: Vec<AuditEvent>) -> Result<Vec<Receipt>, RecordError> {
        let mut sealed = Vec::with_capacity(events.len());
        let mut invalid = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            match self.prepare(event, Vec::new()) {
                Ok(one) => sealed.push(one),
                Err(RecordError::Invalid(error)) => invalid.push((index, error)),
                Err(other) => return Err(other),
            }
        }
        if !invalid.is_empty() {
            return Err(RecordError::InvalidEvents(invalid));
        }
        let ids: Vec<Option<mcp_audit_core::EventId>> = sealed
            .iter()
            .map(|s| s.as_ref().map(|s| s.event.id))
            .collect();
        let (reply, answer) = oneshot::channel();
        self.commands
            .blocking_send(Command::RecordAll {
                sealed: sealed.into_iter().flatten().map(|one| *one).collect(),
                reply,
            })
            .map_err(|_| RecordError::Closed)?;
        let mut seqs = answer
            .blocking_recv()
            .map_err(|_| RecordError::Closed)??
            .into_iter();
        Ok(ids
            .into_iter()
            .map(|id| {
                id.and_then(|id| seqs.next().map(|seq| Receipt::Durable { id, seq }))
                    .unwrap_or(Receipt::Skipped)
            })
            .collect())
    }

    /// As [`Recorder::record`], for async code.
    pub async fn record_async(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        let wait = self.config.durability == Durability::Sync;
        self.record_async_inner(event, wait).await
    }

    /// Records `event` and waits until it is durable, whatever the configured durability (the
    /// proxy's record of intent, which must be durable before the operation runs).
    pub async fn record_durable_async(&self, event: AuditEvent) -> Result<Receipt, RecordError> {
        self.record_async_inner(event, true).await
    }

    async fn record_async_inner(
        &self,
        event: AuditEvent,
        wait: bool,
    ) -> Result<Receipt, RecordError> {
        let Some(sealed) = self.prepare(event, Vec::new())? else {
            return Ok(Receipt::Skipped);
        };
        let id = sealed.event.id;
        let (reply, answer) = waiter(wait);
        self.commands
            .send(Command::Record { sealed, reply })
            .await
            .map_err(|_| RecordError::Closed)?;
        match answer {
            None => Ok(Receipt::Queued { id }),
            Some(answer) => {
                let seq = answer.await.map_err(|_| RecordError::Closed)??;
                Ok(Receipt::Durable { id, seq })
            }
        }
    }

    /// Waits until everything recorded before the call is durable, trying a failing store once
    /// more. Errors if any event failed to be written since the previous flush
    /// ([`RecordError::Lost`]), or, when none did, if records still wait in memory for a store
    /// that refuses writes ([`RecordError::Held`]): then they are not durable yet.
    pub fn flush(&self) -> Result<(), RecordError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .blocking_send(Command::Flush { reply })
            .map_err(|_| RecordError::Closed)?;
        answer.blocking_recv().map_err(|_| RecordError::Closed)?
    }

    /// As [`Recorder::flush`], for async code.
    pub async fn flush_async(&self) -> Result<(), RecordError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Flush { reply })
            .await
            .map_err(|_| RecordError::Closed)?;
        answer.await.map_err(|_| RecordError::Closed)?
    }

    /// Drains the queue, stops the writer, and reports whether everything was written. Other
    /// clones of this handle get [`RecordError::Closed`] afterwards.
    pub fn shutdown(self) -> Result<RecorderStats, RecordError> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .commands
            .blocking_send(Command::Shutdown { reply })
            .is_ok();
        let result = if sent {
            answer.blocking_recv().map_err(|_| RecordError::Closed)?
        } else {
            Err(RecordError::Closed)
        };
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            return Err(RecordError::Closed);
        }
        result.map(|()| self.stats())
    }

    /// As [`Recorder::shutdown`], for async code (the join runs off the runtime's threads).
    pub async fn shutdown_async(self) -> Result<RecorderStats, RecordError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Shutdown { reply })
            .await
            .map_err(|_| RecordError::Closed)?;
        let result = answer.await.map_err(|_| RecordError::Closed)?;
        result.map(|()| self.stats())
    }

    /// How long the store has refused writes, when it does now (the outage under way, as of
    /// the writer's last try); `None` while it takes them. A `batch` proxy stops forwarding
    /// once this passes its limit: an audit proxy that can not write should not go on
    /// unrecorded for long.
    pub fn unwritable_for(&self) -> Option<Duration> {
        self.shared
            .failing_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|since| since.elapsed())
    }

    /// Why an operation should not run now: the store has refused writes for longer than
    /// [`RecorderConfig::max_outage`]. `None` while it takes writes, or within the limit.
    pub fn outage_refusal(&self) -> Option<RecordError> {
        let limit = self.config.max_outage?;
        let down = self.unwritable_for()?;
        (down > limit).then_some(RecordError::Outage {
            for_ms: down.as_millis() as u64,
            limit_ms: limit.as_millis() as u64,
        })
    }

    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            skipped: self.shared.skipped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
        }
    }

    /// What the recorder knows of its work now, for a metrics endpoint: its counters, the
    /// queue's depth, events written by kind and outcome, commit latency, the spool's size.
    /// Reads atomics only: cheap enough for every scrape, and nothing on the recording path
    /// waits for it.
    pub fn metrics(&self) -> crate::telemetry::RecorderMetrics {
        let capacity = self.commands.max_capacity();
        let depth = capacity.saturating_sub(self.commands.capacity());
        self.shared
            .telemetry
            .snapshot(self.stats(), depth, capacity)
    }

    /// Runs `operation`, records its outcome with `event` (success, or `tool_error` with the
    /// error's message, and the elapsed time either way), and returns the operation's own result
    /// untouched. A failure to record is logged and counted, never returned in place of that
    /// result: the reference logger's crash on this path hid the tool's real error.
    pub fn observe<T, E: std::fmt::Display>(
        &self,
        event: EventBuilder,
        operation: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = operation();
        let event = event.duration(started.elapsed());
        let event = match &result {
            Ok(_) => event,
            Err(e) => event.failed(e.to_string()),
        };
        let recorded = event
            .build()
            .map_err(RecordError::from)
            .and_then(|e| self.record(e));
        if let Err(error) = recorded {
            tracing::error!(target: LOG_TARGET, %error, "could not record an observed operation");
            // A store failure was counted by the writer already; the caller of `observe` never
            // sees it, so the next flush must.
            if !matches!(error, RecordError::Store(_)) {
                self.shared.count_failed(1);
            }
            self.shared.report_later(1, &error);
        }
        result
    }

    /// Writes a session-start event now and a session-end event when the guard is ended or
    /// dropped.
    pub fn session(
        &self,
        session_id: &str,
        user_id: Option<&str>,
    ) -> Result<SessionGuard, RecordError> {
        let mut start = AuditEvent::session_start(session_id);
        if let Some(user) = user_id {
            start = start.user(user);
        }
        self.record(start.build()?)?;
        Ok(SessionGuard {
            recorder: self.clone(),
            session_id: session_id.to_string(),
            user_id: user_id.map(str::to_string),
            ended: false,
        })
    }
}

/// Wakes the writer every `every` so that time-based checkpoints are signed on a quiet log. Holds
/// only a weak sender: it never keeps the writer alive, and it stops once the writer is gone.
fn spawn_ticker(commands: mpsc::WeakSender<Command>, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    let _ = std::thread::Builder::new()
        .name("mcp-audit-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(sender) = commands.upgrade() else {
                    return;
                };
                if sender.blocking_send(Command::Tick).is_err() {
                    return;
                }
            }
        });
}

/// The writer's answer to one record: its seq once durable, or why the batch failed.
type SeqAnswer = Result<u64, StoreError>;

/// A reply channel when the caller waits for durability; none otherwise.
fn waiter(
    wait: bool,
) -> (
    Option<oneshot::Sender<SeqAnswer>>,
    Option<oneshot::Receiver<SeqAnswer>>,
) {
    if wait {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// Ends a session when dropped; see [`Recorder::session`].
pub struct SessionGuard {
    recorder: Recorder,
    session_id: String,
    user_id: Option<String>,
    ended: bool,
}

impl SessionGuard {
    /// Ends the session now and reports whether its end was recorded.
    pub fn end(mut self) -> Result<Receipt, RecordError> {
        self.ended = true;
        self.record_end()
    }

    fn record_end(&self) -> Result<Receipt, RecordError> {
        let mut end = AuditEvent::session_end(&self.session_id);
        if let Some(user) = &self.user_id {
            end = end.user(user);
        }
        self.recorder.record(end.build()?)
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if !self.ended
            && let Err(error) = self.record_end()
        {
            tracing::error!(
                target: LOG_TARGET,
                %error,
                session = %self.session_id,
                "could not record the end of a session",
            );
            if !matches!(error, RecordError::Store(_)) {
                self.recorder.shared.count_failed(1);
            }
            self.recorder.shared.report_later(1, &error);
        }
    }
}
