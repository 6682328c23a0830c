//! Running totals per lookup key, so that the summary of a session or a user does not read
//! every event of it: a session of 1,000,000 events took about a second that way
//! (`docs/benchmarks.md`).
//!
//! For each session and each user, one row per kind and outcome of its events: how many, the
//! earliest and latest time, how many require review, and their user: the one user they all
//! have (or none), or a mark that they have several. That is everything a summary reports, except
//! the distinct users of a session whose events have several: such a summary reads its events
//! as before (a proxy run, one session, has one user).
//!
//! The totals count the events below `log_state.totaled_to`, which `keys::index_tail` moves
//! (in the transaction that adds the keys) once [`Layout::totals_every`] events have been
//! indexed past it: sixteen bulks of keys by default, because each move upserts a row per
//! session and user it saw, at random places in the table, and fewer, larger moves share those
//! page writes. A move reads its events in seq order and groups them in memory (see
//! [`add_range`]). A summary reads three parts in one statement (one snapshot): the totals, the
//! indexed events from `totaled_to` on through `event_keys`, and the unindexed tail.
//!
//! `cleanup` counts again the sessions and users whose events it deletes (a minimum can not be
//! taken back), and `verify` sums the same groups from the entries' own columns (see
//! [`read_all`]).

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::Layout;
use super::schema::{self, LookupField};
use crate::report::SummaryGroup;

/// A summary's groups, each with the user beside it (see `fold_summary`).
type Groups = Vec<(Option<String>, SummaryGroup)>;

/// By default, the totals move when this many events have been indexed past them.
pub(super) const EVERY: u64 = 16 * schema::BULK;

/// Adds one group to the totals, or merges it into the row already there: counts added, the
/// earliest and latest time kept, and the users one only when both have the same one.
const UPSERT: &str = "
    INSERT INTO key_totals
        (field, value, kind, outcome, n, first_ts, last_ts, review, mixed, one_user)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (field, value, kind, outcome) DO UPDATE SET
        n = n + excluded.n,
        first_ts = MIN(first_ts, excluded.first_ts),
        last_ts = MAX(last_ts, excluded.last_ts),
        review = review + excluded.review,
        mixed = mixed OR excluded.mixed OR one_user IS NOT excluded.one_user,
        one_user = CASE WHEN mixed OR excluded.mixed OR one_user IS NOT excluded.one_user
                        THEN NULL ELSE one_user END";

/// One group's total as it is summed in memory: its kind and outcome (interned, see
/// [`Grouper`]) and its aggregates.
struct Group {
    kind: usize,
    outcome: usize,
    n: i64,
    first_ts: i64,
    last_ts: i64,
    review: i64,
    /// `Some(user)`: every event so far has this user (or none); `None`: several.
    one_user: Option<Option<String>>,
}

impl Group {
    fn add(&mut self, ts: i64, review: bool, user: Option<&str>) {
        self.n += 1;
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
        self.review += i64::from(review);
        if self
            .one_user
            .as_ref()
            .is_some_and(|one| one.as_deref() != user)
        {
            self.one_user = None;
        }
    }
}

/// The groups of a range of events, by field and value, then kind and outcome (a few of each
/// per value, so a short list; kinds and outcomes are interned, as there are a handful).
#[derive(Default)]
struct Grouper {
    names: Vec<String>,
    /// Sessions' groups, then users' (by [`LookupField`] less one).
    by_key: [std::collections::HashMap<String, Vec<Group>>; 2],
}

impl Grouper {
    fn name(&mut self, text: &str) -> usize {
        match self.names.iter().position(|n| n == text) {
            Some(i) => i,
            None => {
                self.names.push(text.to_string());
                self.names.len() - 1
            }
        }
    }

    fn add(
        &mut self,
        field: LookupField,
        value: &str,
        event: &EventRow<'_>,
        names: (usize, usize),
    ) {
        let groups = &mut self.by_key[field as usize - 1];
        let list = match groups.get_mut(value) {
            Some(list) => list,
            None => groups.entry(value.to_string()).or_default(),
        };
        let at = match list.iter().position(|g| (g.kind, g.outcome) == names) {
            Some(at) => at,
            None => {
                list.push(Group {
                    kind: names.0,
                    outcome: names.1,
                    n: 0,
                    first_ts: i64::MAX,
                    last_ts: i64::MIN,
                    review: 0,
                    one_user: Some(event.user.map(str::to_string)),
                });
                list.len() - 1
            }
        };
        list[at].add(event.ts, event.review, event.user);
    }
}

fn text(v: ValueRef<'_>) -> Option<&str> {
    v.as_str().ok()
}

fn int(v: ValueRef<'_>) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// What one event adds to a group besides being counted.
struct EventRow<'a> {
    user: Option<&'a str>,
    ts: i64,
    review: bool,
}

/// The columns of an event that its groups need, in the order [`Grouper::read`] takes them.
const GROUPED: &str = "e.session_id, e.user_id, e.kind, e.outcome, e.ts, e.requires_review";

impl Grouper {
    /// Adds the events of `rows` (the columns of [`GROUPED`]) to the groups of their session
    /// and user, or with `only`, to those of that field alone.
    fn read(
        &mut self,
        rows: &mut rusqlite::Rows<'_>,
        only: Option<LookupField>,
    ) -> Result<(), rusqlite::Error> {
        // Read leniently: a column edited to a type no writer gives it (which `verify`
        // reports) must not stop the writer. Such an event is grouped as best it can be.
        while let Some(row) = rows.next()? {
            let session = text(row.get_ref(0)?);
            let user = text(row.get_ref(1)?);
            let names = (
                self.name(text(row.get_ref(2)?).unwrap_or_default()),
                self.name(text(row.get_ref(3)?).unwrap_or_default()),
            );
            let event = EventRow {
                user,
                ts: int(row.get_ref(4)?),
                review: int(row.get_ref(5)?) != 0,
            };
            for (field, value) in [(LookupField::Session, session), (LookupField::User, user)] {
                if let Some(value) = value.filter(|_| only.is_none_or(|f| f == field)) {
                    self.add(field, value, &event, names);
                }
            }
        }
        Ok(())
    }

    /// Adds every group to the totals, or merges it into the row already there.
    fn write(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let mut upsert = conn.prepare_cached(UPSERT)?;
        for (field, groups) in [LookupField::Session, LookupField::User]
            .into_iter()
            .zip(&self.by_key)
        {
            // In the table's order, so that consecutive upserts land on the same pages.
            let mut groups: Vec<_> = groups.iter().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (value, list) in groups {
                for g in list {
                    upsert.execute(rusqlite::params![
                        field as i64,
                        value,
                        self.names[g.kind],
                        self.names[g.outcome],
                        g.n,
                        g.first_ts,
                        g.last_ts,
                        g.review,
                        g.one_user.is_none(),
                        g.one_user.as_ref().and_then(|u| u.as_deref()),
                    ])?;
                }
            }
        }
        Ok(())
    }
}

/// Adds the events with `from <= seq < to` to the totals: read in seq order (no sort), grouped
/// in memory, then one upsert per group. Grouping them in SQL sorted the range twice (by
/// session, by user), which cost about twice as much per event.
fn add_range(conn: &Connection, from: u64, to: u64) -> Result<(), rusqlite::Error> {
    let mut grouper = Grouper::default();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {GROUPED} FROM events e WHERE e.seq >= ?1 AND e.seq < ?2"
    ))?;
    grouper.read(&mut stmt.query([from as i64, to as i64])?, None)?;
    grouper.write(conn)
}

/// Where the totals end: the first seq they do not count.
pub(super) fn totaled_to(conn: &Connection) -> Result<u64, rusqlite::Error> {
    schema::bound(conn, "totaled_to")
}

/// Moves the totals up to `indexed_to` (just moved there by the caller, in its transaction)
/// when at least [`Layout::totals_every`] events lie between.
pub(super) fn advance(
    conn: &Connection,
    indexed_to: u64,
    layout: Layout,
) -> Result<(), rusqlite::Error> {
    let from = totaled_to(conn)?;
    if indexed_to.saturating_sub(from) < layout.totals_every.max(1) {
        return Ok(());
    }
    add_range(conn, from, indexed_to)?;
    schema::set_bound(conn, "totaled_to", indexed_to)
}

/// The summary groups of the session or user `value`, with the user beside each: its totals,
/// its indexed events past them, and its unindexed events, in one statement. `None` when the
/// totals say its events have several users in one group, whose distinct users only its
/// events can tell.
///
/// Pending intents are left out, as every summary leaves them out (`Filter::include_pending`):
/// a `sync` call is an intent and the outcome that completes it, one operation. The totals
/// keep their groups all the same (`verify` sums every event), and they are passed over here.
pub(super) fn summary_groups(
    conn: &Connection,
    field: LookupField,
    value: &str,
) -> Result<Option<Groups>, rusqlite::Error> {
    let sql = format!(
        "SELECT kind, outcome, one_user, n, first_ts, last_ts, review, mixed
           FROM key_totals WHERE field = ?1 AND value = ?2 AND outcome <> 'pending'
         UNION ALL
         SELECT e.kind, e.outcome, e.user_id,
                COUNT(*), MIN(e.ts), MAX(e.ts), SUM(e.requires_review), 0
           FROM event_keys k JOIN events e ON e.seq = k.seq
          WHERE k.field = ?1 AND k.value = ?2 AND e.outcome <> 'pending' AND k.seq >= COALESCE(
                (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'totaled_to'), 0)
          GROUP BY e.kind, e.outcome, e.user_id
         UNION ALL
         SELECT e.kind, e.outcome, e.user_id,
                COUNT(*), MIN(e.ts), MAX(e.ts), SUM(e.requires_review), 0
           FROM events e
          WHERE e.{column} = ?2 AND e.outcome <> 'pending' AND e.seq >= COALESCE(
                (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'indexed_to'), 0)
          GROUP BY e.kind, e.outcome, e.user_id",
        column = schema::column(field)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params![field as i64, value])?;
    let mut groups = Vec::new();
    while let Some(r) = rows.next()? {
        if r.get::<_, i64>(7)? != 0 {
            return Ok(None);
        }
        groups.push(summary_group(r)?);
    }
    Ok(Some(groups))
}

/// The sessions and users of the totalled events that the cleanup event at seq `removed_by`
/// tombstoned (see `sqlite/expiry.rs`): the totals that its removal must count again.
pub(super) fn touched_by_expiry(
    conn: &Connection,
    removed_by: i64,
) -> Result<Vec<(i64, String)>, rusqlite::Error> {
    let below = totaled_to(conn)? as i64;
    let mut stmt = conn.prepare(
        "SELECT 1, session_id FROM events
          WHERE seq IN (SELECT seq FROM expired_entries WHERE removed_by = ?1)
            AND session_id IS NOT NULL AND seq < ?2
         UNION
         SELECT 2, user_id FROM events
          WHERE seq IN (SELECT seq FROM expired_entries WHERE removed_by = ?1)
            AND user_id IS NOT NULL AND seq < ?2",
    )?;
    let rows = stmt.query_map([removed_by, below], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Counts the totals of `keys` (field, value) again from the events below `totaled_to` that
/// `event_keys` still lists for them: after a cleanup deleted some of their events and keys,
/// in its transaction.
pub(super) fn recount(conn: &Connection, keys: &[(i64, String)]) -> Result<(), rusqlite::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let below = totaled_to(conn)? as i64;
    let mut clear = conn.prepare("DELETE FROM key_totals WHERE field = ?1 AND value = ?2")?;
    let mut events = conn.prepare(&format!(
        "SELECT {GROUPED} FROM event_keys k JOIN events e ON e.seq = k.seq
          WHERE k.field = ?1 AND k.value = ?2 AND k.seq < ?3"
    ))?;
    let mut grouper = Grouper::default();
    for (field, value) in keys {
        let only = match field {
            1 => LookupField::Session,
            2 => LookupField::User,
            _ => continue,
        };
        clear.execute(rusqlite::params![field, value])?;
        let mut rows = events.query(rusqlite::params![field, value, below])?;
        grouper.read(&mut rows, Some(only))?;
    }
    grouper.write(conn)
}

/// Every total, with the bound below which they count the events, read in one snapshot (the
/// writer moves both together): for `verify`, which groups the entries the same way. A row
/// whose values have types no writer gives them, or a field no writer uses, is counted as
/// malformed.
pub(super) fn read_all(conn: &Connection) -> Result<KeyTotals, rusqlite::Error> {
    let tx = conn.unchecked_transaction()?;
    let mut totals = KeyTotals {
        below: totaled_to(&tx)?,
        groups: Vec::new(),
        malformed: 0,
    };
    {
        let mut stmt = tx.prepare(
            "SELECT field, value, kind, outcome, n, first_ts, last_ts, review, mixed, one_user
               FROM key_totals",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            match group(row)? {
                Some(g) => totals.groups.push(g),
                None => totals.malformed += 1,
            }
        }
    }
    tx.finish()?;
    Ok(totals)
}

/// One row of `key_totals` as a [`KeyGroup`], or `None` when it is not one a writer makes.
fn group(row: &rusqlite::Row<'_>) -> Result<Option<KeyGroup>, rusqlite::Error> {
    let text = |i: usize| -> Result<Option<Vec<u8>>, rusqlite::Error> {
        Ok(match row.get_ref(i)? {
            ValueRef::Text(t) => Some(t.to_vec()),
            _ => None,
        })
    };
    let int = |i: usize| -> Result<Option<i64>, rusqlite::Error> {
        Ok(match row.get_ref(i)? {
            ValueRef::Integer(n) => Some(n),
            _ => None,
        })
    };
    let field = match int(0)? {
        Some(1) => LookupField::Session,
        Some(2) => LookupField::User,
        _ => return Ok(None),
    };
    let (Some(value), Some(kind), Some(outcome)) = (text(1)?, text(2)?, text(3)?) else {
        return Ok(None);
    };
    let (Some(count), Some(first_ts), Some(last_ts), Some(review), Some(mixed)) =
        (int(4)?, int(5)?, int(6)?, int(7)?, int(8)?)
    else {
        return Ok(None);
    };
    let (Ok(count), Ok(review)) = (u64::try_from(count), u64::try_from(review)) else {
        return Ok(None);
    };
    // As a summary reads it: any mark of several users sends it to the events.
    let users = if mixed != 0 {
        GroupUsers::Several
    } else {
        match row.get_ref(9)? {
            ValueRef::Null => GroupUsers::Nobody,
            ValueRef::Text(t) => GroupUsers::One(t.to_vec()),
            _ => return Ok(None),
        }
    };
    Ok(Some(KeyGroup {
        field,
        value,
        kind,
        outcome,
        count,
        review,
        first_ts,
        last_ts,
        users,
    }))
}

/// One group of a summary's statement, whose first columns are kind, outcome, user, count,
/// earliest and latest time, and how many require review; the user beside it.
pub(super) fn summary_group(
    r: &rusqlite::Row<'_>,
) -> Result<(Option<String>, SummaryGroup), rusqlite::Error> {
    Ok((
        r.get(2)?,
        SummaryGroup {
            kind: r.get(0)?,
            outcome: r.get(1)?,
            count: r.get::<_, i64>(3)? as u64,
            first_us: r.get(4)?,
            last_us: r.get(5)?,
            review: r.get::<_, i64>(6)? as u64,
        },
    ))
}

/// The running totals per lookup key (see [`read_all`]), read in one snapshot.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyTotals {
    /// They count every event below this seq, and none from it on.
    pub(super) below: u64,
    pub(super) groups: Vec<KeyGroup>,
    /// Rows no writer would make (a field no writer uses, a value of the wrong type): each an
    /// edit.
    pub(super) malformed: u64,
}

/// One running total: the events of one session or user (`field`, `value`) with one kind and
/// outcome, as stored bytes (compared, never parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyGroup {
    pub(super) field: LookupField,
    pub(super) value: Vec<u8>,
    pub(super) kind: Vec<u8>,
    pub(super) outcome: Vec<u8>,
    pub(super) count: u64,
    /// How many of them require review.
    pub(super) review: u64,
    /// Their earliest and latest time, microseconds since the Unix epoch.
    pub(super) first_ts: i64,
    pub(super) last_ts: i64,
    pub(super) users: GroupUsers,
}

/// The users of a running total's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GroupUsers {
    /// None of them has a user.
    Nobody,
    /// All of them have this one.
    One(Vec<u8>),
    /// Two or more users, or some events with a user and some without.
    Several,
}
