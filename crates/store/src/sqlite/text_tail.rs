//! The full-text index written behind the writer: the words of a commit's payloads go into
//! `payload_text` a few hundred events at a time, not with every commit.
//!
//! Why: FTS5 writes the words a statement gathered as a new segment of the index, and with one
//! call in flight every commit holds one event, so the index got a segment per event again (the
//! cost the bulk insert per commit removed for large batches): about a sixth of the writer's CPU
//! per one-event commit (see docs/benchmarks.md, "the fixed cost of a commit").
//!
//! What keeps this correct: `log_state.text_indexed_to` says how far `payload_text` reaches,
//! and is moved in the transaction that adds the words. A search reads the index below it and
//! the *tail* from it on, which [`fill_search_tail`] copies into a `temp` FTS5 table of the
//! reader's own connection with the same tokenizer (FTS5's own cutting into words, not a copy
//! of it), in the same read transaction as the search. The triggers that take an erased or
//! expired payload out of the index act only below the bound (a `'delete'` of an entry an
//! external-content FTS5 table never had corrupts it); a tail payload erased or expired is
//! simply not there when its part of the tail is indexed, as the index is filled from
//! `payloads`.

use rusqlite::Connection;

use super::schema::{bound, set_bound};

/// The tail's length at which a commit indexes it in its own transaction, whether or not the
/// writer is ever idle. A `batch` commit of thousands of events indexes its own, as before.
pub(super) const TEXT_BULK: u64 = 1_024;

/// Where `payload_text` ends: the first seq whose words are not in it yet.
pub(super) fn text_indexed_to(conn: &Connection) -> Result<u64, rusqlite::Error> {
    bound(conn, "text_indexed_to")
}

/// Adds the words of the payloads from `from` up to `to` (the log's next seq) in one statement,
/// inside the caller's transaction, and moves the bound to `to`.
pub(super) fn index_text(conn: &Connection, from: u64, to: u64) -> Result<(), rusqlite::Error> {
    if to <= from {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO payload_text (rowid, body)
         SELECT seq, body FROM payloads WHERE seq >= ?1 AND seq < ?2",
    )?
    .execute([from as i64, to as i64])?;
    set_bound(conn, "text_indexed_to", to)
}

/// The reader's `temp` table of the tail's words, made on first use; its columns, tokenizer
/// and rowids are `payload_text`'s.
const MAKE_SEARCH_TAIL: &str = "
    CREATE VIRTUAL TABLE IF NOT EXISTS temp.payload_tail USING fts5(
        body, tokenize = 'unicode61 remove_diacritics 0'
    )";

/// Fills the reader's `temp.payload_tail` with the payloads past `text_indexed_to`, to be read
/// in the same transaction (`behind`: the file's index is written behind the writer; else the
/// table stays empty, as everything is indexed).
pub(super) fn fill_search_tail(conn: &Connection, behind: bool) -> Result<(), rusqlite::Error> {
    conn.execute_batch(MAKE_SEARCH_TAIL)?;
    conn.prepare_cached("DELETE FROM temp.payload_tail")?
        .execute([])?;
    if behind {
        conn.prepare_cached(
            "INSERT INTO temp.payload_tail (rowid, body)
             SELECT seq, body FROM payloads WHERE seq >= ?1",
        )?
        .execute([text_indexed_to(conn)? as i64])?;
    }
    Ok(())
}

/// Empties the reader's tail once its search is answered: erased words do not wait in it.
pub(super) fn clear_search_tail(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("DELETE FROM temp.payload_tail")?
        .execute([])?;
    Ok(())
}
