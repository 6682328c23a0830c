//! A data subject's erasure (GDPR Art. 17): every event about them, and the link from the log
//! to them.
//!
//! The events are found by the user id, the data-subject id and (for a subject that is an
//! e-mail address) the actor's e-mail; their calls are erased together through the erasure's
//! own path (`erasure::erase_calls`), so that every record of each call goes, each erasure is
//! recorded before its payload is deleted, and a legal hold on any of them refuses the whole
//! request before anything is erased. Then one event records the
//! request itself (who asked, when, why, how many events), naming the subject only by a
//! pseudonym; then the pseudonym → identity rows are deleted, and the backend scrubs its
//! journal. What the log keeps afterwards is hashed metadata that names random pseudonyms
//! nobody can resolve, and the salted commitments of payloads that are gone: `verify` passes,
//! and nothing points at the person.
//!
//! Events recorded before pseudonyms existed hold the identifier itself in their hashed
//! metadata; that can not change without breaking their leaves. Their payloads are erased all
//! the same (see `docs/privacy.md`).

use std::collections::HashSet;

use mcp_audit_core::pseudonym::{IdentityField, fresh};
use mcp_audit_core::{Action, AuditEvent, ComplianceEvent, EventId, RiskLevel};
use serde::Serialize;

use crate::erasure::{EraseError, ErasureRequest, erase_calls};
use crate::error::StoreError;
use crate::query::Filter;
use crate::recorder::{Receipt, Recorder};
use crate::store::{Maintain, Read, Scrub};

/// The `target.resource_type` of the event that records a subject's erasure.
pub const SUBJECT_RESOURCE: &str = "data_subject";

/// What a subject's erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectErasure {
    /// The pseudonym the request's own event names the subject by.
    pub pseudonym: String,
    /// Events found about the subject (every record of each call included).
    pub events: usize,
    /// Records whose payload was erased now, or whose earlier erasure is recorded now.
    pub erased: usize,
    /// Records found already erased, with their erasure on record.
    pub already_erased: usize,
    /// Pseudonym → identity rows deleted.
    pub links_forgotten: u64,
    /// The event that records the request.
    pub request_event: EventId,
    /// Whether the erased bytes left the backend's files.
    #[serde(skip)]
    pub scrub: Scrub,
}

/// Erases every event about `subject` (a user id, a data-subject id or an e-mail address) and
/// its pseudonym mapping; see the module doc. `recorder` records the erasures durably.
pub fn erase_subject(
    store: &mut (impl Read + Maintain + ?Sized),
    recorder: &Recorder,
    subject: &str,
    request: &ErasureRequest,
) -> Result<SubjectErasure, EraseError> {
    let links = store.links_of(subject)?;
    let ids = events_about(store, subject)?;
    let calls = erase_calls(store, recorder, &ids, request)?;
    let (erased, already_erased) = (calls.records.len(), calls.already_erased);
    let pseudonym = links
        .iter()
        .find(|l| l.field == IdentityField::Subject)
        .or(links.first())
        .map(|l| l.pseudonym.clone())
        .unwrap_or_else(fresh);
    let events = erased + already_erased;
    let event = request_event(&pseudonym, request, events, erased)?;
    let request_event = event.id;
    match recorder.record(event)? {
        Receipt::Skipped => return Err(EraseError::NotRecorded),
        Receipt::Durable { .. } | Receipt::Queued { .. } => {}
    }
    recorder.flush()?;
    let forgotten: Vec<String> = links.into_iter().map(|l| l.pseudonym).collect();
    let links_forgotten = store.forget_pseudonyms(&forgotten)?;
    let scrub = store.scrub()?;
    Ok(SubjectErasure {
        pseudonym,
        events,
        erased,
        already_erased,
        links_forgotten,
        request_event,
        scrub,
    })
}

/// The ids of the events about `subject`: by user id, then data-subject id (each matching the
/// identifier and its pseudonyms), then e-mail.
fn events_about(
    store: &mut (impl Read + ?Sized),
    subject: &str,
) -> Result<Vec<EventId>, StoreError> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let filters = [
        Filter {
            user_id: Some(subject.to_string()),
            include_pending: true,
            ..Filter::default()
        },
        Filter {
            data_subject_id: Some(subject.to_string()),
            include_pending: true,
            ..Filter::default()
        },
    ];
    for filter in &filters {
        store.for_each(filter, &mut |stored| {
            if seen.insert(stored.event.id) {
                ids.push(stored.event.id);
            }
            Ok(())
        })?;
    }
    // The e-mail is personal (erasable, never in the hashed metadata) and has no column: the
    // events are read to find it. Only for a subject that is an address.
    if subject.contains('@') {
        let every = Filter {
            include_pending: true,
            ..Filter::default()
        };
        store.for_each(&every, &mut |stored| {
            if stored.event.actor.email.as_deref() == Some(subject) && seen.insert(stored.event.id)
            {
                ids.push(stored.event.id);
            }
            Ok(())
        })?;
    }
    Ok(ids)
}

/// The event that records a subject's erasure: an admin `DELETE` of a `data_subject`, by the
/// request's actor, for its reason, with how many events it erased; it names the subject by
/// `pseudonym` alone, and is kept forever.
fn request_event(
    pseudonym: &str,
    request: &ErasureRequest,
    events: usize,
    erased: usize,
) -> Result<AuditEvent, StoreError> {
    let mut event = AuditEvent::admin(Action::Delete, SUBJECT_RESOURCE, pseudonym)
        .user(&request.actor)
        .purpose(&request.reason)
        .data_subject(pseudonym)
        .retention("forever")
        .compliance_event(ComplianceEvent {
            framework: "GDPR".into(),
            event_type: "subject_erasure".into(),
            risk_level: RiskLevel::Low,
            details: Some(serde_json::json!({"events": events, "records_erased": erased})),
            mitigation: Vec::new(),
        })
        .build()?;
    event.actor.auth_method = Some(request.auth_method.clone());
    Ok(event)
}
