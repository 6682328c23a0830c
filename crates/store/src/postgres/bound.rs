//! A column value of the column table (`crate::event_columns::EVENT_COLUMNS`) as PostgreSQL binds
//! it, for both write paths (binary `COPY` and the multi-row `INSERT`).

use postgres::types::{IsNull, ToSql, Type};

use crate::event_columns::Value;

/// A column value as PostgreSQL binds it: each as its own type (an id as a `UUID`), checked
/// against the column's type like any parameter.
#[derive(Debug)]
pub(super) struct Bound<'a>(pub(super) Value<'a>);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Checked here, not only in `to_sql_checked`: an array of these (the multi-row
        // `INSERT`) encodes its elements with `to_sql`.
        match &self.0 {
            Value::Int(v) => v.to_sql_checked(ty, out),
            Value::Text(v) => v.to_sql_checked(ty, out),
            Value::Bool(v) => v.to_sql_checked(ty, out),
            Value::Id(v) => v.map(uuid::Uuid::from_bytes).to_sql_checked(ty, out),
            Value::Bytes(v) => v.to_sql_checked(ty, out),
        }
    }

    /// Any type here: each value is checked as its own type in `to_sql`.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::event_columns::EVENT_COLUMNS;
    use crate::{PgOptions, PgStore};

    /// The column table names every column of `events` after `log_id` that the migrations
    /// make, in order and with the type binary `COPY` declares for its kind. It needs a
    /// server: its `postgres_` name puts it in the runner's PostgreSQL group, and leaves it
    /// out (counted as skipped) when there is none (`.config/nextest.toml`).
    #[test]
    fn postgres_the_column_table_is_the_events_table_after_the_log_id() {
        let Some(base) = std::env::var("MCP_AUDIT_TEST_PG")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "MCP_AUDIT_TEST_PG is not set, and CI must run the PostgreSQL tests"
            );
            eprintln!("skipped: MCP_AUDIT_TEST_PG is not set");
            return;
        };
        let schema = format!(
            "columns_{}",
            mcp_audit_core::EventId::new().to_string().replace('-', "")
        );
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        let opened = PgStore::open(&url, PgOptions::default()).map(drop);
        let table: Vec<(String, String)> = admin
            .query(
                "SELECT column_name::text, udt_name::text FROM information_schema.columns
                  WHERE table_schema = $1 AND table_name = 'events' ORDER BY ordinal_position",
                &[&schema],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
        opened.unwrap();
        let listed: Vec<(String, String)> = [("log_id".to_string(), "text".to_string())]
            .into_iter()
            .chain(EVENT_COLUMNS.iter().map(|c| {
                let ty = c.kind.pg_type();
                (c.name.to_string(), ty.name().to_string())
            }))
            .collect();
        assert_eq!(listed, table);
    }
}
