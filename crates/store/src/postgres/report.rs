//! Aggregates over events (summaries, per-tool statistics).

use super::read::{params, placeholder};
use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::query::{Filter, Summary, SummaryScope, ToolStats};
use crate::report::{SummaryGroup, ToolStatsBuilder, fold_summary, scope_filter, tool_executions};
use crate::sql::Where;

pub(super) fn summary(
    store: &mut PgStore,
    scope: &SummaryScope,
    log_id: Option<&str>,
) -> Result<Summary, StoreError> {
    let filter = Filter {
        log_id: log_id.map(str::to_string),
        ..scope_filter(scope)
    };
    let w = Where::from_filter(&filter, placeholder);
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
