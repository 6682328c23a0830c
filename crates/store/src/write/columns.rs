//! How an event's fields become column values, the same in every backend (and in both of
//! PostgreSQL's write paths), so that a row reads alike whichever backend wrote it.

use mcp_audit_core::{AuditEvent, Classification, ComplianceEvent, FlowDirection, RiskLevel};

/// The `classification` column of an event that names none. The policy has run before
/// sealing, so it is always set; the default only keeps the writers total (and `verify`
/// expects what they wrote).
pub(crate) const DEFAULT_CLASSIFICATION: Classification = Classification::Internal;

/// The `classification` column.
pub(crate) fn classification(e: &AuditEvent) -> Classification {
    e.compliance
        .classification
        .unwrap_or(DEFAULT_CLASSIFICATION)
}

/// The `duration_us` column: a duration too long for the signed column is clamped, not wrapped.
pub(crate) fn duration_us(e: &AuditEvent) -> Option<i64> {
    e.duration_us.map(clamp_duration)
}

/// A duration in microseconds as the signed column holds it.
pub(crate) fn clamp_duration(micros: u64) -> i64 {
    micros.min(i64::MAX as u64) as i64
}

/// The `direction` column of a lineage row.
pub(crate) fn direction(d: FlowDirection) -> &'static str {
    match d {
        FlowDirection::Input => "input",
        FlowDirection::Output => "output",
        FlowDirection::Bidirectional => "bidirectional",
    }
}

/// The `risk_level` column of a compliance row.
pub(crate) fn risk(r: RiskLevel) -> &'static str {
    match r {
        RiskLevel::Low => "low",
        RiskLevel::Medium => "medium",
        RiskLevel::High => "high",
        RiskLevel::Critical => "critical",
    }
}

/// The `mitigation` column of a compliance row: a JSON array, or nothing when there is none.
pub(crate) fn mitigation(c: &ComplianceEvent) -> Option<String> {
    (!c.mitigation.is_empty()).then(|| serde_json::Value::from(c.mitigation.clone()).to_string())
}
