//! The seed loggers' rows as events: the pure half of `mcp-audit import` (the command reads
//! the SQLite tables into the row types here; everything about what a row means is decided
//! here, without I/O, where tests reach it directly).
//!
//! - [`mockloop`]: MockLoop's `mcp_audit_logs`, `mcp_data_lineage`, `mcp_compliance_events`,
//!   with its `content_hash` recomputed ([`python_json`] writes what its `json.dumps` wrote).
//! - [`contextforge`]: ContextForge's `audit_trails`.
//!
//! Every event made here carries an [`Origin`](crate::Origin) (system, file name, table,
//! original id, checked content hash), keeps the row's time as its stated `timestamp`, and has
//! an id derived from the row ([`imported_id`]), so that importing a row twice finds it.

pub mod contextforge;
pub mod mockloop;
pub mod python_json;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::error::ModelError;
use crate::event::{EventId, truncate_to_micros};
use crate::origin::SeedSystem;

/// A row that cannot be read as an event: which table, which row, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {id}: {problem}")]
pub struct ImportError {
    pub table: &'static str,
    /// The row's own id.
    pub id: String,
    pub problem: Problem,
}

/// Why a row is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A column whose value is not what its logger writes there.
    #[error("column {column}: {message}")]
    Column {
        column: &'static str,
        message: String,
    },
    /// The row's values do not make a valid event (an unknown kind, an empty name, ...).
    #[error(transparent)]
    Model(ModelError),
}

/// The id of the event imported from row `original_id` of `table`: a UUIDv7 stamped with the
/// row's own millisecond (so imported events sort among the rest by when they happened) whose
/// 74 "random" bits are the first bits of
/// `SHA-256("mcp-audit:import:v1" ‖ 0x00 ‖ system ‖ 0x00 ‖ table ‖ 0x00 ‖ original_id)`.
///
/// Why derived, not drawn: a second import of the same row makes the same id, so "already
/// imported?" is one lookup by primary key, on either backend, with no index of our own.
pub fn imported_id(system: SeedSystem, table: &str, original_id: &str, at: Timestamp) -> EventId {
    let mut h = Sha256::new();
    h.update(b"mcp-audit:import:v1\0");
    h.update(system.as_str().as_bytes());
    h.update([0]);
    h.update(table.as_bytes());
    h.update([0]);
    h.update(original_id.as_bytes());
    let digest = h.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
    EventId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// A time as the seeds store it: RFC 3339 with an offset (MockLoop's `isoformat()` of an
/// aware UTC time), or a date and time without one (SQLAlchemy's SQLite `DateTime`, which
/// drops the zone of the UTC time ContextForge gives it), read as UTC.
pub(crate) fn parse_time(column: &'static str, text: &str) -> Result<Timestamp, Problem> {
    let text = text.trim();
    let parsed = text.parse::<Timestamp>().or_else(|_| {
        text.parse::<jiff::civil::DateTime>()
            .and_then(|dt| jiff::tz::TimeZone::UTC.to_timestamp(dt))
    });
    parsed.map(truncate_to_micros).map_err(|e| Problem::Column {
        column,
        message: format!("`{text}` is not a time: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_seeds_time_forms_are_read_as_utc() {
        let aware = parse_time("t", "2026-12-07T22:10:32.792384+00:00").unwrap();
        let naive = parse_time("t", "2026-12-07 22:10:32.792384").unwrap();
        assert_eq!(aware, naive);
        assert_eq!(aware.to_string(), "2026-12-07T22:10:32.792384Z");
        let error = parse_time("timestamp", "yesterday")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("column timestamp") && error.contains("yesterday"),
            "{error}"
        );
    }

    #[test]
    fn imported_ids_depend_on_the_row_and_carry_its_millisecond() {
        let at = parse_time("t", "2026-12-07T22:10:32.792384+00:00").unwrap();
        let id = imported_id(SeedSystem::Mockloop, "mcp_audit_logs", "e-1", at);
        assert_eq!(
            id,
            imported_id(SeedSystem::Mockloop, "mcp_audit_logs", "e-1", at)
        );
        assert_ne!(
            id,
            imported_id(SeedSystem::Mockloop, "mcp_audit_logs", "e-2", at)
        );
        assert_ne!(
            id,
            imported_id(SeedSystem::Contextforge, "mcp_audit_logs", "e-1", at)
        );
        assert_eq!(id.0.get_version_num(), 7);
        let (secs, nanos) = id.0.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos) / 1_000_000,
            at.as_millisecond() as u64
        );
    }
}
