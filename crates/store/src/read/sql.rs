//! Building the `WHERE` clause of a [`Filter`] once, for every backend: only the placeholder
//! syntax differs (`?1` in SQLite, `$1` in PostgreSQL). Column names are the events table's,
//! under the alias `e`.

use mcp_audit_core::pseudonym::{IdentityField, Link};

use crate::query::{Filter, TimeBasis};
use crate::search::TextSearch;

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
        Where::build(filter, placeholder, None)
    }

    /// The conditions of `filter`, its user and data subject matched against the values
    /// `pseudonyms` (the mapping's rows for them, read just before) gives, written out:
    /// `e.user_id = $1` when there are none. PostgreSQL plans that with the value's own
    /// statistics and walks `events_user` newest first, stopping when a page is full; behind
    /// the sub-select of [`crate::reveal::values_of`] it reads and sorts every event of the
    /// user before the first row (and guesses an average user, which a proxy per user is not).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn from_filter_with_pseudonyms(
        filter: &Filter,
        placeholder: fn(usize) -> String,
        pseudonyms: &[Link],
    ) -> Where {
        Where::build(filter, placeholder, Some(pseudonyms))
    }

    fn build(
        filter: &Filter,
        placeholder: fn(usize) -> String,
        pseudonyms: Option<&[Link]>,
    ) -> Where {
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
            ("e.session_id", filter.session_id.clone()),
            ("e.correlation_id", filter.correlation_id.clone()),
            ("e.server_name", filter.server_name.clone()),
            ("e.outcome", filter.outcome.map(|o| o.as_str().to_string())),
            (
                "e.classification",
                filter.classification.map(|c| c.as_str().to_string()),
            ),
            // Only PostgreSQL's events have the column: the SQLite backend settles a log
            // filter before it builds a statement (see `SqliteStore::in_this_log`).
            ("e.log_id", filter.log_id.clone()),
        ];
        for (column, value) in text_columns {
            if let Some(v) = value {
                w.push(&format!("{column} = {{}}"), SqlValue::Text(v));
            }
        }
        // A person's identifier matches the events that hold it and those that hold one of its
        // pseudonyms (see `reveal`).
        for (column, value, field) in [
            ("e.user_id", &filter.user_id, IdentityField::User),
            (
                "e.data_subject_id",
                &filter.data_subject_id,
                IdentityField::Subject,
            ),
        ] {
            let Some(v) = value else { continue };
            let slot = w.bind(SqlValue::Text(v.clone()));
            match pseudonyms {
                None => w.clauses.push(format!(
                    "{column} IN {}",
                    crate::reveal::values_of(&slot, field)
                )),
                Some(links) => {
                    let mut slots = vec![slot];
                    for link in links
                        .iter()
                        .filter(|l| l.field == field && l.identity == *v)
                    {
                        slots.push(w.bind(SqlValue::Text(link.pseudonym.clone())));
                    }
                    w.clauses.push(match slots.as_slice() {
                        [one] => format!("{column} = {one}"),
                        all => format!("{column} IN ({})", all.join(", ")),
                    });
                }
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
        if let Some(search) = &filter.search {
            search_condition(&mut w, search);
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

/// The one condition whose SQL differs between the backends by more than its placeholders:
/// the payload's text index. Which backend a builder writes for shows in its placeholders
/// (`$n` is PostgreSQL's), so that every caller of [`Where::from_filter`] stays as it was.
///
/// - SQLite: `payload_text` is an FTS5 index over `payloads.body` whose rowid is the seq,
///   written behind the writer; `temp.payload_tail`, the reader's copy of the payloads past
///   it, filled in the same transaction (see `sqlite::text_tail`), holds the rest; the words
///   go in as one quoted phrase (see `crate::search`).
/// - PostgreSQL: `mcp_audit_search_doc(body)` is the expression its GIN index is built on,
///   written here exactly as in the migration so that the planner uses the index; its
///   `mcp_audit_search_query` makes the phrase query of the words.
fn search_condition(w: &mut Where, search: &TextSearch) {
    if (w.placeholder)(1).starts_with('$') {
        w.push(
            "EXISTS (SELECT 1 FROM payloads s
                      WHERE s.log_id = e.log_id AND s.seq = e.seq AND s.ts = e.ts
                        AND mcp_audit_search_doc(s.body) @@ mcp_audit_search_query({}))",
            SqlValue::Text(search.words().to_string()),
        );
    } else {
        let phrase = w.bind(SqlValue::Text(search.fts5_phrase()));
        w.push_clause(format!(
            "e.seq IN (SELECT rowid FROM payload_text WHERE payload_text MATCH {phrase}
                       UNION ALL
                       SELECT rowid FROM payload_tail WHERE payload_tail MATCH {phrase})"
        ));
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
            "WHERE e.user_id IN (SELECT $1 UNION ALL SELECT pseudonym FROM pseudonyms \
               WHERE identity = $1 AND field = 'user') AND e.requires_review AND e.ts >= $2"
        );
        assert_eq!(
            w.params,
            vec![SqlValue::Text("alice".into()), SqlValue::Int(5)]
        );
    }

    #[test]
    fn a_user_with_its_pseudonyms_read_is_matched_by_those_values_alone() {
        let link = |pseudonym: &str, field, identity: &str| Link {
            pseudonym: pseudonym.into(),
            field,
            identity: identity.into(),
        };
        let filter = Filter {
            user_id: Some("alice".into()),
            data_subject_id: Some("bob".into()),
            include_pending: true,
            ..Filter::default()
        };
        // No pseudonym: one value, which the planner can look up in its statistics.
        let plain = Where::from_filter_with_pseudonyms(&filter, |n| format!("${n}"), &[]);
        assert_eq!(
            plain.sql(),
            "WHERE e.user_id = $1 AND e.data_subject_id = $2"
        );
        // Only alice's user pseudonyms count for the user, only bob's subject ones for him.
        let links = [
            link("pn:1", IdentityField::User, "alice"),
            link("pn:2", IdentityField::Subject, "alice"),
            link("pn:3", IdentityField::User, "carol"),
            link("pn:4", IdentityField::Subject, "bob"),
            link("pn:5", IdentityField::User, "alice"),
        ];
        let mapped = Where::from_filter_with_pseudonyms(&filter, |n| format!("${n}"), &links);
        assert_eq!(
            mapped.sql(),
            "WHERE e.user_id IN ($1, $2, $3) AND e.data_subject_id IN ($4, $5)"
        );
        let text = |v: &str| SqlValue::Text(v.into());
        assert_eq!(
            mapped.params,
            vec![
                text("alice"),
                text("pn:1"),
                text("pn:5"),
                text("bob"),
                text("pn:4")
            ]
        );
    }

    #[test]
    fn a_search_is_one_bound_phrase_on_either_backend() {
        let filter = Filter {
            search: Some(TextSearch::new("x\" OR NEAR(y").unwrap()),
            include_pending: true,
            ..Filter::default()
        };
        let lite = Where::from_filter(&filter, sqlite);
        assert_eq!(
            lite.sql(),
            "WHERE e.seq IN (SELECT rowid FROM payload_text WHERE payload_text MATCH ?1
                       UNION ALL
                       SELECT rowid FROM payload_tail WHERE payload_tail MATCH ?1)"
        );
        assert_eq!(lite.params, vec![SqlValue::Text("\"x or near y\"".into())]);
        let pg = Where::from_filter(&filter, |n| format!("${n}"));
        assert!(
            pg.sql().contains("mcp_audit_search_query($1)"),
            "{}",
            pg.sql()
        );
        assert_eq!(pg.params, vec![SqlValue::Text("x or near y".into())]);
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
