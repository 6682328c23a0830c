//! `verify` started from the API and watched while it runs: one run at a time, on a thread of
//! its own (it reads the whole log), its progress and the last run's result kept in memory and
//! shown by `/api/v1/integrity`.
//!
//! Kept in memory on purpose: a result stored anywhere but the log would be one more thing to
//! trust, and `mcp-audit verify` can always be run again. A restart forgets the last result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use mcp_audit_core::checkpoint::NoteVerifier;
use mcp_audit_store::integrity;
use serde::Serialize;

use crate::Databases;

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

#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub started: Timestamp,
    pub finished: Timestamp,
    pub by: String,
    /// No finding in any log, and the run completed.
    pub ok: bool,
    /// Why the run could not complete (a database error), if it did not.
    pub error: Option<String>,
    /// Whether signatures were checked (`serve --verifier-key`).
    pub signatures_checked: bool,
    pub logs: Vec<LogResult>,
}

/// One log's report, in brief (`mcp-audit verify --json` has every finding).
#[derive(Debug, Clone, Serialize)]
pub struct LogResult {
    pub log_id: String,
    pub ok: bool,
    pub entries: u64,
    pub redacted: u64,
    pub expired: u64,
    pub checkpoints_verified: u64,
    pub covered: u64,
    pub gaps: usize,
    /// Findings by kind.
    pub findings: BTreeMap<&'static str, usize>,
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
    pub fn start(
        self: &Arc<Self>,
        databases: Arc<dyn Databases>,
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
            let finished = Finished {
                started,
                finished: Timestamp::now(),
                by,
                ok: error.is_none() && logs.iter().all(|l| l.ok),
                error,
                signatures_checked,
                logs,
            };
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
            results.push(LogResult {
                log_id: store.log_id().to_string(),
                ok: report.is_ok(),
                entries: report.entries,
                redacted: report.redacted,
                expired: report.expired,
                checkpoints_verified: report.checkpoints_verified,
                covered: report.covered,
                gaps: report.gaps.len(),
                findings: integrity::summary(&report).into_iter().collect(),
            });
        }
        Ok(results)
    }
}
