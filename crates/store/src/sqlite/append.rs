//! Appending a batch: one transaction, cached statements, and the log's next sequence number
//! kept in `log_state`, not derived from `MAX(seq)`, so that deleting the newest (expired) events
//! can never make a sequence number be handed out twice.

use std::sync::LazyLock;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params, params_from_iter};

use super::schema::{self, commit_counters, next_seq};
use super::{Layout, keys, text_tail};
use crate::columns;
use crate::event_columns::{EVENT_COLUMNS, META, RECEIVED_AT, Value, column_list};
use crate::store::Entry;

/// The statement that writes an entry's row of `events`, from the column table.
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=EVENT_COLUMNS.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO events ({}) VALUES ({})",
        column_list(&[]),
        placeholders.join(", ")
    )
});

/// The same for a file at a schema from before receive times (only a test writes one): every
/// column but the last, `received_at`.
static INSERT_EVENT_WITHOUT_RECEIVED_AT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> = EVENT_COLUMNS
        .iter()
        .map(|c| c.name)
        .filter(|name| *name != RECEIVED_AT)
        .collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO events ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    )
});

/// A column value as SQLite binds it: an id as its 16 bytes, a flag as 0 or 1.
struct Bound<'a>(Value<'a>);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match &self.0 {
            Value::Int(Some(n)) => ValueRef::Integer(*n),
            Value::Text(Some(t)) => ValueRef::Text(t.as_bytes()),
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Value::Id(Some(id)) => ValueRef::Blob(id),
            Value::Bytes(b) => ValueRef::Blob(b),
            Value::Int(None) | Value::Text(None) | Value::Id(None) => ValueRef::Null,
        }))
    }
}

/// Why [`append`] wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Another process appended first: the log's next seq, to renumber from.
    SeqTaken(u64),
    /// The pseudonym mapping's erasure count is this, not what the caller saw.
    ErasedSince(u64),
}

/// Appends `entries` in one transaction, or reports why not; on success, how many events are
/// now past the lookup keys' or the text index's reach, whichever is longer (the tail
/// [`settle`] indexes).
///
/// The transaction is IMMEDIATE (it takes the write lock at once) and checks the log's counter
/// (and, with `erasures_seen`, the erasure count) before inserting: when another process
/// appended (or erased) first, nothing is written and the caller gets a [`Refused`].
pub(super) fn append(
    conn: &mut Connection,
    entries: &[Entry<'_>],
    layout: Layout,
    erasures_seen: Option<u64>,
) -> Result<Result<u64, Refused>, rusqlite::Error> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Ok(0));
    };
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    let counters = commit_counters(&tx, layout.pseudonym_epoch)?;
    if counters.next_seq != first.seq {
        return Ok(Err(Refused::SeqTaken(counters.next_seq)));
    }
    if let (Some(seen), Some(count)) = (erasures_seen, counters.erasures)
        && seen != count
    {
        return Ok(Err(Refused::ErasedSince(count)));
    }
    let mut tail = 0;
    {
        let mut insert_event = tx.prepare_cached(if layout.received_at {
            &INSERT_EVENT
        } else {
            &INSERT_EVENT_WITHOUT_RECEIVED_AT
        })?;
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
        let mut packed = Vec::new();
        for entry in entries {
            let sealed = entry.sealed;
            let e = &sealed.event;
            let seq = entry.seq as i64;
            // The sealed bytes as they are, bound as text without checking them again: they
            // are the canonical JSON the seal wrote (UTF-8 by construction), and the row must
            // hold exactly the bytes the commitment covers.
            let body = ToSqlOutput::Borrowed(ValueRef::Text(&sealed.personal_json));
            // From schema 18 `meta` is stored in its dense form (`packed.rs`), the other
            // columns as the column table gives them.
            let meta = if layout.packed {
                super::packed::pack(&sealed.meta_json, &mut packed)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                Some(Value::Bytes(&packed))
            } else {
                None
            };
            insert_event.execute(params_from_iter(
                EVENT_COLUMNS
                    .iter()
                    .filter(|column| layout.received_at || column.name != RECEIVED_AT)
                    .map(|column| match meta {
                        Some(packed) if column.name == META => Bound(packed),
                        _ => Bound((column.value)(entry)),
                    }),
            ))?;
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
        if layout.text_behind {
            let text_tail = last.seq + 1 - counters.text_indexed_to;
            if text_tail >= text_tail::TEXT_BULK {
                text_tail::index_text(&tx, counters.text_indexed_to, last.seq + 1)?;
            } else {
                tail = text_tail;
            }
        } else if layout.text_in_bulk {
            // The commit's payloads, in seq order, as one statement: no trigger program per
            // row, and FTS5 gathers their words in memory and writes them as one segment at
            // the commit.
            tx.prepare_cached(
                "INSERT INTO payload_text (rowid, body)
                 SELECT seq, body FROM payloads WHERE seq >= ?1 AND seq <= ?2",
            )?
            .execute([first.seq as i64, last.seq as i64])?;
        }
        if layout.pseudonyms {
            super::pseudonyms::insert_links(&tx, entries)?;
        }
        tx.execute(
            "UPDATE log_state SET value = ?1 WHERE key = 'next_seq'",
            [(last.seq + 1).to_string()],
        )?;
        if layout.bulk_keys {
            let indexed_to = counters.indexed_to;
            let keys_tail = last.seq + 1 - indexed_to;
            if keys_tail >= schema::BULK {
                keys::index_tail(&tx, indexed_to, last.seq + 1, layout)?;
            } else {
                tail = tail.max(keys_tail);
            }
        }
    }
    tx.commit()?;
    Ok(Ok(tail))
}

/// The shortest tails [`settle`] indexes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Least {
    pub(super) keys: u64,
    pub(super) text: u64,
}

impl Least {
    /// When the writer has nothing queued: either tail once it is [`keys::SETTLE`] long.
    pub(super) const IDLE: Least = Least {
        keys: keys::SETTLE,
        text: keys::SETTLE,
    };
    /// Before the writer stops: the whole text tail, so that the file at rest has its whole
    /// text index; the keys as when idle.
    pub(super) const STOPPING: Least = Least {
        keys: keys::SETTLE,
        text: 1,
    };
}

/// Adds the keys and the words of the unindexed tail (the words only when the file indexes them
/// behind the writer) when either is at least as long as `least` says: what the writer does
/// when it has nothing queued, and before it stops. Returns whether it wrote anything.
pub(super) fn settle(
    conn: &mut Connection,
    layout: Layout,
    least: Least,
) -> Result<bool, rusqlite::Error> {
    let longest = |conn: &Connection| -> Result<(u64, u64, u64), rusqlite::Error> {
        let next = next_seq(conn)?;
        let text_from = if layout.text_behind {
            text_tail::text_indexed_to(conn)?
        } else {
            next
        };
        Ok((keys::indexed_to(conn)?, text_from, next))
    };
    let due = |(keys_from, text_from, to): (u64, u64, u64)| {
        (
            to.saturating_sub(keys_from) >= least.keys,
            to.saturating_sub(text_from) >= least.text,
        )
    };
    // A look without the write lock first: most idle moments have nothing to do.
    if due(longest(conn)?) == (false, false) {
        return Ok(false);
    }
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    let (keys_from, text_from, to) = longest(&tx)?;
    let (keys_due, text_due) = due((keys_from, text_from, to));
    if !(keys_due || text_due) {
        return Ok(false);
    }
    if keys_due {
        keys::index_tail(&tx, keys_from, to, layout)?;
    }
    // The words go whenever the file is written to anyway.
    text_tail::index_text(&tx, text_from, to)?;
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_columns::Kind;
    use crate::{SqliteOptions, SqliteStore};

    /// The column table names every column of `events` that the migrations make, in order and
    /// with SQLite's type for its kind: a column added to one and not the other fails here.
    #[test]
    fn the_column_table_is_the_events_table() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(dir.path().join("audit.db"), SqliteOptions::default()).unwrap();
        let mut stmt = store
            .conn
            .prepare("SELECT name, type FROM pragma_table_info('events') ORDER BY cid")
            .unwrap();
        let table: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let listed: Vec<(String, String)> = EVENT_COLUMNS
            .iter()
            .map(|c| {
                let ty = match c.kind {
                    Kind::Int | Kind::Bool => "INTEGER",
                    Kind::Text => "TEXT",
                    Kind::Id | Kind::Bytes => "BLOB",
                };
                (c.name.to_string(), ty.to_string())
            })
            .collect();
        assert_eq!(listed, table);
    }
}
