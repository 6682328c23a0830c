//! Lookup keys indexed in bulk: the session and user of each event, in the
//! `event_keys` table, written a few thousand events at a time instead of with every commit.
//!
//! Why not ordinary indexes on `events`: their keys are random (a thousand users, ten thousand
//! sessions), so each event lands on its own leaf page of each index, and every commit writes
//! every page it touched into the WAL in full. With 30-odd events per `sync` commit that was
//! about a hundred 16 KB pages per commit for a few kilobytes of data, and the writer spent most
//! of its time writing them. Deferred, the keys of [`schema::BULK`] events go in at once, sorted,
//! and share their pages: a few times fewer page writes per event.
//!
//! The operation (the tool's name) keeps an ordinary index, `(operation, seq)`: with tens of
//! tools, not thousands, a commit touches few of its pages, and every key here is one more that
//! `verify` must read back and hash.
//!
//! What keeps this correct: `log_state.indexed_to` says how far `event_keys` reaches, and is
//! moved in the same transaction that adds the keys. Events from there on (the *tail*, fewer
//! than [`schema::BULK`]) are found by reading them directly, which [`restrict`] builds into
//! every keyed lookup, so a query sees every event whether or not its keys are in yet.

use rusqlite::Connection;

use super::Layout;
use super::schema::{self, LookupField, bound, lookup_key_hash, set_bound};
use crate::query::Filter;
use crate::sql::{SqlValue, Where};

/// When the writer has nothing queued, it indexes a tail at least this long, so that a quiet
/// log does not keep a tail of thousands of events for its queries to read.
pub(super) const SETTLE: u64 = 256;

/// The SQL that adds the keys of the events from `?1` on, sorted by key so that the B-tree is
/// filled page by page. `OR IGNORE`: a key already present (a migration that indexed
/// everything, say) is not an error.
const INDEX_FROM: &str = "
    INSERT OR IGNORE INTO event_keys (field, value, seq)
        SELECT 1, session_id, seq FROM events WHERE seq >= ?1 AND session_id IS NOT NULL
        UNION ALL SELECT 2, user_id, seq FROM events WHERE seq >= ?1 AND user_id IS NOT NULL
        ORDER BY 1, 2, 3";

/// Where `event_keys` ends: the first seq whose keys are not in it yet.
pub(super) fn indexed_to(conn: &Connection) -> Result<u64, rusqlite::Error> {
    bound(conn, "indexed_to")
}

/// Adds the keys of every event from `from` up to `to` (the log's next seq) inside the
/// caller's transaction, and moves `indexed_to` to `to`; then, when the schema has them and
/// enough indexed events have gathered, moves the running totals up to it too.
pub(super) fn index_tail(
    conn: &Connection,
    from: u64,
    to: u64,
    layout: Layout,
) -> Result<(), rusqlite::Error> {
    if to <= from {
        return Ok(());
    }
    conn.prepare_cached(INDEX_FROM)?.execute([from as i64])?;
    if layout.key_totals {
        super::totals::advance(conn, to, layout)?;
    }
    set_bound(conn, "indexed_to", to)
}

/// `event_keys` summed for `verify` (see `derived`): every key below `below`.
pub(super) fn digest(
    conn: &Connection,
    state: &std::collections::hash_map::RandomState,
    below: u64,
) -> Result<u64, rusqlite::Error> {
    let mut sum = 0u64;
    let mut stmt = conn.prepare("SELECT field, value, seq FROM event_keys WHERE seq < ?1")?;
    let mut rows = stmt.query([below as i64])?;
    while let Some(row) = rows.next()? {
        let field = match row.get::<_, i64>(0)? {
            1 => Some(LookupField::Session),
            2 => Some(LookupField::User),
            _ => None,
        };
        let value = match row.get_ref(1)? {
            rusqlite::types::ValueRef::Text(text) => Some(text),
            _ => None,
        };
        let seq = row.get::<_, i64>(2)? as u64;
        sum = sum.wrapping_add(match (field, value) {
            (Some(field), Some(value)) => lookup_key_hash(state, field, value, seq),
            // A field no writer uses, or a value that is not text (which no keyed read would
            // match): an edit. Counted apart from every real key, so the sums differ.
            _ => 1,
        });
    }
    Ok(sum)
}

/// The keyed column of `filter` that narrows it most, if any: a session has fewer events than
/// a user.
pub(super) fn driving_key(filter: &Filter) -> Option<(LookupField, &str)> {
    filter
        .session_id
        .as_deref()
        .map(|v| (LookupField::Session, v))
        .or_else(|| filter.user_id.as_deref().map(|v| (LookupField::User, v)))
}

/// The values the keys of `field` are looked up by for what a reader asked, bound to `slot`:
/// a user's identity and each of its pseudonyms (see `crate::reveal`); a session as it is.
pub(super) fn values(field: LookupField, slot: &str) -> String {
    match field {
        LookupField::User => {
            crate::reveal::values_of(slot, mcp_audit_core::pseudonym::IdentityField::User)
        }
        LookupField::Session => format!("({slot})"),
    }
}

/// A key that more than this share of the log's events carry (1/8) is read by scanning the
/// events, not through `event_keys`: see [`restrict`].
const SCAN_SHARE: u64 = 8;

/// Whether reading the events of `value` through `event_keys` beats scanning the whole table:
/// when fewer than one event in [`SCAN_SHARE`] carries it. Counting stops at that bound, so the
/// answer costs at most an eighth of the log's keys, read in index order.
pub(super) fn worth_the_keys(
    conn: &Connection,
    field: LookupField,
    value: &str,
) -> Result<bool, rusqlite::Error> {
    let bound = schema::next_seq(conn)? / SCAN_SHARE;
    let carried: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM
                (SELECT 1 FROM event_keys WHERE field = ?1 AND value IN {} LIMIT ?3)",
            values(field, "?2")
        ),
        rusqlite::params![field as i64, value, bound as i64],
        |r| r.get(0),
    )?;
    Ok((carried as u64) < bound)
}

/// Narrows `w` (built from `filter`, over `events e`) to the seqs that `event_keys` lists for
/// the filter's most selective keyed column, plus the events of the unindexed tail that match
/// it; or leaves `w` as it is, for SQLite to scan the events table with the column's own
/// condition, when that value is carried by so many events that scanning is cheaper.
///
/// SQLite collects every seq of `IN (...)` first, then seeks the events table's primary key in
/// `seq` order: right for counts, exports and aggregates of a value with a small share of the
/// log, which read every such event anyway. A seek per event costs about twice what a scan
/// does per event, so a value most events carry (the one user of a proxy run per user) is
/// read by scanning: `stats --user` of such a user in a log of 1,000,000 events took 1.1 s
/// through the keys and 0.45 s by scanning. A page reads its events through
/// `read::keyed_page` instead, which stops at the page's end.
pub(super) fn restrict(
    w: &mut Where,
    filter: &Filter,
    conn: &Connection,
) -> Result<(), rusqlite::Error> {
    let Some((field, value)) = driving_key(filter) else {
        return Ok(());
    };
    if !worth_the_keys(conn, field, value)? {
        return Ok(());
    }
    let column = schema::column(field);
    let slot = w.bind(SqlValue::Text(value.to_string()));
    let values = values(field, &slot);
    let field = w.bind(SqlValue::Int(field as i64));
    w.push_clause(format!(
        "e.seq IN (
            SELECT k.seq FROM event_keys k WHERE k.field = {field} AND k.value IN {values}
            UNION ALL
            SELECT t.seq FROM events t
             WHERE t.{column} IN {values} AND t.seq >= COALESCE(
                (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'indexed_to'), 0))"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_drives_before_the_user_and_the_tool_keeps_its_own_index() {
        let mut filter = Filter {
            operation: Some("search".into()),
            ..Filter::default()
        };
        assert!(driving_key(&filter).is_none());
        filter.user_id = Some("alice".into());
        assert!(matches!(
            driving_key(&filter),
            Some((LookupField::User, "alice"))
        ));
        filter.session_id = Some("s1".into());
        assert!(matches!(
            driving_key(&filter),
            Some((LookupField::Session, "s1"))
        ));
        assert!(driving_key(&Filter::default()).is_none());
    }
}
