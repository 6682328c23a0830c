//! A data subject's export (GDPR Art. 15 access, Art. 20 portability): every event about them,
//! each with its self-contained inclusion proof, so that the subject (or anyone they hand it
//! to) can check it offline with nothing but the log's public key.
//!
//! What is proven: each event, as shown, is the one its proof carries (metadata exactly as
//! hashed, payload against its salted commitment), and that event is in the log under a signed
//! checkpoint, and it concerns the subject. What is not: the envelope (`exported_at`) and
//! completeness — a log cannot prove the absence of entries it was not asked about; the export
//! is itself recorded in the log (who asked, when, how many), which is what an auditor checks.
//!
//! Pseudonyms: the hashed metadata names people by random pseudonyms (see
//! `mcp_audit_core::pseudonym`). An export shows the subject's own pseudonyms as the subject,
//! and lists them (`pseudonyms`); that link is the erasable mapping's word, which the log does
//! not hash by design, so the check takes it as given. Other people's pseudonyms (the agent
//! that read the subject's record, say) stay pseudonyms: an export names nobody but its subject.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::checkpoint::NoteVerifier;
use crate::event::AuditEvent;
use crate::proof::{InclusionProof, ProofError};

/// The `format` of an export this build writes and reads.
pub const EXPORT_FORMAT: &str = "mcp-audit/subject-export/1";

/// The export document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectExport {
    pub format: String,
    /// The subject as asked for: a data-subject id, a user id, or a pseudonym.
    pub subject: String,
    pub exported_at: Timestamp,
    /// Oldest first within each log.
    pub events: Vec<ExportedEvent>,
    /// The subject's pseudonyms in these events' hashed metadata → the subject (the mapping's
    /// rows when exported; not proven by the log, see the module doc).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pseudonyms: BTreeMap<String, String>,
}

/// One event of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    /// The log that holds it (one per writer on PostgreSQL).
    pub log_id: String,
    /// The event, for reading: checked equal to the one the proof carries, with the subject's
    /// pseudonyms shown as the subject.
    pub event: AuditEvent,
    pub proof: InclusionProof,
}

/// Why an export does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("not a subject export of this version (format `{0}`, expected `{EXPORT_FORMAT}`)")]
    Format(String),
    #[error("event {index}: its proof does not hold: {error}")]
    Proof { index: usize, error: ProofError },
    #[error("event {index}: the event shown is not the one its proof carries")]
    Altered { index: usize },
    #[error(
        "event {index}: it does not concern `{subject}` (neither its user nor its data subject)"
    )]
    NotAbout { index: usize, subject: String },
}

impl SubjectExport {
    /// An export of `events` (each with its proof) about `subject`, made at `exported_at`.
    pub fn new(subject: &str, exported_at: Timestamp, events: Vec<ExportedEvent>) -> Self {
        SubjectExport {
            format: EXPORT_FORMAT.to_string(),
            subject: subject.to_string(),
            exported_at,
            events,
            pseudonyms: BTreeMap::new(),
        }
    }

    /// `event` with the subject's pseudonyms (the export's `pseudonyms`) shown as the subject.
    pub fn reveal(&self, event: &mut AuditEvent) {
        for slot in [
            &mut event.actor.user_id,
            &mut event.compliance.data_subject_id,
        ] {
            if let Some(identity) = slot.as_ref().and_then(|p| self.pseudonyms.get(p)) {
                *slot = Some(identity.clone());
            }
        }
    }

    /// Checks every event against its proof and the verifier key; returns how many events
    /// it holds (zero is a valid export: a subject with no events).
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<usize, ExportError> {
        if self.format != EXPORT_FORMAT {
            return Err(ExportError::Format(self.format.clone()));
        }
        for (index, exported) in self.events.iter().enumerate() {
            let mut proven = exported
                .proof
                .verify(verifier)
                .map_err(|error| ExportError::Proof { index, error })?;
            self.reveal(&mut proven);
            // Compared as JSON: the form the reader sees, whatever the Rust type's equality.
            let shown = serde_json::to_value(&exported.event).ok();
            if shown.is_none() || shown != serde_json::to_value(&proven).ok() {
                return Err(ExportError::Altered { index });
            }
            let about = proven.actor.user_id.as_deref() == Some(&self.subject)
                || proven.compliance.data_subject_id.as_deref() == Some(&self.subject);
            if !about {
                return Err(ExportError::NotAbout {
                    index,
                    subject: self.subject.clone(),
                });
            }
        }
        Ok(self.events.len())
    }
}
