//! What readers ask for and what they get back: filters, pages and cursors, stored events,
//! summaries, per-tool statistics and cleanup reports. Backend-neutral.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use mcp_audit_core::{
    Action, AuditEvent, Classification, EventKind, Hash, Outcome, unseal, unseal_without_payload,
};
use serde::Serialize;

use crate::error::StoreError;
use crate::search::TextSearch;

/// Which events a query, export, statistic or count covers. Every field narrows; the default
/// matches every completed event (`pending` intents are left out unless asked for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Any of these kinds; empty means all.
    pub kinds: Vec<EventKind>,
    pub action: Option<Action>,
    /// Tool name, resource URI, prompt name, method.
    pub operation: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub server_name: Option<String>,
    pub outcome: Option<Outcome>,
    pub classification: Option<Classification>,
    pub requires_review: Option<bool>,
    pub data_subject_id: Option<String>,
    /// Only the events of this log. A PostgreSQL database holds many logs (one per writer)
    /// whose seqs overlap, and a reader often wants one writer's trail; a SQLite file holds one
    /// log, so there naming it narrows nothing and naming another matches no event.
    pub log_id: Option<String>,
    /// Events at or after this time (of the kind `time` names).
    pub since: Option<Timestamp>,
    /// Events strictly before this time (of the kind `time` names).
    pub until: Option<Timestamp>,
    /// Which of an event's two times `since` and `until` bound.
    pub time: TimeBasis,
    /// Only events whose stated time lies further than [`mcp_audit_core::MAX_CLOCK_SKEW`] from
    /// their receive time (events without a receive time never match).
    pub skewed: bool,
    /// Also match `pending` events (recorded intents). Off by default: each intent is followed
    /// by an outcome event, and showing both would count every operation twice.
    pub include_pending: bool,
    /// Only events whose payload holds these words (see [`crate::search`]). Reaches into the
    /// personal half, so a caller that may not see payloads must not be let to search them.
    pub search: Option<TextSearch>,
}

impl Filter {
    /// Whether the filter reads the receive time (a window by it, or `skewed`), which a
    /// schema from before receive times has no column for.
    pub(crate) fn reads_received_at(&self) -> bool {
        self.skewed
            || (self.time == TimeBasis::Received && (self.since.is_some() || self.until.is_some()))
    }

    /// Refuses a filter that reads the receive time on a schema without it (`has_column`
    /// false: a reader of a file or database not migrated yet), with what to do about it,
    /// rather than the database's "no such column".
    pub(crate) fn check_received_at(&self, has_column: bool) -> Result<(), StoreError> {
        if self.reads_received_at() && !has_column {
            return Err(StoreError::Database(
                "this database predates receive times (its schema has no received_at): \
                 window by stated time, or let a writer of this version open it once to migrate it"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Refuses a search on a schema without the text index (`has_index` false: a reader of a
    /// file or database not migrated yet), with what to do about it.
    pub(crate) fn check_search(&self, has_index: bool) -> Result<(), StoreError> {
        if self.search.is_some() && !has_index {
            return Err(StoreError::Database(
                "this database predates full-text search (its schema has no text index): \
                 let a writer of this version open it once to migrate it"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Which time of an event a window bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeBasis {
    /// The time the event states (`timestamp`): when the caller says the operation happened.
    /// What windows have always bounded; a caller can back-date or future-date it.
    #[default]
    Stated,
    /// The time the recorder received the event (`received_at`), stamped by the writer's side
    /// and hashed: what a caller can not choose. Events recorded before receive times were
    /// kept have none, and no window by it holds them.
    Received,
}

impl std::str::FromStr for TimeBasis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stated" => Ok(TimeBasis::Stated),
            "received" => Ok(TimeBasis::Received),
            _ => Err(format!("unknown time `{s}` (expected stated or received)")),
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PageStart {
    /// The newest matching events.
    #[default]
    Newest,
    /// The events after (older than) the last one of a previous page. Stable while new events
    /// arrive: never skips or repeats a row.
    After(Cursor),
    /// Skip this many matching events (kept for compatibility; not stable under inserts).
    Offset(u64),
}

/// A query: a filter and a page, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Filter,
    pub start: PageStart,
    /// At most this many events (1 to 10,000).
    pub limit: u32,
}

impl Query {
    /// The page size every backend uses: `limit` brought into 1 to 10,000.
    pub(crate) fn page_size(&self) -> i64 {
        i64::from(self.limit.clamp(1, 10_000))
    }

    /// How many matching events the page skips (only [`PageStart::Offset`] skips), as a SQL
    /// `OFFSET`.
    pub(crate) fn offset(&self) -> i64 {
        match self.start {
            PageStart::Offset(n) => n.min(i64::MAX as u64) as i64,
            _ => 0,
        }
    }
}

impl Default for Query {
    fn default() -> Self {
        Query {
            filter: Filter::default(),
            start: PageStart::Newest,
            limit: 100,
        }
    }
}

/// An opaque position in the newest-first order, handed out with a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    /// A cursor holding a backend's position text (URL-safe base64, so that it passes in a
    /// query string and reads as opaque).
    pub(crate) fn encode(position: &str) -> Cursor {
        Cursor(URL_SAFE_NO_PAD.encode(position))
    }

    /// The position text of a cursor made by [`Cursor::encode`]; the backend parses it.
    pub(crate) fn position(&self) -> Result<String, StoreError> {
        let invalid = || StoreError::InvalidCursor(self.0.clone());
        let bytes = URL_SAFE_NO_PAD
            .decode(self.0.as_bytes())
            .map_err(|_| invalid())?;
        String::from_utf8(bytes).map_err(|_| invalid())
    }
}

/// One page of a query.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<Cursor>,
}

/// An event as stored: the event, its place in the log, and its integrity data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Which log the event belongs to (one per writer).
    pub log_id: String,
    /// The event's sequence number in its log: dense from 0, in commit order; the Merkle leaf
    /// index.
    pub seq: u64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub payload_commitment: Hash,
    pub leaf_hash: Hash,
    /// The personal half has been erased; the event's metadata and proofs remain.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    /// The read left the payload out ([`Payloads::LeftOut`]) and the stored one holds
    /// something: `event.payload` is empty here, not in the log.
    #[serde(skip)]
    pub payload_left_out: bool,
}

/// Whether a read decodes the events' payloads (arguments, results, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Payloads {
    /// Every event as stored.
    #[default]
    Read,
    /// The payload stepped over, not decoded: for a list that shows none (the console's
    /// pages), where decoding them was a fifth of a page's work. The personal half's other
    /// fields (e-mail, client address, user agent) are still read.
    LeftOut,
}

impl StoredEvent {
    /// Rebuilds a stored event from its columns as any backend keeps them: the canonical
    /// metadata JSON, the commitment and leaf hash, and the personal JSON unless erased. A
    /// column that does not decode is reported with the event's seq.
    pub(crate) fn from_columns(
        log_id: String,
        seq: u64,
        meta: &str,
        commitment: &[u8],
        leaf_hash: &[u8],
        body: Option<&str>,
        payloads: Payloads,
    ) -> Result<StoredEvent, StoreError> {
        let bad = |reason: String| StoreError::Decode { seq, reason };
        let (meta, body) = (meta.as_bytes(), body.map(str::as_bytes));
        let (event, payload_left_out) = match payloads {
            Payloads::Read => unseal(meta, body).map(|e| (e, false)),
            Payloads::LeftOut => unseal_without_payload(meta, body),
        }
        .map_err(|e| bad(e.to_string()))?;
        Ok(StoredEvent {
            log_id,
            seq,
            event,
            payload_commitment: Hash::from_slice(commitment)
                .ok_or_else(|| bad("commitment is not 32 bytes".into()))?,
            leaf_hash: Hash::from_slice(leaf_hash)
                .ok_or_else(|| bad("leaf hash is not 32 bytes".into()))?,
            redacted: body.is_none(),
            payload_left_out,
        })
    }
}

/// What a summary covers.
#[derive(Debug, Clone, PartialEq)]
pub enum SummaryScope {
    Session(String),
    User(String),
    /// Everything in `[since, until)` of the time `time` names; either bound may be open.
    Window {
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        time: TimeBasis,
    },
}

/// Counts over a scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub total_operations: u64,
    pub tool_executions: u64,
    pub resource_accesses: u64,
    pub context_operations: u64,
    pub prompt_executions: u64,
    pub admin_actions: u64,
    /// Every kind, including those above.
    pub by_kind: BTreeMap<EventKind, u64>,
    pub by_outcome: BTreeMap<String, u64>,
    pub requires_review: u64,
    pub distinct_users: u64,
    /// Operations per user (of those with a user id), for a dashboard's top users. Left out of
    /// the JSON summary (`summary --json`, the console's API), whose shape is documented.
    #[serde(skip)]
    pub by_user: BTreeMap<String, u64>,
    pub first_activity: Option<Timestamp>,
    pub last_activity: Option<Timestamp>,
}

/// Statistics of one tool (operation name of `tool_execution` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolStats {
    pub tool: String,
    pub calls: u64,
    pub errors: u64,
    /// `errors / calls`, 0 to 1.
    pub error_rate: f64,
    /// Median latency in microseconds, over calls with a recorded duration.
    pub p50_us: Option<u64>,
    pub p95_us: Option<u64>,
}

/// What a cleanup deleted (or, dry, would delete).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CleanupReport {
    pub events: u64,
    pub payloads: u64,
    pub data_sources: u64,
    pub compliance_events: u64,
    pub dry_run: bool,
}
