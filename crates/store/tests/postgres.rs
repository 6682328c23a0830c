//! What only the PostgreSQL backend does: many writers (one log each) in one database, the
//! refusal of a second writer of one log, a store that claims none, monthly partitions that cleanup drops whole, and the
//! schema version check. The behaviours both backends share are in `store.rs`.

mod backend;

use jiff::Timestamp;
use mcp_audit_core::AuditEvent;
use mcp_audit_store::{
    Append, Durability, Filter, PageStart, PgOptions, PgStore, Query, Receipt, Recorder,
    RecorderConfig, SpoolOptions, Store, StoreError,
};

use backend::{Backend, Db};

fn pg() -> Option<Db> {
    Db::new(Backend::Postgres)
}

fn writer(db: &Db, log_id: &str) -> PgStore {
    db.open_pg(PgOptions {
        log_id: Some(log_id.to_string()),
        ..PgOptions::default()
    })
    .unwrap()
}

fn batch() -> RecorderConfig {
    RecorderConfig {
        durability: Durability::Batch,
        max_batch: 50,
        ..RecorderConfig::default()
    }
}

#[test]
fn many_writers_keep_one_dense_log_each_and_queries_see_them_all() {
    let Some(db) = pg() else { return };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let r = Recorder::start(writer(&db, &format!("proxy-{w}")), batch()).unwrap();
            std::thread::spawn(move || {
                for i in 0..500 {
                    r.record(
                        AuditEvent::tool_execution(format!("w{w}-{i}"))
                            .build()
                            .unwrap(),
                    )
                    .unwrap();
                }
                r.shutdown().unwrap()
            })
        })
        .collect();
    for w in writers {
        assert_eq!(w.join().unwrap().failed, 0);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 2_000);
    for w in 0..4 {
        let (n, min, max): (i64, i64, i64) = {
            let row = db
                .pg
                .as_ref()
                .unwrap()
                .raw()
                .query_one(
                    "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events WHERE log_id = $1",
                    &[&format!("proxy-{w}")],
                )
                .unwrap();
            (row.get(0), row.get(1), row.get(2))
        };
        assert_eq!(
            (n, min, max),
            (500, 0, 499),
            "log proxy-{w} is dense from 0"
        );
    }
    let mut reader = db.reader();
    assert_eq!(reader.count(&Filter::default()).unwrap(), 2_000);
    // Paging through all logs together never skips or repeats an event.
    let mut seen = std::collections::HashSet::new();
    let mut start = PageStart::Newest;
    loop {
        let page = reader
            .query(&Query {
                start: start.clone(),
                limit: 300,
                ..Query::default()
            })
            .unwrap();
        for e in &page.events {
            assert!(seen.insert((e.log_id.clone(), e.seq)), "repeated {e:?}");
        }
        match page.next {
            Some(c) => start = PageStart::After(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2_000);
}

#[test]
fn a_second_writer_of_a_log_in_use_is_refused_with_a_clear_error() {
    let Some(db) = pg() else { return };
    let first = writer(&db, "proxy-a");
    match db.open_pg(PgOptions {
        log_id: Some("proxy-a".into()),
        ..PgOptions::default()
    }) {
        Err(e @ StoreError::LogInUse { .. }) => {
            assert!(e.to_string().contains("proxy-a"), "{e}");
            assert!(e.to_string().contains("own log id"), "{e}");
        }
        other => panic!("expected LogInUse, got {:?}", other.err()),
    }
    // Another log id is fine, and once the first writer is gone its log can be taken again.
    drop(writer(&db, "proxy-b"));
    drop(first);
    let again = Recorder::start(writer(&db, "proxy-a"), RecorderConfig::default()).unwrap();
    assert!(matches!(
        again
            .record(AuditEvent::tool_execution("t").build().unwrap())
            .unwrap(),
        Receipt::Durable { seq: 0, .. }
    ));
    again.shutdown().unwrap();
}

/// An eraser (or a witness's state) claims no log: opened beside a writer of any log, it is
/// never refused, and what it would append is refused rather than made into a log without a
/// name, so that no run of it leaves a log behind.
#[test]
fn a_store_that_claims_no_log_runs_beside_every_writer_and_appends_nothing() {
    let Some(db) = pg() else { return };
    let url = db.pg.as_ref().unwrap().url.clone();
    let proxy = writer(&db, "proxy-a");
    let unclaimed = PgStore::open_unclaimed(&url).unwrap();
    let also = PgStore::open_unclaimed(&url).unwrap();
    let recorder = Recorder::start(unclaimed, RecorderConfig::default()).unwrap();
    let refused = recorder.record(AuditEvent::tool_execution("t").build().unwrap());
    assert!(refused.is_err(), "{refused:?}");
    let _ = recorder.shutdown();
    drop((proxy, also));
    let logs = PgStore::open_read_only(&url).unwrap().logs().unwrap();
    assert!(logs.is_empty(), "{logs:?}");
}

#[test]
fn a_writer_that_lost_its_seqs_to_another_writer_is_told_the_next_seq() {
    // Two writers of one log can only meet if the advisory lock is bypassed (a writer whose
    // session was taken over); the seq check inside the transaction still refuses to interleave.
    let Some(db) = pg() else { return };
    let mut store = writer(&db, "proxy-a");
    db.exec(
        "INSERT INTO logs (log_id, next_seq, created_at) VALUES ('proxy-a', 7, 0)
         ON CONFLICT (log_id) DO UPDATE SET next_seq = 7",
    );
    let sealed = mcp_audit_core::seal(AuditEvent::tool_execution("t").build().unwrap()).unwrap();
    let entry = mcp_audit_store::Entry {
        seq: 0,
        leaf_hash: sealed.leaf_hash(0),
        sealed: &sealed,
    };
    match store.append(&[entry]) {
        Err(StoreError::SeqConflict { next: 7 }) => {}
        other => panic!("expected SeqConflict, got {other:?}"),
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 0);
}

/// A tool call at midnight (UTC) of `day`, kept for `retention` when one is given: the events
/// that fall into one monthly partition or another.
fn dated(operation: &str, day: &str, retention: Option<&str>) -> AuditEvent {
    let at = format!("{day}T00:00:00Z").parse::<Timestamp>().unwrap();
    let event = AuditEvent::tool_execution(operation).timestamp(at);
    match retention {
        Some(retention) => event.retention(retention),
        None => event,
    }
    .build()
    .unwrap()
}

#[test]
fn events_land_in_monthly_partitions_and_cleanup_drops_fully_expired_months_whole() {
    let Some(db) = pg() else { return };
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    for day in ["2020-01-05", "2020-01-20"] {
        r.record(dated("january", day, Some("30d"))).unwrap();
    }
    // February holds one expired event and one kept forever: it is cleaned row by row.
    r.record(dated("february expired", "2020-02-03", Some("30d")))
        .unwrap();
    r.record(dated("february kept", "2020-02-04", None))
        .unwrap();
    r.shutdown().unwrap();
    let partitions = |db: &Db| {
        db.count(
            "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'events'::regclass
               AND inhrelid::regclass::text LIKE 'events_p2020%'",
        )
    };
    assert_eq!(partitions(&db), 2);

    let dry = db.open().count_expired(Timestamp::now()).unwrap();
    assert_eq!((dry.events, dry.payloads), (3, 3));
    assert_eq!(partitions(&db), 2, "a dry run drops nothing");
    let (_, done) = backend::clean_up(&db).unwrap();
    assert_eq!((done.events, done.payloads), (3, 3));
    assert_eq!(partitions(&db), 1, "January is dropped whole");
    assert_eq!(db.count("SELECT COUNT(*) FROM events_p202002"), 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM event_ids"),
        2,
        "the one kept, and the cleanup run's own"
    );
    let left: Vec<String> = db
        .reader()
        .query(&Query::default())
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event.operation)
        .collect();
    assert_eq!(
        left,
        [mcp_audit_store::expiry::CLEANUP_OPERATION, "february kept"]
    );

    // The writer recreates a dropped month when an event of it arrives again.
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    r.record(dated("january again", "2020-01-06", None))
        .unwrap();
    r.shutdown().unwrap();
    assert_eq!(partitions(&db), 2);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let Some(db) = pg() else { return };
    drop(db.open());
    db.exec("UPDATE mcp_audit_schema SET version = 999");
    let url = db.pg.as_ref().unwrap().url.clone();
    for result in [
        PgStore::open(&url, db.pg_options()).err(),
        PgStore::open_read_only(&url).err(),
    ] {
        match result {
            Some(StoreError::SchemaTooNew { found: 999, .. }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}

#[test]
fn a_database_without_our_schema_is_refused_to_readers_and_a_bad_url_is_an_open_error() {
    let Some(db) = pg() else { return };
    let url = db.pg.as_ref().unwrap().url.clone();
    match PgStore::open_read_only(&url) {
        Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains("no mcp-audit schema")),
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
    match PgStore::open(
        "postgres://nobody:secret@127.0.0.1:1/none",
        PgOptions::default(),
    ) {
        Err(StoreError::Open { path, .. }) => {
            assert!(!path.to_string_lossy().contains("secret"), "{path:?}")
        }
        other => panic!("expected Open, got {:?}", other.err()),
    }
}

#[test]
fn both_write_methods_store_the_same_rows() {
    use mcp_audit_core::{ComplianceEvent, DataSource, RiskLevel};
    use mcp_audit_store::WriteMethod;
    let Some(db) = pg() else { return };
    let event = |i: u32| {
        AuditEvent::tool_execution(format!("t{i}"))
            .user("alice")
            .email("alice@example.com")
            .session("s1")
            .duration_us(u64::from(i) * 10)
            .input(serde_json::json!({"i": i}))
            .data_source(DataSource::input("postgres://crm/customers").source_type("database"))
            .data_source(DataSource::input("s3://x").transformation("csv"))
            .compliance_event(ComplianceEvent {
                framework: "GDPR".into(),
                event_type: "data_access".into(),
                risk_level: RiskLevel::High,
                details: Some(serde_json::json!({"f": 1})),
                mitigation: vec!["pseudonymise".into()],
            })
            .retention("30d")
            .build()
            .unwrap()
    };
    for (log, method) in [("copy", WriteMethod::Copy), ("insert", WriteMethod::Insert)] {
        let store = db
            .open_pg(PgOptions {
                log_id: Some(log.into()),
                write_method: method,
                ..PgOptions::default()
            })
            .unwrap();
        let r = Recorder::start(store, batch()).unwrap();
        for i in 0..120 {
            r.record(event(i)).unwrap();
        }
        r.shutdown().unwrap();
    }
    let rows = |log: &str| -> Vec<String> {
        let mut c = db.pg.as_ref().unwrap().raw();
        let mut out = Vec::new();
        for (table, columns) in [
            (
                "events",
                "seq, kind, action, operation, user_id, session_id, outcome, classification, requires_review, expires_at - ts, duration_us, length(meta) > 0, length(commitment), length(leaf_hash)",
            ),
            ("payloads", "seq, length(salt), length(body)"),
            (
                "data_sources",
                "seq, ordinal, uri, source_type, transformation, direction",
            ),
            (
                "compliance_events",
                "seq, ordinal, framework, risk_level, details, mitigation",
            ),
        ] {
            for row in c
                .query(
                    &format!(
                        "SELECT row({columns})::text FROM {table} WHERE log_id = $1 ORDER BY seq"
                    ),
                    &[&log],
                )
                .unwrap()
            {
                out.push(format!("{table}: {}", row.get::<_, String>(0)));
            }
        }
        out
    };
    let copied = rows("copy");
    assert_eq!(copied.len(), 120 * (1 + 1 + 2 + 1));
    let inserted = rows("insert");
    for (c, i) in copied.iter().zip(&inserted) {
        assert_eq!(c, i);
    }
    assert_eq!(copied.len(), inserted.len());
    assert_eq!(db.count("SELECT COUNT(*) FROM event_ids"), 240);
}

#[test]
fn recovery_finds_the_intents_of_stopped_writers_but_not_of_live_ones() {
    use mcp_audit_core::Outcome;
    let Some(db) = pg() else { return };
    let intent = |name: &str| {
        AuditEvent::tool_execution(name)
            .outcome(Outcome::Pending)
            .build()
            .unwrap()
    };
    let live = Recorder::start(writer(&db, "live-proxy"), RecorderConfig::default()).unwrap();
    live.record(intent("in flight")).unwrap();
    let stopped = Recorder::start(writer(&db, "dead-proxy"), RecorderConfig::default()).unwrap();
    stopped.record(intent("interrupted")).unwrap();
    stopped.shutdown().unwrap();

    let names = |store: &mut dyn Store| -> Vec<String> {
        store
            .pending_without_outcome()
            .unwrap()
            .into_iter()
            .map(|e| e.event.operation)
            .collect()
    };
    assert_eq!(names(&mut writer(&db, "new-proxy")), ["interrupted"]);
    assert_eq!(names(&mut db.reader()), ["interrupted"]);
    // The live writer sees its own.
    live.shutdown().unwrap();
    let mut again = writer(&db, "live-proxy");
    let mut all = names(&mut again);
    all.sort();
    assert_eq!(all, ["in flight", "interrupted"]);
}

/// Regression: a writer that met a new identity while the server was unreachable spooled the
/// events but not the pseudonym → identity rows drawn for it, so after the replay its events
/// named a pseudonym nothing resolved, and a query by the user found none of them. The server
/// is not stopped: the offline writer is pointed at a port where nothing listens, and a writer
/// on the real server replays its spool.
#[test]
fn an_identity_first_met_while_spooling_is_resolved_after_the_replay() {
    let Some(db) = pg() else { return };
    let spool = db.dir.path().join("spool");
    let offline = PgStore::open(
        "postgres://postgres@127.0.0.1:1/test",
        PgOptions {
            log_id: None,
            spool: Some(SpoolOptions::new(&spool)),
            ..PgOptions::default()
        },
    )
    .unwrap();
    let r = Recorder::start(offline, batch()).unwrap();
    for i in 0..3 {
        r.record(
            AuditEvent::tool_execution(format!("spooled-{i}"))
                .user("spooled-alice")
                .data_subject("spooled-subject")
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    r.shutdown().unwrap();
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1, "spooled");

    // A writer on the server replays the spools it finds.
    drop(
        db.open_pg(PgOptions {
            log_id: Some("replayer".into()),
            spool: Some(SpoolOptions::new(&spool)),
            ..PgOptions::default()
        })
        .unwrap(),
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 3, "replayed");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM events WHERE user_id = 'spooled-alice'"),
        0,
        "the hashed metadata holds a pseudonym"
    );
    let mut reader = db.reader();
    for (filter, field) in [
        (
            Filter {
                user_id: Some("spooled-alice".into()),
                ..Filter::default()
            },
            "user",
        ),
        (
            Filter {
                data_subject_id: Some("spooled-subject".into()),
                ..Filter::default()
            },
            "subject",
        ),
    ] {
        let mut found = Vec::new();
        reader
            .for_each(&filter, &mut |e| {
                found.push(e.event);
                Ok(())
            })
            .unwrap();
        assert_eq!(found.len(), 3, "by {field}");
        assert!(found.iter().all(|e| {
            e.actor.user_id.as_deref() == Some("spooled-alice")
                && e.compliance.data_subject_id.as_deref() == Some("spooled-subject")
        }));
    }
}
