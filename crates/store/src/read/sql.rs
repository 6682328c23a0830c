//! Building the `WHERE` clause of a [`Filter`] once, for every backend: only the placeholder
//! syntax differs (`?1` in SQLite, `$1` in PostgreSQL). Column names are the events table's,
//! under the alias `e`.

use crate::query::{Filter, TimeBasis};

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Text(String),
    Int(i64),
}

/// A conjunction of conditions with their bound values, in placeholder order.
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) params: Vec<SqlValue>,
    placeholder: fn(usize) -> String,
}

impl Where {
    pub(crate) fn new(placeholder: fn(usize) -> String) -> Where {
        Where {
            clauses: Vec::new(),
            params: Vec::new(),
            placeholder,
        }
    }

    /// The conditions of `filter`.
    pub(crate) fn from_filter(filter: &Filter, placeholder: fn(usize) -> String) -> Where {
        let mut w = Where::new(placeholder);
        if !filter.kinds.is_empty() {
            let slots: Vec<String> = filter
                .kinds
                .iter()
                .map(|k| w.bind(SqlValue::Text(k.as_str().to_string())))
                .collect();
            w.clauses.push(format!("e.kind IN ({})", slots.join(", ")));
        }
        let text_columns = [
            (
                "e.action",
                filter.action.as_ref().map(|a| a.as_str().to_string()),
            ),
            ("e.operation", filter.operation.clone()),
            ("e.resource_type", filter.resource_type.clone()),
            ("e.resource_id", filter.resource_id.clone()),
            ("e.user_id", filter.user_id.clone()),
            ("e.session_id", filter.session_id.clone()),
            ("e.correlation_id", filter.correlation_id.clone()),
            ("e.server_name", filter.server_name.clone()),
            ("e.outcome", filter.outcome.map(|o| o.as_str().to_string())),
            (
                "e.classification",
                filter.classification.map(|c| c.as_str().to_string()),
            ),
            ("e.data_subject_id", filter.data_subject_id.clone()),
            // Only PostgreSQL's events have the column: the SQLite backend settles a log
            // filter before it builds a statement (see `SqliteStore::in_this_log`).
            ("e.log_id", filter.log_id.clone()),
        ];
        for (column, value) in text_columns {
            if let Some(v) = value {
                w.push(&format!("{column} = {{}}"), SqlValue::Text(v));
            }
        }
        // Written out, not bound: the partial index `events_review` (`WHERE requires_review`)
        // serves only a query whose condition the planner can see implies the index's, and a
        // placeholder hides the value from it (PostgreSQL's generic plans, SQLite always).
        match filter.requires_review {
            Some(true) => w.clauses.push("e.requires_review".to_string()),
            Some(false) => w.clauses.push("NOT e.requires_review".to_string()),
            None => {}
        }
        let time = match filter.time {
            TimeBasis::Stated => "e.ts",
            TimeBasis::Received => "e.received_at",
        };
        if let Some(since) = filter.since {
            w.push(
                &format!("{time} >= {{}}"),
                SqlValue::Int(since.as_microsecond()),
            );
        }
        if let Some(until) = filter.until {
            w.push(
                &format!("{time} < {{}}"),
                SqlValue::Int(until.as_microsecond()),
            );
        }
        if filter.skewed {
            // No index serves this: it is asked of a window, or of a log small enough to read.
            w.push(
                "abs(e.ts - e.received_at) > {}",
                SqlValue::Int(mcp_audit_core::MAX_CLOCK_SKEW.as_micros() as i64),
            );
        }
        let asks_for_pending = filter.outcome == Some(mcp_audit_core::Outcome::Pending);
        if !filter.include_pending && !asks_for_pending {
            w.clauses.push("e.outcome <> 'pending'".to_string());
        }
        w
    }

    /// Adds `condition`, whose one `{}` is replaced by the placeholder bound to `value`.
    pub(crate) fn push(&mut self, condition: &str, value: SqlValue) {
        let slot = self.bind(value);
        self.clauses.push(condition.replacen("{}", &slot, 1));
    }

    /// Adds a condition whose placeholders were bound with [`Where::bind`] (a row comparison,
    /// say, that needs several values).
    pub(crate) fn push_clause(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// Binds `value` and returns its placeholder.
    pub(crate) fn bind(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        (self.placeholder)(self.params.len())
    }

    /// `WHERE a AND b`, or nothing when there are no conditions.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(n: usize) -> String {
        format!("?{n}")
    }

    #[test]
    fn an_empty_filter_hides_only_pending_intents() {
        let w = Where::from_filter(&Filter::default(), sqlite);
        assert_eq!(w.sql(), "WHERE e.outcome <> 'pending'");
        assert!(w.params.is_empty());
    }

    #[test]
    fn a_window_bounds_the_time_it_is_asked_for() {
        let since: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut filter = Filter {
            since: Some(since),
            until: Some(since),
            include_pending: true,
            ..Filter::default()
        };
        let stated = Where::from_filter(&filter, sqlite);
        assert_eq!(stated.sql(), "WHERE e.ts >= ?1 AND e.ts < ?2");
        filter.time = TimeBasis::Received;
        filter.skewed = true;
        let received = Where::from_filter(&filter, sqlite);
        assert_eq!(
            received.sql(),
            "WHERE e.received_at >= ?1 AND e.received_at < ?2 AND abs(e.ts - e.received_at) > ?3"
        );
        assert_eq!(received.params[2], SqlValue::Int(300_000_000));
    }

    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let filter = Filter {
            user_id: Some("alice".into()),
            requires_review: Some(true),
            include_pending: true,
            since: Some(jiff::Timestamp::from_microsecond(5).unwrap()),
            ..Filter::default()
        };
        let w = Where::from_filter(&filter, |n| format!("${n}"));
        assert_eq!(
            w.sql(),
            "WHERE e.user_id = $1 AND e.requires_review AND e.ts >= $2"
        );
        assert_eq!(
            w.params,
            vec![SqlValue::Text("alice".into()), SqlValue::Int(5)]
        );
    }

    #[test]
    fn the_review_filter_is_written_out_for_the_partial_index() {
        let review = |r| {
            Where::from_filter(
                &Filter {
                    requires_review: Some(r),
                    include_pending: true,
                    ..Filter::default()
                },
                sqlite,
            )
        };
        assert_eq!(review(true).sql(), "WHERE e.requires_review");
        assert_eq!(review(false).sql(), "WHERE NOT e.requires_review");
        assert!(review(true).params.is_empty());
    }
}
