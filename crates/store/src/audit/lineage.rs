//! `verify`'s check of the lineage and compliance rows: the `data_sources` and
//! `compliance_events` tables are copies of two lists in the hashed metadata, written beside the
//! event for lineage queries, so an edited, added or deleted row must be a finding like an
//! edited column copy.
//!
//! What keeps this cheap: whether an entry's metadata has such lists is noted by the column
//! check's one reading of it (the lists themselves are skipped there); for each entry that has
//! them, and for each seq that has such rows, one keyed hash per table (SipHash under the run's random key, so that no edit
//! can be made to collide) of the rows as the writers make them; only those hashes are kept
//! (16 bytes per entry that has lineage), and the two sets are compared by seq.

use std::collections::BTreeMap;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};

use mcp_audit_core::{ComplianceEvent, DataSource};

use crate::columns;
use crate::error::StoreError;
use crate::integrity::Finding;
use crate::store::Audit;

/// Which child table a row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineageTable {
    /// `data_sources`: uri, source_type, identifier, transformation, destination, direction,
    /// metadata.
    DataSources,
    /// `compliance_events`: framework, event_type, risk_level, details, mitigation.
    ComplianceEvents,
}

impl LineageTable {
    /// The table's name, as findings name it.
    pub fn name(self) -> &'static str {
        match self {
            LineageTable::DataSources => "data_sources",
            LineageTable::ComplianceEvents => "compliance_events",
        }
    }

    /// Which of the table's columns (after seq and ordinal) hold JSON text: compared as JSON
    /// values, so that the key order a JSON library writes does not matter.
    fn is_json(self, column: usize) -> bool {
        match self {
            LineageTable::DataSources => column == 6,
            LineageTable::ComplianceEvents => column >= 3,
        }
    }
}

/// One row of a child table as stored, borrowed from the backend's row.
#[derive(Debug, Clone, Copy)]
pub struct LineageRow<'a> {
    pub seq: u64,
    pub table: LineageTable,
    pub ordinal: i64,
    /// The columns after seq and ordinal, in the order [`LineageTable`] lists them; `None`
    /// for NULL.
    pub values: &'a [Option<&'a [u8]>],
    /// A column holds a value of a type no writer gives it (SQLite keeps any): an edit.
    pub malformed: bool,
}

/// The hashes of one range's lineage, by seq and table.
pub(crate) type LineageHashes = BTreeMap<(u64, LineageTable), u64>;

/// Whether `meta` may list data sources or compliance events, for metadata the column check
/// did not read (an entry whose leaf is wrong): a substring search, not the usual way because
/// it costs 0.3 to 0.6 µs for a 600-byte metadata (measured, optimised build, loaded host),
/// where all of `verify` spends about 2 µs per entry and thread.
pub(crate) fn mentioned(meta: &str) -> bool {
    meta.contains("\"data_sources\"") || meta.contains("\"compliance_events\"")
}

/// Adds the hashes of the rows the writers made from the metadata `meta` of entry `seq`: for
/// entries whose metadata lists data sources or compliance events (`verify` knows which from
/// its column check's reading of the metadata, see `indexed::Indexed::has_lineage`).
pub(crate) fn expect(state: &RandomState, seq: u64, meta: &str, out: &mut LineageHashes) {
    #[derive(serde::Deserialize)]
    struct Lists {
        #[serde(default)]
        data_sources: Vec<DataSource>,
        #[serde(default)]
        compliance_events: Vec<ComplianceEvent>,
    }
    // Metadata that does not parse is the column check's finding; here it expects no rows.
    let Ok(lists) = serde_json::from_str::<Lists>(meta) else {
        return;
    };
    for (ordinal, s) in lists.data_sources.iter().enumerate() {
        let metadata = s.metadata.as_ref().map(|m| m.to_string());
        let values = [
            Some(s.uri.as_bytes()),
            s.source_type.as_deref().map(str::as_bytes),
            s.identifier.as_deref().map(str::as_bytes),
            s.transformation.as_deref().map(str::as_bytes),
            s.destination.as_deref().map(str::as_bytes),
            Some(columns::direction(s.direction).as_bytes()),
            metadata.as_deref().map(str::as_bytes),
        ];
        add(
            state,
            seq,
            LineageTable::DataSources,
            ordinal as i64,
            &values,
            false,
            out,
        );
    }
    for (ordinal, c) in lists.compliance_events.iter().enumerate() {
        let details = c.details.as_ref().map(|d| d.to_string());
        let mitigation = columns::mitigation(c);
        let values = [
            Some(c.framework.as_bytes()),
            Some(c.event_type.as_bytes()),
            Some(columns::risk(c.risk_level).as_bytes()),
            details.as_deref().map(str::as_bytes),
            mitigation.as_deref().map(str::as_bytes),
        ];
        add(
            state,
            seq,
            LineageTable::ComplianceEvents,
            ordinal as i64,
            &values,
            false,
            out,
        );
    }
}

/// The hashes of the rows the store holds for seqs `from..to`.
pub(crate) fn stored(
    store: &mut (impl Audit + ?Sized),
    state: &RandomState,
    from: u64,
    to: u64,
) -> Result<LineageHashes, StoreError> {
    let mut out = LineageHashes::new();
    store.scan_lineage(from, to, &mut |row| {
        add(
            state,
            row.seq,
            row.table,
            row.ordinal,
            row.values,
            row.malformed,
            &mut out,
        );
        Ok(())
    })?;
    Ok(out)
}

/// A finding for each seq whose rows differ from what its metadata gives (in either table,
/// either way: a row edited, added or deleted).
pub(crate) fn compare(expected: &LineageHashes, stored: &LineageHashes) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut note = |&(seq, table): &(u64, LineageTable)| {
        findings.push(Finding::ModifiedLineage {
            seq,
            table: table.name(),
        })
    };
    for (key, hash) in expected {
        if stored.get(key) != Some(hash) {
            note(key);
        }
    }
    for key in stored.keys() {
        if !expected.contains_key(key) {
            note(key);
        }
    }
    findings
}

/// Folds one row into its seq's and table's hash: the running hash, the ordinal, then each
/// column with a tag (NULL, text, JSON as its canonical form, or a JSON text that does not
/// parse) and its length, so that no two different rows encode alike.
fn add(
    state: &RandomState,
    seq: u64,
    table: LineageTable,
    ordinal: i64,
    values: &[Option<&[u8]>],
    malformed: bool,
    out: &mut LineageHashes,
) {
    let slot = out.entry((seq, table)).or_insert(0);
    let mut h: DefaultHasher = state.build_hasher();
    h.write_u64(*slot);
    h.write_i64(ordinal);
    h.write_u8(u8::from(malformed));
    h.write_u64(values.len() as u64);
    for (column, value) in values.iter().enumerate() {
        match value {
            None => h.write_u8(0),
            Some(bytes) if table.is_json(column) => match canonical_json(bytes) {
                Some(canonical) => {
                    h.write_u8(2);
                    h.write_u64(canonical.len() as u64);
                    h.write(&canonical);
                }
                None => {
                    h.write_u8(3);
                    h.write_u64(bytes.len() as u64);
                    h.write(bytes);
                }
            },
            Some(bytes) => {
                h.write_u8(1);
                h.write_u64(bytes.len() as u64);
                h.write(bytes);
            }
        }
    }
    *slot = h.finish();
}

/// A JSON column's text in canonical form, or `None` when it is not JSON.
fn canonical_json(bytes: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    mcp_audit_core::seal::canonical(&value).ok()
}
