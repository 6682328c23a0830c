//! Appending a batch: one transaction that checks the log's counter, streams the rows with
//! binary `COPY` (measured faster than multi-row `INSERT`s, see `docs/benchmarks.md`), moves the
//! counter and commits once.
//!
//! The counter lives in `logs.next_seq` and is read `FOR UPDATE`, so two writers of one log
//! (which the session advisory lock already refuses) would still serialise and the second would
//! get [`StoreError::SeqConflict`] rather than interleave.

use mcp_audit_core::AuditEvent;
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::bound::Bound;
use super::{WriteMethod, map_err};
use crate::columns;
use crate::error::StoreError;
use crate::event_columns::{EVENT_COLUMNS, Value, column_list};
use crate::store::Entry;

/// Appends `entries` (consecutive seqs) to `log_id` in one committed transaction. With
/// `erasures_seen`, writes nothing and fails with [`StoreError::ErasedSince`] when the pseudonym
/// mapping's erasure count moved from it (read with the log's counter: no round trip of its own).
pub(super) fn append(
    mut tx: Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
    method: WriteMethod,
    erasures_seen: Option<u64>,
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(());
    };
    // The log's row is made by its first append, so that stores opened only to read or
    // clean up leave no empty log behind.
    tx.execute(
        "INSERT INTO logs (log_id, next_seq, created_at) VALUES ($1, 0, $2)
         ON CONFLICT (log_id) DO NOTHING",
        &[&log_id, &jiff::Timestamp::now().as_microsecond()],
    )
    .map_err(map_err)?;
    let (next, erasures) = counters(&mut tx, log_id)?;
    if next != first.seq {
        return Err(StoreError::SeqConflict { next });
    }
    if let Some(seen) = erasures_seen
        && seen != erasures
    {
        return Err(StoreError::ErasedSince { count: erasures });
    }
    match method {
        WriteMethod::Copy => {
            copy_ids(&mut tx, log_id, entries)?;
            copy_events(&mut tx, log_id, entries)?;
            copy_payloads(&mut tx, log_id, entries)?;
            copy_sources(&mut tx, log_id, entries)?;
        }
        WriteMethod::Insert => super::insert::insert_rows(&mut tx, log_id, entries)?,
    }
    copy_compliance(&mut tx, log_id, entries)?;
    super::pseudonyms::insert_links(&mut tx, entries)?;
    tx.execute(
        "UPDATE logs SET next_seq = $2 WHERE log_id = $1",
        &[&log_id, &(last.seq as i64 + 1)],
    )
    .map_err(map_err)?;
    tx.commit().map_err(map_err)
}

/// The log's next seq, locked for this transaction (`FOR UPDATE` locks the log's row alone),
/// and the pseudonym mapping's erasure count, in one statement.
fn counters(tx: &mut Transaction<'_>, log_id: &str) -> Result<(u64, u64), StoreError> {
    let row = tx
        .query_one(
            "SELECT next_seq, (SELECT n FROM pseudonym_epoch) FROM logs
              WHERE log_id = $1 FOR UPDATE OF logs",
            &[&log_id],
        )
        .map_err(map_err)?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// Streams one table's rows with binary `COPY`: opens the sink, lets `rows` write each row and
/// finishes, so that each table below says only its statement, column types and values.
fn copy_in(
    tx: &mut Transaction<'_>,
    statement: &str,
    types: &[Type],
    rows: impl FnOnce(&mut BinaryCopyInWriter<'_>) -> Result<(), postgres::Error>,
) -> Result<(), StoreError> {
    let sink = tx.copy_in(statement).map_err(map_err)?;
    let mut writer = BinaryCopyInWriter::new(sink, types);
    rows(&mut writer).map_err(map_err)?;
    writer.finish().map(drop).map_err(map_err)
}

/// The ids first: a duplicate fails the batch here, before the large rows are sent.
fn copy_ids(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    copy_in(
        tx,
        "COPY event_ids (id, log_id, seq, ts) FROM STDIN (FORMAT binary)",
        &[Type::UUID, Type::TEXT, Type::INT8, Type::INT8],
        |writer| {
            for entry in entries {
                let e = &entry.sealed.event;
                writer.write(&[
                    &e.id.0,
                    &log_id,
                    &(entry.seq as i64),
                    &e.timestamp.as_microsecond(),
                ])?;
            }
            Ok(())
        },
    )
}

/// The entries' rows of `events`: the log id, then the column table's columns.
fn copy_events(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    let types: Vec<Type> = std::iter::once(Type::TEXT)
        .chain(EVENT_COLUMNS.iter().map(|c| c.kind.pg_type()))
        .collect();
    let statement = format!(
        "COPY events ({}) FROM STDIN (FORMAT binary)",
        column_list(&["log_id"])
    );
    copy_in(tx, &statement, &types, |writer| {
        let mut row: Vec<Bound<'_>> = Vec::with_capacity(types.len());
        for entry in entries {
            row.clear();
            row.push(Bound(Value::Text(Some(log_id))));
            row.extend(EVENT_COLUMNS.iter().map(|c| Bound((c.value)(entry))));
            writer.write_raw(row.iter())?;
        }
        Ok(())
    })
}

fn copy_payloads(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    copy_in(
        tx,
        "COPY payloads (log_id, seq, ts, salt, body) FROM STDIN (FORMAT binary)",
        &[Type::TEXT, Type::INT8, Type::INT8, Type::BYTEA, Type::TEXT],
        |writer| {
            for entry in entries {
                let sealed = entry.sealed;
                let body = std::str::from_utf8(&sealed.personal_json).unwrap_or_default();
                writer.write(&[
                    &log_id,
                    &(entry.seq as i64),
                    &sealed.event.timestamp.as_microsecond(),
                    &sealed.salt.as_slice(),
                    &body,
                ])?;
            }
            Ok(())
        },
    )
}

/// A child row's key values: its event's log, seq and time, and its ordinal among the event's
/// items of that kind.
type ChildKey<'a> = [&'a (dyn ToSql + Sync); 4];

/// The column types of [`ChildKey`].
const CHILD_KEY_TYPES: [Type; 4] = [Type::TEXT, Type::INT8, Type::INT8, Type::INT4];

/// Copies the rows of a child table (lineage, compliance): few per event, often none, so the
/// table is copied only when the batch has rows for it. `items` picks an event's items and
/// `write` writes one row, its key followed by columns of `types`.
fn copy_children<T>(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
    statement: &str,
    types: &[Type],
    items: fn(&AuditEvent) -> &[T],
    write: impl Fn(&mut BinaryCopyInWriter<'_>, ChildKey<'_>, &T) -> Result<(), postgres::Error>,
) -> Result<(), StoreError> {
    if entries.iter().all(|e| items(&e.sealed.event).is_empty()) {
        return Ok(());
    }
    copy_in(
        tx,
        statement,
        &[&CHILD_KEY_TYPES, types].concat(),
        |writer| {
            for entry in entries {
                let e = &entry.sealed.event;
                let seq = entry.seq as i64;
                let ts = e.timestamp.as_microsecond();
                for (ordinal, item) in items(e).iter().enumerate() {
                    write(writer, [&log_id, &seq, &ts, &(ordinal as i32)], item)?;
                }
            }
            Ok(())
        },
    )
}

fn copy_sources(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    copy_children(
        tx,
        log_id,
        entries,
        "COPY data_sources (log_id, seq, ts, ordinal, uri, source_type, identifier,
            transformation, destination, direction, metadata) FROM STDIN (FORMAT binary)",
        &[Type::TEXT; 7],
        |e| &e.data_sources,
        |writer, [log, seq, ts, ordinal], s| {
            writer.write(&[
                log,
                seq,
                ts,
                ordinal,
                &s.uri,
                &s.source_type,
                &s.identifier,
                &s.transformation,
                &s.destination,
                &columns::direction(s.direction),
                &s.metadata.as_ref().map(|m| m.to_string()),
            ])
        },
    )
}

fn copy_compliance(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    copy_children(
        tx,
        log_id,
        entries,
        "COPY compliance_events (log_id, seq, ts, ordinal, framework, event_type,
            risk_level, details, mitigation) FROM STDIN (FORMAT binary)",
        &[Type::TEXT; 5],
        |e| &e.compliance_events,
        |writer, [log, seq, ts, ordinal], c| {
            writer.write(&[
                log,
                seq,
                ts,
                ordinal,
                &c.framework,
                &c.event_type,
                &columns::risk(c.risk_level),
                &c.details.as_ref().map(|d| d.to_string()),
                &columns::mitigation(c),
            ])
        },
    )
}
