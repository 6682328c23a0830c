//! The report and its sections, as every renderer reads them (the JSON form is this, as is).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use mcp_audit_store::StoreError;
use serde::Serialize;

/// Which report: the sections are the same, the checks and the title differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// GDPR: processing by legal basis; events flagged `gdpr` without a legal basis (Art. 6)
    /// or kept longer than seven years (Art. 5(1)(e)) are findings.
    Gdpr,
    /// CCPA: events flagged `ccpa` without a purpose (§1798.100) are findings.
    Ccpa,
    /// The record of processing activities, without regulation checks.
    Activity,
    /// Privacy impact assessment: the figures and a risk analysis.
    Pia,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] = [
        ReportKind::Gdpr,
        ReportKind::Ccpa,
        ReportKind::Activity,
        ReportKind::Pia,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Gdpr => "gdpr",
            ReportKind::Ccpa => "ccpa",
            ReportKind::Activity => "activity",
            ReportKind::Pia => "pia",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ReportKind::Gdpr => "GDPR compliance report",
            ReportKind::Ccpa => "CCPA compliance report",
            ReportKind::Activity => "Record of processing activities",
            ReportKind::Pia => "Privacy impact assessment",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportKind {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ReportError::UnknownReport(s.to_string()))
    }
}

/// What can keep a report from being made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The report named is none of `gdpr`, `ccpa`, `activity`, `pia`.
    #[error("unknown report `{0}` (valid: gdpr, ccpa, activity, pia)")]
    UnknownReport(String),
    /// The format named is none of `html`, `json`, `csv`.
    #[error("unknown format `{0}` (valid: html, json, csv)")]
    UnknownFormat(String),
    /// The window ends before it starts.
    #[error("the window ends ({until}) before it starts ({since})")]
    EmptyWindow { since: Timestamp, until: Timestamp },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The report could not be written out.
    #[error("cannot write the report: {0}")]
    Write(String),
}

/// What the caller decides: which report, which window, what "now" is, and what it learnt of
/// the log's integrity (the store's read API can not run `verify`; the command line can).
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub kind: ReportKind,
    /// Window start (inclusive) and end (exclusive), stated time.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// The moment retention is judged at (expired: `expires_at` before it).
    pub now: Timestamp,
    /// Events expiring within this many days of `now` are "due".
    pub due_within_days: i64,
    /// Per log: its size and newest checkpoint.
    pub logs: Vec<LogIntegrity>,
    /// A verify run for this report, if the caller ran one.
    pub last_verify: Option<VerifyStatus>,
}

/// A compliance report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report: ReportKind,
    pub title: &'static str,
    pub generated_at: Timestamp,
    pub period: Period,
    pub totals: Totals,
    /// Processing activities: events by legal basis and purpose (`none` where not stated).
    pub processing: Vec<Processing>,
    pub legal_bases: BTreeMap<String, u64>,
    pub purposes: BTreeMap<String, u64>,
    pub data_subjects: DataSubjects,
    pub data_sources: Vec<SourceUse>,
    /// Events by classification (`public`, `internal`, `confidential`, `restricted`).
    pub classifications: BTreeMap<String, u64>,
    pub review: ReviewStatus,
    pub retention: RetentionStatus,
    pub rights: RightsServed,
    pub redactions: RedactionCounts,
    pub compliance_events: Vec<ComplianceEventCount>,
    pub integrity: Integrity,
    /// What the regulation's checks found (GDPR and CCPA reports only), at most
    /// [`MAX_FINDINGS`] listed; `findings_total` counts them all.
    pub findings: Vec<Finding>,
    pub findings_total: u64,
    pub recommendations: Vec<String>,
    /// The privacy impact assessment's risk analysis (PIA only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskAnalysis>,
}

/// At most this many findings are listed (each names an event); the count is always whole.
pub const MAX_FINDINGS: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub events: u64,
    /// Events flagged as under the GDPR, the CCPA.
    pub gdpr_events: u64,
    pub ccpa_events: u64,
    pub distinct_users: u64,
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Processing {
    pub legal_basis: String,
    pub purpose: String,
    pub events: u64,
    pub gdpr_events: u64,
    pub ccpa_events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
}

/// Counted, never listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataSubjects {
    /// Distinct data-subject ids.
    pub distinct: u64,
    /// Events naming a data subject.
    pub events: u64,
}

/// A data source and its lineage: how events used it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceUse {
    pub uri: String,
    pub source_type: Option<String>,
    /// `read`, `write`, ... as recorded.
    pub directions: Vec<String>,
    pub transformations: Vec<String>,
    pub destinations: Vec<String>,
    pub uses: u64,
    /// Distinct operations that used it.
    pub operations: u64,
    pub first_used: Timestamp,
    pub last_used: Timestamp,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewStatus {
    pub requiring_review: u64,
    /// Of those, reviewed (a review event names them, at any time).
    pub reviewed: u64,
    pub pending: u64,
    /// The latest verdict of each reviewed event, counted.
    pub verdicts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionStatus {
    /// Events by retention policy (`none` where the event names none).
    pub by_policy: Vec<RetentionUse>,
    pub missing_policy: u64,
    /// `expires_at` before now: still stored, for the next `cleanup`.
    pub expired: u64,
    pub oldest_expired: Option<Timestamp>,
    pub newest_expired: Option<Timestamp>,
    /// `expires_at` within `due_within_days` from now.
    pub due: u64,
    pub due_within_days: i64,
    /// Events kept forever (no `expires_at`).
    pub kept_forever: u64,
    /// Legal holds placed and released in the window, and in force at its end (placed in the
    /// log up to then and not released).
    pub holds_placed: u64,
    pub holds_released: u64,
    pub holds_in_force: u64,
    /// Events an active legal hold keeps now (whatever their `expires_at`), of every log.
    pub held: u64,
    /// Cleanup runs in the window and the entries they removed.
    pub cleanup_runs: u64,
    pub removed_by_cleanup: u64,
    /// `compliant` when nothing is expired and still stored, `cleanup due` otherwise.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionUse {
    pub policy: String,
    pub events: u64,
    pub oldest: Timestamp,
    pub newest: Timestamp,
}

/// Data-subject requests served, as the log records them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RightsServed {
    /// Records erased (each erasure records one event).
    pub erasures: u64,
    /// Erasure requests (one per erased call: the erasure events' correlation ids).
    pub erasure_requests: u64,
    /// Data subjects' erasure requests (`subject erase`), each of which erased every record
    /// about its subject (counted in `erasures` too).
    pub subject_erasures: u64,
    /// Exports served: data-subject exports and the console's exports of the trail.
    pub exports: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedactionCounts {
    /// Events something was redacted from.
    pub events: u64,
    /// Values replaced, by rule id.
    pub by_rule: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComplianceEventCount {
    pub framework: String,
    pub event_type: String,
    pub risk_level: String,
    pub events: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    pub logs: Vec<LogIntegrity>,
    /// `None`: no verify ran for this report (run `mcp-audit verify`, or `report --verify`).
    pub last_verify: Option<VerifyStatus>,
}

/// One log's size and newest signed checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct LogIntegrity {
    pub log_id: String,
    pub size: u64,
    pub newest_checkpoint: Option<CheckpointInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    /// Entries it covers.
    pub size: u64,
    /// The tree's root as the note states it (base64).
    pub root: String,
    /// The note's first line: whose log it is.
    pub origin: String,
}

impl CheckpointInfo {
    /// Reads a C2SP checkpoint note's body: origin, size, root, one per line.
    pub fn from_note(size: u64, note: &str) -> CheckpointInfo {
        let mut lines = note.lines();
        let origin = lines.next().unwrap_or_default().to_string();
        let root = lines.nth(1).unwrap_or_default().to_string();
        CheckpointInfo { size, root, origin }
    }
}

/// The outcome of a verify run: made for the report, or the newest one the log records.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyStatus {
    pub at: Timestamp,
    pub entries: u64,
    pub checkpoints_verified: u64,
    pub findings: u64,
    pub ok: bool,
    /// Whether signatures were checked (a key was given).
    pub signatures_checked: bool,
}

/// A regulation check that failed for one event.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `missing_legal_basis`, `excessive_retention`, `missing_processing_purpose`.
    pub kind: &'static str,
    pub severity: &'static str,
    pub event_id: String,
    pub description: String,
    pub regulation: &'static str,
}

/// The PIA's risk factors (the seed reporter's five) and the level they add up to.
#[derive(Debug, Clone, Serialize)]
pub struct RiskAnalysis {
    pub factors: BTreeMap<&'static str, bool>,
    pub score: u64,
    /// `low` (0–1 factors), `medium` (2–3), `high` (4–5).
    pub level: &'static str,
    pub mitigation_required: bool,
}
