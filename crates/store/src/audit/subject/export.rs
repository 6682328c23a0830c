//! A data subject's events and their export (GDPR Art. 15 and 20; the document and its offline
//! check are `mcp_audit_core::subject_export`).
//!
//! The events about a subject are asked of the store through its ordinary filters, by data
//! subject and by user (intents included: they hold the arguments), so that a change in how
//! identifiers are kept (pseudonyms) flows through here as it does through queries. Each
//! export is recorded in the log as an `admin` `EXPORT data_subject` event, whose compliance
//! event says who asked and how many events were served: [`exports_served`] counts them for
//! the compliance reports.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mcp_audit_core::proof::InclusionProof;
use mcp_audit_core::subject_export::{ExportedEvent, SubjectExport};
use mcp_audit_core::{
    Action, AuditEvent, Classification, ComplianceEvent, EventId, EventKind, RiskLevel,
};
use serde_json::json;

use crate::error::StoreError;
use crate::query::{Filter, StoredEvent};
use crate::store::Read;

/// The resource type of export events.
pub const EXPORT_RESOURCE: &str = "data_subject";
/// The operation of an export event.
pub const EXPORT_OPERATION: &str = "EXPORT data_subject";
const FRAMEWORK: &str = "mcp-audit";
const EVENT_TYPE: &str = "subject_export";

/// Every event about `subject` (as its data subject or as its user), of every log, intents
/// included, by log and seq.
pub fn subject_events(
    store: &mut (impl Read + ?Sized),
    subject: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let base = Filter {
        include_pending: true,
        ..Filter::default()
    };
    let by_subject = Filter {
        data_subject_id: Some(subject.to_string()),
        ..base.clone()
    };
    let by_user = Filter {
        user_id: Some(subject.to_string()),
        ..base
    };
    let mut found: BTreeMap<(String, u64), StoredEvent> = BTreeMap::new();
    for filter in [by_subject, by_user] {
        store.for_each(&filter, &mut |stored| {
            found.insert((stored.log_id.clone(), stored.seq), stored);
            Ok(())
        })?;
    }
    Ok(found.into_values().collect())
}

/// The export of `subject`'s events at `now`: each with the inclusion proof `prove` gives
/// (the caller opens the event's log; see `integrity::prove`).
pub fn export_subject(
    store: &mut (impl Read + ?Sized),
    subject: &str,
    now: Timestamp,
    prove: &mut dyn FnMut(&StoredEvent) -> Result<InclusionProof, StoreError>,
) -> Result<SubjectExport, StoreError> {
    let mut events = Vec::new();
    let mut pseudonyms = BTreeMap::new();
    for stored in subject_events(store, subject)? {
        let proof = prove(&stored)?;
        // The event as the proof carries it (pseudonyms and all), then the subject's own
        // pseudonyms shown as the subject: the reader (`stored`, resolved through the mapping)
        // says which identifiers are the subject's; nobody else's is resolved.
        let mut shown = proof
            .event()
            .map_err(|e| StoreError::Database(format!("seq {}: {e}", stored.seq)))?;
        for (slot, resolved) in [
            (&mut shown.actor.user_id, &stored.event.actor.user_id),
            (
                &mut shown.compliance.data_subject_id,
                &stored.event.compliance.data_subject_id,
            ),
        ] {
            if resolved.as_deref() == Some(subject) {
                if let Some(pseudonym) = slot.take().filter(|p| p != subject) {
                    pseudonyms.insert(pseudonym, subject.to_string());
                }
                *slot = Some(subject.to_string());
            }
        }
        events.push(ExportedEvent {
            log_id: stored.log_id,
            event: shown,
            proof,
        });
    }
    let mut export = SubjectExport::new(subject, now, events);
    export.pseudonyms = pseudonyms;
    Ok(export)
}

/// The event that records an export of `subject` served to `actor`: the subject as its data
/// subject (so a later erasure of the subject covers it), how many events, from which logs.
pub fn export_event(
    subject: &str,
    actor: &str,
    export: &SubjectExport,
) -> Result<AuditEvent, StoreError> {
    let mut logs: Vec<&str> = export.events.iter().map(|e| e.log_id.as_str()).collect();
    logs.sort_unstable();
    logs.dedup();
    Ok(
        AuditEvent::admin(Action::Export, EXPORT_RESOURCE, EventId::new().to_string())
            .user(actor)
            .data_subject(subject)
            .purpose("data subject access request (GDPR Art. 15)")
            .classification(Classification::Confidential)
            .requires_review(false)
            .retention("forever")
            .compliance_event(ComplianceEvent {
                framework: FRAMEWORK.into(),
                event_type: EVENT_TYPE.into(),
                risk_level: RiskLevel::Low,
                details: Some(json!({
                    "events": export.events.len(),
                    "logs": logs,
                    "exported_at": export.exported_at,
                })),
                mitigation: Vec::new(),
            })
            .build()?,
    )
}

/// How many subject exports were served in `[since, until)` (either open): the "exports
/// served" figure of the compliance reports.
pub fn exports_served(
    store: &mut (impl Read + ?Sized),
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<u64, StoreError> {
    store.count(&Filter {
        kinds: vec![EventKind::Admin],
        operation: Some(EXPORT_OPERATION.into()),
        resource_type: Some(EXPORT_RESOURCE.into()),
        since,
        until,
        ..Filter::default()
    })
}
