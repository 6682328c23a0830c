//! SQLite's session, user and operation keys are indexed in bulk (`event_keys`, a few thousand
//! events at a time), and the most recent events are found by reading them. These tests hold
//! the two parts to one answer: a keyed query, count, summary or statistic sees every event,
//! whether its keys are indexed yet or not, and cleanup leaves no key behind.

use std::collections::BTreeSet;

use mcp_audit_core::{AuditEvent, Policy, SealedEvent, seal};
use mcp_audit_store::{
    Append, Filter, PageStart, Query, Read, SqliteOptions, SqliteStore, SummaryScope,
};
use rusqlite::Connection;

mod backend;

use backend::{edited_copy, sqlite_findings};

/// The user of the i-th test event: one of three, each on about a third of the events (more
/// than the share above which keyed aggregates scan the table), or, on one event in forty, a
/// rare one (read through `event_keys`).
fn user_of(i: u64) -> String {
    if i.is_multiple_of(40) {
        "user-rare".into()
    } else {
        format!("user-{}", i % 3)
    }
}

/// The session of the i-th test event: one of five, or on one event in forty-five a rare one.
fn session_of(i: u64) -> String {
    if i % 45 == 1 {
        "session-rare".into()
    } else {
        format!("session-{}", i % 5)
    }
}

/// The i-th test event: 3 users, 5 sessions, 2 tools, spread so that every combination occurs,
/// and a rare user and session.
fn event(i: u64, expired: bool) -> SealedEvent {
    let mut builder = AuditEvent::tool_execution(format!("tool-{}", i % 2))
        .user(user_of(i))
        .session(session_of(i))
        .duration_us(i);
    if expired {
        builder = builder
            .timestamp("2020-01-01T00:00:00Z".parse().unwrap())
            .retention("30d");
    }
    let mut event = builder.build().unwrap();
    Policy::default().apply(&mut event).unwrap();
    seal(event).unwrap()
}

/// Appends events `from..to` straight to the store, in one transaction.
fn append(store: &mut SqliteStore, from: u64, to: u64, expired: impl Fn(u64) -> bool) {
    let sealed: Vec<SealedEvent> = (from..to).map(|i| event(i, expired(i))).collect();
    backend::append_sealed(store, from, &sealed);
}

fn scalar(path: &std::path::Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn indexed_to(path: &std::path::Path) -> i64 {
    scalar(
        path,
        "SELECT COALESCE(
             (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'indexed_to'), 0)",
    )
}

/// Every seq a filter finds, read page by page through cursors of `page` events.
fn seqs_by_pages(store: &mut SqliteStore, filter: &Filter, page: u32) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let p = store
            .query(&Query {
                filter: filter.clone(),
                limit: page,
                start: start.clone(),
            })
            .unwrap();
        seqs.extend(p.events.iter().map(|e| e.seq));
        match p.next {
            Some(cursor) => start = PageStart::After(cursor),
            None => return seqs,
        }
    }
}

/// The seqs among `0..n` that the i-th event's user/session/tool rule gives to `filter`.
fn expected(n: u64, filter: &Filter) -> Vec<u64> {
    let keep = |i: u64| {
        filter.user_id.as_ref().is_none_or(|u| *u == user_of(i))
            && filter
                .session_id
                .as_ref()
                .is_none_or(|s| *s == session_of(i))
            && filter
                .operation
                .as_ref()
                .is_none_or(|o| *o == format!("tool-{}", i % 2))
    };
    (0..n).rev().filter(|&i| keep(i)).collect()
}

fn filters() -> Vec<Filter> {
    vec![
        Filter {
            user_id: Some("user-1".into()),
            ..Filter::default()
        },
        Filter {
            session_id: Some("session-3".into()),
            ..Filter::default()
        },
        Filter {
            operation: Some("tool-0".into()),
            ..Filter::default()
        },
        Filter {
            user_id: Some("user-2".into()),
            operation: Some("tool-1".into()),
            ..Filter::default()
        },
        Filter {
            session_id: Some("session-4".into()),
            user_id: Some("user-0".into()),
            ..Filter::default()
        },
        // Rare values: read through `event_keys`, where the common ones are scanned.
        Filter {
            user_id: Some("user-rare".into()),
            ..Filter::default()
        },
        Filter {
            session_id: Some("session-rare".into()),
            operation: Some("tool-1".into()),
            ..Filter::default()
        },
        Filter {
            session_id: Some("session-rare".into()),
            user_id: Some("user-1".into()),
            ..Filter::default()
        },
    ]
}

/// Checks every way of reading `filters()` against what the first `n` events should give.
fn assert_keyed_reads_match(store: &mut SqliteStore, n: u64) {
    for filter in filters() {
        let want = expected(n, &filter);
        assert_eq!(
            seqs_by_pages(store, &filter, 37),
            want,
            "cursor pages of {filter:?}"
        );
        assert_eq!(
            store.count(&filter).unwrap(),
            want.len() as u64,
            "{filter:?}"
        );
        let mut streamed = Vec::new();
        store
            .for_each(&filter, &mut |e| {
                streamed.push(e.seq);
                Ok(())
            })
            .unwrap();
        streamed.reverse();
        assert_eq!(streamed, want, "export of {filter:?}");
        let offset_page = store
            .query(&Query {
                filter: filter.clone(),
                limit: 10,
                start: PageStart::Offset(55),
            })
            .unwrap();
        let got: Vec<u64> = offset_page.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            got,
            want.iter().skip(55).take(10).copied().collect::<Vec<_>>(),
            "offset page of {filter:?}"
        );
    }
    for user in ["user-1", "user-rare"] {
        let summary = store.summary(&SummaryScope::User(user.into())).unwrap();
        assert_eq!(
            summary.tool_executions,
            (0..n).filter(|&i| user_of(i) == user).count() as u64,
            "{user}"
        );
        assert_eq!(summary.distinct_users, 1, "{user}");
    }
    for session in ["session-2", "session-rare"] {
        let summary = store
            .summary(&SummaryScope::Session(session.into()))
            .unwrap();
        let events: Vec<u64> = (0..n).filter(|&i| session_of(i) == session).collect();
        assert_eq!(summary.total_operations, events.len() as u64, "{session}");
        let users: BTreeSet<String> = events.iter().map(|&i| user_of(i)).collect();
        assert_eq!(summary.distinct_users, users.len() as u64, "{session}");
    }
    let rare_stats = store
        .tool_stats(&Filter {
            user_id: Some("user-rare".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(
        rare_stats.iter().map(|t| t.calls).sum::<u64>(),
        (0..n).filter(|&i| user_of(i) == "user-rare").count() as u64
    );
    let stats = store
        .tool_stats(&Filter {
            operation: Some("tool-1".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].calls, n / 2);
}

#[test]
fn keyed_reads_see_events_whether_their_keys_are_indexed_yet_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();

    // Nothing indexed yet: every event is in the tail.
    append(&mut store, 0, 300, |_| false);
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM event_keys"), 0);
    assert_keyed_reads_match(&mut store, 300);

    // The append that makes the tail reach the bulk size indexes all of it at once.
    append(&mut store, 300, 4_500, |_| false);
    assert_eq!(indexed_to(&path), 4_500);
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM event_keys"), 2 * 4_500);
    assert_keyed_reads_match(&mut store, 4_500);

    // A new tail after the indexed part: pages cross from one to the other.
    append(&mut store, 4_500, 4_700, |_| false);
    assert_eq!(indexed_to(&path), 4_500);
    assert_keyed_reads_match(&mut store, 4_700);

    // Upkeep when idle leaves a short tail alone and indexes a longer one.
    store.settle().unwrap();
    assert_eq!(indexed_to(&path), 4_500, "a tail of 200 waits");
    append(&mut store, 4_700, 4_800, |_| false);
    store.settle().unwrap();
    assert_eq!(indexed_to(&path), 4_800);
    assert_keyed_reads_match(&mut store, 4_800);

    // A reader opened on its own sees the same.
    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    assert_keyed_reads_match(&mut reader, 4_800);
}

#[test]
fn cleanup_removes_the_keys_of_expired_events_indexed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    // Every 4th event expired long ago; the first 4,096 are indexed, the rest are the tail.
    let expired = |i: u64| i.is_multiple_of(4);
    append(&mut store, 0, 4_096, expired);
    append(&mut store, 4_096, 4_196, expired);
    assert_eq!(indexed_to(&path), 4_096);

    let report = backend::sqlite_clean_up(&path, &mut store);
    assert_eq!(report.events, 4_196 / 4);
    assert_eq!(
        scalar(
            &path,
            "SELECT COUNT(*) FROM event_keys WHERE seq NOT IN (SELECT seq FROM events)"
        ),
        0,
        "no key outlives its event"
    );
    assert_eq!(
        scalar(&path, "SELECT COUNT(*) FROM event_keys"),
        2 * (4_096 - 4_096 / 4)
    );
    let left: BTreeSet<u64> = seqs_by_pages(
        &mut store,
        &Filter {
            user_id: Some("user-1".into()),
            ..Filter::default()
        },
        100,
    )
    .into_iter()
    .collect();
    let want: BTreeSet<u64> = (0..4_196)
        .filter(|&i| user_of(i) == "user-1" && i % 4 != 0)
        .collect();
    assert_eq!(left, want);
}

/// `verify` sums the lookup keys from the rows and from `event_keys`: an edit of the index
/// alone (which would hide an event from `query --user`, say) is found, and a clean index is
/// not reported.
#[test]
fn verify_finds_a_lookup_index_edited_behind_the_writers_back() {
    use mcp_audit_store::integrity::Finding;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    append(&mut store, 0, 4_096, |_| false);
    append(&mut store, 4_096, 4_150, |_| false);
    drop(store);
    assert_eq!(sqlite_findings(&path), []);

    let edits = [
        // Hide event 7 from its user's queries.
        "DELETE FROM event_keys WHERE field = 2 AND seq = 7",
        // Move event 8 to another session's queries.
        "UPDATE event_keys SET value = 'session-elsewhere' WHERE field = 1 AND seq = 8",
        // A key for an event that does not have it.
        "INSERT INTO event_keys (field, value, seq) VALUES (2, 'user-9', 9)",
        // The same bytes as a blob: no keyed read matches it, so event 10 is hidden.
        "UPDATE event_keys SET value = CAST(value AS BLOB) WHERE field = 2 AND seq = 10",
        // A field no writer uses.
        "UPDATE event_keys SET field = 7 WHERE field = 1 AND seq = 11",
    ];
    for (n, edit) in edits.iter().enumerate() {
        // Each edit on a copy of the clean file, so that each is judged alone.
        let copy = dir.path().join(format!("edited-{n}.db"));
        assert_eq!(edited_copy(&path, &copy, edit), 1, "{edit}");
        assert_eq!(
            sqlite_findings(&copy),
            [Finding::LookupIndex { below: 4_096 }],
            "{edit}"
        );
    }
    assert_eq!(sqlite_findings(&path), [], "the original is untouched");
}

/// The writer's idle upkeep must not queue the next event behind another process's write
/// lock: it gives up at once and indexes the tail at a later idle moment.
#[test]
fn idle_upkeep_does_not_wait_for_another_writers_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let patience = std::time::Duration::from_secs(30);
    let options = SqliteOptions {
        lock_timeout: patience,
    };
    let mut store = SqliteStore::open(&path, options).unwrap();
    append(&mut store, 0, 300, |_| false);

    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    store.settle().unwrap();
    assert!(started.elapsed() < patience, "upkeep waited for the lock");
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM event_keys"), 0);

    other.execute_batch("ROLLBACK").unwrap();
    store.settle().unwrap();
    assert_eq!(indexed_to(&path), 300);
    // The store's own patience is back for ordinary writes.
    append(&mut store, 300, 301, |_| false);
}

/// A reader may not migrate a file: one still at schema version 4 (before `event_keys`) keeps
/// its indexes on `events`, and keyed reads use them; the first writer then moves it over with
/// every key in place.
#[test]
fn a_file_from_before_the_bulk_keys_is_read_as_it_is_and_migrated_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut old = SqliteStore::open_at_schema_version(&path, 4).unwrap();
    append(&mut old, 0, 500, |_| false);
    drop(old);

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 4);
    assert_keyed_reads_match(&mut reader, 500);
    drop(reader);

    let mut writer = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert!(
        writer.schema_version().unwrap() >= 5,
        "migrated past the keys"
    );
    assert_eq!(
        indexed_to(&path),
        500,
        "the migration indexed what was there"
    );
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM event_keys"), 2 * 500);
    append(&mut writer, 500, 600, |_| false);
    assert_keyed_reads_match(&mut writer, 600);
}

/// The recorder's writer does the upkeep itself: once it has nothing queued, a tail of 256 or
/// more gets its keys without anyone calling `settle`. (This test once waited for all 300 to
/// be indexed, and failed under load when the upkeep had run at 256-odd while the rest were
/// still being recorded.)
#[test]
fn the_writer_indexes_the_tail_when_it_has_nothing_queued() {
    use mcp_audit_store::{Durability, Recorder, RecorderConfig};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        RecorderConfig {
            durability: Durability::Batch,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    for i in 0..300 {
        let mut e = AuditEvent::tool_execution("t")
            .user(format!("user-{}", i % 3))
            .build()
            .unwrap();
        Policy::default().apply(&mut e).unwrap();
        recorder.record(e).unwrap();
    }
    recorder.flush().unwrap();
    // Far below the bulk size, so only the idle upkeep can have indexed anything. It may have
    // run while the events were still coming (a slow producer leaves the writer idle), and
    // then left a last tail under 256 for later: what it guarantees is that, once idle, the
    // unindexed tail is shorter than that. Wait for it (a bound on how long, not a measure
    // of speed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while 300 - indexed_to(&path) >= 256 {
        assert!(
            std::time::Instant::now() < deadline,
            "the tail was never indexed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        scalar(&path, "SELECT COUNT(*) FROM event_keys WHERE field = 2"),
        indexed_to(&path),
        "every indexed event has its key"
    );
    recorder.shutdown().unwrap();
}
