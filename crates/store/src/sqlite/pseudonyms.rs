//! SQLite's side of the pseudonym mapping (`pseudonyms`, schema 10): stored with the events
//! that first name an identity, read by the recorder at start and by readers, deleted with
//! `secure_delete` by a subject's erasure (see `crate::reveal`, `crate::subject`).

use mcp_audit_core::pseudonym::{IdentityField, Link};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension};

use crate::store::Entry;

/// How many links one statement inserts: 3 parameters each, far below SQLite's limit, and
/// few distinct statement shapes for the connection's statement cache.
const LINKS_PER_STATEMENT: usize = 64;

/// Stores the links the entries carry, in the caller's transaction. `OR IGNORE`: a pseudonym
/// is random, so one already present is the same row written before.
///
/// Sorted by pseudonym and written [`LINKS_PER_STATEMENT`] to a statement: the pseudonyms are
/// random, so in the order of the events each new row seeks a page anywhere in the table's
/// B-tree; sorted, a commit's rows walk it once in key order (a page that takes several is
/// visited once), and a statement per row cost a statement's overhead per row. (Not measured
/// apart from the text index's change of the same round; see `docs/benchmarks.md`.)
pub(super) fn insert_links<'a>(
    conn: &Connection,
    entries: &'a [Entry<'_>],
) -> rusqlite::Result<()> {
    let mut links: Vec<&Link> = entries.iter().flat_map(|e| &e.sealed.links).collect();
    if links.is_empty() {
        return Ok(());
    }
    links.sort_unstable_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
    links.dedup_by(|a, b| a.pseudonym == b.pseudonym);
    for chunk in links.chunks(LINKS_PER_STATEMENT) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let mut insert = conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO pseudonyms (pseudonym, field, identity) VALUES {rows}"
        ))?;
        let text = |t: &'a str| ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes()));
        let values = chunk.iter().flat_map(|link| {
            [
                text(&link.pseudonym),
                text(link.field.as_str()),
                text(&link.identity),
            ]
        });
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

/// Every row of the mapping (the recorder's cache at start), or those of `identity` alone.
pub(super) fn links(conn: &Connection, identity: Option<&str>) -> rusqlite::Result<Vec<Link>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pseudonym, field, identity FROM pseudonyms
          WHERE ?1 IS NULL OR identity = ?1 ORDER BY identity, field, pseudonym",
    )?;
    let rows = stmt.query_map([identity], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut links = Vec::new();
    for row in rows {
        let (pseudonym, field, identity) = row?;
        // A field no writer uses: not ours to interpret.
        if let Some(field) = IdentityField::parse(&field) {
            links.push(Link {
                pseudonym,
                field,
                identity,
            });
        }
    }
    Ok(links)
}

/// The identity `pseudonym` stands for, while the mapping has it.
pub(super) fn identity(conn: &Connection, pseudonym: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT identity FROM pseudonyms WHERE pseudonym = ?1")?
        .query_row([pseudonym], |r| r.get(0))
        .optional()
}

/// How many erasures deleted rows of the mapping (see `crate::erasure_watch`).
pub(super) fn erasures(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT n FROM pseudonym_epoch")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Deletes the rows of `pseudonyms`, overwriting the freed bytes (`secure_delete`), and, when
/// the file has the count (`counted`) and a row went, counts the erasure in the same
/// transaction; returns how many rows there were. The write-ahead log's copies go with the
/// next scrub.
pub(super) fn forget(
    conn: &mut Connection,
    pseudonyms: &[String],
    counted: bool,
) -> rusqlite::Result<u64> {
    conn.pragma_update(None, "secure_delete", true)?;
    let deleted = (|| -> rusqlite::Result<u64> {
        let tx = conn.transaction()?;
        let mut n = 0;
        {
            let mut delete = tx.prepare_cached("DELETE FROM pseudonyms WHERE pseudonym = ?1")?;
            for pseudonym in pseudonyms {
                n += delete.execute([pseudonym])? as u64;
            }
        }
        if counted && n > 0 {
            tx.execute("UPDATE pseudonym_epoch SET n = n + 1", [])?;
        }
        tx.commit()?;
        Ok(n)
    })();
    let restored = conn.pragma_update(None, "secure_delete", false);
    let n = deleted?;
    restored?;
    Ok(n)
}

/// For a reader of a file from before the mapping (which it does not migrate): an empty
/// mapping of its own, so that filters and lookups read as they do on a newer file.
pub(super) const EMPTY_FOR_READERS: &str =
    "CREATE TEMP TABLE IF NOT EXISTS pseudonyms (pseudonym TEXT PRIMARY KEY, field TEXT NOT NULL,
                                                identity TEXT NOT NULL)";
