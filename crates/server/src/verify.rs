//! `verify` started from the API and watched while it runs: one run at a time, on a thread of
//! its own (it reads the whole log), its progress kept in memory and shown by
//! `/api/v1/integrity`.
//!
//! Every finished run, this one's and `mcp-audit verify`'s alike, is also an `admin` event of
//! the log (action `verify`, resource `audit_log`): [`record_event`] writes it, [`from_record`]
//! reads it back. The result lives in the hashed metadata (a compliance event of framework
//! `mcp-audit`, type `verify`), so every role sees it and the next `verify` checks that it was
//! not edited; a run with findings, or one that could not complete, is recorded with outcome
//! `tool_error` and `ok: false`, never left out. `/integrity` shows the newest of the runs
//! recorded in the log and the one this server ran, so a restart forgets nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use mcp_audit_core::checkpoint::NoteVerifier;
use mcp_audit_core::{
    Action, AuditEvent, Classification, ComplianceEvent, CustomAction, ModelError, Outcome,
    RiskLevel,
};
use mcp_audit_store::{Filter, Recorder, StoredEvent, integrity};
use serde::{Deserialize, Serialize};

use crate::Databases;

/// The custom action of a verify record; its operation is [`VERIFY_OPERATION`].
pub const VERIFY_ACTION: &str = "verify";
/// The resource type of a verify record: the log (or logs) it read.
pub const VERIFY_RESOURCE: &str = "audit_log";
/// The operation of every verify record (what `/integrity` looks up).
pub const VERIFY_OPERATION: &str = "verify audit_log";
/// The compliance event type that carries a verify record's result.
const VERIFY_EVENT_TYPE: &str = "verify";

/// What `/integrity` shows of verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyState {
    /// The run in progress, if any.
    pub running: Option<Running>,
    /// The last finished run, if any since the server started.
    pub last: Option<Finished>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub started: Timestamp,
    /// The token name that started it.
    pub by: String,
    /// Logs finished, of `logs`.
    pub logs_done: usize,
    pub logs: usize,
    /// The log being read, entries read of it so far, and its size when the run reached it.
    pub log_id: Option<String>,
    pub entries_done: u64,
    pub entries_total: u64,
}

/// A finished verify run, as `/integrity` shows it and as its record in the log holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub started: Timestamp,
    pub finished: Timestamp,
    /// Who ran it: the console token's name, or the OS user (or `--actor`) of the command
    /// line. Taken from the record's actor when read back.
    #[serde(default)]
    pub by: String,
    /// The event of the log that records this run (absent until it is recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<mcp_audit_core::EventId>,
    /// No finding in any log, and the run completed.
    pub ok: bool,
    /// Why the run could not complete (a database error), if it did not.
    pub error: Option<String>,
    /// Whether signatures were checked (`serve --verifier-key`).
    pub signatures_checked: bool,
    pub logs: Vec<LogResult>,
}

/// One log's report, in brief (`mcp-audit verify --json` has every finding).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogResult {
    pub log_id: String,
    pub ok: bool,
    /// The range read: the entries `0..size` (the log's size when the run reached it).
    #[serde(default)]
    pub size: u64,
    pub entries: u64,
    pub redacted: u64,
    pub expired: u64,
    pub checkpoints_verified: u64,
    pub covered: u64,
    pub gaps: usize,
    /// Findings by kind.
    pub findings: BTreeMap<String, usize>,
}

impl LogResult {
    /// The brief of `report`, a run over the entries `0..size` of log `log_id`.
    pub fn of(log_id: &str, size: u64, report: &integrity::Report) -> LogResult {
        LogResult {
            log_id: log_id.to_string(),
            ok: report.is_ok(),
            size,
            entries: report.entries,
            redacted: report.redacted,
            expired: report.expired,
            checkpoints_verified: report.checkpoints_verified,
            covered: report.covered,
            gaps: report.gaps.len(),
            findings: integrity::summary(report)
                .into_iter()
                .map(|(kind, n)| (kind.to_string(), n))
                .collect(),
        }
    }
}

/// Why a verify run could not be made into its record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The event model refused the record (it should not: every part is fixed here).
    #[error("cannot build the verify record: {0}")]
    Model(#[from] ModelError),
    /// The result could not be written as JSON.
    #[error("cannot write the verify result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The event that puts `run` on record, its actor `run.by` authenticated by `auth_method`
/// (`console_token`, `os_user`, `cli_flag`). The resource id names the logs read (`""` for a
/// SQLite file's one log).
pub fn record_event(run: &Finished, auth_method: &str) -> Result<AuditEvent, RecordError> {
    let action = Action::Custom(CustomAction::new(VERIFY_ACTION)?);
    let logs: Vec<&str> = run.logs.iter().map(|l| l.log_id.as_str()).collect();
    let mut event = AuditEvent::admin(action, VERIFY_RESOURCE, logs.join(","))
        .user(run.by.clone())
        .classification(Classification::Internal)
        .requires_review(false)
        .build()?;
    event.timestamp = run.finished;
    event.outcome = if run.ok {
        Outcome::Success
    } else {
        Outcome::ToolError
    };
    event.actor.auth_method = Some(auth_method.to_string());
    let mut details = serde_json::to_value(run)?;
    if let Some(details) = details.as_object_mut() {
        // The actor says who; the record's own id is not known before it is recorded.
        details.remove("by");
        details.remove("recorded_as");
    }
    event.compliance_events.push(ComplianceEvent {
        framework: "mcp-audit".into(),
        event_type: VERIFY_EVENT_TYPE.into(),
        risk_level: if run.ok {
            RiskLevel::Low
        } else {
            RiskLevel::Critical
        },
        details: Some(details),
        mitigation: Vec::new(),
    });
    Ok(event)
}

/// The run that `stored` records, if it is a verify record ([`record_event`]'s form).
pub fn from_record(stored: &StoredEvent) -> Option<Finished> {
    let event = &stored.event;
    if event.operation != VERIFY_OPERATION {
        return None;
    }
    let details = event
        .compliance_events
        .iter()
        .find(|c| c.framework == "mcp-audit" && c.event_type == VERIFY_EVENT_TYPE)?
        .details
        .clone()?;
    let mut run: Finished = serde_json::from_value(details).ok()?;
    run.by = event.actor.user_id.clone().unwrap_or_default();
    run.recorded_as = Some(event.id);
    // The outcome is what a query filters on: a record whose outcome and result disagree is
    // shown as failed.
    run.ok &= event.outcome == Outcome::Success;
    Some(run)
}

/// The filter of every verify record, newest first in a query.
pub fn record_filter() -> Filter {
    Filter {
        operation: Some(VERIFY_OPERATION.into()),
        resource_type: Some(VERIFY_RESOURCE.into()),
        ..Filter::default()
    }
}

/// The shared verification state.
#[derive(Default)]
pub struct Verifications {
    state: Mutex<VerifyState>,
}

impl Verifications {
    pub fn snapshot(&self) -> VerifyState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts a run unless one is running; `false` when one is.
    /// The run is recorded through `recorder` when it finishes (see [`record_event`]); a
    /// run that cannot be recorded is still shown, with no `recorded_as`.
    pub fn start(
        self: &Arc<Self>,
        databases: Arc<dyn Databases>,
        recorder: Recorder,
        verifier: Option<NoteVerifier>,
        by: String,
    ) -> bool {
        let started = Timestamp::now();
        {
            let Ok(mut state) = self.state.lock() else {
                return false;
            };
            if state.running.is_some() {
                return false;
            }
            state.running = Some(Running {
                started,
                by: by.clone(),
                logs_done: 0,
                logs: 0,
                log_id: None,
                entries_done: 0,
                entries_total: 0,
            });
        }
        let this = Arc::clone(self);
        std::thread::spawn(move || {
            let signatures_checked = verifier.is_some();
            let result = this.run(databases.as_ref(), verifier.as_ref());
            let (logs, error) = match result {
                Ok(logs) => (logs, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            let mut finished = Finished {
                started,
                finished: Timestamp::now(),
                by,
                recorded_as: None,
                ok: error.is_none() && logs.iter().all(|l| l.ok),
                error,
                signatures_checked,
                logs,
            };
            match record_event(&finished, "console_token")
                .map_err(|e| e.to_string())
                .and_then(|event| crate::records::record(&recorder, event).map_err(|e| e.message))
            {
                Ok(id) => finished.recorded_as = Some(id),
                Err(e) => tracing::error!("the verify run could not be recorded: {e}"),
            }
            if let Ok(mut state) = this.state.lock() {
                state.running = None;
                state.last = Some(finished);
            }
        });
        true
    }

    fn update(&self, change: impl FnOnce(&mut Running)) {
        if let Ok(mut state) = self.state.lock()
            && let Some(running) = state.running.as_mut()
        {
            change(running);
        }
    }

    fn run(
        &self,
        databases: &dyn Databases,
        verifier: Option<&NoteVerifier>,
    ) -> Result<Vec<LogResult>, String> {
        let logs = databases.logs().map_err(|e| e.to_string())?;
        self.update(|r| r.logs = logs.len());
        let mut results = Vec::new();
        for (done, log_id) in logs.iter().enumerate() {
            let mut store = databases.log_reader(log_id).map_err(|e| e.to_string())?;
            let total = store.next_seq().map_err(|e| e.to_string())?;
            self.update(|r| {
                r.logs_done = done;
                r.log_id = Some(log_id.clone());
                r.entries_done = 0;
                r.entries_total = total;
            });
            let report = integrity::verify(store.as_mut(), verifier, &[], &mut |n| {
                self.update(|r| r.entries_done = n)
            })
            .map_err(|e| format!("log `{log_id}`: {e}"))?;
            results.push(LogResult::of(store.log_id(), total, &report));
        }
        Ok(results)
    }
}
