//! Reading events back: pages, single events, counts, streams.

use mcp_audit_core::EventId;
use rusqlite::{Row, ToSql, params_from_iter};

use super::SqliteStore;
use crate::error::StoreError;
use crate::query::{Cursor, Filter, Page, PageStart, Query, StoredEvent};
use crate::sql::{SqlValue, Where};

pub(super) const COLUMNS: &str = "e.seq, e.meta, e.commitment, e.leaf_hash, p.body";
pub(super) const FROM: &str = "FROM events e LEFT JOIN payloads p ON p.seq = e.seq";

pub(crate) fn placeholder(n: usize) -> String {
    format!("?{n}")
}

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            SqlValue::Text(s) => s.to_sql(),
            SqlValue::Int(i) => i.to_sql(),
        }
    }
}

/// The raw columns of one row, decoded outside the row callback so that a decode error can
/// name its sequence number.
pub(super) struct RawRow {
    seq: i64,
    meta: String,
    commitment: Vec<u8>,
    leaf_hash: Vec<u8>,
    body: Option<String>,
}

pub(super) fn raw(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        seq: row.get(0)?,
        meta: row.get(1)?,
        commitment: row.get(2)?,
        leaf_hash: row.get(3)?,
        body: row.get(4)?,
    })
}

pub(super) fn decode(log_id: &str, raw: RawRow) -> Result<StoredEvent, StoreError> {
    StoredEvent::from_columns(
        log_id.to_string(),
        raw.seq as u64,
        &raw.meta,
        &raw.commitment,
        &raw.leaf_hash,
        raw.body.as_deref(),
    )
}

fn encode_cursor(seq: u64) -> Cursor {
    Cursor::encode(&format!("v1:{seq}"))
}

fn decode_cursor(cursor: &Cursor) -> Result<u64, StoreError> {
    cursor
        .position()?
        .strip_prefix("v1:")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::InvalidCursor(cursor.0.clone()))
}

pub(super) fn query(store: &mut SqliteStore, query: &Query) -> Result<Page, StoreError> {
    let (limit, offset) = (query.page_size(), query.offset());
    let mut w = Where::from_filter(&query.filter, placeholder);
    if store.bulk_keys {
        super::keys::restrict(&mut w, &query.filter);
    }
    if let PageStart::After(cursor) = &query.start {
        let seq = decode_cursor(cursor)?;
        w.push("e.seq < {}", SqlValue::Int(seq as i64));
    }
    // One row more than asked tells whether a next page exists.
    let sql = format!(
        "SELECT {COLUMNS} {FROM} {} ORDER BY e.seq DESC LIMIT {} OFFSET {offset}",
        w.sql(),
        limit + 1
    );
    let raws = collect(store, &sql, &w.params)?;
    let mut events = raws
        .into_iter()
        .map(|r| decode(&store.log_id, r))
        .collect::<Result<Vec<_>, _>>()?;
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next = if more {
        events.last().map(|e| encode_cursor(e.seq))
    } else {
        None
    };
    Ok(Page { events, next })
}

pub(super) fn get(store: &mut SqliteStore, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE e.id = ?1");
    let conn = &store.conn;
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            let mut rows = s.query_map([id.0.as_bytes().as_slice()], raw)?;
            rows.next().transpose()
        })
        .map_err(|e| store.map(e))?;
    raw.map(|r| decode(&store.log_id, r)).transpose()
}

pub(super) fn count(store: &mut SqliteStore, filter: &Filter) -> Result<u64, StoreError> {
    let mut w = Where::from_filter(filter, placeholder);
    if store.bulk_keys {
        super::keys::restrict(&mut w, filter);
    }
    let sql = format!("SELECT COUNT(*) FROM events e {}", w.sql());
    store
        .conn
        .query_row(&sql, params_from_iter(w.params.iter()), |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| store.map(e))
}

pub(super) fn for_each(
    store: &mut SqliteStore,
    filter: &Filter,
    sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut w = Where::from_filter(filter, placeholder);
    if store.bulk_keys {
        super::keys::restrict(&mut w, filter);
    }
    let sql = format!("SELECT {COLUMNS} {FROM} {} ORDER BY e.seq ASC", w.sql());
    let log_id = store.log_id.clone();
    let mut stmt = store.conn.prepare(&sql).map_err(super::map_err)?;
    let mut rows = stmt
        .query(params_from_iter(w.params.iter()))
        .map_err(super::map_err)?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(super::map_err)? {
        let r = raw(row).map_err(super::map_err)?;
        sink(decode(&log_id, r)?)?;
        n += 1;
    }
    Ok(n)
}

pub(super) fn pending_without_outcome(
    store: &mut SqliteStore,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE e.outcome = 'pending'
           AND NOT EXISTS (SELECT 1 FROM events c WHERE c.completes = e.id)
         ORDER BY e.seq"
    );
    let raws = collect(store, &sql, &[])?;
    raws.into_iter().map(|r| decode(&store.log_id, r)).collect()
}

fn collect(store: &SqliteStore, sql: &str, params: &[SqlValue]) -> Result<Vec<RawRow>, StoreError> {
    store
        .conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_map(params_from_iter(params.iter()), raw)?.collect())
        .map_err(|e| store.map(e))
}
