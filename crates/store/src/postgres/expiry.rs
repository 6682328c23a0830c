//! Expiry cleanup in PostgreSQL (see `crate::expiry`), for one log at a time (the store's own,
//! claimed by its writer's advisory lock, so that its cleanup event and its removal are the only
//! writes to it meanwhile).
//!
//! What keeps this correct: an event row goes only in the transaction that first copies its seq
//! and leaf into `expired_entries` under the cleanup event's seq; and a past month's partitions
//! are dropped whole only when every row left in them is one that this run removes (rows of
//! other logs whose cleanup has not run yet keep their month, and are deleted row by row later).

use jiff::Timestamp;
use mcp_audit_core::Hash;

use super::partitions::{Month, TABLES};
use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone, retention_of};
use crate::query::CleanupReport;

/// Counts what a cleanup at `now` would delete, in every log: one scan of the events, which also
/// works in a read-only session.
pub(super) fn count_expired(
    store: &mut PgStore,
    now: Timestamp,
) -> Result<CleanupReport, StoreError> {
    let now = now.as_microsecond();
    let counts = store
        .client()?
        .query_one(
            "WITH expired AS MATERIALIZED (
                 SELECT log_id, seq, ts FROM events
                  WHERE expires_at IS NOT NULL AND expires_at < $1)
             SELECT (SELECT COUNT(*) FROM expired),
                    (SELECT COUNT(*) FROM payloads WHERE (log_id, seq, ts) IN (SELECT * FROM expired)),
                    (SELECT COUNT(*) FROM data_sources WHERE (log_id, seq, ts) IN (SELECT * FROM expired)),
                    (SELECT COUNT(*) FROM compliance_events WHERE (log_id, seq, ts) IN (SELECT * FROM expired))",
            &[&now],
        )
        .map_err(map_err)?;
    Ok(CleanupReport {
        events: counts.get::<_, i64>(0) as u64,
        payloads: counts.get::<_, i64>(1) as u64,
        data_sources: counts.get::<_, i64>(2) as u64,
        compliance_events: counts.get::<_, i64>(3) as u64,
        dry_run: true,
    })
}

/// The logs that hold an event expired before `now`: those a cleanup must visit.
pub(super) fn logs_with_expired(
    store: &mut PgStore,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let rows = store
        .client()?
        .query(
            "SELECT DISTINCT log_id FROM events
              WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY log_id",
            &[&now.as_microsecond()],
        )
        .map_err(map_err)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) fn expired_entries(
    store: &mut PgStore,
    now: Timestamp,
) -> Result<Vec<ExpiredEntry>, StoreError> {
    let log_id = store.log_id.clone();
    let rows = store
        .client()?
        .query(
            "SELECT seq, meta FROM events
              WHERE log_id = $1 AND expires_at IS NOT NULL AND expires_at < $2 ORDER BY seq",
            &[&log_id, &now.as_microsecond()],
        )
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| ExpiredEntry {
            seq: r.get::<_, i64>(0) as u64,
            retention: retention_of(r.get(1)),
        })
        .collect())
}

pub(super) fn remove_expired(
    store: &mut PgStore,
    removal: &Removal<'_>,
) -> Result<CleanupReport, StoreError> {
    let log_id = store.log_id.clone();
    let now = removal.now.as_microsecond();
    let removed_by = removal.removed_by as i64;
    let mut tx = store.client()?.transaction().map_err(map_err)?;
    let keep = tx
        .prepare(
            "INSERT INTO expired_entries (log_id, seq, leaf_hash, removed_by)
             SELECT log_id, seq, leaf_hash, $4 FROM events
              WHERE log_id = $1 AND seq >= $2 AND seq < $3
                AND expires_at IS NOT NULL AND expires_at < $5
             ON CONFLICT (log_id, seq) DO NOTHING",
        )
        .map_err(map_err)?;
    // A tombstone already there for a row that is there too is no cleanup's: it is left as it
    // is, and so is the row (only this run's tombstones go below).
    for range in removal.ranges {
        tx.execute(
            &keep,
            &[
                &log_id,
                &(range.start as i64),
                &(range.end.min(i64::MAX as u64) as i64),
                &removed_by,
                &now,
            ],
        )
        .map_err(map_err)?;
    }
    // The keys of the rows to delete, gathered once (the events' partitions by `ts`).
    tx.execute(
        "CREATE TEMPORARY TABLE doomed ON COMMIT DROP AS
           SELECT e.log_id, e.seq, e.ts FROM events e
             JOIN expired_entries x ON x.log_id = e.log_id AND x.seq = e.seq
            WHERE x.log_id = $1 AND x.removed_by = $2",
        &[&log_id, &removed_by],
    )
    .map_err(map_err)?;
    const DOOMED: &str = "SELECT log_id, seq, ts FROM doomed";
    let counts = tx
        .query_one(
            &format!(
                "SELECT (SELECT COUNT(*) FROM doomed),
                        (SELECT COUNT(*) FROM payloads WHERE (log_id, seq, ts) IN ({DOOMED})),
                        (SELECT COUNT(*) FROM data_sources WHERE (log_id, seq, ts) IN ({DOOMED})),
                        (SELECT COUNT(*) FROM compliance_events WHERE (log_id, seq, ts) IN ({DOOMED}))"
            ),
            &[],
        )
        .map_err(map_err)?;
    let report = CleanupReport {
        events: counts.get::<_, i64>(0) as u64,
        payloads: counts.get::<_, i64>(1) as u64,
        data_sources: counts.get::<_, i64>(2) as u64,
        compliance_events: counts.get::<_, i64>(3) as u64,
        dry_run: false,
    };
    if report.events == 0 {
        tx.commit().map_err(map_err)?;
        return Ok(report);
    }
    // Ids are not partitioned: theirs go row by row, while the events still say which.
    tx.execute(
        &format!("DELETE FROM event_ids WHERE (log_id, seq, ts) IN ({DOOMED})"),
        &[],
    )
    .map_err(map_err)?;
    let dropped = drop_tombstoned_months(&mut tx, now)?;
    // Children first, so that no lineage or compliance row outlives its event.
    for table in TABLES {
        tx.execute(
            &format!("DELETE FROM {table} WHERE (log_id, seq, ts) IN ({DOOMED})"),
            &[],
        )
        .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    if dropped > 0 {
        tracing::info!(partitions = dropped, "dropped expired monthly partitions");
    }
    Ok(report)
}

/// Drops, whole, the partitions of every past month whose every row this run removes (the
/// `doomed` rows, each with this run's tombstone; earlier runs' rows, of this log or another,
/// are gone already): cheap, and the space is back at once. Returns how many months went.
fn drop_tombstoned_months(
    tx: &mut postgres::Transaction<'_>,
    now: i64,
) -> Result<usize, StoreError> {
    let partitions = tx
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .map_err(map_err)?;
    let mut dropped = 0usize;
    for row in partitions {
        let name: String = row.get(0);
        let Some(month) = name.strip_prefix("events_").and_then(Month::parse_suffix) else {
            continue;
        };
        if month.end() > now {
            continue;
        }
        let kept: i64 = tx
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM events_{} e
                      WHERE NOT EXISTS (SELECT 1 FROM doomed d
                                         WHERE d.log_id = e.log_id AND d.seq = e.seq)",
                    month.suffix()
                ),
                &[],
            )
            .map_err(map_err)?
            .get(0);
        if kept == 0 {
            for table in TABLES {
                tx.batch_execute(&format!("DROP TABLE {table}_{}", month.suffix()))
                    .map_err(map_err)?;
            }
            dropped += 1;
        }
    }
    Ok(dropped)
}

pub(super) fn tombstones(
    store: &mut PgStore,
    from: u64,
    to: u64,
) -> Result<Vec<Tombstone>, StoreError> {
    if !store.tombstones {
        return Ok(Vec::new());
    }
    let log_id = store.log_id.clone();
    let rows = store
        .client()?
        .query(
            "SELECT seq, leaf_hash, removed_by FROM expired_entries
              WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
            &[
                &log_id,
                &(from.min(i64::MAX as u64) as i64),
                &(to.min(i64::MAX as u64) as i64),
            ],
        )
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| Tombstone {
            seq: r.get::<_, i64>(0) as u64,
            leaf_hash: Hash::from_slice(r.get::<_, &[u8]>(1)).unwrap_or_default(),
            removed_by: r.get::<_, i64>(2) as u64,
        })
        .collect())
}

/// The leaf of every entry of this log in `from..to` as the tree sees it, in order: the
/// event's, or its tombstone's once it was removed (an event wins over a tombstone of the same
/// seq, which no cleanup makes).
pub(super) fn leaves(store: &mut PgStore, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
    let log_id = store.log_id.clone();
    let sql = if store.tombstones {
        "SELECT seq, leaf_hash, 0 AS tomb FROM events WHERE log_id = $1 AND seq >= $2 AND seq < $3
         UNION ALL
         SELECT seq, leaf_hash, 1 FROM expired_entries WHERE log_id = $1 AND seq >= $2 AND seq < $3
         ORDER BY 1, 3"
    } else {
        "SELECT seq, leaf_hash FROM events WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
    };
    let (from, to) = (
        from.min(i64::MAX as u64) as i64,
        to.min(i64::MAX as u64) as i64,
    );
    store.with_client(|c| {
        let rows = c.query(sql, &[&log_id, &from, &to]).map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            let seq: i64 = r.get(0);
            if last == Some(seq) {
                continue;
            }
            last = Some(seq);
            out.push(Hash::from_slice(r.get::<_, &[u8]>(1)).unwrap_or_default());
        }
        Ok(out)
    })
}
