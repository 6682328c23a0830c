//! SQLite keeps running totals per session and per user (`key_totals`, moved with the bulk
//! lookup keys), and a summary of a session or a user reads them, the indexed events past them
//! and the unindexed tail, instead of every event. These tests hold that summary to one
//! computed from the events themselves, at every stage, across a cleanup and a migration, for
//! sessions with one user, none and several; and check that `verify` finds totals edited
//! behind the writer's back.

use jiff::Timestamp;
use mcp_audit_core::{Action, AuditEvent, Outcome, Policy, seal};
use mcp_audit_store::integrity::{Finding, verify};
use mcp_audit_store::{Read, SqliteOptions, SqliteStore, Summary, SummaryScope};
use rusqlite::Connection;

mod backend;

use backend::{edited_copy, sqlite_findings};

const SESSIONS: [&str; 4] = ["session-a", "session-b", "session-c", "session-rare"];
const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// How many indexed events the tests let gather before the totals move: two bulks of keys, so
/// that all three parts of a summary (totals, indexed events past them, tail) occur.
const TOTALS_EVERY: u64 = 8_192;

/// The session of the i-th event (or none): three common ones and a rare one.
fn session_of(i: u64) -> Option<&'static str> {
    match i % 37 {
        0 => None,
        1 => Some(SESSIONS[3]),
        k => Some(SESSIONS[(k % 3) as usize]),
    }
}

/// The user of the i-th event: session a is alice's, b nobody's, c has all three users, the
/// rare one is carol's, and events without a session have any user or none.
fn user_of(i: u64) -> Option<&'static str> {
    match session_of(i) {
        Some("session-a") => Some("alice"),
        Some("session-b") => None,
        Some("session-rare") => Some("carol"),
        Some(_) => Some(USERS[(i % 7 % 3) as usize]),
        None => (i % 11 != 5).then(|| USERS[(i % 3) as usize]),
    }
}

/// The i-th event: kinds, outcomes, review flags and times spread so that a session has
/// several groups of each, its times out of seq order, and, with `expired`, the oldest times
/// and a retention that ended long ago.
fn event(i: u64, expired: bool) -> AuditEvent {
    let mut builder = match i % 3 {
        0 => AuditEvent::tool_execution(format!("tool-{}", i % 2)),
        1 => AuditEvent::prompt_execution("summarise"),
        _ => AuditEvent::resource_access(format!("file:///{i}"), Action::Read),
    };
    if let Some(s) = session_of(i) {
        builder = builder.session(s);
    }
    if let Some(u) = user_of(i) {
        builder = builder.user(u);
    }
    // Pending intents among them, which the totals keep and a summary leaves out.
    let outcomes = [
        Outcome::Success,
        Outcome::Denied,
        Outcome::Cancelled,
        Outcome::Pending,
    ];
    let outcome = outcomes[(i % 5 % 4) as usize];
    // Times not in seq order: each event a few minutes before or after its neighbours.
    let second = if expired {
        1_500_000_000 + (i * 7_919) % 100_000
    } else {
        1_700_000_000 + (i * 7_919) % 1_000_000
    };
    builder = builder
        .outcome(outcome)
        .requires_review(i.is_multiple_of(4))
        .timestamp(Timestamp::from_second(second as i64).unwrap());
    if expired {
        builder = builder.retention("30d");
    }
    let mut event = builder.build().unwrap();
    Policy::default().apply(&mut event).unwrap();
    event
}

/// The events appended so far, in seq order, to compute expected summaries from.
#[derive(Default)]
struct Log {
    events: Vec<AuditEvent>,
}

impl Log {
    /// Appends `count` more events in one transaction; `expired` chooses which of them (by
    /// seq) are.
    fn append(&mut self, store: &mut SqliteStore, count: u64, expired: impl Fn(u64) -> bool) {
        let from = self.events.len() as u64;
        let events: Vec<AuditEvent> = (from..from + count).map(|i| event(i, expired(i))).collect();
        let sealed: Vec<_> = events.iter().map(|e| seal(e.clone()).unwrap()).collect();
        backend::append_sealed(store, from, &sealed);
        self.events.extend(events);
    }

    /// The summary of the events that `keep` selects, computed here from the events.
    fn summary_of(&self, keep: impl Fn(&AuditEvent) -> bool) -> Summary {
        backend::summary_of(self.events.iter().filter(|e| keep(e)))
    }

    /// Every session's and user's summary, as the store gives it and as the events give it.
    fn assert_summaries(&self, store: &mut SqliteStore, when: &str) {
        for session in SESSIONS {
            let want = self.summary_of(|e| e.session_id.as_deref() == Some(session));
            let got = store
                .summary(&SummaryScope::Session(session.into()))
                .unwrap();
            assert_eq!(got, want, "{session}, {when}");
        }
        for user in USERS {
            let want = self.summary_of(|e| e.actor.user_id.as_deref() == Some(user));
            let got = store.summary(&SummaryScope::User(user.into())).unwrap();
            assert_eq!(got, want, "{user}, {when}");
        }
        let nobody = store
            .summary(&SummaryScope::Session("no-such-session".into()))
            .unwrap();
        assert_eq!(nobody, Summary::default(), "{when}");
    }
}

fn scalar(path: &std::path::Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn bound(path: &std::path::Path, key: &str) -> i64 {
    scalar(
        path,
        &format!(
            "SELECT COALESCE(
                (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = '{key}'), 0)"
        ),
    )
}

fn indexed_to(path: &std::path::Path) -> i64 {
    bound(path, "indexed_to")
}

fn totaled_to(path: &std::path::Path) -> i64 {
    bound(path, "totaled_to")
}

fn writer(path: &std::path::Path) -> SqliteStore {
    let mut store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    store.set_totals_every(TOTALS_EVERY);
    store
}

#[test]
fn a_summary_of_a_session_or_user_is_the_same_from_its_totals_as_from_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = writer(&path);
    let mut log = Log::default();

    log.append(&mut store, 300, |_| false);
    log.assert_summaries(&mut store, "all in the tail");

    // Indexed, not yet totalled.
    log.append(&mut store, 4_000, |_| false);
    assert_eq!((indexed_to(&path), totaled_to(&path)), (4_300, 0));
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM key_totals"), 0);
    log.assert_summaries(&mut store, "indexed, in no total");
    log.append(&mut store, 500, |_| false);
    log.assert_summaries(&mut store, "indexed and a tail");

    // The second bulk of keys moves the totals over everything indexed.
    log.append(&mut store, 4_000, |_| false);
    assert_eq!((indexed_to(&path), totaled_to(&path)), (8_800, 8_800));
    assert_eq!(
        scalar(&path, "SELECT SUM(n) FROM key_totals WHERE field = 1"),
        (0..8_800).filter(|&i| session_of(i).is_some()).count() as i64
    );
    assert_eq!(
        scalar(&path, "SELECT SUM(n) FROM key_totals WHERE field = 2"),
        (0..8_800).filter(|&i| user_of(i).is_some()).count() as i64
    );
    log.assert_summaries(&mut store, "all totalled");

    // All three parts at once: totals, indexed events past them, a tail.
    log.append(&mut store, 4_200, |_| false);
    log.append(&mut store, 300, |_| false);
    assert_eq!((indexed_to(&path), totaled_to(&path)), (13_000, 8_800));
    log.assert_summaries(&mut store, "totals, indexed and a tail");

    // The next move adds to the same totals.
    log.append(&mut store, 4_000, |_| false);
    assert_eq!(totaled_to(&path), 17_300);
    log.assert_summaries(&mut store, "totalled twice");

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    log.assert_summaries(&mut reader, "a reader of its own");
    let report = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
    assert_eq!(report.findings, [], "totals kept by the writer verify");
}

/// A cleanup deletes expired events from totals that can not simply be decremented (the
/// earliest time of a session, say, moves to an event that is left): it counts the sessions and
/// users it touched again.
#[test]
fn cleanup_counts_again_the_totals_of_the_sessions_and_users_it_deleted_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = writer(&path);
    store.set_totals_every(4_096);
    let mut log = Log::default();
    // Every sixth event expired (and the oldest); most are totalled, some in the tail.
    let expired = |i: u64| i.is_multiple_of(6);
    log.append(&mut store, 4_200, expired);
    log.append(&mut store, 150, expired);
    assert_eq!((indexed_to(&path), totaled_to(&path)), (4_200, 4_200));
    log.assert_summaries(&mut store, "before the cleanup");

    let session_a = |e: &AuditEvent| e.session_id.as_deref() == Some("session-a");
    let expired_era: Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    assert!(
        log.summary_of(session_a).first_activity.unwrap() < expired_era,
        "the session's earliest event is one that expires"
    );

    let report = backend::sqlite_clean_up(&path, &mut store);
    assert_eq!(report.events, 4_350 / 6);
    log.events
        .retain(|e| e.compliance.expires_at.is_none_or(|t| t > Timestamp::now()));
    assert_eq!(log.events.len() as u64, 4_350 - report.events);
    assert!(log.summary_of(session_a).first_activity.unwrap() > expired_era);
    log.assert_summaries(&mut store, "after the cleanup");
    assert_eq!(
        scalar(&path, "SELECT COUNT(*) FROM key_totals WHERE n <= 0"),
        0,
        "no empty total is left"
    );
    let report = verify(&mut store, None, &[], &mut |_| {}).unwrap();
    assert!(
        !report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::KeyTotals { .. })),
        "{:?}",
        report.findings
    );
}

/// The totals decide what a summary says: an edit of them alone (say, one denied call fewer)
/// would show in it, so `verify` sums the same groups from the rows and finds it.
#[test]
fn verify_finds_running_totals_edited_behind_the_writers_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = writer(&path);
    store.set_totals_every(4_096);
    let mut log = Log::default();
    log.append(&mut store, 4_096, |_| false);
    log.append(&mut store, 60, |_| false);
    drop(store);
    assert_eq!(sqlite_findings(&path), []);

    // Alice's denied tool calls in session a.
    let denied = "field = 1 AND value = 'session-a' AND kind = 'tool_execution'
                  AND outcome = 'denied'";
    let edits = [
        // One call fewer.
        format!("UPDATE key_totals SET n = n - 1 WHERE {denied}"),
        // Nothing of it needs review.
        format!("UPDATE key_totals SET review = 0 WHERE {denied}"),
        // The session began in 1970.
        format!("UPDATE key_totals SET first_ts = 0 WHERE {denied}"),
        // It went on until 2100.
        format!("UPDATE key_totals SET last_ts = 4102444800000000 WHERE {denied}"),
        // The calls gone.
        format!("DELETE FROM key_totals WHERE {denied}"),
        // Someone else's.
        format!("UPDATE key_totals SET one_user = 'mallory' WHERE {denied}"),
        // Nobody's.
        format!("UPDATE key_totals SET one_user = NULL WHERE {denied}"),
        // Several users' (a summary then reads the events, but the total is still wrong).
        format!("UPDATE key_totals SET mixed = 1, one_user = NULL WHERE {denied}"),
        // Calls that never happened.
        "INSERT INTO key_totals VALUES (1, 'session-a', 'admin', 'success', 3,
             1700000000000000, 1700000001000000, 0, 0, 'alice')"
            .to_string(),
        // Moved to another session.
        format!("UPDATE key_totals SET value = 'session-z' WHERE {denied}"),
        // The same bytes as a blob: no summary matches it, so the calls are hidden.
        format!("UPDATE key_totals SET value = CAST(value AS BLOB) WHERE {denied}"),
        // A field no writer uses.
        format!("UPDATE key_totals SET field = 7 WHERE {denied}"),
        // A count of the wrong type.
        format!("UPDATE key_totals SET n = 'many' WHERE {denied}"),
    ];
    let session_a = SummaryScope::Session("session-a".into());
    let summary_of = |path: &std::path::Path| {
        SqliteStore::open_read_only(path, SqliteOptions::default())
            .unwrap()
            .summary(&session_a)
            .ok()
    };
    let clean = summary_of(&path);
    assert_eq!(
        clean,
        Some(log.summary_of(|e| e.session_id.as_deref() == Some("session-a")))
    );
    for (n, edit) in edits.iter().enumerate() {
        // Each edit on a copy of the clean file, so that each is judged alone.
        let copy = dir.path().join(format!("edited-{n}.db"));
        assert_eq!(edited_copy(&path, &copy, edit), 1, "{edit}");
        assert_eq!(
            sqlite_findings(&copy),
            [Finding::KeyTotals { below: 4_096 }],
            "{edit}"
        );
        if n == 0 {
            // What such an edit is for: the summary reads the totals, and says so.
            let edited = summary_of(&copy).unwrap();
            assert_eq!(
                edited.total_operations + 1,
                clean.as_ref().unwrap().total_operations
            );
        }
    }
    assert_eq!(sqlite_findings(&path), [], "the original is untouched");
}

/// A reader may not migrate a file: one at schema version 5 (before the totals) is summarised
/// from its events; the first writer then totals everything its keys cover.
#[test]
fn a_file_from_before_the_totals_is_summarised_as_it_is_and_totalled_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut log = Log::default();
    let mut old = SqliteStore::open_at_schema_version(&path, 5).unwrap();
    log.append(&mut old, 4_100, |_| false);
    log.append(&mut old, 200, |_| false);
    drop(old);
    assert_eq!(indexed_to(&path), 4_100);

    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 5);
    log.assert_summaries(&mut reader, "version 5, read as it is");
    drop(reader);

    let mut writer = writer(&path);
    assert!(
        writer.schema_version().unwrap() >= 6,
        "migrated past the totals"
    );
    assert_eq!(totaled_to(&path), 4_100);
    assert_eq!(
        scalar(&path, "SELECT SUM(n) FROM key_totals WHERE field = 2"),
        (0..4_100).filter(|&i| user_of(i).is_some()).count() as i64,
        "the migration totalled what the keys covered, and not the tail"
    );
    log.assert_summaries(&mut writer, "migrated");
    log.append(&mut writer, 8_000, |_| false);
    assert_eq!((indexed_to(&path), totaled_to(&path)), (12_300, 12_300));
    log.assert_summaries(&mut writer, "migrated, then totalled by the writer");
    let report = verify(&mut writer, None, &[], &mut |_| {}).unwrap();
    assert_eq!(report.findings, []);
}

/// A column edited to a type no writer gives it is `verify`'s to report; it must not stop the
/// writer from moving the totals over its event (every later append would fail with it).
#[test]
fn a_wrongly_typed_column_does_not_stop_the_totals_from_moving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = writer(&path);
    store.set_totals_every(4_096);
    let mut log = Log::default();
    log.append(&mut store, 4_000, |_| false);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "UPDATE events SET requires_review = 'yes', ts = 'noon',
                               kind = CAST(kind AS BLOB) WHERE seq = 5",
        )
        .unwrap();
    log.append(&mut store, 200, |_| false);
    assert_eq!(totaled_to(&path), 4_200);
    let findings = verify(&mut store, None, &[], &mut |_| {}).unwrap().findings;
    assert!(
        findings
            .iter()
            .any(|f| matches!(f, Finding::ModifiedColumn { seq: 5, .. })),
        "{findings:?}"
    );
}
