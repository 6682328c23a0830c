//! Which admin events are the records a report counts: erasures, exports served, legal holds
//! and cleanup runs. Recognised by their operation (`ACTION resource_type`), which each writer
//! sets from its own constant; a new kind of record is one line here.

use mcp_audit_core::{AuditEvent, EventKind};
use mcp_audit_store::expiry::CLEANUP_OPERATION;

/// An admin record a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AdminRecord {
    /// One record's payload erased (`mcp-audit erase`, `subject erase`).
    Erasure,
    /// A data subject's erasure request (`subject erase`: one event per request, besides the
    /// erasure of each record).
    SubjectErasure,
    /// An export served: a data subject's (`subject export`) or the console's.
    Export,
    HoldPlaced,
    HoldReleased,
    /// A cleanup run; its entries are in its compliance event's details.
    Cleanup,
}

/// Operation names, as their writers spell them.
const RECORDS: &[(&str, AdminRecord)] = &[
    ("DELETE audit_event", AdminRecord::Erasure),
    ("DELETE data_subject", AdminRecord::SubjectErasure),
    ("EXPORT data_subject", AdminRecord::Export),
    ("EXPORT audit_trail", AdminRecord::Export),
    ("CREATE legal_hold", AdminRecord::HoldPlaced),
    ("DELETE legal_hold", AdminRecord::HoldReleased),
    (CLEANUP_OPERATION, AdminRecord::Cleanup),
];

pub(super) fn admin_record(event: &AuditEvent) -> Option<AdminRecord> {
    if event.kind != EventKind::Admin {
        return None;
    }
    RECORDS
        .iter()
        .find(|(operation, _)| *operation == event.operation)
        .map(|(_, record)| *record)
}

/// The entries a cleanup event says it removed.
pub(super) fn cleanup_entries(event: &AuditEvent) -> u64 {
    event
        .compliance_events
        .iter()
        .filter_map(|c| c.details.as_ref()?.get("entries")?.as_u64())
        .sum()
}
