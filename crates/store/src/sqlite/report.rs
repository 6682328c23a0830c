//! Aggregates over events (summaries, per-tool statistics) and expiry cleanup.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mcp_audit_core::{EventKind, Outcome};
use rusqlite::params_from_iter;

use super::SqliteStore;
use super::read::placeholder;
use crate::error::StoreError;
use crate::query::{CleanupReport, Filter, Summary, SummaryScope, ToolStats};
use crate::sql::{SqlValue, Where};

pub(super) fn summary(
    store: &mut SqliteStore,
    scope: &SummaryScope,
) -> Result<Summary, StoreError> {
    let filter = match scope {
        SummaryScope::Session(s) => Filter {
            session_id: Some(s.clone()),
            ..Filter::default()
        },
        SummaryScope::User(u) => Filter {
            user_id: Some(u.clone()),
            ..Filter::default()
        },
        SummaryScope::Window { since, until } => Filter {
            since: *since,
            until: *until,
            ..Filter::default()
        },
    };
    let w = Where::from_filter(&filter, placeholder);
    let sql = format!(
        "SELECT e.kind, e.outcome, COUNT(*), MIN(e.ts), MAX(e.ts), SUM(e.requires_review)
           FROM events e {} GROUP BY e.kind, e.outcome",
        w.sql()
    );
    let rows: Vec<(String, String, i64, i64, i64, i64)> = store
        .conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(w.params.iter()), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(|e| store.map(e))?;

    let mut summary = Summary::default();
    for (kind, outcome, n, first, last, review) in rows {
        let n = n as u64;
        summary.total_operations += n;
        summary.requires_review += review as u64;
        *summary.by_outcome.entry(outcome).or_default() += n;
        let kind: EventKind = kind.parse()?;
        *summary.by_kind.entry(kind).or_default() += n;
        let first = Timestamp::from_microsecond(first).ok();
        let last = Timestamp::from_microsecond(last).ok();
        summary.first_activity = min_opt(summary.first_activity, first);
        summary.last_activity = max_opt(summary.last_activity, last);
    }
    let count = |k: EventKind| summary.by_kind.get(&k).copied().unwrap_or(0);
    summary.tool_executions = count(EventKind::ToolExecution);
    summary.resource_accesses = count(EventKind::ResourceAccess);
    summary.context_operations = count(EventKind::ContextOperation);
    summary.prompt_executions = count(EventKind::PromptExecution);
    summary.admin_actions = count(EventKind::Admin);

    let sql = format!("SELECT COUNT(DISTINCT e.user_id) FROM events e {}", w.sql());
    summary.distinct_users = store
        .conn
        .query_row(&sql, params_from_iter(w.params.iter()), |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| store.map(e))? as u64;
    Ok(summary)
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn tool_stats(
    store: &mut SqliteStore,
    filter: &Filter,
) -> Result<Vec<ToolStats>, StoreError> {
    let mut w = Where::from_filter(filter, placeholder);
    w.push(
        "e.kind = {}",
        SqlValue::Text(EventKind::ToolExecution.as_str().to_string()),
    );
    let sql = format!(
        "SELECT e.operation, e.outcome, e.duration_us FROM events e {}",
        w.sql()
    );
    let rows: Vec<(String, String, Option<i64>)> = store
        .conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(w.params.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(|e| store.map(e))?;

    struct Acc {
        calls: u64,
        errors: u64,
        durations: Vec<u64>,
    }
    let mut by_tool: BTreeMap<String, Acc> = BTreeMap::new();
    for (tool, outcome, duration) in rows {
        let acc = by_tool.entry(tool).or_insert(Acc {
            calls: 0,
            errors: 0,
            durations: Vec::new(),
        });
        acc.calls += 1;
        if outcome.parse::<Outcome>().is_ok_and(Outcome::is_error) {
            acc.errors += 1;
        }
        if let Some(d) = duration {
            acc.durations.push(d.max(0) as u64);
        }
    }
    let mut stats: Vec<ToolStats> = by_tool
        .into_iter()
        .map(|(tool, mut acc)| {
            acc.durations.sort_unstable();
            ToolStats {
                tool,
                calls: acc.calls,
                errors: acc.errors,
                error_rate: acc.errors as f64 / acc.calls as f64,
                p50_us: percentile(&acc.durations, 50),
                p95_us: percentile(&acc.durations, 95),
            }
        })
        .collect();
    stats.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.tool.cmp(&b.tool)));
    Ok(stats)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub(super) fn delete_expired(
    store: &mut SqliteStore,
    now: Timestamp,
    dry_run: bool,
) -> Result<CleanupReport, StoreError> {
    let now = now.as_microsecond();
    let expired = "SELECT seq FROM events WHERE expires_at IS NOT NULL AND expires_at < ?1";
    let path = store.path.clone();
    let map = |e| super::map_err_at(&path, e);
    let tx = store.conn.transaction().map_err(map)?;
    let count = |table: &str| -> Result<u64, rusqlite::Error> {
        tx.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE seq IN ({expired})"),
            [now],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
    };
    let report = CleanupReport {
        events: count("events").map_err(map)?,
        payloads: count("payloads").map_err(map)?,
        data_sources: count("data_sources").map_err(map)?,
        compliance_events: count("compliance_events").map_err(map)?,
        dry_run,
    };
    if !dry_run {
        // Children first, so that no lineage or compliance row outlives its event.
        for table in ["data_sources", "compliance_events", "payloads", "events"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE seq IN ({expired})"),
                [now],
            )
            .map_err(map)?;
        }
        tx.commit().map_err(map)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
