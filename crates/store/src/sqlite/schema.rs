//! What every other module of the SQLite backend reads and none of them owns: the counters
//! and bounds in `log_state`, and the shape of a lookup key. It imports nothing of its
//! siblings, so that the modules above it depend one way: `append` → `keys` → `totals`, and
//! `read`, `report` and `derived` on those, never back.

use rusqlite::{Connection, OptionalExtension};

/// How many unindexed events the writer lets gather before it adds their keys. Larger means
/// fewer page writes per event and a longer tail for keyed queries to read row by row (about a
/// millisecond per thousand events).
pub(super) const BULK: u64 = 4_096;

/// A bound kept in `log_state` (`indexed_to`, `totaled_to`): 0 while it has no row, as
/// nothing is behind it yet.
pub(super) fn bound(conn: &Connection, key: &str) -> Result<u64, rusqlite::Error> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM log_state WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    text.as_deref().map_or(Ok(0), counter)
}

/// A counter of `log_state`, which keeps its values as text.
fn counter(text: &str) -> Result<u64, rusqlite::Error> {
    text.parse::<u64>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Moves the bound `key` to `to`, inside the caller's transaction.
pub(super) fn set_bound(conn: &Connection, key: &str, to: u64) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO log_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, &to.to_string()])?;
    Ok(())
}

/// Which column a lookup key comes from, as [`lookup_key_hash`] tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LookupField {
    Session = 1,
    User = 2,
}

/// The events table's column of `field`; the number that stands for it in `event_keys` is its
/// [`LookupField`] discriminant.
pub(super) fn column(field: LookupField) -> &'static str {
    match field {
        LookupField::Session => "session_id",
        LookupField::User => "user_id",
    }
}

/// One lookup key's term of the index's sum for `verify` (see `keys::digest`), under the run's random key `state`.
pub(super) fn lookup_key_hash(
    state: &std::collections::hash_map::RandomState,
    field: LookupField,
    value: &[u8],
    seq: u64,
) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fixed-length head then the value: an unambiguous encoding in two writes (the `Hash`
    // impl of a tuple makes four, and this runs six million times in a million-entry verify).
    let mut head = [0u8; 9];
    head[0] = field as u8;
    head[1..].copy_from_slice(&seq.to_le_bytes());
    let mut hasher = state.build_hasher();
    hasher.write(&head);
    hasher.write(value);
    hasher.finish()
}

/// The log's `next_seq` counter: the seq the next appended entry gets.
pub(super) fn next_seq(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let text: String = conn.query_row(
        "SELECT value FROM log_state WHERE key = 'next_seq'",
        [],
        |r| r.get(0),
    )?;
    counter(&text)
}

/// What a commit reads before it writes, in ONE statement: the log's `next_seq`, how far the
/// lookup keys and the text index reach (0 without the bound) and, when the schema has it, the pseudonym
/// mapping's erasure count. Three statements before (the count in a transaction of its own,
/// outside the commit), when a commit of one event (one call in flight) runs about seven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CommitCounters {
    pub(super) next_seq: u64,
    pub(super) indexed_to: u64,
    /// How far the text index reaches (0 without the bound: a file that indexes every commit).
    pub(super) text_indexed_to: u64,
    pub(super) erasures: Option<u64>,
}

/// Reads the [`CommitCounters`] inside the caller's transaction; `with_epoch`: the schema has
/// `pseudonym_epoch`.
pub(super) fn commit_counters(
    conn: &Connection,
    with_epoch: bool,
) -> Result<CommitCounters, rusqlite::Error> {
    let sql = if with_epoch {
        "SELECT (SELECT value FROM log_state WHERE key = 'next_seq'),
                (SELECT value FROM log_state WHERE key = 'indexed_to'),
                (SELECT value FROM log_state WHERE key = 'text_indexed_to'),
                (SELECT n FROM pseudonym_epoch)"
    } else {
        "SELECT (SELECT value FROM log_state WHERE key = 'next_seq'),
                (SELECT value FROM log_state WHERE key = 'indexed_to'),
                (SELECT value FROM log_state WHERE key = 'text_indexed_to'),
                NULL"
    };
    let (next_seq, indexed_to, text_indexed_to, erasures) =
        conn.prepare_cached(sql)?.query_row([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
    Ok(CommitCounters {
        next_seq: counter(&next_seq)?,
        indexed_to: indexed_to.as_deref().map_or(Ok(0), counter)?,
        text_indexed_to: text_indexed_to.as_deref().map_or(Ok(0), counter)?,
        erasures: erasures.map(|n| n as u64),
    })
}
