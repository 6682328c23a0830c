//! Expiry cleanup in SQLite (see `crate::expiry`): the expired entries, their removal with a
//! tombstone each, and the tombstones as the tree reads them.
//!
//! What keeps this correct: an event row is deleted only by `remove_expired`, in the
//! transaction that first copies its seq and leaf into `expired_entries` under the cleanup
//! event's seq; the lookup keys and running totals follow in the same transaction.

use jiff::Timestamp;
use mcp_audit_core::Hash;

use super::{SqliteStore, map_err};
use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone, retention_of};
use crate::query::CleanupReport;

/// The events expired before `?1`.
const EXPIRED: &str = "SELECT seq FROM events WHERE expires_at IS NOT NULL AND expires_at < ?1";
/// The events the cleanup event at seq `?1` tombstoned.
const DOOMED: &str = "SELECT seq FROM expired_entries WHERE removed_by = ?1";

/// How many rows of each table hold the events of `set` (a statement of seqs with one
/// parameter, `param`).
fn counts(
    conn: &rusqlite::Connection,
    set: &str,
    param: i64,
    dry_run: bool,
) -> Result<CleanupReport, rusqlite::Error> {
    let count = |table: &str| -> Result<u64, rusqlite::Error> {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE seq IN ({set})"),
            [param],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
    };
    Ok(CleanupReport {
        events: count("events")?,
        payloads: count("payloads")?,
        data_sources: count("data_sources")?,
        compliance_events: count("compliance_events")?,
        dry_run,
    })
}

pub(super) fn count_expired(
    store: &mut SqliteStore,
    now: Timestamp,
) -> Result<CleanupReport, StoreError> {
    counts(&store.conn, EXPIRED, now.as_microsecond(), true).map_err(|e| store.map(e))
}

pub(super) fn expired_entries(
    store: &mut SqliteStore,
    now: Timestamp,
) -> Result<Vec<ExpiredEntry>, StoreError> {
    let mut stmt = store
        .conn
        .prepare(
            "SELECT seq, meta FROM events
              WHERE expires_at IS NOT NULL AND expires_at < ?1 ORDER BY seq",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([now.as_microsecond()], |r| {
            Ok(ExpiredEntry {
                seq: r.get::<_, i64>(0)? as u64,
                retention: retention_of(
                    &super::packed::owned_text(r.get_ref(1)?, 1)?.unwrap_or_default(),
                ),
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

pub(super) fn remove_expired(
    store: &mut SqliteStore,
    removal: &Removal<'_>,
) -> Result<CleanupReport, StoreError> {
    if !store.layout.tombstones {
        return Err(StoreError::Database(
            "this database's schema keeps no tombstones: open it for writing to migrate it".into(),
        ));
    }
    let now = removal.now.as_microsecond();
    let removed_by = removal.removed_by as i64;
    let path = store.path.clone();
    let layout = store.layout;
    let map = |e| super::map_err_at(&path, e);
    // The removed rows' bytes are overwritten, not left in free pages: an expired event's
    // personal data must leave the file as an erased one's does (`Plan::remove` then clears the
    // write-ahead log's copies through `Maintain::scrub`).
    store
        .conn
        .pragma_update(None, "secure_delete", true)
        .map_err(map)?;
    let removed = remove_rows(store, removal, now, removed_by, layout);
    let restored = store.conn.pragma_update(None, "secure_delete", false);
    let report = removed.map_err(map)?;
    restored.map_err(map)?;
    Ok(report)
}

/// The removal's one transaction: tombstones, then the rows, then the running totals counted
/// again.
fn remove_rows(
    store: &mut SqliteStore,
    removal: &Removal<'_>,
    now: i64,
    removed_by: i64,
    layout: super::Layout,
) -> Result<CleanupReport, rusqlite::Error> {
    let tx = store.conn.transaction()?;
    {
        let mut keep = tx.prepare(
            // A tombstone already there for a row that is there too is no cleanup's: it is
            // left as it is, and so is the row (only this run's tombstones go below).
            "INSERT OR IGNORE INTO expired_entries (seq, leaf_hash, removed_by)
                 SELECT seq, leaf_hash, ?3 FROM events
                  WHERE seq >= ?1 AND seq < ?2 AND expires_at IS NOT NULL AND expires_at < ?4",
        )?;
        for range in removal.ranges {
            keep.execute([range.start as i64, range.end as i64, removed_by, now])?;
        }
    }
    let report = counts(&tx, DOOMED, removed_by, false)?;
    // The sessions and users whose totals count a removed event: counted again below, once
    // their removed events and keys are gone.
    let touched = if layout.key_totals {
        super::totals::touched_by_expiry(&tx, removed_by)?
    } else {
        Vec::new()
    };
    // Children first, so that no lineage or compliance row outlives its event; the lookup
    // keys by their own primary key, from the events' columns.
    if layout.bulk_keys {
        tx.execute(
            &format!(
                "DELETE FROM event_keys WHERE (field, value, seq) IN (
                     SELECT 1, session_id, seq FROM events
                      WHERE seq IN ({DOOMED}) AND session_id IS NOT NULL
                     UNION ALL SELECT 2, user_id, seq FROM events
                      WHERE seq IN ({DOOMED}) AND user_id IS NOT NULL)"
            ),
            [removed_by],
        )?;
    }
    for table in ["data_sources", "compliance_events", "payloads", "events"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE seq IN ({DOOMED})"),
            [removed_by],
        )?;
    }
    super::totals::recount(&tx, &touched)?;
    tx.commit()?;
    Ok(report)
}

pub(super) fn tombstones(
    store: &mut SqliteStore,
    from: u64,
    to: u64,
) -> Result<Vec<Tombstone>, StoreError> {
    if !store.layout.tombstones {
        return Ok(Vec::new());
    }
    let mut stmt = store
        .conn
        .prepare_cached(
            "SELECT seq, leaf_hash, removed_by FROM expired_entries
              WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map(
            [
                from.min(i64::MAX as u64) as i64,
                to.min(i64::MAX as u64) as i64,
            ],
            |r| {
                Ok(Tombstone {
                    seq: r.get::<_, i64>(0)? as u64,
                    leaf_hash: r
                        .get_ref(1)?
                        .as_blob()
                        .ok()
                        .and_then(Hash::from_slice)
                        .unwrap_or_default(),
                    removed_by: r.get::<_, i64>(2)? as u64,
                })
            },
        )
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

/// The leaf of every entry of `from..to` as the tree sees it, in order: the event's, or its
/// tombstone's once it was removed (an event wins over a tombstone of the same seq, which no
/// cleanup makes).
pub(super) fn leaves(store: &mut SqliteStore, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
    let sql = if store.layout.tombstones {
        "SELECT seq, leaf_hash, 0 AS tomb FROM events WHERE seq >= ?1 AND seq < ?2
         UNION ALL SELECT seq, leaf_hash, 1 FROM expired_entries WHERE seq >= ?1 AND seq < ?2
         ORDER BY seq, tomb"
    } else {
        "SELECT seq, leaf_hash FROM events WHERE seq >= ?1 AND seq < ?2 ORDER BY seq"
    };
    let mut stmt = store.conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt
        .query([
            from.min(i64::MAX as u64) as i64,
            to.min(i64::MAX as u64) as i64,
        ])
        .map_err(map_err)?;
    let mut out = Vec::new();
    let mut last = None;
    while let Some(row) = rows.next().map_err(map_err)? {
        let seq = row.get::<_, i64>(0).map_err(map_err)?;
        if last == Some(seq) {
            continue;
        }
        last = Some(seq);
        let bytes = row.get_ref(1).map_err(map_err)?;
        out.push(
            bytes
                .as_blob()
                .ok()
                .and_then(Hash::from_slice)
                .unwrap_or_default(),
        );
    }
    Ok(out)
}
