//! Aggregates over events (summaries, per-tool statistics) and expiry cleanup, which drops whole
//! monthly partitions where every event has expired and deletes row by row elsewhere.

use jiff::Timestamp;

use super::partitions::{Month, TABLES};
use super::read::{params, placeholder};
use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::query::{CleanupReport, Filter, Summary, SummaryScope, ToolStats};
use crate::report::{SummaryGroup, ToolStatsBuilder, fold_summary, scope_filter, tool_executions};
use crate::sql::Where;

pub(super) fn summary(store: &mut PgStore, scope: &SummaryScope) -> Result<Summary, StoreError> {
    let w = Where::from_filter(&scope_filter(scope), placeholder);
    // One pass, grouped by user too (see `fold_summary`).
    let sql = format!(
        "SELECT e.kind, e.outcome, e.user_id, COUNT(*), MIN(e.ts), MAX(e.ts),
                COUNT(*) FILTER (WHERE e.requires_review)
           FROM events e {} GROUP BY e.kind, e.outcome, e.user_id",
        w.sql()
    );
    let rows = store
        .client()?
        .query(&sql, &params(&w.params))
        .map_err(map_err)?;
    fold_summary(rows.iter().map(|row| {
        (
            row.get(2),
            SummaryGroup {
                kind: row.get(0),
                outcome: row.get(1),
                count: row.get::<_, i64>(3) as u64,
                first_us: row.get(4),
                last_us: row.get(5),
                review: row.get::<_, i64>(6) as u64,
            },
        )
    }))
}

pub(super) fn tool_stats(
    store: &mut PgStore,
    filter: &Filter,
) -> Result<Vec<ToolStats>, StoreError> {
    let w = tool_executions(filter, placeholder);
    // Grouped in the server (one row per tool and outcome), durations sorted there too; the
    // percentiles are computed here, with the same nearest-rank rule as the SQLite backend.
    let sql = format!(
        "SELECT e.operation, e.outcome, COUNT(*),
                COALESCE(array_agg(e.duration_us ORDER BY e.duration_us)
                         FILTER (WHERE e.duration_us IS NOT NULL), '{{}}')
           FROM events e {} GROUP BY e.operation, e.outcome",
        w.sql()
    );
    let rows = store
        .client()?
        .query(&sql, &params(&w.params))
        .map_err(map_err)?;
    let mut stats = ToolStatsBuilder::default();
    for row in rows {
        let outcome: String = row.get(1);
        let durations: Vec<i64> = row.get(3);
        stats.add(row.get(0), &outcome, row.get::<_, i64>(2) as u64, durations);
    }
    Ok(stats.finish())
}

/// The keys of the expired events, gathered once per cleanup into a temporary table (one
/// scan of the events; there is no index on `expires_at`).
const EXPIRED: &str = "SELECT log_id, seq, ts FROM expired";

pub(super) fn delete_expired(
    store: &mut PgStore,
    now: Timestamp,
    dry_run: bool,
) -> Result<CleanupReport, StoreError> {
    let now = now.as_microsecond();
    let client = store.client()?;
    let mut tx = client.transaction().map_err(map_err)?;
    // Counted in one statement (one scan of the events), which also works in a read-only
    // session for a dry run.
    let counts = tx
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
    let report = CleanupReport {
        events: counts.get::<_, i64>(0) as u64,
        payloads: counts.get::<_, i64>(1) as u64,
        data_sources: counts.get::<_, i64>(2) as u64,
        compliance_events: counts.get::<_, i64>(3) as u64,
        dry_run,
    };
    if dry_run || report.events == 0 {
        return Ok(report);
    }
    tx.execute(
        "CREATE TEMPORARY TABLE expired ON COMMIT DROP AS
           SELECT log_id, seq, ts FROM events WHERE expires_at IS NOT NULL AND expires_at < $1",
        &[&now],
    )
    .map_err(map_err)?;
    // Ids are not partitioned: theirs go row by row, while the events still say which.
    tx.execute(
        &format!("DELETE FROM event_ids WHERE (log_id, seq, ts) IN ({EXPIRED})"),
        &[],
    )
    .map_err(map_err)?;
    // Then whole months: a past month whose every event has expired loses its partitions
    // (cheap, and gives the space back at once); what remains is deleted row by row.
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
                    "SELECT COUNT(*) FROM events_{} WHERE expires_at IS NULL OR expires_at >= $1",
                    month.suffix()
                ),
                &[&now],
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
    // Children first, so that no lineage or compliance row outlives its event.
    for table in TABLES {
        tx.execute(
            &format!("DELETE FROM {table} WHERE (log_id, seq, ts) IN ({EXPIRED})"),
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
