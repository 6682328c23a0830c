//! What sinks keep in the store and read from it, on both backends: the log read from a seq
//! in order (erased payloads absent, removed entries skipped), every log with its size, cursors
//! that only move forward and count failures, dead letters (queued again, refused again,
//! dropped), and the lease that gives one runner at a time a sink's name.

mod backend;

use mcp_audit_core::{AuditEvent, EventId};
use std::time::Duration;

use mcp_audit_store::{
    Attempt, DeadLetter, LetterChoice, Maintain, Recorder, RecorderConfig, SinkState,
    SqliteOptions, SqliteStore,
};
#[cfg(feature = "postgres")]
use mcp_audit_store::{PgOptions, PgStore};
use serde_json::json;

use backend::{Backend, Db, clean_up};

/// What a sink opens on the test database.
fn follower(db: &Db) -> Box<dyn SinkState> {
    match db.backend {
        Backend::Sqlite => Box::new(SqliteStore::open(&db.path, SqliteOptions::default()).unwrap()),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            Box::new(PgStore::open_follower(&db.pg.as_ref().unwrap().url).unwrap())
        }
    }
}

fn log_id(db: &Db) -> String {
    follower(db).logs().unwrap()[0].log_id.clone()
}

/// Records `events` in the test log; their ids.
fn record(db: &Db, events: Vec<AuditEvent>) -> Vec<EventId> {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let ids = events
        .into_iter()
        .map(|e| {
            let id = e.id;
            r.record(e).unwrap();
            id
        })
        .collect();
    r.shutdown().unwrap();
    ids
}

fn call(i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool{i}"))
        .user("alice")
        .output(json!({"personal": format!("p{i}")}))
        .build()
        .unwrap()
}

fn reads_the_log_from_a_seq_in_order_without_erased_payloads_or_removed_entries(db: Db) {
    let expired = AuditEvent::tool_execution("old")
        .output(json!({"personal": "gone"}))
        .retention("1s")
        .timestamp("2020-01-10T00:00:00Z".parse().unwrap())
        .build()
        .unwrap();
    let ids = record(&db, vec![call(0), expired, call(2), call(3), call(4)]);
    assert!(db.open().erase_payload(ids[3]).unwrap());
    let (cleanup_seq, _) = clean_up(&db).expect("the old event expired");
    assert_eq!(cleanup_seq, 5);

    let mut state = follower(&db);
    let log = log_id(&db);
    let all = state.events_from(&log, 0, 100).unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 2, 3, 4, 5], "the removed entry's seq is skipped");
    assert!(all.iter().all(|e| e.log_id == log));
    let erased = &all[2];
    assert_eq!(erased.event.id, ids[3]);
    assert!(erased.redacted);
    assert_eq!(
        erased.event.payload.output, None,
        "an erased payload is never read"
    );
    assert_eq!(all[1].event.payload.output, Some(json!({"personal": "p2"})));
    assert_eq!(all[0].event.actor.user_id.as_deref(), Some("alice"));

    let page = state.events_from(&log, 2, 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(state.events_from(&log, 6, 10).unwrap().is_empty());
    assert!(state.events_from("no-such-log", 0, 10).unwrap().is_empty());
    assert_eq!(state.logs().unwrap()[0].size, 6);
}

fn a_cursor_moves_only_forward_and_counts_failures_at_its_position(db: Db) {
    record(&db, vec![call(0)]);
    let mut state = follower(&db);
    let log = log_id(&db);
    assert_eq!(state.cursor("siem", &log).unwrap(), None);
    assert!(
        state
            .failed("siem", &log, Attempt::Unavailable, "down")
            .is_err(),
        "a failure needs a position to count at"
    );
    state.advance("siem", &log, 3).unwrap();
    let c = state
        .failed("siem", &log, Attempt::Unavailable, "connection refused")
        .unwrap();
    assert_eq!((c.next_seq, c.tries, c.refusals), (3, 1, 0));
    let c = state
        .failed("siem", &log, Attempt::Refused, "HTTP 400")
        .unwrap();
    assert_eq!((c.tries, c.refusals), (2, 1));
    assert_eq!(c.last_error.as_deref(), Some("HTTP 400"));

    state.advance("siem", &log, 2).unwrap();
    let c = state.cursor("siem", &log).unwrap().unwrap();
    assert_eq!((c.next_seq, c.tries), (3, 2), "moving back changes nothing");

    state.advance("siem", &log, 7).unwrap();
    let c = state.cursor("siem", &log).unwrap().unwrap();
    assert_eq!(
        (c.next_seq, c.tries, c.refusals, c.last_error),
        (7, 0, 0, None)
    );

    state.advance("other", &log, 1).unwrap();
    let names: Vec<String> = state
        .cursors(None)
        .unwrap()
        .into_iter()
        .map(|c| c.sink)
        .collect();
    assert_eq!(names, ["other", "siem"]);
    assert_eq!(state.cursors(Some("siem")).unwrap().len(), 1);
    // A second connection (another process) sees the same cursor.
    assert_eq!(
        follower(&db)
            .cursor("siem", &log)
            .unwrap()
            .unwrap()
            .next_seq,
        7
    );
}

fn dead_letters_are_kept_once_per_record(db: Db) {
    let ids = record(&db, vec![call(0), call(1)]);
    let mut state = follower(&db);
    let log = log_id(&db);
    let letter = |seq: u64, tries: u32| DeadLetter {
        sink: "hook".into(),
        log_id: log.clone(),
        seq,
        event_id: ids[seq as usize],
        tries,
        last_error: "HTTP 422: bad record".into(),
        at: "2026-12-07T22:00:00Z".parse().unwrap(),
        queued: false,
    };
    state.add_dead_letter(&letter(1, 3)).unwrap();
    state.add_dead_letter(&letter(1, 5)).unwrap();
    state.add_dead_letter(&letter(0, 3)).unwrap();
    let letters = state.dead_letters(Some("hook")).unwrap();
    assert_eq!(letters, [letter(0, 3), letter(1, 5)]);
    assert!(state.dead_letters(Some("other")).unwrap().is_empty());
}

fn queued_dead_letters_come_back_after_max_tries_refusals_and_drop_removes_them(db: Db) {
    let ids = record(&db, vec![call(0), call(1), call(2)]);
    let mut state = follower(&db);
    let log = log_id(&db);
    for seq in 0..3 {
        state
            .add_dead_letter(&DeadLetter {
                sink: "hook".into(),
                log_id: log.clone(),
                seq,
                event_id: ids[seq as usize],
                tries: 2,
                last_error: "HTTP 422".into(),
                at: "2026-12-07T22:00:00Z".parse().unwrap(),
                queued: false,
            })
            .unwrap();
    }
    let choice = |seqs: Option<&'static [u64]>| LetterChoice {
        sink: "hook",
        log_id: None,
        seqs,
    };
    assert_eq!(state.queue_dead_letters(&choice(Some(&[2, 0]))).unwrap(), 2);
    let queued: Vec<u64> = state
        .queued_letters("hook")
        .unwrap()
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(queued, [0, 2], "in seq order");
    assert!(state.queued_letters("other").unwrap().is_empty());

    let first = state
        .replay_refused("hook", &log, 0, "HTTP 422 again", 2)
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.tries, first.queued),
        (3, true),
        "one refusal of two: still queued"
    );
    let second = state
        .replay_refused("hook", &log, 0, "HTTP 422 again", 2)
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.tries, second.queued),
        (4, false),
        "back in the dead letters"
    );
    assert_eq!(second.last_error, "HTTP 422 again");
    assert!(
        state
            .replay_refused("hook", &log, 9, "x", 2)
            .unwrap()
            .is_none()
    );

    // Queued again, its refusals since queued start over.
    state.queue_dead_letters(&choice(Some(&[0]))).unwrap();
    let again = state
        .replay_refused("hook", &log, 0, "no", 2)
        .unwrap()
        .unwrap();
    assert!(again.queued);

    assert_eq!(state.drop_dead_letters(&choice(Some(&[2]))).unwrap(), 1);
    assert_eq!(state.drop_dead_letters(&choice(Some(&[2]))).unwrap(), 0);
    let left: Vec<u64> = state
        .dead_letters(Some("hook"))
        .unwrap()
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(left, [0, 1]);
    assert_eq!(state.drop_dead_letters(&choice(None)).unwrap(), 2);
    assert!(state.dead_letters(None).unwrap().is_empty());
}

fn a_lease_is_held_by_one_owner_until_released_or_run_out(db: Db) {
    record(&db, vec![call(0)]);
    let mut a = follower(&db);
    let mut b = follower(&db);
    let long = Duration::from_secs(60);

    let lease = a.take_lease("hook", "a", long).unwrap();
    assert!(lease.held_by("a") && lease.standby.is_none());
    let lease = b.take_lease("hook", "b", long).unwrap();
    assert!(lease.held_by("a"), "a held lease does not change hands");
    assert_eq!(
        lease.standby.as_deref(),
        Some("b"),
        "the asker is the standby"
    );
    let renewed = a.take_lease("hook", "a", long).unwrap();
    assert!(renewed.held_by("a") && renewed.expires_at >= lease.expires_at);
    assert_eq!(
        renewed.standby.as_deref(),
        Some("b"),
        "renewing keeps the standby"
    );
    assert!(
        b.take_lease("other", "b", long).unwrap().held_by("b"),
        "one lease per name"
    );

    b.release_lease("hook", "b").unwrap(); // not its lease: nothing happens
    assert!(b.take_lease("hook", "b", long).unwrap().held_by("a"));
    a.release_lease("hook", "a").unwrap();
    let taken = b.take_lease("hook", "b", long).unwrap();
    assert!(taken.held_by("b"), "a released lease is taken at once");
    assert_eq!(taken.standby, None);

    // A lease that ran out is taken by the next asker, with no release.
    b.take_lease("short", "b", Duration::from_millis(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(a.take_lease("short", "a", long).unwrap().held_by("a"));
    let names: Vec<String> = a.leases().unwrap().into_iter().map(|l| l.sink).collect();
    assert_eq!(names, ["hook", "other", "short"]);
}

on_both_backends!(
    reads_the_log_from_a_seq_in_order_without_erased_payloads_or_removed_entries,
    a_cursor_moves_only_forward_and_counts_failures_at_its_position,
    dead_letters_are_kept_once_per_record,
    queued_dead_letters_come_back_after_max_tries_refusals_and_drop_removes_them,
    a_lease_is_held_by_one_owner_until_released_or_run_out,
);

#[cfg(feature = "postgres")]
mod postgres_only {
    use super::*;
    use backend::LOG_ID;

    #[test]
    fn every_log_of_the_database_is_listed_and_read() {
        let Some(db) = Db::new(Backend::Postgres) else {
            return;
        };
        record(&db, vec![call(0), call(1)]);
        let other = PgStore::open(
            &db.pg.as_ref().unwrap().url,
            PgOptions {
                log_id: Some("other-log".into()),
                ..PgOptions::default()
            },
        )
        .unwrap();
        let r = Recorder::start(other, RecorderConfig::default()).unwrap();
        r.record(call(9)).unwrap();
        r.shutdown().unwrap();

        let mut state = follower(&db);
        let logs: Vec<(String, u64)> = state
            .logs()
            .unwrap()
            .into_iter()
            .map(|l| (l.log_id, l.size))
            .collect();
        assert_eq!(
            logs,
            [("other-log".to_string(), 1), (LOG_ID.to_string(), 2)]
        );
        let other_events = state.events_from("other-log", 0, 10).unwrap();
        assert_eq!(other_events.len(), 1);
        assert_eq!(other_events[0].event.operation, "tool9");
        assert_eq!(state.events_from(LOG_ID, 0, 10).unwrap().len(), 2);
    }

    #[test]
    fn the_sink_migration_runs_again_on_a_schema_that_has_its_tables() {
        let Some(db) = Db::new(Backend::Postgres) else {
            return;
        };
        record(&db, vec![call(0)]);
        let mut state = follower(&db);
        state.advance("siem", LOG_ID, 1).unwrap();
        drop(state);
        db.exec("UPDATE mcp_audit_schema SET version = version - 1");
        let mut state = follower(&db);
        assert_eq!(state.cursor("siem", LOG_ID).unwrap().unwrap().next_seq, 1);
    }
}
