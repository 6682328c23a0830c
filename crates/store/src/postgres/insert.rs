//! The other way to write a batch: one prepared multi-row `INSERT ... SELECT FROM unnest(...)`
//! per table, the batch's columns bound as arrays. Kept to be measured against binary `COPY`
//! (`benches/postgres.rs`), which won: see `docs/benchmarks.md`.

use postgres::Transaction;
use postgres::types::ToSql;
use uuid::Uuid;

use super::bound::Bound;
use super::map_err;
use crate::columns;
use crate::error::StoreError;
use crate::event_columns::{EVENT_COLUMNS, column_list};
use crate::store::Entry;

/// Writes the rows of `entries` to the four event tables and `event_ids`.
pub(super) fn insert_rows(
    tx: &mut Transaction<'_>,
    log_id: &str,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    let n = entries.len();
    let log_ids: Vec<&str> = vec![log_id; n];
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq as i64).collect();
    let ids: Vec<Uuid> = entries.iter().map(|e| e.sealed.event.id.0).collect();
    let ts: Vec<i64> = entries
        .iter()
        .map(|e| e.sealed.event.timestamp.as_microsecond())
        .collect();
    tx.execute(
        "INSERT INTO event_ids (id, log_id, seq, ts)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[])",
        &[&ids, &log_ids, &seqs, &ts],
    )
    .map_err(map_err)?;

    // The events' rows, a column at a time from the column table: the log id, then one
    // array per column.
    let columns: Vec<Vec<Bound<'_>>> = EVENT_COLUMNS
        .iter()
        .map(|c| entries.iter().map(|e| Bound((c.value)(e))).collect())
        .collect();
    let arrays: Vec<String> = std::iter::once("text")
        .chain(EVENT_COLUMNS.iter().map(|c| c.kind.pg_name()))
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&log_ids];
    params.extend(columns.iter().map(|c| c as &(dyn ToSql + Sync)));
    tx.execute(
        &format!(
            "INSERT INTO events ({}) SELECT * FROM unnest({})",
            column_list(&["log_id"]),
            arrays.join(", ")
        ),
        &params,
    )
    .map_err(map_err)?;

    let ev = |f: fn(&Entry<'_>) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let salt: Vec<&[u8]> = entries.iter().map(|e| e.sealed.salt.as_slice()).collect();
    let body = ev(|e| Some(String::from_utf8_lossy(&e.sealed.personal_json).into_owned()));
    tx.execute(
        "INSERT INTO payloads (log_id, seq, ts, salt, body)
         SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::bytea[], $5::text[])",
        &[&log_ids, &seqs, &ts, &salt, &body],
    )
    .map_err(map_err)?;

    // Lineage rows, flattened.
    let mut s_seq = Vec::new();
    let mut s_ts = Vec::new();
    let mut s_ord = Vec::new();
    let mut s_text: [Vec<Option<String>>; 7] = Default::default();
    for e in entries {
        let event = &e.sealed.event;
        for (ordinal, s) in event.data_sources.iter().enumerate() {
            s_seq.push(e.seq as i64);
            s_ts.push(event.timestamp.as_microsecond());
            s_ord.push(ordinal as i32);
            for (column, value) in s_text.iter_mut().zip([
                Some(s.uri.clone()),
                s.source_type.clone(),
                s.identifier.clone(),
                s.transformation.clone(),
                s.destination.clone(),
                Some(columns::direction(s.direction).to_string()),
                s.metadata.as_ref().map(|m| m.to_string()),
            ]) {
                column.push(value);
            }
        }
    }
    if !s_seq.is_empty() {
        let logs: Vec<&str> = vec![log_id; s_seq.len()];
        // The seven text columns follow the four keys, in the order of `s_text`.
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&logs, &s_seq, &s_ts, &s_ord];
        params.extend(s_text.iter().map(|c| c as &(dyn ToSql + Sync)));
        tx.execute(
            "INSERT INTO data_sources (log_id, seq, ts, ordinal, uri, source_type, identifier,
                transformation, destination, direction, metadata)
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int4[], $5::text[],
                $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])",
            &params,
        )
        .map_err(map_err)?;
    }
    // Compliance events are rare: the COPY path writes them.
    Ok(())
}
