//! The Merkle log's side of the SQLite store: entries as verification and proofs read them,
//! erasure, and the interior nodes that let proofs skip rehashing.

use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash};
use rusqlite::OptionalExtension;
use rusqlite::types::ValueRef;

use super::{SqliteStore, map_err};
use crate::error::StoreError;
use crate::event_columns::{Column, EVENT_COLUMNS, Kind, RECEIVED_AT};
use crate::store::{Cell, IndexedColumns, LineageRow, LineageTable, LogEntry, ProofEntry, Scrub};

pub(super) fn scan_log(
    store: &mut SqliteStore,
    from: u64,
    to: u64,
    sink: &mut dyn FnMut(&LogEntry<'_>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    // A file from before receive times (read, not migrated) has no column: none is kept.
    // The column copies verify compares, in the column table's order, after the leaf's own
    // columns and the payload; a file from before receive times has no such column.
    let copies: Vec<(usize, &Column)> = EVENT_COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.expected.is_some() && (c.name != RECEIVED_AT || store.layout.received_at)
        })
        .collect();
    let select: String = copies
        .iter()
        .map(|(_, c)| format!(", e.{}", c.name))
        .collect();
    let mut stmt = store
        .conn
        .prepare(&format!(
            "SELECT e.seq, e.meta, e.commitment, e.leaf_hash, p.salt, p.body{select} \
             FROM events e LEFT JOIN payloads p ON p.seq = e.seq \
             WHERE e.seq >= ?1 AND e.seq < ?2 ORDER BY e.seq"
        ))
        .map_err(map_err)?;
    let mut rows = stmt
        .query([
            from.min(i64::MAX as u64) as i64,
            to.min(i64::MAX as u64) as i64,
        ])
        .map_err(map_err)?;
    let mut read = 0;
    // The decoded texts of a packed row (`packed.rs`), reused from row to row.
    let (mut meta_buf, mut body_buf) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next().map_err(map_err)? {
        // Borrowed views of the row: no allocation per entry on verification's hot path.
        let get = |i: usize| row.get_ref(i).map_err(map_err);
        let mut columns = IndexedColumns::EMPTY;
        for (i, &(at, column)) in copies.iter().enumerate() {
            columns.cells[at] = match (column.kind, get(COPIES_FROM + i)?) {
                (_, ValueRef::Null) => Cell::Null,
                (Kind::Int | Kind::Bool, ValueRef::Integer(n)) => Cell::Int(n),
                (Kind::Text | Kind::Id | Kind::Bytes, ValueRef::Text(b) | ValueRef::Blob(b)) => {
                    Cell::Bytes(b)
                }
                // SQLite keeps a value of any type in any column: a column copy of a type no
                // writer gives it is a finding about its entry (`column_mismatch`), not an
                // error that stops the whole verification.
                _ => {
                    columns.malformed = columns.malformed.or(Some(column.name));
                    Cell::Null
                }
            };
        }
        let payload = match (blob(get(4)?)?, stored_text(get(5)?, &mut body_buf)?) {
            (Some(salt), Some(body)) => Some((salt, body)),
            _ => None,
        };
        let entry = LogEntry {
            seq: get(0)?.as_i64().map_err(map_err_from_type)? as u64,
            meta: stored_text(get(1)?, &mut meta_buf)?
                .map(|m| std::str::from_utf8(m).unwrap_or_default())
                .unwrap_or_default(),
            commitment: blob(get(2)?)?.unwrap_or_default(),
            leaf_hash: blob(get(3)?)?.unwrap_or_default(),
            payload,
            columns,
        };
        sink(&entry)?;
        read += 1;
    }
    Ok(read)
}

/// Where the column copies start in a log scan's row (after seq, meta, the hashes, the payload).
const COPIES_FROM: usize = 6;

/// The text of a `meta` or `body` value in either stored form (`packed.rs`), unchecked for
/// UTF-8 (for hashing). A packed value that does not decode reads as an empty text, whose hash
/// then fails the entry's leaf or commitment: a finding about that entry, as any other changed
/// byte, not an error that stops the verification.
fn stored_text<'a>(v: ValueRef<'a>, buf: &'a mut Vec<u8>) -> Result<Option<&'a [u8]>, StoreError> {
    match v {
        ValueRef::Blob(_) => Ok(Some(
            super::packed::unpack(v, buf)
                .ok()
                .flatten()
                .unwrap_or_default(),
        )),
        other => text_bytes(other),
    }
}

/// A text column's bytes, unchecked for UTF-8 (for hashing only).
fn text_bytes(v: ValueRef<'_>) -> Result<Option<&[u8]>, StoreError> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => Ok(Some(t)),
        other => other.as_blob().map(Some).map_err(map_err_from_type),
    }
}

fn blob(v: ValueRef<'_>) -> Result<Option<&[u8]>, StoreError> {
    match v {
        ValueRef::Null => Ok(None),
        other => other.as_blob().map(Some).map_err(map_err_from_type),
    }
}

fn map_err_from_type(e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Database(format!("a log row has a value of the wrong type: {e}"))
}

pub(super) fn checkpoints(store: &mut SqliteStore) -> Result<Vec<(u64, String)>, StoreError> {
    let mut stmt = store
        .conn
        .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size")
        .map_err(map_err)?;
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(map_err)
}

pub(super) fn proof_entry(
    store: &mut SqliteStore,
    id: EventId,
) -> Result<Option<ProofEntry>, StoreError> {
    type Row = (
        i64,
        Option<String>,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<String>,
    );
    let row: Option<Row> = store
        .conn
        .query_row(
            "SELECT e.seq, e.meta, e.commitment, p.salt, p.body \
             FROM events e LEFT JOIN payloads p ON p.seq = e.seq WHERE e.id = ?1",
            [id.0.as_bytes().as_slice()],
            |r| {
                Ok((
                    r.get(0)?,
                    super::packed::owned_text(r.get_ref(1)?, 1)?,
                    r.get(2)?,
                    r.get(3)?,
                    super::packed::owned_text(r.get_ref(4)?, 4)?,
                ))
            },
        )
        .optional()
        .map_err(map_err)?;
    Ok(row.map(|(seq, meta, commitment, salt, body)| ProofEntry {
        seq: seq as u64,
        meta: meta.unwrap_or_default(),
        commitment: Hash::from_slice(&commitment).unwrap_or_default(),
        payload: salt.zip(body),
    }))
}

/// Deletes the payload of `id` with `secure_delete` on for the statement, so that SQLite
/// overwrites the freed cell (and any overflow pages) with zeros rather than leaving the bytes
/// in free space; [`scrub`] then clears the copies in the write-ahead log.
pub(super) fn erase_payload(store: &mut SqliteStore, id: EventId) -> Result<bool, StoreError> {
    let conn = &store.conn;
    conn.pragma_update(None, "secure_delete", true)
        .map_err(|e| store.map(e))?;
    let deleted = conn.execute(
        "DELETE FROM payloads WHERE seq = (SELECT seq FROM events WHERE id = ?1)",
        [id.0.as_bytes().as_slice()],
    );
    let restored = conn.pragma_update(None, "secure_delete", false);
    let n = deleted.map_err(|e| store.map(e))?;
    restored.map_err(|e| store.map(e))?;
    Ok(n > 0)
}

/// Copies the write-ahead log into the database file and truncates it to nothing: until then
/// it holds every earlier version of the pages an erasure zeroed. A reader in another
/// connection (a running proxy's query) may pin some of it; then the bytes stay until the
/// next checkpoint that completes, and the answer says so.
pub(super) fn scrub(store: &mut SqliteStore) -> Result<Scrub, StoreError> {
    let (busy, frames, moved): (i64, i64, i64) = store
        .conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| store.map(e))?;
    Ok(if busy == 0 && frames == moved {
        Scrub::Done
    } else {
        Scrub::Pending(format!(
            "another connection to {} is reading: the erased bytes remain in its write-ahead log \
             until the next checkpoint that completes (run `erase` again when it is idle)",
            store.path.display()
        ))
    })
}

pub(super) fn outcomes_of(
    store: &mut SqliteStore,
    intent: EventId,
) -> Result<Vec<EventId>, StoreError> {
    let mut stmt = store
        .conn
        .prepare_cached("SELECT id FROM events WHERE completes = ?1 ORDER BY seq")
        .map_err(map_err)?;
    let ids = stmt
        .query_map([intent.0.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(map_err)?;
    Ok(ids
        .iter()
        .filter_map(|b| uuid::Uuid::from_slice(b).ok().map(EventId))
        .collect())
}

/// The rows of both child tables with seq in `from..to`, table by table, each in key order.
pub(super) fn scan_lineage(
    store: &mut SqliteStore,
    from: u64,
    to: u64,
    sink: &mut dyn FnMut(&LineageRow<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tables = [
        (
            LineageTable::DataSources,
            "SELECT seq, ordinal, uri, source_type, identifier, transformation, destination, \
                    direction, metadata \
             FROM data_sources WHERE seq >= ?1 AND seq < ?2 ORDER BY seq, ordinal",
        ),
        (
            LineageTable::ComplianceEvents,
            "SELECT seq, ordinal, framework, event_type, risk_level, details, mitigation \
             FROM compliance_events WHERE seq >= ?1 AND seq < ?2 ORDER BY seq, ordinal",
        ),
    ];
    for (table, sql) in tables {
        let mut stmt = store.conn.prepare(sql).map_err(map_err)?;
        let width = stmt.column_count() - 2;
        let mut rows = stmt
            .query([
                from.min(i64::MAX as u64) as i64,
                to.min(i64::MAX as u64) as i64,
            ])
            .map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let get = |i: usize| row.get_ref(i).map_err(map_err);
            let mut malformed = false;
            let mut values: [Option<&[u8]>; 7] = [None; 7];
            for (k, value) in values.iter_mut().enumerate().take(width) {
                *value = match get(k + 2)? {
                    ValueRef::Null => None,
                    ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
                    ValueRef::Integer(_) | ValueRef::Real(_) => {
                        malformed = true;
                        None
                    }
                };
            }
            let (seq, ordinal) = match (get(0)?, get(1)?) {
                (ValueRef::Integer(seq), ValueRef::Integer(ordinal)) => (seq, ordinal),
                // A key of another type is an edit too; it is reported at seq 0's place
                // rather than stopping the verification.
                _ => (0, -1),
            };
            sink(&LineageRow {
                seq: seq as u64,
                table,
                ordinal,
                values: &values[..width],
                malformed,
            })?;
        }
    }
    Ok(())
}
pub(super) fn tree_nodes(
    store: &mut SqliteStore,
    level: u32,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Hash)>, StoreError> {
    let mut stmt = store
        .conn
        .prepare_cached(
            "SELECT idx, hash FROM tree_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
        )
        .map_err(map_err)?;
    let mut rows = stmt
        .query([level as i64, from as i64, to.min(i64::MAX as u64) as i64])
        .map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let index = row.get::<_, i64>(0).map_err(map_err)? as u64;
        if let Some(hash) = row
            .get_ref(1)
            .ok()
            .and_then(|v| v.as_blob().ok())
            .and_then(Hash::from_slice)
        {
            out.push((index, hash));
        }
    }
    Ok(out)
}

pub(super) fn put_tree_nodes(store: &mut SqliteStore, nodes: &[Node]) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let tx = store.conn.transaction().map_err(map_err)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO tree_nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
            )
            .map_err(map_err)?;
        for node in nodes {
            stmt.execute(rusqlite::params![
                node.level as i64,
                node.index as i64,
                node.hash.0.as_slice()
            ])
            .map_err(map_err)?;
        }
    }
    tx.commit().map_err(map_err)
}
