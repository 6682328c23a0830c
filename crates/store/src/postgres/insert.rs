//! The other way to write a batch: one prepared multi-row `INSERT ... SELECT FROM unnest(...)`
//! per table, the batch's columns bound as arrays. Kept to be measured against binary `COPY`
//! (`benches/postgres.rs`), which won: see `docs/benchmarks.md`.

use postgres::Transaction;
use postgres::types::ToSql;
use uuid::Uuid;

use super::map_err;
use crate::columns;
use crate::error::StoreError;
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

    let ev = |f: fn(&Entry<'_>) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let kind = ev(|e| Some(e.sealed.event.kind.as_str().to_string()));
    let action = ev(|e| Some(e.sealed.event.action.as_str().to_string()));
    let operation = ev(|e| Some(e.sealed.event.operation.clone()));
    let user_id = ev(|e| e.sealed.event.actor.user_id.clone());
    let session_id = ev(|e| e.sealed.event.session_id.clone());
    let correlation_id = ev(|e| e.sealed.event.correlation_id.clone());
    let server_name = ev(|e| e.sealed.event.target.server_name.clone());
    let resource_type = ev(|e| e.sealed.event.target.resource_type.clone());
    let resource_id = ev(|e| e.sealed.event.target.resource_id.clone());
    let outcome = ev(|e| Some(e.sealed.event.outcome.as_str().to_string()));
    let classification = ev(|e| {
        Some(
            columns::classification(&e.sealed.event)
                .as_str()
                .to_string(),
        )
    });
    let data_subject_id = ev(|e| e.sealed.event.compliance.data_subject_id.clone());
    let meta = ev(|e| Some(String::from_utf8_lossy(&e.sealed.meta_json).into_owned()));
    let review: Vec<bool> = entries
        .iter()
        .map(|e| e.sealed.event.compliance.requires_review.unwrap_or(false))
        .collect();
    let expires: Vec<Option<i64>> = entries
        .iter()
        .map(|e| {
            e.sealed
                .event
                .compliance
                .expires_at
                .map(|t| t.as_microsecond())
        })
        .collect();
    let duration: Vec<Option<i64>> = entries
        .iter()
        .map(|e| columns::duration_us(&e.sealed.event))
        .collect();
    let completes: Vec<Option<Uuid>> = entries
        .iter()
        .map(|e| e.sealed.event.completes.map(|c| c.0))
        .collect();
    let commitment: Vec<&[u8]> = entries
        .iter()
        .map(|e| e.sealed.commitment.as_bytes().as_slice())
        .collect();
    let received: Vec<Option<i64>> = entries
        .iter()
        .map(|e| e.sealed.event.received_at.map(|t| t.as_microsecond()))
        .collect();
    let leaf: Vec<&[u8]> = entries
        .iter()
        .map(|e| e.leaf_hash.as_bytes().as_slice())
        .collect();
    tx.execute(
        "INSERT INTO events (log_id, seq, id, ts, kind, action, operation, user_id, session_id,
            correlation_id, server_name, resource_type, resource_id, outcome, classification,
            requires_review, data_subject_id, expires_at, duration_us, completes, meta,
            commitment, leaf_hash, received_at)
         SELECT * FROM unnest($1::text[], $2::int8[], $3::uuid[], $4::int8[], $5::text[],
            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::bool[], $17::text[], $18::int8[],
            $19::int8[], $20::uuid[], $21::text[], $22::bytea[], $23::bytea[], $24::int8[])",
        &[
            &log_ids,
            &seqs,
            &ids,
            &ts,
            &kind,
            &action,
            &operation,
            &user_id,
            &session_id,
            &correlation_id,
            &server_name,
            &resource_type,
            &resource_id,
            &outcome,
            &classification,
            &review,
            &data_subject_id,
            &expires,
            &duration,
            &completes,
            &meta,
            &commitment,
            &leaf,
            &received,
        ],
    )
    .map_err(map_err)?;

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
