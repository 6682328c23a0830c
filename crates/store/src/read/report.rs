//! The backend-neutral half of summaries and per-tool statistics: which events a summary scope
//! covers, and how the grouped rows a backend reads become a [`Summary`] or [`ToolStats`]. The
//! backends differ only in the SQL that groups the rows, so that both give the same answer to
//! the same question (the same nearest-rank percentiles, the same first and last activity).

use std::collections::BTreeMap;

use jiff::Timestamp;
use mcp_audit_core::{EventKind, Outcome};

use crate::error::StoreError;
use crate::query::{Filter, Summary, SummaryScope, ToolStats};
use crate::sql::{SqlValue, Where};

/// The filter that selects the events of a summary's scope.
pub(crate) fn scope_filter(scope: &SummaryScope) -> Filter {
    match scope {
        SummaryScope::Session(s) => Filter {
            session_id: Some(s.clone()),
            ..Filter::default()
        },
        SummaryScope::User(u) => Filter {
            user_id: Some(u.clone()),
            ..Filter::default()
        },
        SummaryScope::Window { since, until, time } => Filter {
            since: *since,
            until: *until,
            time: *time,
            ..Filter::default()
        },
    }
}

/// The events of `filter` that tool statistics cover: its tool executions.
pub(crate) fn tool_executions(filter: &Filter, placeholder: fn(usize) -> String) -> Where {
    let mut w = Where::from_filter(filter, placeholder);
    w.push(
        "e.kind = {}",
        SqlValue::Text(EventKind::ToolExecution.as_str().to_string()),
    );
    w
}

/// One group of a summary's `GROUP BY kind, outcome, user`, as a backend read it (the user
/// travels beside it, see [`fold_summary`]).
pub(crate) struct SummaryGroup {
    pub(crate) kind: String,
    pub(crate) outcome: String,
    pub(crate) count: u64,
    /// How many of the group's events require review.
    pub(crate) review: u64,
    /// The group's earliest and latest event time, microseconds since the epoch.
    pub(crate) first_us: i64,
    pub(crate) last_us: i64,
}

/// Folds the rows of a summary's one statement, grouped by kind, outcome and user (the user
/// column beside each group), into a [`Summary`]: the distinct users are the distinct users of
/// the groups. One statement reads the scope's events once; counting the users apart read them
/// all a second time.
pub(crate) fn fold_summary(
    groups: impl IntoIterator<Item = (Option<String>, SummaryGroup)>,
) -> Result<Summary, StoreError> {
    let mut summary = Summary::default();
    let mut users = std::collections::HashSet::new();
    for (user, g) in groups {
        if let Some(user) = &user {
            *summary.by_user.entry(user.clone()).or_default() += g.count;
        }
        users.extend(user);
        summary.total_operations += g.count;
        summary.requires_review += g.review;
        *summary.by_outcome.entry(g.outcome).or_default() += g.count;
        let kind: EventKind = g.kind.parse()?;
        *summary.by_kind.entry(kind).or_default() += g.count;
        let first = Timestamp::from_microsecond(g.first_us).ok();
        let last = Timestamp::from_microsecond(g.last_us).ok();
        summary.first_activity = pick(summary.first_activity, first, Ord::min);
        summary.last_activity = pick(summary.last_activity, last, Ord::max);
    }
    let count = |k: EventKind| summary.by_kind.get(&k).copied().unwrap_or(0);
    summary.tool_executions = count(EventKind::ToolExecution);
    summary.resource_accesses = count(EventKind::ResourceAccess);
    summary.context_operations = count(EventKind::ContextOperation);
    summary.prompt_executions = count(EventKind::PromptExecution);
    summary.admin_actions = count(EventKind::Admin);
    summary.distinct_users = users.len() as u64;
    Ok(summary)
}

/// `f` of both times when both are known, else whichever is.
fn pick(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    f: fn(Timestamp, Timestamp) -> Timestamp,
) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// Per-tool statistics gathered from rows of any grain (SQLite reads one row per event,
/// PostgreSQL one per tool and outcome with the durations aggregated).
#[derive(Default)]
pub(crate) struct ToolStatsBuilder {
    by_tool: BTreeMap<String, ToolAcc>,
}

#[derive(Default)]
struct ToolAcc {
    calls: u64,
    errors: u64,
    durations: Vec<u64>,
}

impl ToolStatsBuilder {
    /// Counts `calls` calls of `tool` that ended in `outcome`, with the durations (in
    /// microseconds) of those that recorded one.
    pub(crate) fn add(
        &mut self,
        tool: String,
        outcome: &str,
        calls: u64,
        durations: impl IntoIterator<Item = i64>,
    ) {
        let acc = self.by_tool.entry(tool).or_default();
        acc.calls += calls;
        if outcome.parse::<Outcome>().is_ok_and(Outcome::is_error) {
            acc.errors += calls;
        }
        acc.durations
            .extend(durations.into_iter().map(|d| d.max(0) as u64));
    }

    /// The statistics, most called tool first (ties by name).
    pub(crate) fn finish(self) -> Vec<ToolStats> {
        let mut stats: Vec<ToolStats> = self
            .by_tool
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
        stats
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
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
