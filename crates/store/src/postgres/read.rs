//! Reading events back: pages, single events, counts, streams. Queries see every log of the
//! database; a page is newest first by event time, with log id and seq breaking ties, so that
//! one order serves all the logs together.

use mcp_audit_core::EventId;
use postgres::Row;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::query::{Cursor, Filter, Page, PageStart, Payloads, Query, StoredEvent};
use crate::sql::{SqlValue, Where};

pub(super) const COLUMNS: &str = "e.log_id, e.seq, e.meta, e.commitment, e.leaf_hash, p.body, e.ts";
pub(super) const FROM: &str =
    "FROM events e LEFT JOIN payloads p ON p.log_id = e.log_id AND p.seq = e.seq AND p.ts = e.ts";

pub(super) fn placeholder(n: usize) -> String {
    format!("${n}")
}

/// The WHERE builder binds integers as `i64`; PostgreSQL infers each placeholder's type from
/// its column, so the value adapts (a flag column is `BOOLEAN` here, `INTEGER` in SQLite).
impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            SqlValue::Text(s) => s.to_sql(ty, out),
            SqlValue::Int(i) => match *ty {
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL
        )
    }

    to_sql_checked!();
}

pub(super) fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Decodes one row of [`COLUMNS`].
pub(super) fn decode(row: &Row) -> Result<StoredEvent, StoreError> {
    decode_with(row, Payloads::Read)
}

fn decode_with(row: &Row, payloads: Payloads) -> Result<StoredEvent, StoreError> {
    let seq = row.try_get::<_, i64>(1).map_err(map_err)? as u64;
    let bad = |e: postgres::Error| StoreError::Decode {
        seq,
        reason: e.to_string(),
    };
    StoredEvent::from_columns(
        row.try_get(0).map_err(bad)?,
        seq,
        row.try_get(2).map_err(bad)?,
        row.try_get(3).map_err(bad)?,
        row.try_get(4).map_err(bad)?,
        row.try_get(5).map_err(bad)?,
        payloads,
    )
}

/// A position in the newest-first order: the last row's time, log and seq.
fn encode_cursor(row: &Row, event: &StoredEvent) -> Result<Cursor, StoreError> {
    let ts: i64 = row.try_get(6).map_err(map_err)?;
    Ok(Cursor::encode(&format!(
        "pg1:{ts}:{}:{}",
        event.seq, event.log_id
    )))
}

fn decode_cursor(cursor: &Cursor) -> Result<(i64, i64, String), StoreError> {
    let invalid = || StoreError::InvalidCursor(cursor.0.clone());
    let text = cursor.position()?;
    let mut parts = text
        .strip_prefix("pg1:")
        .ok_or_else(invalid)?
        .splitn(3, ':');
    let ts = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    let seq = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    let log_id = parts.next().ok_or_else(invalid)?.to_string();
    Ok((ts, seq, log_id))
}

/// A page, in one statement (after one more for the mapping's rows of a user or data subject
/// it filters by: see [`Where::from_filter_with_pseudonyms`]).
///
/// The events of the page are chosen first and only they are joined to their payloads: a
/// filtered page whose matches the planner must sort (a user's events, say) would otherwise
/// look up the payload of every match before keeping a hundred.
pub(super) fn query(
    store: &mut PgStore,
    query: &Query,
    payloads: Payloads,
) -> Result<Page, StoreError> {
    let (limit, offset) = (query.page_size(), query.offset());
    let filter = &query.filter;
    let mut identities: Vec<&str> = [&filter.user_id, &filter.data_subject_id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    identities.dedup();
    let mut w = if identities.is_empty() {
        Where::from_filter(filter, placeholder)
    } else {
        let mut links = Vec::new();
        for identity in identities {
            let (client, statement) = store.prepared(super::pseudonyms::LINKS)?;
            links.extend(super::pseudonyms::links_with(
                client,
                &statement,
                Some(identity),
            )?);
        }
        Where::from_filter_with_pseudonyms(filter, placeholder, &links)
    };
    if let PageStart::After(cursor) = &query.start {
        let (ts, seq, log_id) = decode_cursor(cursor)?;
        let ts = w.bind(SqlValue::Int(ts));
        let log_id = w.bind(SqlValue::Text(log_id));
        let seq = w.bind(SqlValue::Int(seq));
        w.push_clause(format!("(e.ts, e.log_id, e.seq) < ({ts}, {log_id}, {seq})"));
    }
    // One row more than asked tells whether a next page exists.
    let sql = format!(
        "SELECT {COLUMNS}
           FROM (SELECT * FROM events e {} ORDER BY e.ts DESC, e.log_id DESC, e.seq DESC
                  LIMIT {} OFFSET {offset}) e
           LEFT JOIN payloads p ON p.log_id = e.log_id AND p.seq = e.seq AND p.ts = e.ts
          ORDER BY e.ts DESC, e.log_id DESC, e.seq DESC",
        w.sql(),
        limit + 1
    );
    let (client, statement) = store.prepared(&sql)?;
    let rows = client
        .query(&statement, &params(&w.params))
        .map_err(map_err)?;
    let more = rows.len() as i64 > limit;
    let kept = &rows[..rows.len().min(limit as usize)];
    let events = kept
        .iter()
        .map(|row| decode_with(row, payloads))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match (more, kept.last(), events.last()) {
        (true, Some(row), Some(event)) => Some(encode_cursor(row, event)?),
        _ => None,
    };
    Ok(Page { events, next })
}

pub(super) fn get(store: &mut PgStore, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM}
           JOIN event_ids i ON i.log_id = e.log_id AND i.seq = e.seq AND i.ts = e.ts
          WHERE i.id = $1"
    );
    let (client, statement) = store.prepared(&sql)?;
    let row = client.query_opt(&statement, &[&id.0]).map_err(map_err)?;
    row.as_ref().map(decode).transpose()
}

pub(super) fn count(store: &mut PgStore, filter: &Filter) -> Result<u64, StoreError> {
    let w = Where::from_filter(filter, placeholder);
    let sql = format!("SELECT COUNT(*) FROM events e {}", w.sql());
    let (client, statement) = store.prepared(&sql)?;
    let row = client
        .query_one(&statement, &params(&w.params))
        .map_err(map_err)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The counts of [`crate::Read::count_each`], in one statement (`GROUP BY e.operation`).
pub(super) fn count_each(
    store: &mut PgStore,
    filter: &Filter,
    operations: &[&str],
) -> Result<Vec<u64>, StoreError> {
    let mut w = Where::from_filter(
        &Filter {
            operation: None,
            ..filter.clone()
        },
        placeholder,
    );
    let slots: Vec<String> = operations
        .iter()
        .map(|o| w.bind(SqlValue::Text(o.to_string())))
        .collect();
    w.push_clause(format!("e.operation IN ({})", slots.join(", ")));
    let sql = format!(
        "SELECT e.operation, COUNT(*) FROM events e {} GROUP BY e.operation",
        w.sql()
    );
    let (client, statement) = store.prepared(&sql)?;
    let rows = client
        .query(&statement, &params(&w.params))
        .map_err(map_err)?;
    Ok(operations
        .iter()
        .map(|o| {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == *o)
                .map_or(0, |r| r.get::<_, i64>(1) as u64)
        })
        .collect())
}

/// Streams rows (a portal fetched in chunks), so that exporting millions of events holds only
/// one chunk in memory.
pub(super) fn for_each(
    store: &mut PgStore,
    filter: &Filter,
    sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let w = Where::from_filter(filter, placeholder);
    let sql = format!(
        "SELECT {COLUMNS} {FROM} {} ORDER BY e.ts ASC, e.log_id ASC, e.seq ASC",
        w.sql()
    );
    let client = store.client()?;
    let mut tx = client.transaction().map_err(map_err)?;
    let portal = tx.bind(sql.as_str(), &params(&w.params)).map_err(map_err)?;
    let mut n = 0u64;
    let mut revealer = crate::reveal::Revealer::default();
    loop {
        let rows = tx.query_portal(&portal, 1_000).map_err(map_err)?;
        if rows.is_empty() {
            break;
        }
        let batch = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        // In the same transaction (the portal holds the connection), one round trip for the
        // batch's pseudonyms.
        let asked = revealer.unknown(batch.iter().map(|s| &s.event));
        let found = super::pseudonyms::identities(&mut tx, super::pseudonyms::IDENTITIES, &asked)?;
        revealer.learn(asked, found);
        for mut stored in batch {
            revealer.reveal(&mut stored.event, &mut |p| {
                super::pseudonyms::identity(&mut tx, p)
            })?;
            sink(stored)?;
            n += 1;
        }
    }
    tx.commit().map_err(map_err)?;
    Ok(n)
}

pub(super) fn pending_without_outcome(store: &mut PgStore) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE e.outcome = 'pending'
           AND NOT EXISTS (SELECT 1 FROM events c WHERE c.completes = e.id)
         ORDER BY e.ts, e.log_id, e.seq"
    );
    let rows = store.client()?.query(&sql, &[]).map_err(map_err)?;
    rows.iter().map(decode).collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn a_cursor_that_was_not_handed_out_is_refused() {
        for bad in ["", "!!", "djE6MTA", &URL_SAFE_NO_PAD.encode("pg1:x:1:log")] {
            assert!(matches!(
                decode_cursor(&Cursor(bad.to_string())),
                Err(StoreError::InvalidCursor(_))
            ));
        }
        let good = Cursor(URL_SAFE_NO_PAD.encode("pg1:17:4:log:with:colons"));
        assert_eq!(
            decode_cursor(&good).unwrap(),
            (17, 4, "log:with:colons".to_string())
        );
    }
}
