//! The receive time, on both backends: stamped by the recorder whatever the caller says, hashed
//! and kept in a column that `verify` compares; windows by either time; events whose stated
//! time is far from it flagged; logs from before it read and verified as they were.

mod backend;

use jiff::{SignedDuration, Timestamp};
use mcp_audit_core::{AuditEvent, EventId, MAX_CLOCK_SKEW, now_micros};
#[cfg(feature = "postgres")]
use mcp_audit_store::PgStore;
use mcp_audit_store::integrity::{Finding, Report, verify};
use mcp_audit_store::{Filter, Query, Recorder, RecorderConfig, Store, SummaryScope, TimeBasis};

#[cfg(feature = "postgres")]
use backend::LOG_ID;
use backend::{Backend, Db};

/// A reader of the test log, pointed at it for `verify`.
fn log_reader(db: &Db) -> Box<dyn Store> {
    match db.backend {
        Backend::Sqlite => db.reader(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut store = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
            store.read_log(LOG_ID).unwrap();
            Box::new(store)
        }
    }
}

fn verified(db: &Db) -> Report {
    verify(&mut log_reader(db), None, &[], &mut |_| {}).unwrap()
}

/// The ids of the events `filter` matches, oldest first.
fn ids(db: &Db, filter: Filter) -> Vec<EventId> {
    let page = db
        .reader()
        .query(&Query {
            filter,
            limit: 10_000,
            ..Query::default()
        })
        .unwrap();
    let mut events: Vec<_> = page
        .events
        .into_iter()
        .map(|e| (e.seq, e.event.id))
        .collect();
    events.sort();
    events.into_iter().map(|(_, id)| id).collect()
}

fn stated(op: &str, at: &str) -> AuditEvent {
    AuditEvent::tool_execution(op)
        .timestamp(at.parse().unwrap())
        .build()
        .unwrap()
}

fn back_and_future_dated_events_are_found_by_receive_time_and_flagged_as_skewed(db: Db) {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let before = now_micros();
    let back = stated("back", "2001-01-01T00:00:00Z");
    let future = stated("future", "2099-01-01T00:00:00Z");
    let now = AuditEvent::tool_execution("now").build().unwrap();
    for e in [&back, &future, &now] {
        r.record(e.clone()).unwrap();
    }
    r.shutdown().unwrap();
    let after = now_micros();

    // The last hour (`--since 1h --until 1m`): bounded on both sides, so that the event dated
    // 2099 is outside the stated window too.
    let window = |time| Filter {
        since: Some(after - SignedDuration::from_hours(1)),
        until: Some(after + SignedDuration::from_mins(1)),
        time,
        ..Filter::default()
    };
    assert_eq!(ids(&db, window(TimeBasis::Stated)), [now.id]);
    assert_eq!(
        ids(&db, window(TimeBasis::Received)),
        [back.id, future.id, now.id]
    );
    let mut reader = db.reader();
    assert_eq!(reader.count(&window(TimeBasis::Received)).unwrap(), 3);
    let calls: u64 = reader
        .tool_stats(&window(TimeBasis::Received))
        .unwrap()
        .iter()
        .map(|s| s.calls)
        .sum();
    assert_eq!(calls, 3, "statistics window by the same time");
    for (time, total) in [(TimeBasis::Stated, 1), (TimeBasis::Received, 3)] {
        let w = window(time);
        let summary = reader
            .summary(&SummaryScope::Window {
                since: w.since,
                until: w.until,
                time,
            })
            .unwrap();
        assert_eq!(summary.total_operations, total, "{time:?}");
    }

    let skewed = Filter {
        skewed: true,
        ..Filter::default()
    };
    assert_eq!(ids(&db, skewed.clone()), [back.id, future.id]);
    assert_eq!(
        ids(
            &db,
            Filter {
                skewed: true,
                ..window(TimeBasis::Stated)
            }
        ),
        [],
        "both conditions hold"
    );
    for (e, is_skewed) in [(&back, true), (&future, true), (&now, false)] {
        let stored = reader.get(e.id).unwrap().unwrap().event;
        let received = stored.received_at.expect("stamped");
        assert!(before <= received && received <= after, "{received}");
        assert_eq!(stored.timestamp, e.timestamp, "the stated time is kept");
        assert_eq!(stored.is_skewed(), is_skewed, "{}", e.operation);
    }
    let report = verified(&db);
    assert!(report.is_ok(), "{:?}", report.findings);
}

fn a_receive_time_given_by_the_caller_is_replaced_by_the_recorders(db: Db) {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let mut forged = AuditEvent::tool_execution("t").build().unwrap();
    let claimed: Timestamp = "2001-01-01T00:00:00Z".parse().unwrap();
    forged.received_at = Some(claimed);
    let before = now_micros();
    r.record(forged.clone()).unwrap();
    r.shutdown().unwrap();
    let stored = db.reader().get(forged.id).unwrap().unwrap().event;
    let received = stored.received_at.expect("stamped");
    assert!(
        received >= before,
        "{received} is the recorder's, not {claimed}"
    );
    assert!(!stored.is_skewed());
    let report = verified(&db);
    assert!(report.is_ok(), "{:?}", report.findings);
}

fn editing_the_stored_receive_time_is_reported_by_verify(db: Db) {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    for i in 0..3 {
        r.record(AuditEvent::tool_execution(format!("t{i}")).build().unwrap())
            .unwrap();
    }
    r.shutdown().unwrap();
    assert!(verified(&db).is_ok());
    // Moving a row into a window it was not received in, and wiping another's time.
    db.exec(&format!(
        "UPDATE events SET received_at = received_at - {} WHERE seq = 0;
         UPDATE events SET received_at = NULL WHERE seq = 2;",
        2 * MAX_CLOCK_SKEW.as_micros()
    ));
    assert_eq!(
        verified(&db).findings,
        [
            Finding::ModifiedColumn {
                seq: 0,
                column: "received_at"
            },
            Finding::ModifiedColumn {
                seq: 2,
                column: "received_at"
            },
        ]
    );
}

/// A log written before receive times were kept: its events' metadata has none, and (on
/// SQLite, schema version 7; on PostgreSQL, version 2) its events table no column for one. A
/// reader verifies it as it is; the first writer migrates it, and the old entries then read
/// with no receive time, still verify, and stay out of every window by receive time.
fn a_log_from_before_receive_times_verifies_and_reads_its_old_events_without_one(db: Db) {
    let old: Vec<_> = (0..3)
        .map(|i| {
            let mut e = AuditEvent::tool_execution(format!("old{i}"))
                .build()
                .unwrap();
            mcp_audit_core::Policy::default().apply(&mut e).unwrap();
            mcp_audit_core::seal(e).unwrap()
        })
        .collect();
    match db.backend {
        Backend::Sqlite => {
            let mut store =
                mcp_audit_store::SqliteStore::open_at_schema_version(&db.path, 7).unwrap();
            backend::append_sealed(&mut store, 0, &old);
            // And one that this build's recorder stamped, written at that schema (as the
            // migration tests of other versions write theirs): the migration copies its
            // receive time into the new column.
            let r = Recorder::start(store, RecorderConfig::default()).unwrap();
            r.record(AuditEvent::tool_execution("stamped").build().unwrap())
                .unwrap();
            r.shutdown().unwrap();
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            // Appended as a writer of version 2 did (no receive time to write), then the
            // schema taken back to that version.
            let mut store = db.open();
            backend::append_sealed(&mut store, 0, &old);
            // A writer of version 2 could not stamp one; the count of entries stays alike.
            let stamped =
                mcp_audit_core::seal(AuditEvent::tool_execution("stamped").build().unwrap())
                    .unwrap();
            backend::append_sealed(&mut store, 3, &[stamped]);
            drop(store);
            db.exec(
                "DROP INDEX events_received;
                 ALTER TABLE events DROP COLUMN received_at;
                 DROP TABLE pseudonyms;
                 UPDATE mcp_audit_schema SET version = 2;",
            );
        }
    }
    let (old_version, version) = match db.backend {
        Backend::Sqlite => (7, "SELECT user_version FROM pragma_user_version"),
        #[cfg(feature = "postgres")]
        Backend::Postgres => (2, "SELECT version::bigint FROM mcp_audit_schema"),
    };
    assert_eq!(db.count(version), old_version);
    let report = verified(&db);
    assert!(report.is_ok(), "not migrated: {:?}", report.findings);
    assert_eq!(report.entries, 4);
    // Read as it is, it has no receive times to window by: said so, not "no such column".
    let received_ever = Filter {
        since: Some(Timestamp::UNIX_EPOCH),
        time: TimeBasis::Received,
        ..Filter::default()
    };
    let refused = db.reader().count(&received_ever).unwrap_err().to_string();
    assert!(refused.contains("predates receive times"), "{refused}");
    assert_eq!(db.reader().count(&Filter::default()).unwrap(), 4);

    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let new = AuditEvent::tool_execution("new").build().unwrap();
    r.record(new.clone()).unwrap();
    r.shutdown().unwrap();
    // Migrated: to a later version (how much later is this build's to say).
    assert!(db.count(version) > old_version);
    let report = verified(&db);
    assert!(report.is_ok(), "migrated: {:?}", report.findings);
    assert_eq!(report.entries, 5);
    let mut reader = db.reader();
    for sealed in &old {
        let stored = reader.get(sealed.event.id).unwrap().unwrap();
        assert_eq!(stored.event.received_at, None);
        assert_eq!(stored.event, sealed.event);
        assert!(!stored.event.is_skewed());
    }
    assert!(
        reader
            .get(new.id)
            .unwrap()
            .unwrap()
            .event
            .received_at
            .is_some()
    );
    let received: Vec<String> = ids(&db, received_ever)
        .into_iter()
        .map(|id| reader.get(id).unwrap().unwrap().event.operation)
        .collect();
    let stamped_at_v7 = db.backend == Backend::Sqlite;
    assert_eq!(
        received,
        if stamped_at_v7 {
            vec!["stamped", "new"]
        } else {
            vec!["new"]
        }
    );
    assert_eq!(ids(&db, Filter::default()).len(), 5);
}

on_both_backends!(
    back_and_future_dated_events_are_found_by_receive_time_and_flagged_as_skewed,
    a_receive_time_given_by_the_caller_is_replaced_by_the_recorders,
    editing_the_stored_receive_time_is_reported_by_verify,
    a_log_from_before_receive_times_verifies_and_reads_its_old_events_without_one,
);
