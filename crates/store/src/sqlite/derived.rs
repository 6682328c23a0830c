//! SQLite's own derived data, checked by `verify` (see `Audit::derived_check`): the lookup
//! index (`keys`) and the running totals per session and user (`totals`), which keyed queries
//! and summaries read instead of the events. The verifier hands every entry it reads to a
//! [`Tally`] per thread, which sums the same keys and groups from the entries' own columns
//! (held to their hashed metadata by `verify`); the sums are then compared with the stored
//! data, under a hash keyed afresh for each run so that no edit can be made to balance out.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::keys;
use super::schema::{LookupField, lookup_key_hash};
use super::totals::{self, GroupUsers, KeyTotals};
use crate::error::StoreError;
use crate::integrity::Finding;
use crate::store::{DerivedCheck, IndexedColumns, LogEntry, Tally};

/// The lookup index's sum: on a thread of its own for a long log, while the verifier's two
/// threads read the rows; else summed before the rows are read.
enum Digest {
    Done(u64),
    Summing(JoinHandle<Result<u64, StoreError>>),
}

/// What SQLite had derived when `verify` began, to hold the entries' tallies to.
pub(super) struct Check {
    state: RandomState,
    /// Where the lookup index ends (it holds the keys of every event below), and its sum.
    keys: Option<(u64, Digest)>,
    /// The running totals, read whole before the entries (a few rows per session and user),
    /// with the bound they count below.
    totals: Option<KeyTotals>,
}

impl Check {
    /// Reads the index's bound and the totals from `conn`; the index's sum from `conn` too, or
    /// (`parallel`) from a reader that `open_reader` opens, on a thread of its own.
    pub(super) fn new(
        conn: &Connection,
        layout: &super::Layout,
        parallel: bool,
        open_reader: impl FnOnce() -> Result<super::SqliteStore, StoreError>,
        map: impl Fn(rusqlite::Error) -> StoreError,
    ) -> Result<Check, StoreError> {
        let state = RandomState::new();
        let keys = if layout.bulk_keys {
            let below = keys::indexed_to(conn).map_err(&map)?;
            let digest = if parallel {
                let reader = open_reader()?;
                let state = state.clone();
                Digest::Summing(std::thread::spawn(move || {
                    keys::digest(&reader.conn, &state, below).map_err(|e| reader.map(e))
                }))
            } else {
                Digest::Done(keys::digest(conn, &state, below).map_err(&map)?)
            };
            Some((below, digest))
        } else {
            None
        };
        let totals = if layout.key_totals {
            Some(totals::read_all(conn).map_err(&map)?)
        } else {
            None
        };
        Ok(Check {
            state,
            keys,
            totals,
        })
    }
}

impl DerivedCheck for Check {
    fn tally(&self) -> Box<dyn Tally> {
        Box::new(EntryTally {
            state: self.state.clone(),
            keys_below: self.keys.as_ref().map(|(below, _)| *below),
            totals_below: self.totals.as_ref().map(|t| t.below),
            key_sum: 0,
            groups: GroupMap::default(),
        })
    }

    fn finish(self: Box<Self>, tallies: Vec<Box<dyn Tally>>) -> Result<Vec<Finding>, StoreError> {
        let tallies: Vec<Box<EntryTally>> = tallies
            .into_iter()
            .filter_map(|t| t.into_any().downcast().ok())
            .collect();
        let mut findings = Vec::new();
        if let Some((below, digest)) = self.keys {
            let sum = match digest {
                Digest::Done(sum) => sum,
                Digest::Summing(thread) => thread.join().unwrap_or_else(|_| {
                    Err(StoreError::Database("a verifying thread failed".into()))
                })?,
            };
            let rows_sum = tallies
                .iter()
                .fold(0u64, |sum, t| sum.wrapping_add(t.key_sum));
            if rows_sum != sum {
                findings.push(Finding::LookupIndex { below });
            }
        }
        if let Some(totals) = self.totals {
            let mut computed = GroupMap::default();
            for tally in tallies {
                for (key, group) in tally.groups {
                    computed.entry(key).or_default().merge(group);
                }
            }
            if !totals_agree(&self.state, &totals, &computed) {
                findings.push(Finding::KeyTotals {
                    below: totals.below,
                });
            }
        }
        Ok(findings)
    }
}

/// One range's entries as SQLite derives from them: the lookup keys below the index's bound,
/// summed, and the entries below the totals' bound, grouped as the totals are.
struct EntryTally {
    state: RandomState,
    keys_below: Option<u64>,
    totals_below: Option<u64>,
    key_sum: u64,
    /// By the hash of each group's key.
    groups: GroupMap,
}

impl Tally for EntryTally {
    fn entry(&mut self, entry: &LogEntry<'_>) {
        if self.keys_below.is_some_and(|below| entry.seq < below) {
            self.key_sum = self.key_sum.wrapping_add(entry_keys(&self.state, entry));
        }
        if self.totals_below.is_some_and(|below| entry.seq < below) {
            add_to_groups(&self.state, &entry.columns, &mut self.groups);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// The sum of one entry's lookup-key hashes, from its indexed columns (which `verify`
/// holds to its hashed metadata).
fn entry_keys(state: &RandomState, entry: &LogEntry<'_>) -> u64 {
    let c = &entry.columns;
    let mut sum = 0u64;
    if let Some(s) = c.session_id() {
        sum = sum.wrapping_add(lookup_key_hash(state, LookupField::Session, s, entry.seq));
    }
    if let Some(u) = c.user_id() {
        sum = sum.wrapping_add(lookup_key_hash(state, LookupField::User, u, entry.seq));
    }
    sum
}

/// One summary group's total, as `verify` sums it from the entries or from the stored rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupTotal {
    count: u64,
    review: u64,
    first_ts: i64,
    last_ts: i64,
    users: Users,
}

/// The users of a group so far (see [`GroupUsers`]), each by its hash under the run's key (the
/// key of its own group of the same kind and outcome, see `add_to_groups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Users {
    /// No event yet.
    Unknown,
    /// All have this one, or (`None`) none.
    One(Option<u64>),
    Several,
}

impl Default for GroupTotal {
    fn default() -> GroupTotal {
        GroupTotal {
            count: 0,
            review: 0,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            users: Users::Unknown,
        }
    }
}

impl GroupTotal {
    fn merge(&mut self, other: GroupTotal) {
        // Saturating: stored counts are whatever an editor wrote.
        self.count = self.count.saturating_add(other.count);
        self.review = self.review.saturating_add(other.review);
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        self.users = match (self.users, other.users) {
            (Users::Unknown, u) | (u, Users::Unknown) => u,
            (Users::One(a), Users::One(b)) if a == b => Users::One(a),
            _ => Users::Several,
        };
    }
}

/// Summary groups by the hash of their key ([`group_key`]).
type GroupMap = HashMap<u64, GroupTotal, std::hash::BuildHasherDefault<KeyIsHash>>;

/// The hasher of [`GroupMap`]: its keys are already SipHash outputs under the run's secret
/// key, so hashing them again would only cost time (a second SipHash per lookup, about 3% of
/// `verify`, measured), and nobody can choose keys that collide.
#[derive(Default)]
struct KeyIsHash(u64);

impl std::hash::Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach here (`write_u64`); anything else is still hashed, poorly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The hasher of the key of a summary group, started with its kind and outcome under the run's
/// random key; [`group_key`] finishes it for a session or a user. Started once per entry and
/// cloned for its two groups. Each part has its length first, so no two keys encode alike.
fn group_prefix(state: &RandomState, kind: &[u8], outcome: &[u8]) -> DefaultHasher {
    let mut h = state.build_hasher();
    for part in [kind, outcome] {
        h.write_u64(part.len() as u64);
        h.write(part);
    }
    h
}

fn group_key(prefix: &DefaultHasher, field: LookupField, value: &[u8]) -> u64 {
    let mut h = prefix.clone();
    h.write_u8(field as u8);
    h.write_u64(value.len() as u64);
    h.write(value);
    h.finish()
}

/// Adds one entry to the groups of its session and of its user.
fn add_to_groups(state: &RandomState, c: &IndexedColumns<'_>, groups: &mut GroupMap) {
    let prefix = group_prefix(state, c.kind(), c.outcome());
    // The user's own group key stands for the user: within groups of one kind and outcome it
    // tells users apart as well as a hash of the user alone, and it is computed anyway.
    let user_key = c
        .user_id()
        .map(|u| group_key(&prefix, LookupField::User, u));
    let one = GroupTotal {
        count: 1,
        review: u64::from(c.requires_review()),
        first_ts: c.ts(),
        last_ts: c.ts(),
        users: Users::One(user_key),
    };
    if let Some(session) = c.session_id() {
        let key = group_key(&prefix, LookupField::Session, session);
        groups.entry(key).or_default().merge(one);
    }
    if let Some(key) = user_key {
        groups.entry(key).or_default().merge(one);
    }
}

/// Whether the stored totals are exactly the groups `computed` from the entries.
fn totals_agree(state: &RandomState, totals: &KeyTotals, computed: &GroupMap) -> bool {
    if totals.malformed > 0 {
        return false;
    }
    let mut stored = GroupMap::with_capacity_and_hasher(computed.len(), Default::default());
    for g in &totals.groups {
        let prefix = group_prefix(state, &g.kind, &g.outcome);
        let key = group_key(&prefix, g.field, &g.value);
        let users = match &g.users {
            GroupUsers::Nobody => Users::One(None),
            GroupUsers::One(u) => Users::One(Some(group_key(&prefix, LookupField::User, u))),
            GroupUsers::Several => Users::Several,
        };
        stored.entry(key).or_default().merge(GroupTotal {
            count: g.count,
            review: g.review,
            first_ts: g.first_ts,
            last_ts: g.last_ts,
            users,
        });
    }
    stored == *computed
}
