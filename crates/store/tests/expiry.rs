//! Expiry that keeps the log provable, on both backends: a cleanup run removes expired entries,
//! keeps a tombstone of each and records itself in the log; `verify` counts the removed entries
//! as expired, and proofs, checkpoints and consistency proofs go on working. Removal by any
//! other means stays a missing entry.

mod backend;

use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner};
use mcp_audit_core::{AuditEvent, EventId, merkle};
#[cfg(feature = "postgres")]
use mcp_audit_store::PgStore;
use mcp_audit_store::expiry::{CLEANUP_OPERATION, CleanupRecord, SeqRange};
use mcp_audit_store::integrity::{
    Finding, OutsideCheckpoint, Report, consistency, prove, sign_checkpoint, verify,
};
use mcp_audit_store::{CheckpointPolicy, Filter, Query, Recorder, RecorderConfig, Store};

use backend::{Backend, Db, clean_up, files_hold};
#[cfg(feature = "postgres")]
use backend::{LOG_ID, clean_up_log};

const ORIGIN: &str = "mcp-audit.test/expiry";

/// An event that expired long ago (`short`) or that is kept forever.
fn event(i: u64, short: bool) -> AuditEvent {
    let builder = AuditEvent::tool_execution(format!("tool{i}"))
        .user("alice")
        .session("s-1")
        .output(serde_json::json!({"personal": format!("s{i}")}));
    let builder = if short {
        builder
            .retention("1s")
            .timestamp("2020-01-10T00:00:00Z".parse().unwrap())
    } else {
        builder.retention("forever")
    };
    builder.build().unwrap()
}

/// Which of the ten entries of [`Fixture::new`] expire: interleaved with kept ones.
const SHORT: [u64; 5] = [0, 1, 4, 6, 7];

struct Fixture {
    db: Db,
    signer: NoteSigner,
    ids: Vec<EventId>,
    /// The checkpoint signed before the cleanup.
    before: OutsideCheckpoint,
}

impl Fixture {
    /// Ten events, short and long retentions interleaved, then a signed checkpoint.
    fn new(db: Db) -> Fixture {
        let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
        let ids = (0..10)
            .map(|i| {
                let e = event(i, SHORT.contains(&i));
                let id = e.id;
                r.record(e).unwrap();
                id
            })
            .collect();
        r.shutdown().unwrap();
        let signer = NoteSigner::generate("expiry-test").unwrap();
        let before = sign_checkpoint(&mut db.open(), &signer, ORIGIN).unwrap();
        Fixture {
            db,
            signer,
            ids,
            before,
        }
    }

    fn verify(&self) -> Report {
        verify(
            &mut log_reader(&self.db),
            Some(&self.signer.verifier()),
            &[],
            &mut |_| {},
        )
        .unwrap()
    }
}

/// A reader of the test log.
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

fn missing(report: &Report) -> Vec<u64> {
    report
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::MissingEntry { seq } => Some(*seq),
            _ => None,
        })
        .collect()
}

fn cleanup_verifies_and_counts_the_removed_entries_as_expired_by_their_run(db: Db) {
    let fx = Fixture::new(db);
    let (seq, deleted) = clean_up(&fx.db).unwrap();
    assert_eq!(seq, 10, "the run is the next event of the log");
    assert_eq!((deleted.events, deleted.payloads), (5, 5));
    assert_eq!(
        fx.db.count("SELECT COUNT(*) FROM events"),
        6,
        "five kept, one cleanup event"
    );
    let report = fx.verify();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.expired, 5);
    assert_eq!(report.entries, 6);
    assert_eq!(report.checkpoints_verified, 1);
    assert_eq!(report.expiries.len(), 1);
    assert_eq!(report.expiries[0].cleanup_seq, 10);
    assert_eq!(report.expiries[0].ranges, SeqRange::runs(SHORT));
}

fn each_cleanup_run_is_an_event_of_the_log_listing_what_it_removed(db: Db) {
    let fx = Fixture::new(db);
    assert_eq!(clean_up(&fx.db).map(|(seq, _)| seq), Some(10));
    assert_eq!(
        clean_up(&fx.db),
        None,
        "nothing left to remove, nothing recorded"
    );
    let page = fx
        .db
        .reader()
        .query(&Query {
            filter: Filter::default(),
            limit: 100,
            ..Query::default()
        })
        .unwrap();
    let runs: Vec<&AuditEvent> = page
        .events
        .iter()
        .map(|e| &e.event)
        .filter(|e| e.operation == CLEANUP_OPERATION)
        .collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0];
    assert_eq!(run.kind.as_str(), "admin");
    assert_eq!(
        run.compliance.expires_at, None,
        "a cleanup record is kept forever"
    );
    let details = run.compliance_events[0].details.clone().unwrap();
    let record: CleanupRecord = serde_json::from_value(details).unwrap();
    assert_eq!(record.entries, 5);
    assert_eq!(record.ranges, SeqRange::runs(SHORT));
    assert_eq!(record.retentions, ["1s"]);
    assert!(record.expired_before > "2020-01-10T00:00:01Z".parse().unwrap());
}

fn a_survivor_is_proven_after_cleanup_and_its_proof_checks_out(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    // Under the checkpoint signed before the cleanup, then under one signed after it.
    for _ in 0..2 {
        for kept in [2, 3, 5, 9] {
            let proof = prove(&mut log_reader(&fx.db), fx.ids[kept]).unwrap();
            let event = proof.verify(&fx.signer.verifier()).unwrap();
            assert_eq!(event.operation, format!("tool{kept}"));
        }
        sign_checkpoint(&mut fx.db.open(), &fx.signer, ORIGIN).unwrap();
    }
    let expired = prove(&mut log_reader(&fx.db), fx.ids[0]).unwrap_err();
    assert!(expired.to_string().contains("no event"), "{expired}");
}

fn a_checkpoint_signs_after_cleanup_consistent_with_the_one_before(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    let after = sign_checkpoint(&mut fx.db.open(), &fx.signer, ORIGIN).unwrap();
    assert_eq!(after.size, 11);
    let open =
        |c: &OutsideCheckpoint| -> Checkpoint { fx.signer.verifier().open(&c.note).unwrap() };
    let (old, new) = (open(&fx.before), open(&after));
    let proof = consistency(&mut log_reader(&fx.db), old.size, new.size).unwrap();
    assert!(merkle::verify_consistency(
        old.size, new.size, &proof, &old.root, &new.root
    ));
    assert!(fx.verify().is_ok());
}

fn a_signing_writer_starts_on_a_cleaned_log(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    // What `proxy --checkpoint-key` does at start: check the log extends its checkpoint.
    let config = RecorderConfig {
        checkpoints: Some(CheckpointPolicy {
            signer: std::sync::Arc::new(NoteSigner::from_text(&fx.signer.to_text()).unwrap()),
            origin: ORIGIN.into(),
            every_entries: 1,
            every: std::time::Duration::from_secs(3600),
            out: None,
            publish: None,
        }),
        ..RecorderConfig::default()
    };
    let r = Recorder::start(fx.db.open(), config).unwrap();
    r.record(event(11, false)).unwrap();
    r.shutdown().unwrap();
    let report = fx.verify();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert!(report.checkpoints_verified >= 2);
    assert_eq!(report.covered, 12);
}

fn a_row_deleted_without_a_cleanup_record_is_still_missing(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    for table in ["payloads", "events"] {
        fx.db.exec(&format!("DELETE FROM {table} WHERE seq = 3"));
    }
    let report = fx.verify();
    assert_eq!(missing(&report), [3]);
    assert_eq!(
        report.expired, 5,
        "the lawful removals are still told apart"
    );
}

fn a_tombstone_forged_for_a_seq_no_cleanup_listed_is_still_missing(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    // The true leaf of seq 3 moved into a tombstone that names the real cleanup run, which
    // never listed seq 3; seq 5's names an event that is no cleanup run.
    let (columns, log) = match fx.db.backend {
        Backend::Sqlite => ("seq, leaf_hash, removed_by", String::new()),
        #[cfg(feature = "postgres")]
        Backend::Postgres => (
            "log_id, seq, leaf_hash, removed_by",
            format!("'{LOG_ID}', "),
        ),
    };
    for (seq, removed_by) in [(3, 10), (5, 9)] {
        fx.db.exec(&format!(
            "INSERT INTO expired_entries ({columns})
               SELECT {log}seq, leaf_hash, {removed_by} FROM events WHERE seq = {seq};
             DELETE FROM payloads WHERE seq = {seq};
             DELETE FROM events WHERE seq = {seq};"
        ));
    }
    let report = fx.verify();
    assert_eq!(missing(&report), [3, 5]);
    assert_eq!(report.expired, 5);
}

fn a_tombstone_whose_leaf_does_not_fit_is_caught_by_the_checkpoint(db: Db) {
    let fx = Fixture::new(db);
    clean_up(&fx.db).unwrap();
    fx.db.exec("UPDATE expired_entries SET leaf_hash = (SELECT leaf_hash FROM events WHERE seq = 2) WHERE seq = 1");
    let report = fx.verify();
    assert!(
        report
            .findings
            .contains(&Finding::CheckpointMismatch { size: 10 }),
        "{:?}",
        report.findings
    );
    let refused = sign_checkpoint(&mut fx.db.open(), &fx.signer, ORIGIN).unwrap_err();
    assert!(
        refused.to_string().contains("no longer extends"),
        "{refused}"
    );
}

fn a_tombstone_planted_beside_an_expired_row_neither_stops_cleanup_nor_removes_that_row(db: Db) {
    let fx = Fixture::new(db);
    let (columns, log) = match fx.db.backend {
        Backend::Sqlite => ("seq, leaf_hash, removed_by", String::new()),
        #[cfg(feature = "postgres")]
        Backend::Postgres => (
            "log_id, seq, leaf_hash, removed_by",
            format!("'{LOG_ID}', "),
        ),
    };
    fx.db.exec(&format!(
        "INSERT INTO expired_entries ({columns}) SELECT {log}seq, leaf_hash, 99 FROM events WHERE seq = 0"
    ));
    let (_, deleted) = clean_up(&fx.db).unwrap();
    assert_eq!(
        deleted.events, 4,
        "every expired row but the one beside the planted tombstone"
    );
    assert_eq!(fx.db.count("SELECT COUNT(*) FROM events WHERE seq = 0"), 1);
    let report = fx.verify();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!((report.expired, report.entries), (4, 7));
}

on_both_backends!(
    a_tombstone_planted_beside_an_expired_row_neither_stops_cleanup_nor_removes_that_row,
    cleanup_verifies_and_counts_the_removed_entries_as_expired_by_their_run,
    each_cleanup_run_is_an_event_of_the_log_listing_what_it_removed,
    a_survivor_is_proven_after_cleanup_and_its_proof_checks_out,
    a_checkpoint_signs_after_cleanup_consistent_with_the_one_before,
    a_signing_writer_starts_on_a_cleaned_log,
    a_row_deleted_without_a_cleanup_record_is_still_missing,
    a_tombstone_forged_for_a_seq_no_cleanup_listed_is_still_missing,
    a_tombstone_whose_leaf_does_not_fit_is_caught_by_the_checkpoint,
);

/// PostgreSQL drops a past month's partitions whole once every row in them has a tombstone:
/// not while another log's expired rows there wait for their own run, and with the same
/// guarantees as a removal row by row.
#[cfg(feature = "postgres")]
#[test]
fn a_months_partition_is_dropped_once_every_log_in_it_is_cleaned_and_the_logs_stay_provable() {
    let Some(db) = Db::new(Backend::Postgres) else {
        return;
    };
    let fx = Fixture::new(db);
    let other = || -> Box<dyn Store> {
        Box::new(
            fx.db
                .open_pg(mcp_audit_store::PgOptions {
                    log_id: Some("other".into()),
                    ..Default::default()
                })
                .unwrap(),
        )
    };
    let r = Recorder::start(other(), RecorderConfig::default()).unwrap();
    r.record(event(20, true)).unwrap();
    r.record(event(21, false)).unwrap();
    r.shutdown().unwrap();
    let january = "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'events'::regclass
                     AND inhrelid::regclass::text = 'events_p202001'";

    clean_up(&fx.db).unwrap();
    assert_eq!(
        fx.db.count(january),
        1,
        "the other log's expired row keeps its month"
    );
    assert_eq!(
        fx.db
            .count("SELECT COUNT(*) FROM events WHERE log_id = 'other'"),
        2
    );
    assert_eq!(clean_up_log(&other).map(|(seq, _)| seq), Some(2));
    assert_eq!(
        fx.db.count(january),
        0,
        "every row of the month has a tombstone: dropped"
    );

    let report = fx.verify();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.expired, 5);
    let proof = prove(&mut log_reader(&fx.db), fx.ids[9]).unwrap();
    proof.verify(&fx.signer.verifier()).unwrap();
    let mut reader = PgStore::open_read_only(&fx.db.pg.as_ref().unwrap().url).unwrap();
    reader.read_log("other").unwrap();
    let other_report = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
    assert!(other_report.is_ok(), "{:?}", other_report.findings);
    assert_eq!(
        (other_report.expired, other_report.entries),
        (1, 2),
        "one removed, one kept and the run"
    );
}

/// A file from before tombstones (schema version 6) is verified and proven by a reader as it
/// is; the first writer adds the table, and cleanup then works on it.
#[test]
fn a_file_from_before_tombstones_is_read_as_it_is_and_cleaned_once_migrated() {
    use mcp_audit_store::{SqliteOptions, SqliteStore};
    let db = Db::sqlite();
    let old = SqliteStore::open_at_schema_version(&db.path, 6).unwrap();
    let r = Recorder::start(old, RecorderConfig::default()).unwrap();
    for i in 0..4 {
        r.record(event(i, i % 2 == 0)).unwrap();
    }
    r.shutdown().unwrap();
    let mut reader = SqliteStore::open_read_only(&db.path, SqliteOptions::default()).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 6);
    let report = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.entries, 4);
    drop(reader);

    assert_eq!(clean_up(&db).map(|(seq, d)| (seq, d.events)), Some((4, 2)));
    let report = verify(&mut db.reader(), None, &[], &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!((report.entries, report.expired), (3, 2));
}

/// An expired event's personal data leaves the SQLite file and its write-ahead log as an erased
/// one's does: the removal overwrites the freed cells (`secure_delete`) and the run clears the
/// log's copies. Before, cleanup deleted the rows and left their bytes in free pages and the WAL.
#[test]
fn an_expired_events_payload_leaves_the_database_file_and_its_write_ahead_log() {
    use serde_json::json;
    let db = Db::sqlite();
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    // Enough kept rows around it that pages fill and split, and an expired call whose output
    // needs overflow pages beside a small one.
    let filler = "x".repeat(700);
    for i in 0..300u64 {
        r.record(
            AuditEvent::tool_execution("fill")
                .retention("forever")
                .output(json!({"n": i, "pad": filler}))
                .build()
                .unwrap(),
        )
        .unwrap();
        let secret = match i {
            100 => "small-expired-5e2b".to_string(),
            200 => format!("big-expired-8a4c{}", "y".repeat(60_000)),
            _ => continue,
        };
        r.record(
            AuditEvent::tool_execution("lookup")
                .retention("1s")
                .timestamp("2020-01-10T00:00:00Z".parse().unwrap())
                .output(json!({"personal": secret}))
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    r.shutdown().unwrap();
    for secret in ["small-expired-5e2b", "big-expired-8a4c"] {
        assert!(
            !files_hold(&db.path, secret).is_empty(),
            "{secret} is there"
        );
    }
    // A writer stays open meanwhile, as a proxy's would.
    let other_writer = db.open();
    assert_eq!(clean_up(&db).map(|(_, d)| d.events), Some(2));
    for secret in ["small-expired-5e2b", "big-expired-8a4c"] {
        assert_eq!(
            files_hold(&db.path, secret),
            Vec::<String>::new(),
            "{secret}"
        );
    }
    drop(other_writer);
    let report = verify(&mut db.reader(), None, &[], &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.expired, 2);
}
