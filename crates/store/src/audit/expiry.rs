//! Expiry that keeps the log provable: a cleanup run removes the events whose retention has run
//! out, keeps for each what the tree needs (a tombstone: its seq and leaf hash, nothing
//! personal), and records itself as an event of the same log.
//!
//! ```text
//! 1. plan     the log's entries with expires_at < now, as seq ranges     Plan::of
//! 2. record   an `admin` event, durable, whose hashed metadata lists
//!             the ranges, the count, the cut-off and the retentions      Plan::record_in (sync)
//! 3. remove   in one transaction: a tombstone (seq, leaf, the record's
//!             seq) for every listed entry still expired, then the rows    Plan::remove
//! ```
//!
//! Why this order: the record is in the signed log before any row goes, so a crash between 2
//! and 3 leaves a record of ranges whose entries are all still there (harmless: an entry that is
//! there is verified as itself), and the next run removes them under a record of its own.
//! Never the other way round: a row is deleted only in the transaction that writes its
//! tombstone, and a tombstone only names a record that lists its seq.
//!
//! Held entries (see [`crate::hold`]) are left out of the plan: a legal hold outranks a
//! retention. [`Plan::survey`] says what a hold keeps, for `cleanup --dry-run`; the removal
//! checks the holds again, so a hold placed after the plan still keeps its events.
//!
//! What `verify` trusts: a tombstone stands in for its entry's leaf in the tree (so a
//! tombstone whose leaf does not fit is caught by the signed checkpoints' roots), and it counts
//! as **expired** only when the record it names is an intact entry of the log, after the
//! removed seq, whose hashed metadata lists that seq. A tombstone without such a record, or a
//! missing entry with no tombstone, stays a `missing_entry`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mcp_audit_core::{Action, AuditEvent, ComplianceEvent, Hash, RiskLevel};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::hold::Holds;
use crate::query::CleanupReport;
use crate::recorder::{Durability, Receipt, Recorder};
use crate::store::{Maintain, Read, Scrub};

/// Where this module logs: the path it had before the crate was split into folders, which log
/// filters name (`RUST_LOG`, the CLI's default filter).
const LOG_TARGET: &str = "mcp_audit_store::expiry";

/// Seqs `start..end` (half-open) of one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeqRange {
    pub start: u64,
    pub end: u64,
}

impl SeqRange {
    pub fn contains(&self, seq: u64) -> bool {
        self.start <= seq && seq < self.end
    }

    /// The ranges of consecutive seqs in `seqs` (sorted, without repeats).
    pub fn runs(seqs: impl IntoIterator<Item = u64>) -> Vec<SeqRange> {
        let mut out: Vec<SeqRange> = Vec::new();
        for seq in seqs {
            match out.last_mut() {
                Some(last) if last.end == seq => last.end = seq + 1,
                _ => out.push(SeqRange {
                    start: seq,
                    end: seq + 1,
                }),
            }
        }
        out
    }
}

/// An entry a cleanup would remove: its seq and the retention its metadata names (`None` when
/// it had only an `expires_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredEntry {
    pub seq: u64,
    pub retention: Option<String>,
}

/// What the tree keeps of an entry a cleanup removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub seq: u64,
    /// The removed entry's leaf hash, as it was stored.
    pub leaf_hash: Hash,
    /// The seq of the cleanup event that removed it.
    pub removed_by: u64,
}

/// One removal for [`Maintain::remove_expired`]: the entries of `ranges` whose `expires_at` is
/// still before `now`, under the cleanup event at seq `removed_by`.
#[derive(Debug, Clone, Copy)]
pub struct Removal<'a> {
    pub now: Timestamp,
    pub ranges: &'a [SeqRange],
    pub removed_by: u64,
}

/// The operation of a cleanup event; `verify` reads the record only from events of kind
/// `admin` with this operation.
pub const CLEANUP_OPERATION: &str = "DELETE expired_events";
/// The framework and event type of the compliance event that carries the record.
const FRAMEWORK: &str = "mcp-audit";
const EVENT_TYPE: &str = "retention_expiry";

/// What a cleanup run removed, as its event's hashed metadata holds it (the `details` of its
/// compliance event): what verify trusts, through the signed log, to call an entry expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupRecord {
    /// The cut-off: entries whose `expires_at` was before it.
    pub expired_before: Timestamp,
    /// How many entries the ranges hold.
    pub entries: u64,
    pub ranges: Vec<SeqRange>,
    /// The retentions the removed entries were recorded with (the rule each expired under),
    /// sorted; entries with only an `expires_at` add none.
    pub retentions: Vec<String>,
}

impl CleanupRecord {
    /// The cleanup event: `admin`, `DELETE`, kept forever (a record that expired would turn
    /// every entry it removed back into a missing one).
    pub fn to_event(&self) -> Result<AuditEvent, StoreError> {
        let details =
            serde_json::to_value(self).map_err(|e| StoreError::Database(e.to_string()))?;
        let event = AuditEvent::admin(
            Action::Delete,
            "expired_events",
            format!("{} before {}", self.entries, self.expired_before),
        )
        .retention("forever")
        .compliance_event(ComplianceEvent {
            framework: FRAMEWORK.into(),
            event_type: EVENT_TYPE.into(),
            risk_level: RiskLevel::Low,
            details: Some(details),
            mitigation: Vec::new(),
        })
        .build()?;
        debug_assert_eq!(event.operation, CLEANUP_OPERATION);
        Ok(event)
    }

    /// The record in an event's canonical metadata, if it is a cleanup event's.
    pub fn from_meta(meta: &str) -> Option<CleanupRecord> {
        #[derive(Deserialize)]
        struct Meta {
            kind: String,
            operation: String,
            #[serde(default)]
            compliance_events: Vec<Carrier>,
        }
        #[derive(Deserialize)]
        struct Carrier {
            framework: String,
            event_type: String,
            details: Option<serde_json::Value>,
        }
        let meta: Meta = serde_json::from_str(meta).ok()?;
        if meta.kind != "admin" || meta.operation != CLEANUP_OPERATION {
            return None;
        }
        let carrier = meta
            .compliance_events
            .into_iter()
            .find(|c| c.framework == FRAMEWORK && c.event_type == EVENT_TYPE)?;
        serde_json::from_value(carrier.details?).ok()
    }

    /// Whether the record lists `seq`.
    pub fn lists(&self, seq: u64) -> bool {
        let at = self.ranges.partition_point(|r| r.end <= seq);
        self.ranges.get(at).is_some_and(|r| r.contains(seq))
    }
}

/// The retention an event's canonical metadata names (`compliance.retention`), if any: the
/// rule its entry expired under.
pub(crate) fn retention_of(meta: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta {
        compliance: Option<Compliance>,
    }
    #[derive(Deserialize)]
    struct Compliance {
        retention: Option<String>,
    }
    serde_json::from_str::<Meta>(meta)
        .ok()?
        .compliance?
        .retention
}

/// What [`Plan::survey`] found: the run to make, if any, and what it leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    pub plan: Option<Plan>,
    /// The entries the run would remove, by the retention they were recorded with (a
    /// retention class's name, a duration, or `expires_at` for an entry that named none).
    pub by_retention: BTreeMap<String, u64>,
    /// The expired entries a legal hold keeps, by hold id.
    pub held: BTreeMap<String, u64>,
}

/// A cleanup run of one log, planned: what it will list and remove. Carried out in two steps,
/// each with its own handle on the log, because on PostgreSQL each must hold the log's writer
/// lock in turn: [`Plan::record_in`] through a recorder of the log (sync), which is then shut
/// down, and [`Plan::remove`] through a writer of the log opened after that. A removal that
/// cannot get the log (another writer took it in between) removes nothing; the record then
/// lists entries that are all still there, and the next run removes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    log_id: String,
    record: CleanupRecord,
}

impl Plan {
    /// The run that would remove the entries of `store`'s log expired before `now` and kept by
    /// no legal hold; `None` when there are none (nothing is recorded then).
    pub fn of(
        store: &mut (impl Maintain + Read + ?Sized),
        now: Timestamp,
    ) -> Result<Option<Plan>, StoreError> {
        Ok(Plan::survey(store, now)?.plan)
    }

    /// What a cleanup of `store`'s log at `now` would do: the plan, the expired entries by
    /// retention (class), and those a legal hold keeps. Changes nothing.
    pub fn survey(
        store: &mut (impl Maintain + Read + ?Sized),
        now: Timestamp,
    ) -> Result<Survey, StoreError> {
        let expired = store.expired_entries(now)?;
        let mut survey = Survey::default();
        if expired.is_empty() {
            return Ok(survey);
        }
        let log_id = store.log_id().to_string();
        let held = Holds::load(store)?.held_events(store, now, Some(&log_id))?;
        let held: BTreeMap<u64, String> = held.into_values().map(|h| (h.seq, h.hold)).collect();
        let mut due = Vec::with_capacity(expired.len());
        for entry in expired {
            match held.get(&entry.seq) {
                Some(hold) => *survey.held.entry(hold.clone()).or_default() += 1,
                None => {
                    let class = entry
                        .retention
                        .clone()
                        .unwrap_or_else(|| "expires_at".into());
                    *survey.by_retention.entry(class).or_default() += 1;
                    due.push(entry);
                }
            }
        }
        if due.is_empty() {
            return Ok(survey);
        }
        let ranges = SeqRange::runs(due.iter().map(|e| e.seq));
        let mut retentions: Vec<String> = due.into_iter().filter_map(|e| e.retention).collect();
        retentions.sort_unstable();
        retentions.dedup();
        survey.plan = Some(Plan {
            log_id,
            record: CleanupRecord {
                expired_before: now,
                entries: ranges.iter().map(|r| r.end - r.start).sum(),
                ranges,
                retentions,
            },
        });
        Ok(survey)
    }

    /// The log it cleans.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// What its event will say.
    pub fn record(&self) -> &CleanupRecord {
        &self.record
    }

    /// Records the run as an event of its log through `recorder` (which must write that log
    /// with `sync` durability, so that the record is durable before any row goes); returns the
    /// event's seq, which [`Plan::remove`] takes.
    pub fn record_in(&self, recorder: &Recorder) -> Result<u64, StoreError> {
        if recorder.log_id() != self.log_id {
            return Err(StoreError::Database(format!(
                "the cleanup of log `{}` must be recorded in that log, not in `{}`",
                self.log_id,
                recorder.log_id()
            )));
        }
        if recorder.durability() != Durability::Sync {
            return Err(StoreError::Database(
                "a cleanup run is recorded with `sync` durability: its record must be durable before any row goes".into(),
            ));
        }
        let receipt = recorder
            .record(self.record.to_event()?)
            .map_err(|e| StoreError::Database(format!("recording the cleanup run: {e}")))?;
        match receipt {
            Receipt::Durable { seq, .. } => Ok(seq),
            Receipt::Queued { .. } | Receipt::Skipped => Err(StoreError::Database(
                "the cleanup run was not recorded durably (does the audit level leave admin events out?): nothing was removed".into(),
            )),
        }
    }

    /// Removes the planned entries that are still expired through `store` (a writer of the
    /// same log), a tombstone each naming the run's event at seq `removed_by`.
    ///
    /// A legal hold placed since the plan was made is honoured: when it keeps any planned
    /// entry, nothing is removed (an error says which hold); the record then lists entries that
    /// are all still there, which `verify` accepts, and the next run plans around the hold.
    pub fn remove(
        &self,
        store: &mut (impl Maintain + Read + ?Sized),
        removed_by: u64,
    ) -> Result<CleanupReport, StoreError> {
        if store.log_id() != self.log_id {
            return Err(StoreError::Database(format!(
                "the cleanup of log `{}` can not remove entries of log `{}`",
                self.log_id,
                store.log_id()
            )));
        }
        let holds = Holds::load(store)?;
        let held = holds.held_events(store, Timestamp::now(), Some(&self.log_id))?;
        if let Some(kept) = held.values().find(|h| self.record.lists(h.seq)) {
            let hold = holds
                .get(&kept.hold)
                .map_or_else(|| kept.hold.clone(), ToString::to_string);
            return Err(StoreError::Database(format!(
                "entry {} became held since the cleanup was planned ({hold}): nothing was removed; run cleanup again",
                kept.seq
            )));
        }
        let report = store.remove_expired(&Removal {
            now: self.record.expired_before,
            ranges: &self.record.ranges,
            removed_by,
        })?;
        // The removed payloads' bytes leave the backend's files as an erasure's do, as far as
        // it can make them (see `Maintain::scrub`); where they may remain is said, not hidden.
        if report.events > 0
            && let Scrub::Pending(why) = store.scrub()?
        {
            tracing::warn!(target: LOG_TARGET, "after the cleanup of log `{}`: {why}", self.log_id);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_seqs() {
        let runs = SeqRange::runs([0, 1, 2, 5, 7, 8]);
        let pairs: Vec<(u64, u64)> = runs.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(pairs, [(0, 3), (5, 6), (7, 9)]);
    }

    #[test]
    fn a_record_reads_back_from_its_events_metadata_and_lists_exactly_its_seqs() {
        let record = CleanupRecord {
            expired_before: "2026-12-07T10:00:00Z".parse().unwrap(),
            entries: 4,
            ranges: SeqRange::runs([1, 2, 3, 9]),
            retentions: vec!["1s".into()],
        };
        let sealed = mcp_audit_core::seal(record.to_event().unwrap()).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        let read = CleanupRecord::from_meta(&meta).unwrap();
        assert_eq!(read, record);
        let listed: Vec<u64> = (0..12).filter(|&s| read.lists(s)).collect();
        assert_eq!(listed, [1, 2, 3, 9]);
    }

    #[test]
    fn any_other_event_is_no_record() {
        let event = AuditEvent::tool_execution(CLEANUP_OPERATION)
            .build()
            .unwrap();
        let sealed = mcp_audit_core::seal(event).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        assert_eq!(CleanupRecord::from_meta(&meta), None);
    }
}
