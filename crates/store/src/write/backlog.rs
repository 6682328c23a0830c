//! What the writer keeps while the store refuses writes: the records nobody waits for, to be
//! written once it takes them again, and the tally of those it could not keep, which becomes a
//! `gap` event, the first thing written when the store is back.
//!
//! An audit proxy in `batch` (and the outcomes and refusals of a `sync` one) hands records to
//! the writer and goes on. Before the backlog, a commit that failed (a SQLite file locked past
//! its timeout, a full disk) dropped its records with one log line: a refused call's `denied`
//! record was lost in every outage tried, and a full disk lost thousands of answered calls with
//! no mark in the trail. Now they wait here, in order, up to [`crate::RecorderConfig::backlog`]
//! records; past that, each record that arrives is counted as lost instead of kept, and the
//! writer writes, before anything else once it can, one [`gap_event`] saying how many were
//! lost, why, and over which span of time. `verify` and every reader see the hole.
//!
//! What keeps this correct: a record leaves the backlog only in a commit that succeeded (the
//! writer puts back what a failed commit held), and the tally is cleared only by the commit
//! that wrote its gap event. While the store fails, the writer tries it again at most every
//! [`RETRY_EVERY`] for records nobody waits for; a record somebody waits for (a `sync` intent)
//! is always tried at once, since its caller needs the store's real answer.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use mcp_audit_core::{Action, AuditEvent, CustomAction, EventKind, Outcome, SealedEvent, seal};

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::backlog";

/// How often a failing store is tried again for records nobody waits for.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(500);

/// The operation name of a gap event (kind `protocol`, outcome `incomplete`).
pub const GAP_OPERATION: &str = "audit_gap";

/// Records lost while the store refused writes, not yet on record as a gap.
#[derive(Debug, Clone)]
struct Loss {
    count: u64,
    /// The store's last error when a record was lost.
    reason: String,
    /// When the first and the last lost record were made.
    first: Timestamp,
    last: Timestamp,
}

/// The writer's state through an outage. See the module doc.
pub(crate) struct Backlog {
    /// Records nobody waits for whose commit failed, oldest first. Boxed as they come from the
    /// queue and go back to the writer's batch: a move is a pointer, not a kilobyte.
    #[allow(clippy::vec_box)]
    held: Vec<Box<SealedEvent>>,
    /// At most this many are held (at least 1).
    capacity: usize,
    loss: Option<Loss>,
    /// When the store first failed in the outage under way; `None` while it takes writes.
    failing_since: Option<Instant>,
    /// When the store was last tried during the outage.
    last_try: Option<Instant>,
    /// The store's error at that try: the reason of a record lost without a try of its own.
    last_error: String,
    /// Whether this outage was announced: said once, when the first record is kept, so that
    /// a failure only waited callers saw (they get the error themselves) adds no log line.
    announced: bool,
}

impl Backlog {
    pub(crate) fn new(capacity: usize) -> Backlog {
        Backlog {
            held: Vec::new(),
            capacity: capacity.max(1),
            loss: None,
            failing_since: None,
            last_try: None,
            last_error: String::new(),
            announced: false,
        }
    }

    /// Whether anything waits to be written: held records or a gap to report.
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty() && self.loss.is_none()
    }

    /// How many records wait for the store.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// When the outage under way began, if one is.
    pub(crate) fn failing_since(&self) -> Option<Instant> {
        self.failing_since
    }

    /// Whether a commit of records nobody waits for should try the store now: always while it
    /// works, at most every [`RETRY_EVERY`] while it fails.
    pub(crate) fn may_try(&self) -> bool {
        self.failing_since.is_none() || self.last_try.is_none_or(|t| t.elapsed() >= RETRY_EVERY)
    }

    /// How long until the next try is due, when something waits for one.
    pub(crate) fn retry_in(&self) -> Option<Duration> {
        if self.is_empty() || self.failing_since.is_none() {
            return None;
        }
        Some(
            self.last_try
                .map_or(Duration::ZERO, |t| RETRY_EVERY.saturating_sub(t.elapsed())),
        )
    }

    /// The records to write before any new one: the gap event first (a fresh one each try, so
    /// that a failed try leaves nothing behind), then the held records, oldest first.
    #[allow(clippy::vec_box)]
    pub(crate) fn take(&mut self) -> (Option<Box<SealedEvent>>, Vec<Box<SealedEvent>>) {
        let gap = self.loss.as_ref().and_then(|loss| match gap_event(loss) {
            Ok(sealed) => Some(Box::new(sealed)),
            Err(error) => {
                // Built from our own constants: unreachable in practice, and never silent.
                tracing::error!(target: LOG_TARGET, %error, "the gap event could not be built");
                None
            }
        });
        (gap, std::mem::take(&mut self.held))
    }

    /// A commit worked: the outage, if any, is over, and the gap (when `gap_written`) is on
    /// record.
    pub(crate) fn written(&mut self, gap_written: bool) {
        if gap_written {
            self.loss = None;
        }
        if let Some(since) = self.failing_since.take()
            && std::mem::take(&mut self.announced)
        {
            tracing::warn!(
                target: LOG_TARGET,
                after_ms = since.elapsed().as_millis() as u64,
                "the audit store takes writes again"
            );
        }
        self.last_try = None;
    }

    /// The gap event itself was refused where other records were not (it can not be written
    /// at all): the loss stays only in the log and in the flush's error.
    pub(crate) fn gap_refused(&mut self, error: &dyn std::fmt::Display) {
        if let Some(loss) = self.loss.take() {
            tracing::error!(
                target: LOG_TARGET,
                %error,
                lost = loss.count,
                "the gap event could not be written",
            );
        }
    }

    /// A commit failed for a reason that concerns the store, not its records.
    pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self.failing_since.is_none() {
            self.failing_since = Some(now);
        }
        self.last_try = Some(now);
        self.last_error = error.to_string();
    }

    /// The store's error at the last failed try.
    pub(crate) fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Keeps `record` for the next try; when the backlog is full, counts it as lost instead.
    /// Returns whether it was kept.
    pub(crate) fn hold(&mut self, record: Box<SealedEvent>, error: &dyn std::fmt::Display) -> bool {
        if !self.announced {
            self.announced = true;
            tracing::error!(
                target: LOG_TARGET,
                %error,
                "the audit store refuses writes; records are kept in memory until it takes them"
            );
        }
        if self.held.len() < self.capacity {
            self.held.push(record);
            return true;
        }
        let at = record.event.timestamp;
        let loss = self.loss.get_or_insert_with(|| Loss {
            count: 0,
            reason: String::new(),
            first: at,
            last: at,
        });
        if loss.count == 0 {
            tracing::error!(
                target: LOG_TARGET,
                capacity = self.capacity,
                "the audit backlog is full: records are being lost; a gap event will say how many"
            );
        }
        loss.count += 1;
        loss.reason = error.to_string();
        loss.first = loss.first.min(at);
        loss.last = loss.last.max(at);
        false
    }

    /// Gives up on everything held (the writer is stopping and the store still fails): their
    /// number, for the caller to report.
    pub(crate) fn abandon(&mut self) -> u64 {
        let n = self.held.len() as u64;
        self.held.clear();
        n
    }
}

/// The event that puts a loss on record: kind `protocol`, action `audit_gap`, outcome
/// `incomplete`, flagged for review. How many records were lost is in the hashed metadata (the
/// target's `resource_id`, and `duration_us` spans the first to the last lost record), so that
/// it survives an erasure and `verify` can count it; the payload's details repeat it with the
/// reason and the two times.
fn gap_event(loss: &Loss) -> Result<SealedEvent, mcp_audit_core::ModelError> {
    let span = loss.last.duration_since(loss.first);
    let span_us = u64::try_from(span.as_micros()).unwrap_or(0);
    let event = AuditEvent::builder(
        EventKind::Protocol,
        Action::Custom(CustomAction::new(GAP_OPERATION)?),
        GAP_OPERATION,
    )
    .resource_type("audit_records")
    .resource_id(loss.count.to_string())
    .duration_us(span_us)
    .requires_review(true)
    .failed(format!(
        "{} audit record(s) were lost while the store refused writes: {}",
        loss.count, loss.reason
    ))
    .outcome(Outcome::Incomplete)
    .details(serde_json::json!({
        "lost": loss.count,
        "reason": loss.reason,
        "first": loss.first.to_string(),
        "last": loss.last.to_string(),
    }))
    .build()?;
    let mut event = event;
    // Classification and review derived as for any event; no retention: a hole in the trail
    // is kept as long as the trail.
    mcp_audit_core::Policy::default().apply(&mut event)?;
    event.received_at = Some(mcp_audit_core::now_micros());
    seal(event)
}

/// How many records a stored gap event says were lost; `None` for any other event.
pub fn gap_size(event: &AuditEvent) -> Option<u64> {
    if event.kind != EventKind::Protocol || event.operation != GAP_OPERATION {
        return None;
    }
    event.target.resource_id.as_deref()?.parse().ok()
}
