//! Monthly partitions of the four event tables, created on demand before a batch needs them and
//! dropped whole by retention.
//!
//! A partition covers `[first microsecond of a UTC month, first of the next)`. Its name carries
//! the month (`events_p202611`), so that cleanup can read a partition's range from the catalog.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use postgres::Client;

use super::map_err;
use super::migrations::SCHEMA_LOCK;
use crate::error::StoreError;

/// The tables partitioned by month, children before their event: the order in which cleanup
/// drops them, so that no lineage row ever outlives its event.
pub(super) const TABLES: [&str; 4] = ["data_sources", "compliance_events", "payloads", "events"];

/// A UTC month, as `year * 12 + month0`: ordered, and one apart for consecutive months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Month(i32);

impl Month {
    /// The month `micros` (microseconds since the epoch) falls in.
    pub(super) fn of(micros: i64) -> Month {
        let ts = Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH);
        let date = TimeZone::UTC.to_datetime(ts).date();
        Month(i32::from(date.year()) * 12 + i32::from(date.month()) - 1)
    }

    fn year(self) -> i16 {
        self.0.div_euclid(12) as i16
    }

    fn month(self) -> i8 {
        (self.0.rem_euclid(12) + 1) as i8
    }

    /// The first microsecond of the month.
    pub(super) fn start(self) -> i64 {
        Date::new(self.year(), self.month(), 1)
            .ok()
            .and_then(|d| {
                TimeZone::UTC
                    .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                    .ok()
            })
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN)
    }

    /// The first microsecond after the month.
    pub(super) fn end(self) -> i64 {
        Month(self.0 + 1).start()
    }

    /// The partition's suffix: `p202611`.
    pub(super) fn suffix(self) -> String {
        format!("p{:04}{:02}", self.year(), self.month())
    }

    /// Reads a suffix back (cleanup lists partitions by name).
    pub(super) fn parse_suffix(suffix: &str) -> Option<Month> {
        let digits = suffix.strip_prefix('p')?;
        if digits.len() != 6 {
            return None;
        }
        let year: i32 = digits[..4].parse().ok()?;
        let month: i32 = digits[4..].parse().ok()?;
        (1..=12)
            .contains(&month)
            .then_some(Month(year * 12 + month - 1))
    }
}

/// The partitions this connection knows to exist, so that a batch costs no catalog query.
#[derive(Default)]
pub(super) struct Partitions {
    known: HashSet<Month>,
}

impl Partitions {
    /// Makes sure every month of `timestamps` has its partitions, creating the missing ones in
    /// a short transaction of their own (DDL must not hold locks for a whole batch), serialised
    /// with other writers by the schema advisory lock.
    pub(super) fn ensure(
        &mut self,
        client: &mut Client,
        timestamps: impl Iterator<Item = i64>,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<Month> = timestamps
            .map(Month::of)
            .filter(|m| !self.known.contains(m))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let mut tx = client.transaction().map_err(map_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(map_err)?;
        for month in &missing {
            for table in TABLES {
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table}_{suffix} PARTITION OF {table}
                       FOR VALUES FROM ({start}) TO ({end})",
                    suffix = month.suffix(),
                    start = month.start(),
                    end = month.end(),
                ))
                .map_err(map_err)?;
            }
        }
        tx.commit().map_err(map_err)?;
        self.known.extend(missing);
        Ok(())
    }

    /// Forgets what is known (after a reconnect, or when cleanup dropped partitions).
    pub(super) fn forget(&mut self) {
        self.known.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_covers_exactly_its_utc_days() {
        let t: Timestamp = "2026-11-27T15:00:00Z".parse().unwrap();
        let m = Month::of(t.as_microsecond());
        assert_eq!(m.suffix(), "p202611");
        let start: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let end: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        assert_eq!(m.start(), start.as_microsecond());
        assert_eq!(m.end(), end.as_microsecond());
        assert_eq!(Month::of(m.end()), Month::of(m.end() + 1));
        assert_ne!(Month::of(m.end() - 1), Month::of(m.end()));
    }

    #[test]
    fn december_rolls_over_to_january_and_suffixes_read_back() {
        let t: Timestamp = "2025-12-31T23:59:59Z".parse().unwrap();
        let m = Month::of(t.as_microsecond());
        let jan: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(m.end(), jan.as_microsecond());
        assert_eq!(Month::parse_suffix(&m.suffix()), Some(m));
        assert_eq!(Month::parse_suffix("p202613"), None);
        assert_eq!(Month::parse_suffix("default"), None);
    }
}
