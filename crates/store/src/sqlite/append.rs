//! Appending a batch: one transaction, cached statements, and the log's next sequence number
//! kept in `log_state`, not derived from `MAX(seq)`, so that deleting the newest (expired) events
//! can never make a sequence number be handed out twice.

use rusqlite::{Connection, params};

use super::schema::{self, next_seq};
use super::{Layout, keys};
use crate::columns;
use crate::store::Entry;

/// Appends `entries` in one transaction, or reports that their seqs are taken.
///
/// The transaction is IMMEDIATE (it takes the write lock at once) and checks the log's counter
/// before inserting: when another process appended first, nothing is written and the caller gets
/// `Ok(Err(next))` to renumber from.
pub(super) fn append(
    conn: &mut Connection,
    entries: &[Entry<'_>],
    layout: Layout,
) -> Result<Result<(), u64>, rusqlite::Error> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Ok(()));
    };
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    let next = next_seq(&tx)?;
    if next != first.seq {
        return Ok(Err(next));
    }
    {
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO events (seq, id, ts, kind, action, operation, user_id, session_id,
                correlation_id, server_name, resource_type, resource_id, outcome, classification,
                requires_review, data_subject_id, expires_at, duration_us, completes, meta,
                commitment, leaf_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22)",
        )?;
        let mut insert_payload =
            tx.prepare_cached("INSERT INTO payloads (seq, salt, body) VALUES (?1, ?2, ?3)")?;
        let mut insert_source = tx.prepare_cached(
            "INSERT INTO data_sources (seq, ordinal, uri, source_type, identifier, transformation,
                destination, direction, metadata)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut insert_compliance = tx.prepare_cached(
            "INSERT INTO compliance_events (seq, ordinal, framework, event_type, risk_level,
                details, mitigation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for entry in entries {
            let sealed = entry.sealed;
            let e = &sealed.event;
            let seq = entry.seq as i64;
            let meta = std::str::from_utf8(&sealed.meta_json).unwrap_or_default();
            let body = std::str::from_utf8(&sealed.personal_json).unwrap_or_default();
            insert_event.execute(params![
                seq,
                e.id.0.as_bytes().as_slice(),
                e.timestamp.as_microsecond(),
                e.kind.as_str(),
                e.action.as_str(),
                e.operation,
                e.actor.user_id,
                e.session_id,
                e.correlation_id,
                e.target.server_name,
                e.target.resource_type,
                e.target.resource_id,
                e.outcome.as_str(),
                columns::classification(e).as_str(),
                e.compliance.requires_review.unwrap_or(false),
                e.compliance.data_subject_id,
                e.compliance.expires_at.map(|t| t.as_microsecond()),
                columns::duration_us(e),
                e.completes.map(|c| c.0.as_bytes().to_vec()),
                meta,
                sealed.commitment.as_bytes().as_slice(),
                entry.leaf_hash.as_bytes().as_slice(),
            ])?;
            insert_payload.execute(params![seq, sealed.salt.as_slice(), body])?;
            for (ordinal, s) in e.data_sources.iter().enumerate() {
                insert_source.execute(params![
                    seq,
                    ordinal as i64,
                    s.uri,
                    s.source_type,
                    s.identifier,
                    s.transformation,
                    s.destination,
                    columns::direction(s.direction),
                    s.metadata.as_ref().map(|m| m.to_string()),
                ])?;
            }
            for (ordinal, c) in e.compliance_events.iter().enumerate() {
                insert_compliance.execute(params![
                    seq,
                    ordinal as i64,
                    c.framework,
                    c.event_type,
                    columns::risk(c.risk_level),
                    c.details.as_ref().map(|d| d.to_string()),
                    columns::mitigation(c),
                ])?;
            }
        }
        tx.execute(
            "UPDATE log_state SET value = ?1 WHERE key = 'next_seq'",
            [(last.seq + 1).to_string()],
        )?;
        if layout.bulk_keys {
            let indexed_to = keys::indexed_to(&tx)?;
            if last.seq + 1 - indexed_to >= schema::BULK {
                keys::index_tail(&tx, indexed_to, last.seq + 1, layout)?;
            }
        }
    }
    tx.commit().map(Ok)
}

/// Adds the keys of the unindexed tail when it is at least [`keys::SETTLE`] long: what the
/// writer does when it has nothing queued. Returns whether it wrote anything.
pub(super) fn settle(conn: &mut Connection, layout: Layout) -> Result<bool, rusqlite::Error> {
    // A look without the write lock first: most idle moments have nothing to do.
    if next_seq(conn)?.saturating_sub(keys::indexed_to(conn)?) < keys::SETTLE {
        return Ok(false);
    }
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    let (from, to) = (keys::indexed_to(&tx)?, next_seq(&tx)?);
    if to.saturating_sub(from) < keys::SETTLE {
        return Ok(false);
    }
    keys::index_tail(&tx, from, to, layout)?;
    tx.commit()?;
    Ok(true)
}
