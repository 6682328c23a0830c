//! The Merkle log's side of the PostgreSQL store, for one log at a time (the store's own): its
//! entries as verification and proofs read them, erasure, checkpoints and the interior nodes
//! that let proofs skip rehashing.

use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash};
use postgres::types::ToSql;

use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::event_columns::{Column, EVENT_COLUMNS, Kind, RECEIVED_AT};
use crate::store::{Cell, IndexedColumns, LineageRow, LineageTable, LogEntry, ProofEntry, Scrub};

/// Rows fetched per round trip while scanning a log.
const SCAN_CHUNK: i32 = 10_000;

/// A seq as a query parameter (a `BIGINT`): seqs past `i64::MAX` do not exist.
fn seq_param(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

/// A read-only, repeatable-read transaction: everything read in it is the log as of one
/// moment, however long the reading takes.
fn snapshot(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(map_err)
}

/// Where the column copies start in a log scan's row (after seq, meta, the hashes, the payload).
const COPIES_FROM: usize = 6;

pub(super) fn scan_log(
    store: &mut PgStore,
    from: u64,
    to: u64,
    sink: &mut dyn FnMut(&LogEntry<'_>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let (from, to) = (seq_param(from), seq_param(to));
    let log_id = store.log_id.clone();
    // The column copies verify compares, in the column table's order, after the leaf's own
    // columns and the payload; a schema from before receive times (read, not migrated) has no
    // such column.
    let received = store.received_at;
    let copies: Vec<(usize, &Column)> = EVENT_COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| c.expected.is_some() && (c.name != RECEIVED_AT || received))
        .collect();
    let select: String = copies
        .iter()
        .map(|(_, c)| match c.kind {
            // An id's 16 bytes, as SQLite keeps them.
            Kind::Id => format!(", uuid_send(e.{})", c.name),
            _ => format!(", e.{}", c.name),
        })
        .collect();
    // A portal in one repeatable-read transaction: the whole log as of one moment, streamed.
    let mut tx = snapshot(store.client()?)?;
    let portal = tx
        .bind(
            &format!(
                "SELECT e.seq, e.meta, e.commitment, e.leaf_hash, p.salt, p.body{select}
               FROM events e
               LEFT JOIN payloads p ON p.log_id = e.log_id AND p.seq = e.seq AND p.ts = e.ts
              WHERE e.log_id = $1 AND e.seq >= $2 AND e.seq < $3
              ORDER BY e.seq"
            ),
            &[&log_id as &(dyn ToSql + Sync), &from, &to],
        )
        .map_err(map_err)?;
    let mut read = 0u64;
    loop {
        let rows = tx.query_portal(&portal, SCAN_CHUNK).map_err(map_err)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let bad = |e: postgres::Error| {
                StoreError::Database(format!("a log row has a value of the wrong type: {e}"))
            };
            let salt: Option<&[u8]> = row.try_get(4).map_err(bad)?;
            let body: Option<&str> = row.try_get(5).map_err(bad)?;
            let body = body.map(str::as_bytes);
            // The schema's column types hold on PostgreSQL: nothing is malformed.
            let mut columns = IndexedColumns::EMPTY;
            for (i, &(at, column)) in copies.iter().enumerate() {
                let i = COPIES_FROM + i;
                let cell = match column.kind {
                    Kind::Int => row
                        .try_get::<_, Option<i64>>(i)
                        .map_err(bad)?
                        .map(Cell::Int),
                    Kind::Bool => row
                        .try_get::<_, Option<bool>>(i)
                        .map_err(bad)?
                        .map(|b| Cell::Int(i64::from(b))),
                    Kind::Text => row
                        .try_get::<_, Option<&str>>(i)
                        .map_err(bad)?
                        .map(|t| Cell::Bytes(t.as_bytes())),
                    Kind::Id | Kind::Bytes => row
                        .try_get::<_, Option<&[u8]>>(i)
                        .map_err(bad)?
                        .map(Cell::Bytes),
                };
                columns.cells[at] = cell.unwrap_or(Cell::Null);
            }
            let entry = LogEntry {
                seq: row.try_get::<_, i64>(0).map_err(bad)? as u64,
                meta: row.try_get(1).map_err(bad)?,
                commitment: row.try_get(2).map_err(bad)?,
                leaf_hash: row.try_get(3).map_err(bad)?,
                payload: salt.zip(body),
                columns,
            };
            sink(&entry)?;
            read += 1;
        }
    }
    tx.commit().map_err(map_err)?;
    Ok(read)
}

pub(super) fn checkpoints(store: &mut PgStore) -> Result<Vec<(u64, String)>, StoreError> {
    let log_id = store.log_id.clone();
    let rows = store
        .client()?
        .query(
            "SELECT size, note FROM checkpoints WHERE log_id = $1 ORDER BY size",
            &[&log_id],
        )
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
        .collect())
}

/// The entry of `id` in this store's log (an event of another log has no place in this tree).
pub(super) fn proof_entry(
    store: &mut PgStore,
    id: EventId,
) -> Result<Option<ProofEntry>, StoreError> {
    let log_id = store.log_id.clone();
    let row = store
        .client()?
        .query_opt(
            "SELECT e.seq, e.meta, e.commitment, p.salt, p.body
               FROM event_ids i
               JOIN events e ON e.log_id = i.log_id AND e.seq = i.seq AND e.ts = i.ts
               LEFT JOIN payloads p ON p.log_id = e.log_id AND p.seq = e.seq AND p.ts = e.ts
              WHERE i.id = $1 AND i.log_id = $2",
            &[&id.0, &log_id],
        )
        .map_err(map_err)?;
    Ok(row.map(|r| {
        let salt: Option<Vec<u8>> = r.get(3);
        let body: Option<String> = r.get(4);
        ProofEntry {
            seq: r.get::<_, i64>(0) as u64,
            meta: r.get(1),
            commitment: Hash::from_slice(r.get::<_, &[u8]>(2)).unwrap_or_default(),
            payload: salt.zip(body),
        }
    }))
}

/// Erases the payload of `id`, whichever log it is in.
pub(super) fn erase_payload(store: &mut PgStore, id: EventId) -> Result<bool, StoreError> {
    let n = store
        .client()?
        .execute(
            "DELETE FROM payloads p USING event_ids i
              WHERE i.id = $1 AND p.log_id = i.log_id AND p.seq = i.seq AND p.ts = i.ts",
            &[&id.0],
        )
        .map_err(map_err)?;
    Ok(n > 0)
}

/// PostgreSQL keeps a deleted row's bytes in its page until `VACUUM` reuses the space, and in
/// its write-ahead log and base backups until they are recycled; none of that can be cleared
/// from a client without stopping the writers (`VACUUM FULL` locks the table). Said, not done:
/// see `docs/integrity.md`.
pub(super) fn scrub(_store: &mut PgStore) -> Result<Scrub, StoreError> {
    Ok(Scrub::Pending(
        "PostgreSQL keeps the deleted rows' bytes until VACUUM reuses their space, and in its \
         write-ahead log and backups until they are recycled (see docs/integrity.md)"
            .into(),
    ))
}

/// The outcomes of `intent` in any log (an outcome is recorded in the log of the proxy that
/// saw the answer, which is the intent's).
pub(super) fn outcomes_of(
    store: &mut PgStore,
    intent: EventId,
) -> Result<Vec<EventId>, StoreError> {
    let rows = store
        .client()?
        .query(
            "SELECT id FROM events WHERE completes = $1 ORDER BY log_id, seq",
            &[&intent.0],
        )
        .map_err(map_err)?;
    Ok(rows.iter().map(|r| EventId(r.get(0))).collect())
}

/// The rows of both child tables of this log with seq in `from..to`, table by table, each by
/// seq and ordinal, streamed through a portal in one snapshot.
pub(super) fn scan_lineage(
    store: &mut PgStore,
    from: u64,
    to: u64,
    sink: &mut dyn FnMut(&LineageRow<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (from, to) = (seq_param(from), seq_param(to));
    let log_id = store.log_id.clone();
    let mut tx = snapshot(store.client()?)?;
    let tables = [
        (
            LineageTable::DataSources,
            "SELECT seq, ordinal, uri, source_type, identifier, transformation, destination,
                    direction, metadata
               FROM data_sources WHERE log_id = $1 AND seq >= $2 AND seq < $3
              ORDER BY seq, ordinal",
        ),
        (
            LineageTable::ComplianceEvents,
            "SELECT seq, ordinal, framework, event_type, risk_level, details, mitigation
               FROM compliance_events WHERE log_id = $1 AND seq >= $2 AND seq < $3
              ORDER BY seq, ordinal",
        ),
    ];
    for (table, sql) in tables {
        let portal = tx
            .bind(sql, &[&log_id as &(dyn ToSql + Sync), &from, &to])
            .map_err(map_err)?;
        loop {
            let rows = tx.query_portal(&portal, SCAN_CHUNK).map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let bad = |e: postgres::Error| {
                    StoreError::Database(format!(
                        "a lineage row has a value of the wrong type: {e}"
                    ))
                };
                let width = row.len() - 2;
                let mut values: [Option<&[u8]>; 7] = [None; 7];
                for (k, value) in values.iter_mut().enumerate().take(width) {
                    let text: Option<&str> = row.try_get(k + 2).map_err(bad)?;
                    *value = text.map(str::as_bytes);
                }
                sink(&LineageRow {
                    seq: row.try_get::<_, i64>(0).map_err(bad)? as u64,
                    table,
                    ordinal: i64::from(row.try_get::<_, i32>(1).map_err(bad)?),
                    values: &values[..width],
                    // The schema's column types hold on PostgreSQL.
                    malformed: false,
                })?;
            }
        }
    }
    tx.commit().map_err(map_err)
}
pub(super) fn tree_nodes(
    store: &mut PgStore,
    level: u32,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Hash)>, StoreError> {
    let log_id = store.log_id.clone();
    let rows = store
        .client()?
        .query(
            "SELECT idx, hash FROM tree_nodes
              WHERE log_id = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx",
            &[
                &log_id,
                &(level as i32),
                &(from as i64),
                &(to.min(i64::MAX as u64) as i64),
            ],
        )
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let hash = Hash::from_slice(r.get::<_, &[u8]>(1))?;
            Some((r.get::<_, i64>(0) as u64, hash))
        })
        .collect())
}

/// Stores nodes in one statement (arrays unnested server-side), replacing equal keys.
pub(super) fn put_tree_nodes(store: &mut PgStore, nodes: &[Node]) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let log_id = store.log_id.clone();
    let levels: Vec<i32> = nodes.iter().map(|n| n.level as i32).collect();
    let indexes: Vec<i64> = nodes.iter().map(|n| n.index as i64).collect();
    let hashes: Vec<&[u8]> = nodes.iter().map(|n| n.hash.0.as_slice()).collect();
    store
        .client()?
        .execute(
            "INSERT INTO tree_nodes (log_id, level, idx, hash)
             SELECT $1, * FROM unnest($2::int4[], $3::int8[], $4::bytea[])
             ON CONFLICT (log_id, level, idx) DO UPDATE SET hash = EXCLUDED.hash",
            &[&log_id, &levels, &indexes, &hashes],
        )
        .map(drop)
        .map_err(map_err)
}
