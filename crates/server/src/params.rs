//! Query strings as the API reads them: the filters of `mcp-audit query` under the same names
//! as its flags (`kind`, `tool`, `user`, `session`, `correlation`, `server`, `outcome`,
//! `classification`, `review`, `subject`, `log`, `since`, `until`, ...), paging, and nothing else.
//!
//! Strict on purpose: an unknown or repeated field, or a value that does not parse, is a 400
//! that names it, never silently ignored (a typo in a filter must not widen an export).

use std::collections::HashMap;

use jiff::Timestamp;
use mcp_audit_store::{Cursor, Filter, PageStart, TextSearch, TimeBasis};

use crate::error::ApiError;
use crate::time::parse_time_at;

/// The most events one page returns; a larger `limit` is brought down to it, and the page says
/// so (`limit` in the answer).
pub const MAX_LIMIT: u32 = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// The full-text search field: `q=customer-123`.
pub const SEARCH_FIELD: &str = "q";

/// The fields of a query string, each at most once (`kind` may repeat).
pub struct Params {
    single: HashMap<String, String>,
    kinds: Vec<String>,
}

/// The filter fields, shared by every endpoint that takes a filter.
const FILTER_FIELDS: [&str; 20] = [
    "kind",
    "action",
    "tool",
    "operation",
    "resource_type",
    "resource_id",
    "user",
    "session",
    "correlation",
    "server",
    "outcome",
    "classification",
    "review",
    "subject",
    "log",
    "since",
    "until",
    "time",
    "skewed",
    "include_pending",
];

impl Params {
    /// Parses `query`, refusing any field that is not in `allowed` (plus the filter fields when
    /// `filters`) and any field but `kind` given twice.
    pub fn parse(query: Option<&str>, filters: bool, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut params = Params {
            single: HashMap::new(),
            kinds: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let known = allowed.contains(&key.as_ref())
                || (filters && FILTER_FIELDS.contains(&key.as_ref()));
            if !known {
                let mut fields: Vec<&str> = allowed.to_vec();
                if filters {
                    fields.extend(FILTER_FIELDS);
                }
                return Err(ApiError::bad_request(format!(
                    "unknown query field `{key}` (this endpoint takes: {})",
                    if fields.is_empty() {
                        "none".to_string()
                    } else {
                        fields.join(", ")
                    }
                )));
            }
            if key == "kind" {
                params.kinds.push(value.into_owned());
            } else if params
                .single
                .insert(key.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::bad_request(format!(
                    "query field `{key}` is given twice"
                )));
            }
        }
        Ok(params)
    }

    /// The fields as a query string again (sorted, so that the same filter reads the same),
    /// for a record of what a read asked for.
    pub fn described(&self) -> String {
        let mut fields: Vec<(&str, &str)> = self
            .single
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.kinds.iter().map(|k| ("kind", k.as_str())))
            .collect();
        fields.sort();
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.extend_pairs(fields);
        out.finish()
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        self.single.get(key).map(String::as_str)
    }

    fn parsed<T>(&self, key: &str, what: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.text(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ApiError::bad_request(format!("`{key}={v}` is not {what}: {e}")))
            })
            .transpose()
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.text(key)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::bad_request(format!(
                    "`{key}={v}` is not true or false"
                ))),
            })
            .transpose()
    }

    pub fn time(&self, key: &str) -> Result<Option<Timestamp>, ApiError> {
        self.text(key)
            .map(|v| parse_time_at(v, Timestamp::now()).map_err(ApiError::bad_request))
            .transpose()
    }

    /// Which time `since` and `until` bound (`time=stated|received`, stated by default).
    pub fn time_basis(&self) -> Result<TimeBasis, ApiError> {
        Ok(self
            .parsed("time", "stated or received")?
            .unwrap_or_default())
    }

    /// The filter, as `query`'s flags of the same names give it.
    pub fn filter(&self) -> Result<Filter, ApiError> {
        if self.text("tool").is_some() && self.text("operation").is_some() {
            return Err(ApiError::bad_request(
                "`tool` and `operation` are one filter: give one",
            ));
        }
        let kinds = self
            .kinds
            .iter()
            .map(|k| {
                k.parse()
                    .map_err(|e| ApiError::bad_request(format!("`kind={k}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let since = self.time("since")?;
        let until = self.time("until")?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(ApiError::bad_request(
                "`since` must be before `until`: the range is empty",
            ));
        }
        Ok(Filter {
            kinds,
            action: self.parsed("action", "an action")?,
            operation: self
                .text("tool")
                .or(self.text("operation"))
                .map(str::to_string),
            resource_type: self.text("resource_type").map(str::to_string),
            resource_id: self.text("resource_id").map(str::to_string),
            user_id: self.text("user").map(str::to_string),
            session_id: self.text("session").map(str::to_string),
            correlation_id: self.text("correlation").map(str::to_string),
            server_name: self.text("server").map(str::to_string),
            outcome: self.parsed("outcome", "an outcome")?,
            classification: self.parsed("classification", "a classification")?,
            requires_review: self.flag("review")?,
            data_subject_id: self.text("subject").map(str::to_string),
            log_id: self.text("log").map(str::to_string),
            since,
            until,
            time: self.time_basis()?,
            skewed: self.flag("skewed")?.unwrap_or(false),
            include_pending: self.flag("include_pending")?.unwrap_or(false),
            search: self.search()?,
        })
    }

    /// `q`, the full-text search (see `mcp_audit_store::search`), where the endpoint takes it
    /// (it lists `q` among its own fields: a search reads payloads, so only endpoints that
    /// check the caller may see them and record the search take one). Empty after trimming
    /// is no search (a form sends every field).
    fn search(&self) -> Result<Option<TextSearch>, ApiError> {
        self.text(SEARCH_FIELD)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| TextSearch::new(q).map_err(|e| ApiError::bad_request(format!("`q`: {e}"))))
            .transpose()
    }

    /// `limit` (capped at [`MAX_LIMIT`]) and `cursor`.
    pub fn page(&self) -> Result<(PageStart, u32), ApiError> {
        let limit = match self.parsed::<u64>("limit", "a number")? {
            None => DEFAULT_LIMIT,
            Some(0) => return Err(ApiError::bad_request("`limit` must be at least 1")),
            Some(n) => n.min(u64::from(MAX_LIMIT)) as u32,
        };
        let start = match self.text("cursor") {
            None => PageStart::Newest,
            Some("") => return Err(ApiError::bad_request("`cursor` is empty")),
            Some(c) => PageStart::After(Cursor(c.to_string())),
        };
        Ok((start, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(query: &str) -> Result<Filter, ApiError> {
        Params::parse(Some(query), true, &["limit", "cursor"])?.filter()
    }

    #[test]
    fn every_filter_field_reads_as_the_cli_flag_of_its_name() {
        let f = filter(
            "kind=tool_execution&kind=admin&tool=echo&user=alice&session=s1&correlation=c1&server=srv&outcome=tool_error&classification=restricted&review=true&subject=cust-1&log=writer-a&since=2026-01-01&until=2026-02-01T00:00:00Z&include_pending=true&action=EXECUTE&resource_type=tool&resource_id=r",
        )
        .unwrap();
        assert_eq!(f.kinds.len(), 2);
        assert_eq!(f.operation.as_deref(), Some("echo"));
        assert_eq!(f.user_id.as_deref(), Some("alice"));
        assert_eq!(f.session_id.as_deref(), Some("s1"));
        assert_eq!(f.correlation_id.as_deref(), Some("c1"));
        assert_eq!(f.server_name.as_deref(), Some("srv"));
        assert_eq!(f.requires_review, Some(true));
        assert_eq!(f.data_subject_id.as_deref(), Some("cust-1"));
        assert_eq!(f.log_id.as_deref(), Some("writer-a"));
        assert!(f.include_pending);
        assert_eq!(
            f.since,
            Some("2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap())
        );
    }

    #[test]
    fn unknown_repeated_and_malformed_fields_are_refused_by_name() {
        let e = filter("usr=alice").err().unwrap();
        assert!(e.message.contains("unknown query field `usr`"), "{e}");
        let e = filter("user=a&user=b").err().unwrap();
        assert!(e.message.contains("twice"), "{e}");
        let e = filter("outcome=great").err().unwrap();
        assert!(e.message.contains("outcome=great"), "{e}");
        let e = filter("since=last-tuesday").err().unwrap();
        assert!(e.message.contains("RFC 3339"), "{e}");
        let e = filter("review=maybe").err().unwrap();
        assert!(e.message.contains("true or false"), "{e}");
        let e = filter("since=2026-02-01&until=2026-01-01").err().unwrap();
        assert!(e.message.contains("empty"), "{e}");
    }

    fn search(query: &str) -> Result<Filter, ApiError> {
        Params::parse(Some(query), true, &[SEARCH_FIELD])?.filter()
    }

    #[test]
    fn a_search_is_taken_where_the_endpoint_lists_q() {
        let f = search("q=Customer-123").unwrap();
        assert_eq!(f.search.unwrap().words(), "customer 123");
        assert!(search("q=").unwrap().search.is_none());
        let e = filter("q=customer").err().unwrap();
        assert!(e.message.contains("unknown query field `q`"), "{e}");
    }

    #[test]
    fn hostile_search_text_is_a_clear_400_or_plain_words() {
        for (q, words) in [
            ("%22", None),
            ("*", None),
            ("-", None),
            ("NEAR(", Some("near")),
            ("%22unbalanced", Some("unbalanced")),
            ("a*%20-b%20OR%20c", Some("a b or c")),
        ] {
            let got = search(&format!("q={q}"));
            match words {
                Some(words) => assert_eq!(got.unwrap().search.unwrap().words(), words),
                None => {
                    let e = got.err().unwrap();
                    assert!(e.message.contains("no letter or digit"), "{q}: {e}");
                }
            }
        }
        let e = search(&format!("q={}", "x".repeat(10_000))).err().unwrap();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("10000 bytes"), "{e}");
    }

    #[test]
    fn a_huge_limit_is_capped_and_zero_refused() {
        let p = Params::parse(Some("limit=99999999999"), true, &["limit"]).unwrap();
        assert_eq!(p.page().unwrap().1, MAX_LIMIT);
        let p = Params::parse(Some("limit=0"), true, &["limit"]).unwrap();
        assert!(p.page().is_err());
        let p = Params::parse(Some("limit=-3"), true, &["limit"]).unwrap();
        assert!(p.page().is_err());
    }
}
