//! Reading events back: pages, single events, counts, streams.

use mcp_audit_core::EventId;
use rusqlite::{Row, ToSql, params_from_iter};

use super::SqliteStore;
use super::schema::LookupField;
use crate::error::StoreError;
use crate::query::{Cursor, Filter, Page, PageStart, Payloads, Query, StoredEvent};
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
        meta: super::packed::owned_text(row.get_ref(1)?, 1)?.unwrap_or_default(),
        commitment: row.get(2)?,
        leaf_hash: row.get(3)?,
        body: super::packed::owned_text(row.get_ref(4)?, 4)?,
    })
}

pub(super) fn decode(log_id: &str, raw: RawRow) -> Result<StoredEvent, StoreError> {
    decode_with(log_id, raw, Payloads::Read)
}

fn decode_with(log_id: &str, raw: RawRow, payloads: Payloads) -> Result<StoredEvent, StoreError> {
    StoredEvent::from_columns(
        log_id.to_string(),
        raw.seq as u64,
        &raw.meta,
        &raw.commitment,
        &raw.leaf_hash,
        raw.body.as_deref(),
        payloads,
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

pub(super) fn query(
    store: &mut SqliteStore,
    query: &Query,
    payloads: Payloads,
) -> Result<Page, StoreError> {
    let (limit, offset) = (query.page_size(), query.offset());
    let before = match &query.start {
        PageStart::After(cursor) => Some(decode_cursor(cursor)?),
        _ => None,
    };
    let driving = match super::keys::driving_key(&query.filter)
        .filter(|_| store.layout.bulk_keys && query.filter.search.is_none())
    {
        // A tool's own index serves a page by user and tool better than the user's keys when
        // the user is on much of the log (a proxy run per user): those keys would be walked
        // past every other tool's events.
        Some((field, value)) if query.filter.operation.is_some() => {
            super::keys::worth_the_keys(&store.conn, field, value)
                .map_err(|e| store.map(e))?
                .then_some((field, value))
        }
        key => key,
    };
    // One row more than asked tells whether a next page exists.
    let raws = match (driving, &query.filter.search) {
        (Some(key), _) => keyed_page(store, &query.filter, key, before, offset, limit + 1)?,
        (None, Some(search)) => search_page(store, query, search, before, limit + 1)?,
        (None, None) => {
            let mut w = Where::from_filter(&query.filter, placeholder);
            if let Some(seq) = before {
                w.push("e.seq < {}", SqlValue::Int(seq as i64));
            }
            let sql = format!(
                "SELECT {COLUMNS} {FROM} {} ORDER BY e.seq DESC LIMIT {} OFFSET {offset}",
                w.sql(),
                limit + 1
            );
            collect(store, &sql, &w.params)?
        }
    };
    let mut events = raws
        .into_iter()
        .map(|r| decode_with(&store.log_id, r, payloads))
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

/// A newest-first page of a search, at most `take` rows, driven by the text index: FTS5 hands
/// out the matching rowids (the seqs) newest first and the page stops when it is full, so a
/// search whose words are in every event costs a page, not the whole index. (The filter's own
/// condition, `e.seq IN (SELECT rowid ... MATCH ...)`, which counts and exports use, first
/// collects every match: fine for a rare word, 100,000 rows read for a common one.)
///
/// The reader's `payload_tail` (the payloads past the text index's bound, every one newer than
/// any indexed one: see `text_tail`) is read first, whole (it is short); the indexed part then
/// fills the rest of the page, its offset less the tail's matches.
fn search_page(
    store: &SqliteStore,
    query: &Query,
    search: &crate::search::TextSearch,
    before: Option<u64>,
    take: i64,
) -> Result<Vec<RawRow>, StoreError> {
    let matches_in = |index: &str, limit: Option<(i64, i64)>| {
        let others = Filter {
            search: None,
            ..query.filter.clone()
        };
        let mut w = Where::from_filter(&others, placeholder);
        w.push(
            &format!("{index} MATCH {{}}"),
            SqlValue::Text(search.fts5_phrase()),
        );
        if let Some(seq) = before {
            w.push(&format!("{index}.rowid < {{}}"), SqlValue::Int(seq as i64));
        }
        let limit = limit.map_or(String::new(), |(take, skip)| {
            format!("LIMIT {take} OFFSET {skip}")
        });
        let sql = format!(
            "SELECT {COLUMNS} FROM {index} JOIN events e ON e.seq = {index}.rowid
               LEFT JOIN payloads p ON p.seq = e.seq
             {} ORDER BY {index}.rowid DESC {limit}",
            w.sql(),
        );
        collect(store, &sql, &w.params)
    };
    let offset = query.offset().max(0) as usize;
    let tail = matches_in("payload_tail", None)?;
    let tail_matches = tail.len();
    let mut page: Vec<RawRow> = tail.into_iter().skip(offset).take(take as usize).collect();
    let left = take - page.len() as i64;
    if left > 0 {
        let skip = offset.saturating_sub(tail_matches) as i64;
        page.extend(matches_in("payload_text", Some((left, skip)))?);
    }
    Ok(page)
}

/// A newest-first page of the events whose session or user is `key`, from `offset` on, at most
/// `take` rows: read in two parts that together list every such event once.
///
/// First the unindexed tail (`seq >= indexed_to`, fewer than a bulk of events, read row by row),
/// which holds only events newer than any indexed one; then, if the page is not full, the
/// indexed part, walked through `event_keys` backwards from its newest key and stopping as soon
/// as the page is full. One statement with `e.seq IN (keys UNION ALL tail)` would read every key
/// of the value first: a page of a log whose events nearly all share one user (a proxy per
/// user) would then cost as much as the whole log, not as much as the page.
///
/// Both parts read one snapshot, so the writer moving the tail into `event_keys` in between
/// can neither drop an event from the page nor show it twice.
fn keyed_page(
    store: &SqliteStore,
    filter: &Filter,
    key: (LookupField, &str),
    before: Option<u64>,
    offset: i64,
    take: i64,
) -> Result<Vec<RawRow>, StoreError> {
    let snapshot = if store.conn.is_autocommit() {
        Some(
            store
                .conn
                .unchecked_transaction()
                .map_err(|e| store.map(e))?,
        )
    } else {
        None
    };
    let indexed_to = super::keys::indexed_to(&store.conn).map_err(|e| store.map(e))? as i64;
    let want = offset.saturating_add(take);

    let mut tail = Where::from_filter(filter, placeholder);
    tail.push("e.seq >= {}", SqlValue::Int(indexed_to));
    if let Some(seq) = before {
        tail.push("e.seq < {}", SqlValue::Int(seq as i64));
    }
    let sql = format!(
        "SELECT {COLUMNS} {FROM} {} ORDER BY e.seq DESC LIMIT {want}",
        tail.sql()
    );
    let mut raws = collect(store, &sql, &tail.params)?;

    let left = want - raws.len() as i64;
    if left > 0 {
        let mut indexed = Where::from_filter(filter, placeholder);
        indexed.push("k.field = {}", SqlValue::Int(key.0 as i64));
        let slot = indexed.bind(SqlValue::Text(key.1.to_string()));
        indexed.push_clause(format!("k.value IN {}", super::keys::values(key.0, &slot)));
        let below = before.map_or(indexed_to, |seq| indexed_to.min(seq as i64));
        indexed.push("k.seq < {}", SqlValue::Int(below));
        let sql = format!(
            "SELECT {COLUMNS} FROM event_keys k JOIN events e ON e.seq = k.seq
               LEFT JOIN payloads p ON p.seq = e.seq
             {} ORDER BY k.seq DESC LIMIT {left}",
            indexed.sql()
        );
        raws.extend(collect(store, &sql, &indexed.params)?);
    }
    drop(snapshot);
    Ok(raws.into_iter().skip(offset.max(0) as usize).collect())
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
    if store.layout.bulk_keys {
        super::keys::restrict(&mut w, filter, &store.conn).map_err(|e| store.map(e))?;
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

/// The counts of [`crate::Read::count_each`], in one statement (`GROUP BY e.operation`),
/// prepared once per reader.
pub(super) fn count_each(
    store: &mut SqliteStore,
    filter: &Filter,
    operations: &[&str],
) -> Result<Vec<u64>, StoreError> {
    let filter = Filter {
        operation: None,
        ..filter.clone()
    };
    let mut w = Where::from_filter(&filter, placeholder);
    if store.layout.bulk_keys {
        super::keys::restrict(&mut w, &filter, &store.conn).map_err(|e| store.map(e))?;
    }
    let slots: Vec<String> = operations
        .iter()
        .map(|o| w.bind(SqlValue::Text(o.to_string())))
        .collect();
    w.push_clause(format!("e.operation IN ({})", slots.join(", ")));
    let sql = format!(
        "SELECT e.operation, COUNT(*) FROM events e {} GROUP BY e.operation",
        w.sql()
    );
    let counted: Vec<(String, i64)> = store
        .conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(w.params.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .map_err(|e| store.map(e))?;
    Ok(operations
        .iter()
        .map(|o| {
            counted
                .iter()
                .find(|(op, _)| op == o)
                .map_or(0, |(_, n)| *n as u64)
        })
        .collect())
}

pub(super) fn for_each(
    store: &SqliteStore,
    filter: &Filter,
    sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut w = Where::from_filter(filter, placeholder);
    if store.layout.bulk_keys {
        super::keys::restrict(&mut w, filter, &store.conn).map_err(|e| store.map(e))?;
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
