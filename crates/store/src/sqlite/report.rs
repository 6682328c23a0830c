//! Aggregates over events (summaries, per-tool statistics).

use mcp_audit_core::pseudonym::IdentityField;
use rusqlite::params_from_iter;

use super::SqliteStore;
use super::read::placeholder;
use super::schema::LookupField;
use super::totals::summary_group;
use crate::error::StoreError;
use crate::query::{Filter, Summary, SummaryScope, ToolStats};
use crate::report::{SummaryGroup, ToolStatsBuilder, fold_summary, scope_filter, tool_executions};
use crate::sql::Where;

pub(super) fn summary(
    store: &mut SqliteStore,
    scope: &SummaryScope,
) -> Result<Summary, StoreError> {
    if store.layout.key_totals {
        let key = match scope {
            SummaryScope::Session(s) => Some((LookupField::Session, s)),
            SummaryScope::User(u) => Some((LookupField::User, u)),
            SummaryScope::Window { .. } => None,
        };
        if let Some((field, value)) = key {
            // A user's totals are kept by what the events hold: the identity (events from
            // before pseudonyms) and each of its pseudonyms.
            let mut values = vec![value.clone()];
            if field == LookupField::User && store.layout.pseudonyms {
                values.extend(
                    super::pseudonyms::links(&store.conn, Some(value))
                        .map_err(|e| store.map(e))?
                        .into_iter()
                        .filter(|l| l.field == IdentityField::User)
                        .map(|l| l.pseudonym),
                );
            }
            let mut all = Some(Vec::new());
            for value in &values {
                let groups = super::totals::summary_groups(&store.conn, field, value)
                    .map_err(|e| store.map(e))?;
                match (groups, all.as_mut()) {
                    (Some(groups), Some(all)) => all.extend(groups),
                    _ => all = None,
                }
            }
            // Without them (several users in a group), the events below tell.
            if let Some(groups) = all {
                return fold_summary(groups);
            }
        }
    }
    let filter = scope_filter(scope);
    let mut w = Where::from_filter(&filter, placeholder);
    if store.layout.bulk_keys {
        super::keys::restrict(&mut w, &filter, &store.conn).map_err(|e| store.map(e))?;
    }
    // One pass, grouped by user too (see `fold_summary`).
    let sql = format!(
        "SELECT e.kind, e.outcome, e.user_id, COUNT(*), MIN(e.ts), MAX(e.ts),
                SUM(e.requires_review)
           FROM events e {} GROUP BY e.kind, e.outcome, e.user_id",
        w.sql()
    );
    let groups: Vec<(Option<String>, SummaryGroup)> = store
        .conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(w.params.iter()), summary_group)?
                .collect()
        })
        .map_err(|e| store.map(e))?;
    fold_summary(groups)
}

pub(super) fn tool_stats(
    store: &mut SqliteStore,
    filter: &Filter,
) -> Result<Vec<ToolStats>, StoreError> {
    let mut w = tool_executions(filter, placeholder);
    if store.layout.bulk_keys {
        super::keys::restrict(&mut w, filter, &store.conn).map_err(|e| store.map(e))?;
    }
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
    let mut stats = ToolStatsBuilder::default();
    for (tool, outcome, duration) in rows {
        stats.add(tool, &outcome, 1, duration);
    }
    Ok(stats.finish())
}
