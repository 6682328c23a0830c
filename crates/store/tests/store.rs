//! Behaviour of the store and the recorder against real SQLite files: the reference loggers'
//! behaviours one by one, and the faults that must never lose or half-write a record.

use std::time::Duration;

use jiff::Timestamp;
use mcp_audit_core::{
    Action, AuditEvent, AuditLevel, Classification, ComplianceEvent, ContextOp, DataSource,
    EventKind, FlowDirection, Outcome, Policy, RiskLevel,
};
use mcp_audit_store::{
    Durability, Filter, PageStart, Query, Receipt, RecordError, Recorder, RecorderConfig,
    SqliteOptions, SqliteStore, StoreError, SummaryScope,
};
use serde_json::json;

mod backend;

use backend::Db;

/// Recording and reading helpers over a test database of either backend.
trait Helpers {
    fn recorder(&self, config: RecorderConfig) -> Recorder;
    fn sync(&self) -> Recorder;
    fn find(&self, filter: Filter) -> Vec<AuditEvent>;
    fn all(&self) -> Vec<AuditEvent>;
}

impl Helpers for Db {
    fn recorder(&self, config: RecorderConfig) -> Recorder {
        Recorder::start(self.open(), config).unwrap()
    }

    fn sync(&self) -> Recorder {
        self.recorder(RecorderConfig::default())
    }

    fn find(&self, filter: Filter) -> Vec<AuditEvent> {
        let page = self
            .reader()
            .query(&Query {
                filter,
                limit: 10_000,
                ..Query::default()
            })
            .unwrap();
        page.events.into_iter().map(|e| e.event).collect()
    }

    fn all(&self) -> Vec<AuditEvent> {
        self.find(Filter {
            include_pending: true,
            ..Filter::default()
        })
    }
}

fn at(ts: &str) -> Timestamp {
    ts.parse().unwrap()
}

fn record(r: &Recorder, e: mcp_audit_core::EventBuilder) -> Receipt {
    r.record(e.build().unwrap()).unwrap()
}

fn tool_execution_round_trips_with_lineage_and_compliance_rows(db: Db) {
    let r = db.sync();
    let event = AuditEvent::tool_execution("search_customers")
        .user("alice")
        .email("alice@example.com")
        .session("s1")
        .server("crm")
        .input(json!({"q": "acme"}))
        .output(json!({"rows": 3}))
        .duration_us(1500)
        .data_source(DataSource::input("postgres://crm/customers").source_type("database"))
        .data_source(
            DataSource::input("s3://exports/x.csv")
                .direction(FlowDirection::Output)
                .transformation("csv"),
        )
        .compliance_event(ComplianceEvent {
            framework: "GDPR".into(),
            event_type: "data_access".into(),
            risk_level: RiskLevel::Medium,
            details: Some(json!({"fields": ["name"]})),
            mitigation: vec!["pseudonymise".into()],
        })
        .purpose("support")
        .gdpr(true)
        .data_subject("subject-9")
        .build()
        .unwrap();
    let receipt = r.record(event.clone()).unwrap();
    assert!(
        matches!(receipt, Receipt::Durable { seq: 0, .. }),
        "{receipt:?}"
    );
    r.shutdown().unwrap();

    let stored = db.reader().get(event.id).unwrap().expect("stored");
    assert_eq!(stored.seq, 0);
    assert_eq!(stored.event.payload, event.payload);
    assert_eq!(
        stored.event.actor.email.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(stored.event.data_sources, event.data_sources);
    assert_eq!(
        stored.event.compliance.classification,
        Some(Classification::Internal)
    );
    assert!(!stored.redacted);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM data_sources WHERE seq = 0"),
        2
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM data_sources WHERE direction = 'output' AND transformation = 'csv'"),
        1
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM compliance_events WHERE framework = 'GDPR' AND risk_level = 'medium'"),
        1
    );
}

fn review_rules_and_default_classification_reach_the_stored_row(db: Db) {
    let r = db.sync();
    record(
        &r,
        AuditEvent::admin(Action::Delete, "tool", "t1").user("root"),
    );
    record(
        &r,
        AuditEvent::admin(Action::Update, "prompt", "p1").user("root"),
    );
    record(
        &r,
        AuditEvent::admin(Action::Read, "user", "u1").user("root"),
    );
    record(
        &r,
        AuditEvent::admin("bulk_delete".parse().unwrap(), "resource", "r*").user("root"),
    );
    record(
        &r,
        AuditEvent::admin(Action::Delete, "server", "s1")
            .user("root")
            .requires_review(false),
    );
    r.shutdown().unwrap();

    let review: Vec<String> = db
        .find(Filter {
            requires_review: Some(true),
            ..Filter::default()
        })
        .into_iter()
        .map(|e| e.operation)
        .collect();
    assert_eq!(review, ["bulk_delete resource", "READ user", "DELETE tool"]);
    let confidential = db.find(Filter {
        classification: Some(Classification::Confidential),
        ..Filter::default()
    });
    assert_eq!(confidential.len(), 1);
    assert_eq!(
        confidential[0].target.resource_type.as_deref(),
        Some("user")
    );
}

fn update_stores_the_computed_change_set(db: Db) {
    let r = db.sync();
    record(
        &r,
        AuditEvent::admin(Action::Update, "tool", "t1")
            .user("admin")
            .old_values(json!({"name": "a", "enabled": true}))
            .new_values(json!({"name": "b", "enabled": true})),
    );
    r.shutdown().unwrap();
    let e = &db.all()[0];
    assert_eq!(
        e.payload.changes,
        Some(json!({"name": {"old": "a", "new": "b"}}))
    );
}

fn retention_sets_expires_at_and_cleanup_deletes_expired_events_without_orphans(db: Db) {
    let r = db.sync();
    let source = || DataSource::input("file:///data");
    let old = AuditEvent::tool_execution("old")
        .timestamp(at("2020-01-01T00:00:00Z"))
        .retention("30d")
        .data_source(source())
        .compliance_event(ComplianceEvent {
            framework: "GDPR".into(),
            event_type: "x".into(),
            risk_level: RiskLevel::Low,
            details: None,
            mitigation: vec![],
        });
    record(&r, old);
    record(
        &r,
        AuditEvent::tool_execution("recent")
            .retention("7y")
            .data_source(source()),
    );
    record(
        &r,
        AuditEvent::tool_execution("kept forever").data_source(source()),
    );
    r.shutdown().unwrap();

    let events = db.all();
    let old = events.iter().find(|e| e.operation == "old").unwrap();
    assert_eq!(old.compliance.expires_at, Some(at("2020-01-31T00:00:00Z")));
    assert!(
        events
            .iter()
            .find(|e| e.operation == "recent")
            .unwrap()
            .compliance
            .expires_at
            .is_some()
    );

    let dry = db.open().count_expired(Timestamp::now()).unwrap();
    assert_eq!(
        (dry.events, dry.data_sources, dry.compliance_events),
        (1, 1, 1)
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM events"),
        3,
        "a dry run deletes nothing"
    );

    let (_, done) = backend::clean_up(&db).unwrap();
    assert_eq!((done.events, done.payloads, done.data_sources), (1, 1, 1));
    let left: Vec<String> = db.all().into_iter().map(|e| e.operation).collect();
    assert_eq!(
        left,
        [
            mcp_audit_store::expiry::CLEANUP_OPERATION,
            "kept forever",
            "recent"
        ]
    );
    for table in ["payloads", "data_sources", "compliance_events"] {
        let orphans = db.count(&format!(
            "SELECT COUNT(*) FROM {table} WHERE seq NOT IN (SELECT seq FROM events)"
        ));
        assert_eq!(orphans, 0, "orphaned rows in {table}");
    }
}

fn session_summary_counts_every_kind_including_prompts(db: Db) {
    let r = db.sync();
    let guard = r.session("s1", Some("alice")).unwrap();
    record(
        &r,
        AuditEvent::tool_execution("a")
            .session("s1")
            .user("alice")
            .duration_us(10),
    );
    record(
        &r,
        AuditEvent::tool_execution("b")
            .session("s1")
            .user("bob")
            .failed("boom"),
    );
    record(
        &r,
        AuditEvent::resource_access("file:///x", Action::Read).session("s1"),
    );
    record(
        &r,
        AuditEvent::context_operation("k", ContextOp::Set).session("s1"),
    );
    record(&r, AuditEvent::prompt_execution("p").session("s1"));
    record(&r, AuditEvent::prompt_execution("p").session("s1"));
    record(
        &r,
        AuditEvent::tool_execution("other session").session("s2"),
    );
    guard.end().unwrap();
    r.shutdown().unwrap();

    let s = db
        .reader()
        .summary(&SummaryScope::Session("s1".into()))
        .unwrap();
    assert_eq!(s.tool_executions, 2);
    assert_eq!(s.resource_accesses, 1);
    assert_eq!(s.context_operations, 1);
    assert_eq!(
        s.prompt_executions, 2,
        "the reference logger forgot prompts"
    );
    assert_eq!(
        s.by_kind.get(&EventKind::Session),
        Some(&2),
        "start and end"
    );
    assert_eq!(s.total_operations, 8);
    assert_eq!(s.by_outcome.get("tool_error"), Some(&1));
    assert_eq!(s.distinct_users, 2);
    assert!(s.first_activity.unwrap() <= s.last_activity.unwrap());

    let u = db
        .reader()
        .summary(&SummaryScope::User("bob".into()))
        .unwrap();
    assert_eq!(u.total_operations, 1);
}

/// A `sync` call is recorded twice, its pending intent and the outcome that completes it: one
/// operation. Every scope of a summary, after either durability, counts it once, as counting
/// the events (pending intents left out) does; an intent never completed is no operation yet.
fn every_summary_scope_counts_operations_not_their_pending_intents(db: Db) {
    let since = Timestamp::now();
    for (durability, session, user) in [
        (Durability::Sync, "s-sync", "u-sync"),
        (Durability::Batch, "s-batch", "u-batch"),
    ] {
        let r = db.recorder(RecorderConfig {
            durability,
            ..RecorderConfig::default()
        });
        let call = |outcome| {
            AuditEvent::tool_execution("search")
                .session(session)
                .user(user)
                .outcome(outcome)
        };
        for _ in 0..3 {
            let intent = call(Outcome::Pending).build().unwrap();
            let id = intent.id;
            r.record(intent).unwrap();
            record(&r, call(Outcome::Success).completes(id));
        }
        // One the peer never answered, and one other operation.
        record(&r, call(Outcome::Pending));
        record(
            &r,
            AuditEvent::resource_access("file:///a", Action::Read)
                .session(session)
                .user(user),
        );
        r.shutdown().unwrap();
    }
    let events = db.all();
    assert_eq!(
        events.len(),
        2 * 8,
        "every intent and outcome is in the log"
    );
    let scopes = [
        SummaryScope::Session("s-sync".into()),
        SummaryScope::User("u-sync".into()),
        SummaryScope::Session("s-batch".into()),
        SummaryScope::User("u-batch".into()),
        SummaryScope::Window {
            since: Some(since),
            until: None,
            time: mcp_audit_store::TimeBasis::Stated,
        },
        SummaryScope::Window {
            since: None,
            until: Some(Timestamp::now()),
            time: mcp_audit_store::TimeBasis::Stated,
        },
    ];
    for scope in scopes {
        let covers = |e: &&AuditEvent| match &scope {
            SummaryScope::Session(s) => e.session_id.as_deref() == Some(s.as_str()),
            SummaryScope::User(u) => e.actor.user_id.as_deref() == Some(u.as_str()),
            SummaryScope::Window { .. } => true,
        };
        let want = backend::summary_of(events.iter().filter(covers));
        for (reader, mut store) in [("reader", db.reader()), ("writer", db.open())] {
            let got = store.summary(&scope).unwrap();
            assert_eq!(got, want, "{scope:?}, {reader}");
        }
    }
    let session = db
        .reader()
        .summary(&SummaryScope::Session("s-sync".into()))
        .unwrap();
    assert_eq!(
        (session.tool_executions, session.total_operations),
        (3, 4),
        "three calls and a read, not six tool executions"
    );
    assert_eq!(session.by_outcome.get("pending"), None);
}

fn a_view_audit_keeps_the_real_actor(db: Db) {
    let r = db.sync();
    record(
        &r,
        AuditEvent::admin(Action::Read, "tool", "t1")
            .user("carol")
            .team("ops"),
    );
    r.shutdown().unwrap();
    let e = &db.all()[0];
    assert_eq!(e.actor.user_id.as_deref(), Some("carol"));
    assert_ne!(e.actor.user_id.as_deref(), Some("system"));
}

fn audit_level_off_records_nothing_and_writes_level_skips_reads(db: Db) {
    let level = |level| RecorderConfig {
        policy: Policy {
            level,
            ..Policy::default()
        },
        ..RecorderConfig::default()
    };
    let off = db.recorder(level(AuditLevel::Off));
    assert_eq!(
        record(&off, AuditEvent::tool_execution("t")),
        Receipt::Skipped
    );
    off.shutdown().unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 0);

    let writes = db.recorder(level(AuditLevel::Writes));
    assert_eq!(
        record(
            &writes,
            AuditEvent::resource_access("file:///a", Action::Read)
        ),
        Receipt::Skipped
    );
    record(
        &writes,
        AuditEvent::resource_access("file:///a", Action::Update),
    );
    record(&writes, AuditEvent::tool_execution("t"));
    let stats = writes.shutdown().unwrap();
    assert_eq!((stats.recorded, stats.skipped), (2, 1));
}

#[test]
fn migration_from_schema_version_1_keeps_existing_rows() {
    let db = Db::sqlite();
    // A database as the first schema version left it, with one event written in that shape.
    let store = SqliteStore::open_at_schema_version(&db.path, 1).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    drop(store);
    let mut event = AuditEvent::tool_execution("legacy")
        .user("dave")
        .build()
        .unwrap();
    Policy::default().apply(&mut event).unwrap();
    let sealed = mcp_audit_core::seal(event.clone()).unwrap();
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    conn.execute(
        "INSERT INTO events (seq, id, ts, kind, action, operation, user_id, outcome, classification,
            requires_review, meta, commitment, leaf_hash)
         VALUES (0, ?1, ?2, 'tool_execution', 'EXECUTE', 'legacy', 'dave', 'success', 'internal', 0,
            ?3, ?4, ?5)",
        rusqlite::params![
            event.id.0.as_bytes().as_slice(),
            event.timestamp.as_microsecond(),
            std::str::from_utf8(&sealed.meta_json).unwrap(),
            sealed.commitment.as_bytes().as_slice(),
            sealed.leaf_hash(0).as_bytes().as_slice(),
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO payloads (seq, salt, body) VALUES (0, ?1, ?2)",
        rusqlite::params![
            sealed.salt.as_slice(),
            std::str::from_utf8(&sealed.personal_json).unwrap()
        ],
    )
    .unwrap();
    conn.execute(
        "UPDATE log_state SET value = '1' WHERE key = 'next_seq'",
        [],
    )
    .unwrap();
    drop(conn);

    // The current code migrates it forward and keeps working on it.
    let r = db.sync();
    let receipt = record(
        &r,
        AuditEvent::tool_execution("new").data_source(DataSource::input("x:y")),
    );
    assert!(matches!(receipt, Receipt::Durable { seq: 1, .. }));
    r.shutdown().unwrap();
    assert_eq!(
        SqliteStore::open_read_only(&db.path, SqliteOptions::default())
            .unwrap()
            .schema_version()
            .unwrap(),
        18
    );
    let legacy = db
        .reader()
        .get(event.id)
        .unwrap()
        .expect("the old row survived");
    assert_eq!(legacy.event, event);
    assert_eq!(
        db.find(Filter {
            user_id: Some("dave".into()),
            ..Filter::default()
        })
        .len(),
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM data_sources"), 1);
    // The migrations indexed and totalled the old row: its user's summary counts it.
    let dave = db
        .reader()
        .summary(&SummaryScope::User("dave".into()))
        .unwrap();
    assert_eq!(dave.total_operations, 1);
    assert_eq!(
        db.count("SELECT SUM(n) FROM key_totals WHERE value = 'dave'"),
        1
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let db = Db::sqlite();
    db.sync().shutdown().unwrap();
    rusqlite::Connection::open(&db.path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    for result in [
        SqliteStore::open(&db.path, SqliteOptions::default()).err(),
        SqliteStore::open_read_only(&db.path, SqliteOptions::default()).err(),
    ] {
        match result {
            Some(StoreError::SchemaTooNew {
                found: 999,
                supported: 18,
            }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}

#[test]
fn a_corrupt_file_is_reported_as_corrupt() {
    let db = Db::sqlite();
    std::fs::write(
        &db.path,
        b"this is not a database, just some bytes of text".repeat(100),
    )
    .unwrap();
    match SqliteStore::open(&db.path, SqliteOptions::default()) {
        Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, db.path),
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
}

fn writing_through_a_read_only_store_is_refused(db: Db) {
    db.sync().shutdown().unwrap();
    let ro = db.reader();
    let r = Recorder::start(ro, RecorderConfig::default()).unwrap();
    let err = r
        .record(AuditEvent::tool_execution("t").build().unwrap())
        .unwrap_err();
    assert!(
        matches!(err, RecordError::Store(StoreError::ReadOnly { .. })),
        "{err:?}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 0);
}

#[test]
fn a_database_locked_past_the_timeout_fails_with_locked_and_writes_nothing() {
    let db = Db::sqlite();
    db.sync().shutdown().unwrap();
    let holder = rusqlite::Connection::open(&db.path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let store = SqliteStore::open(
        &db.path,
        SqliteOptions {
            lock_timeout: Duration::from_millis(200),
        },
    )
    .unwrap();
    let r = Recorder::start(store, RecorderConfig::default()).unwrap();
    let err = r
        .record(AuditEvent::tool_execution("t").build().unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Store(StoreError::Locked { waited_ms: 200 })
        ),
        "{err:?}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 0);
    // Once the lock is gone the same recorder works, and the seq was not consumed.
    assert!(matches!(
        record(&r, AuditEvent::tool_execution("t")),
        Receipt::Durable { seq: 0, .. }
    ));
}

fn sync_record_is_durable_when_it_returns(db: Db) {
    let r = db.sync();
    for i in 0..5u64 {
        let receipt = record(&r, AuditEvent::tool_execution("t"));
        assert!(matches!(receipt, Receipt::Durable { seq, .. } if seq == i));
        // A fresh connection (another process would see the same) already sees it.
        assert_eq!(db.count("SELECT COUNT(*) FROM events"), i as i64 + 1);
    }
}

fn the_callers_rollback_does_not_undo_the_audit_record(db: Db) {
    let app_path = db.path.with_file_name("app.db");
    let mut app = rusqlite::Connection::open(&app_path).unwrap();
    app.execute_batch("CREATE TABLE orders (id INTEGER)")
        .unwrap();
    let r = db.sync();
    {
        let tx = app.transaction().unwrap();
        tx.execute("INSERT INTO orders VALUES (1)", []).unwrap();
        record(
            &r,
            AuditEvent::admin(Action::Create, "order", "1").user("eve"),
        );
        tx.rollback().unwrap();
    }
    assert_eq!(
        app.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM events"),
        1,
        "the audit record stays"
    );

    // And a failing audit write does not undo the caller's committed work.
    db.exec("DROP TABLE data_sources");
    let tx = app.transaction().unwrap();
    tx.execute("INSERT INTO orders VALUES (2)", []).unwrap();
    let failed = r.record(
        AuditEvent::admin(Action::Create, "order", "2")
            .data_source(DataSource::input("x:y"))
            .build()
            .unwrap(),
    );
    assert!(failed.is_err());
    tx.commit().unwrap();
    assert_eq!(
        app.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
}

fn a_failed_batch_in_batch_mode_surfaces_in_flush_and_the_counter(db: Db) {
    let r = db.recorder(RecorderConfig {
        durability: Durability::Batch,
        ..RecorderConfig::default()
    });
    assert!(matches!(
        record(&r, AuditEvent::tool_execution("ok")),
        Receipt::Queued { .. }
    ));
    r.flush().unwrap();
    db.exec("DROP TABLE data_sources");
    record(
        &r,
        AuditEvent::tool_execution("lost").data_source(DataSource::input("x:y")),
    );
    match r.flush() {
        Err(RecordError::Lost {
            failed: 1,
            last_error,
        }) => assert!(last_error.contains("data_sources"), "{last_error}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    assert_eq!(r.stats().failed, 1);
    // Reported once: the next flush is clean again.
    r.flush().unwrap();
}

fn observe_returns_the_tools_own_error_even_when_recording_fails(db: Db) {
    let r = db.sync();
    let result: Result<(), String> = r
        .observe(AuditEvent::tool_execution("fails").user("u"), || {
            Err("disk full".to_string())
        });
    assert_eq!(result, Err("disk full".to_string()));
    let e = &db.all()[0];
    assert_eq!(e.outcome, Outcome::ToolError);
    assert_eq!(e.payload.error_message.as_deref(), Some("disk full"));
    assert!(e.duration_us.is_some());

    // Now the audit write itself fails: the caller still gets the tool's error, not ours.
    db.exec("DROP TABLE payloads");
    let result: Result<u32, String> = r.observe(AuditEvent::tool_execution("fails"), || {
        Err("the real error".to_string())
    });
    assert_eq!(result, Err("the real error".to_string()));
    let ok: Result<u32, String> = r.observe(AuditEvent::tool_execution("works"), || Ok(7));
    assert_eq!(ok, Ok(7));
    assert_eq!(r.stats().failed, 2, "both recording failures are counted");
}

fn backpressure_records_every_event_exactly_once_with_dense_seqs(db: Db) {
    let r = db.recorder(RecorderConfig {
        durability: Durability::Batch,
        queue_capacity: 1,
        max_batch: 3,
        ..RecorderConfig::default()
    });
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    record(&r, AuditEvent::tool_execution(format!("t{t}-{i}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = r.shutdown().unwrap();
    assert_eq!(stats.recorded, 1600);
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 1600);
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT operation) FROM events"),
        1600
    );
    assert_eq!(db.count("SELECT MIN(seq) FROM events"), 0);
    assert_eq!(db.count("SELECT MAX(seq) FROM events"), 1599);
}

/// A recorder in `batch` durability whose batches linger for `linger`.
fn lingering(db: &Db, linger: Duration) -> Recorder {
    db.recorder(RecorderConfig {
        durability: Durability::Batch,
        linger,
        ..RecorderConfig::default()
    })
}

/// Runs `f` on a thread of its own and fails the test if it has not returned within a
/// minute: what must not wait for a linger of an hour.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("held back by the linger")
}

fn events_nobody_waits_for_share_one_commit_within_the_linger(db: Db) {
    let r = lingering(&db, Duration::from_secs(3_600));
    for i in 0..10 {
        assert!(matches!(
            record(&r, AuditEvent::tool_execution(format!("t{i}"))),
            Receipt::Queued { .. }
        ));
    }
    // A flush ends the linger: everything queued before it is durable, in one transaction.
    let r = within_a_minute(move || {
        r.flush().unwrap();
        r
    });
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 10);
    assert_eq!(r.stats().batches, 1);
}

fn an_event_somebody_waits_for_is_not_held_by_the_linger(db: Db) {
    let r = lingering(&db, Duration::from_secs(3_600));
    record(&r, AuditEvent::tool_execution("queued"));
    let waiting = r.clone();
    let receipt = within_a_minute(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(
            waiting.record_durable_async(AuditEvent::tool_execution("durable").build().unwrap()),
        )
    });
    assert!(
        matches!(receipt, Ok(Receipt::Durable { seq: 1, .. })),
        "{receipt:?}"
    );
    // The queued event went with it.
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 2);
    let stats = within_a_minute(move || r.shutdown().unwrap());
    assert_eq!((stats.recorded, stats.batches), (2, 1));
}

fn a_lingering_batch_is_written_at_shutdown(db: Db) {
    let r = lingering(&db, Duration::from_secs(3_600));
    for i in 0..5 {
        record(&r, AuditEvent::tool_execution(format!("t{i}")));
    }
    let stats = within_a_minute(move || r.shutdown().unwrap());
    assert_eq!(stats.recorded, 5);
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 5);
}

fn concurrent_async_callers_all_get_durable_distinct_seqs(db: Db) {
    // Stores are opened outside async code (PostgreSQL's client is synchronous).
    let r = db.sync();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(concurrent_async_callers(r));
}

async fn concurrent_async_callers(r: Recorder) {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let e = AuditEvent::tool_execution(format!("t{i}")).build().unwrap();
                match r.record_async(e).await.unwrap() {
                    Receipt::Durable { seq, .. } => seq,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..64).collect::<Vec<u64>>());
    r.shutdown_async().await.unwrap();
}

fn cursor_pages_never_skip_or_repeat_while_events_arrive(db: Db) {
    let r = db.sync();
    for i in 0..25 {
        record(&r, AuditEvent::tool_execution(format!("t{i}")).user("u"));
    }
    let mut reader = db.reader();
    let mut seen = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let page = reader
            .query(&Query {
                filter: Filter {
                    user_id: Some("u".into()),
                    ..Filter::default()
                },
                start: start.clone(),
                limit: 10,
            })
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.event.operation.clone()));
        // New events arrive between pages.
        record(&r, AuditEvent::tool_execution("late").user("u"));
        match page.next {
            Some(c) => start = PageStart::After(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("t{i}")).collect();
    assert_eq!(seen, expected);

    let offset = reader
        .query(&Query {
            filter: Filter {
                user_id: Some("u".into()),
                ..Filter::default()
            },
            start: PageStart::Offset(3),
            limit: 2,
        })
        .unwrap();
    assert_eq!(offset.events.len(), 2);
    let bad = reader.query(&Query {
        start: PageStart::After(mcp_audit_store::Cursor("garbage!".into())),
        ..Query::default()
    });
    assert!(matches!(bad, Err(StoreError::InvalidCursor(_))));
}

fn every_filter_narrows_the_query(db: Db) {
    let r = db.sync();
    record(
        &r,
        AuditEvent::tool_execution("alpha")
            .user("u1")
            .session("s1")
            .correlation_id("c1")
            .server("srv1")
            .data_subject("ds1")
            .timestamp(at("2026-01-01T00:00:00Z")),
    );
    record(
        &r,
        AuditEvent::admin(Action::Delete, "tool", "t9")
            .user("u2")
            .timestamp(at("2026-02-01T00:00:00Z")),
    );
    record(
        &r,
        AuditEvent::tool_execution("beta")
            .failed("x")
            .classification(Classification::Restricted),
    );
    record(
        &r,
        AuditEvent::tool_execution("intent").outcome(Outcome::Pending),
    );
    r.shutdown().unwrap();

    let ops = |f: Filter| -> Vec<String> { db.find(f).into_iter().map(|e| e.operation).collect() };
    let d = Filter::default;
    assert_eq!(
        ops(Filter {
            kinds: vec![EventKind::Admin],
            ..d()
        }),
        ["DELETE tool"]
    );
    assert_eq!(
        ops(Filter {
            action: Some(Action::Delete),
            ..d()
        }),
        ["DELETE tool"]
    );
    assert_eq!(
        ops(Filter {
            operation: Some("alpha".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            resource_type: Some("tool".into()),
            resource_id: Some("t9".into()),
            ..d()
        }),
        ["DELETE tool"]
    );
    assert_eq!(
        ops(Filter {
            user_id: Some("u1".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            session_id: Some("s1".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            correlation_id: Some("c1".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            server_name: Some("srv1".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            data_subject_id: Some("ds1".into()),
            ..d()
        }),
        ["alpha"]
    );
    assert_eq!(
        ops(Filter {
            outcome: Some(Outcome::ToolError),
            ..d()
        }),
        ["beta"]
    );
    assert_eq!(
        ops(Filter {
            classification: Some(Classification::Restricted),
            ..d()
        }),
        ["beta"]
    );
    assert_eq!(
        ops(Filter {
            requires_review: Some(true),
            ..d()
        }),
        ["beta", "DELETE tool"]
    );
    assert_eq!(
        ops(Filter {
            since: Some(at("2026-01-15T00:00:00Z")),
            until: Some(at("2026-03-01T00:00:00Z")),
            ..d()
        }),
        ["DELETE tool"]
    );
    assert!(
        !ops(d()).contains(&"intent".to_string()),
        "pending intents are hidden by default"
    );
    assert_eq!(
        ops(Filter {
            outcome: Some(Outcome::Pending),
            ..d()
        }),
        ["intent"]
    );
    assert_eq!(db.reader().count(&d()).unwrap(), 3);
}

fn tool_stats_give_calls_error_rate_and_latency_percentiles(db: Db) {
    let r = db.recorder(RecorderConfig {
        durability: Durability::Batch,
        ..RecorderConfig::default()
    });
    for d in 1..=100u64 {
        let e = AuditEvent::tool_execution("search").duration_us(d * 10);
        record(&r, if d % 4 == 0 { e.failed("x") } else { e });
    }
    record(&r, AuditEvent::tool_execution("rare"));
    r.shutdown().unwrap();
    let stats = db.reader().tool_stats(&Filter::default()).unwrap();
    assert_eq!(stats[0].tool, "search");
    assert_eq!((stats[0].calls, stats[0].errors), (100, 25));
    assert!((stats[0].error_rate - 0.25).abs() < 1e-9);
    assert_eq!((stats[0].p50_us, stats[0].p95_us), (Some(500), Some(950)));
    assert_eq!(
        (stats[1].tool.as_str(), stats[1].calls, stats[1].p50_us),
        ("rare", 1, None)
    );
}

fn pending_intents_without_an_outcome_are_found_for_recovery(db: Db) {
    let r = db.sync();
    let done = AuditEvent::tool_execution("done")
        .outcome(Outcome::Pending)
        .build()
        .unwrap();
    let done_id = done.id;
    r.record(done).unwrap();
    record(&r, AuditEvent::tool_execution("done").completes(done_id));
    record(
        &r,
        AuditEvent::tool_execution("in flight").outcome(Outcome::Pending),
    );
    r.shutdown().unwrap();
    let pending = db.reader().pending_without_outcome().unwrap();
    let names: Vec<&str> = pending.iter().map(|e| e.event.operation.as_str()).collect();
    assert_eq!(names, ["in flight"]);
}

fn the_writer_keeps_one_log_id_per_database(db: Db) {
    let first = db.sync();
    let id = first.log_id().to_string();
    first.shutdown().unwrap();
    let second = db.sync();
    assert_eq!(second.log_id(), id);
    assert!(matches!(
        record(&second, AuditEvent::tool_execution("t")),
        Receipt::Durable { seq: 0, .. }
    ));
    let stored = db.reader().query(&Query::default()).unwrap();
    assert_eq!(stored.events[0].log_id, id);
}

#[test]
fn two_writers_on_one_file_interleave_whole_batches_with_dense_seqs() {
    // Two recorders on one file, as two processes (a proxy and `mcp-audit log`) would be.
    let db = Db::sqlite();
    let batch = || RecorderConfig {
        durability: Durability::Batch,
        max_batch: 7,
        ..RecorderConfig::default()
    };
    let a = db.recorder(batch());
    let b = db.recorder(batch());
    let writers: Vec<_> = [("a", a), ("b", b)]
        .into_iter()
        .map(|(name, r)| {
            std::thread::spawn(move || {
                for i in 0..300 {
                    record(&r, AuditEvent::tool_execution(format!("{name}{i}")));
                }
                r.shutdown().unwrap()
            })
        })
        .collect();
    for w in writers {
        assert_eq!(w.join().unwrap().failed, 0);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 600);
    assert_eq!(db.count("SELECT MAX(seq) FROM events"), 599);
    // Every stored leaf hash matches its seq: renumbered batches were re-hashed.
    let mut reader = db.reader();
    let mut checked = 0;
    reader
        .for_each(&Filter::default(), &mut |e| {
            let sealed_meta = mcp_audit_core::seal::meta_digest(
                &mcp_audit_core::seal::canonical(&{
                    let mut m = e.event.clone();
                    m.payload = Default::default();
                    m.actor.email = None;
                    m.actor.client_ip = None;
                    m.actor.user_agent = None;
                    m
                })
                .unwrap(),
            );
            let expected =
                mcp_audit_core::seal::leaf_hash(e.seq, &sealed_meta, &e.payload_commitment);
            assert_eq!(e.leaf_hash, expected, "leaf of seq {}", e.seq);
            checked += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(checked, 600);
}

fn a_duplicate_id_fails_alone_and_the_rest_of_its_batch_is_written(db: Db) {
    let r = db.recorder(RecorderConfig {
        durability: Durability::Batch,
        ..RecorderConfig::default()
    });
    let dup = AuditEvent::tool_execution("first").build().unwrap();
    let mut again = AuditEvent::tool_execution("again").build().unwrap();
    again.id = dup.id;
    r.record(dup).unwrap();
    r.record(AuditEvent::tool_execution("before").build().unwrap())
        .unwrap();
    r.record(again).unwrap();
    r.record(AuditEvent::tool_execution("after").build().unwrap())
        .unwrap();
    match r.flush() {
        Err(RecordError::Lost { failed: 1, .. }) => {}
        other => panic!("expected exactly one lost event, got {other:?}"),
    }
    let ops: Vec<String> = db.all().into_iter().rev().map(|e| e.operation).collect();
    assert_eq!(ops, ["first", "before", "after"]);
    assert_eq!(
        db.count("SELECT MAX(seq) FROM events"),
        2,
        "seqs stay dense"
    );
}

/// `record_all` writes its events in one transaction of their own, larger than a writer's
/// batch: a duplicate id at the end fails all of them (the event-by-event retry of ordinary
/// batches does not apply), an invalid event is named and nothing is queued, and a good batch
/// lands whole, in order, with dense seqs after what was there.
fn record_all_writes_every_event_or_none(db: Db) {
    let r = db.recorder(RecorderConfig {
        max_batch: 4,
        ..RecorderConfig::default()
    });
    let first = AuditEvent::tool_execution("first").build().unwrap();
    let first_id = first.id;
    r.record(first).unwrap();
    let ten = |name: &str| -> Vec<AuditEvent> {
        (0..10)
            .map(|i| {
                AuditEvent::tool_execution(format!("{name}{i}"))
                    .build()
                    .unwrap()
            })
            .collect()
    };

    let mut with_duplicate = ten("dup");
    with_duplicate[9].id = first_id;
    match r.record_all(with_duplicate) {
        Err(RecordError::Store(_)) => {}
        other => panic!("expected the store to refuse the batch, got {other:?}"),
    }
    assert_eq!(db.all().len(), 1, "nothing of the refused batch");

    let mut with_invalid = ten("bad");
    with_invalid[3].operation = " ".into();
    with_invalid[7].operation = String::new();
    match r.record_all(with_invalid) {
        Err(RecordError::InvalidEvents(invalid)) => {
            let at: Vec<usize> = invalid.iter().map(|(i, _)| *i).collect();
            assert_eq!(at, [3, 7]);
        }
        other => panic!("expected the invalid events named, got {other:?}"),
    }
    assert_eq!(db.all().len(), 1, "nothing of the invalid batch");

    let receipts = r.record_all(ten("ok")).unwrap();
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|receipt| match receipt {
            Receipt::Durable { seq, .. } => *seq,
            other => panic!("expected durable, got {other:?}"),
        })
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    r.shutdown().unwrap();
    let ops: Vec<String> = db.all().into_iter().rev().map(|e| e.operation).collect();
    let mut want = vec!["first".to_string()];
    want.extend((0..10).map(|i| format!("ok{i}")));
    assert_eq!(ops, want);
}

/// The library's own callers get the recorder's redaction as the proxy does: the built-in
/// secrets policy by default, its rule ids and counts on the stored event, and none with
/// `Redactor::none()`.
fn a_rust_caller_gets_the_default_redaction_and_none_turns_it_off(db: Db) {
    let event = || {
        AuditEvent::tool_execution("connect")
            .input(json!({"host": "db1", "password": "hunter2", "dsn": "Bearer abcdefgh12345678"}))
            .build()
            .unwrap()
    };
    let recorder = db.sync();
    recorder.record(event()).unwrap();
    recorder.shutdown().unwrap();
    let recorder = db.recorder(RecorderConfig {
        redaction: std::sync::Arc::new(mcp_audit_core::redact::Redactor::none()),
        ..RecorderConfig::default()
    });
    recorder.record(event()).unwrap();
    recorder.shutdown().unwrap();
    let mut all = db.all();
    all.sort_by_key(|e| e.compliance.redactions.is_empty());
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].payload.input,
        Some(
            json!({"host": "db1", "password": "[REDACTED:secret-keys]", "dsn": "[REDACTED:bearer]"})
        )
    );
    let fired: Vec<(&str, u64)> = all[0]
        .compliance
        .redactions
        .iter()
        .map(|r| (r.rule.as_str(), r.count))
        .collect();
    assert_eq!(fired, [("bearer", 1), ("secret-keys", 1)]);
    assert_eq!(all[1].payload.input, event().payload.input);
    assert!(all[1].compliance.redactions.is_empty());
}

fn a_log_filter_reads_its_log_and_another_log_matches_nothing(db: Db) {
    let r = db.sync();
    record(&r, AuditEvent::tool_execution("alpha").session("s1"));
    record(&r, AuditEvent::tool_execution("beta").session("s1"));
    r.shutdown().unwrap();
    let log = db.open().log_id().to_string();
    assert!(!log.is_empty());
    let mut reader = db.reader();
    for (named, events) in [(log.as_str(), 2u64), ("another-log", 0)] {
        let filter = Filter {
            log_id: Some(named.to_string()),
            ..Filter::default()
        };
        let page = reader
            .query(&Query {
                filter: filter.clone(),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(page.events.len() as u64, events, "{named}");
        assert!(page.events.iter().all(|e| e.log_id == log), "{named}");
        assert_eq!(reader.count(&filter).unwrap(), events, "{named}");
        let mut exported = 0;
        reader
            .for_each(&filter, &mut |_| {
                exported += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(exported, events, "{named}");
        let calls: u64 = reader
            .tool_stats(&filter)
            .unwrap()
            .iter()
            .map(|t| t.calls)
            .sum();
        assert_eq!(calls, events, "{named}");
        for scope in [
            SummaryScope::Session("s1".into()),
            SummaryScope::Window {
                since: None,
                until: None,
                time: mcp_audit_store::TimeBasis::Stated,
            },
        ] {
            let summary = reader.summary_of_log(&scope, Some(named)).unwrap();
            assert_eq!(summary.tool_executions, events, "{named} {scope:?}");
        }
    }
}

fn a_list_leaves_payloads_out_and_marks_where_one_is_stored(db: Db) {
    let r = db.sync();
    record(
        &r,
        AuditEvent::tool_execution("with")
            .user("alice")
            .email("alice@example.com")
            .input(json!({"q": "secret"})),
    );
    record(&r, AuditEvent::tool_execution("without").user("bob"));
    r.shutdown().unwrap();
    let mut reader = db.reader();
    let query = Query::default();
    let full = reader.query(&query).unwrap();
    let listed = reader.list(&query).unwrap();
    assert_eq!(full.events.len(), 2);
    assert_eq!(listed.events.len(), 2);
    assert_eq!(listed.next, full.next);
    for (listed, full) in listed.events.iter().zip(&full.events) {
        assert!(!full.payload_left_out);
        assert!(
            listed.event.payload.is_empty(),
            "{:?}",
            listed.event.payload
        );
        assert_eq!(listed.payload_left_out, !full.event.payload.is_empty());
        // Everything else is as the full read has it, the personal half's other fields too.
        let mut expected = full.clone();
        expected.event.payload = Default::default();
        expected.payload_left_out = listed.payload_left_out;
        assert_eq!(*listed, expected);
    }
    let with = &listed.events[1];
    assert_eq!(with.event.operation, "with");
    assert!(with.payload_left_out);
    assert_eq!(with.event.actor.email.as_deref(), Some("alice@example.com"));
}

fn count_each_counts_every_operation_in_one_call_as_count_does(db: Db) {
    let r = db.sync();
    for operation in ["a", "a", "b", "a", "c"] {
        record(&r, AuditEvent::tool_execution(operation).session("s1"));
    }
    record(&r, AuditEvent::tool_execution("a").session("s2"));
    r.shutdown().unwrap();
    let mut reader = db.reader();
    let filter = Filter {
        session_id: Some("s1".into()),
        ..Filter::default()
    };
    let counts = reader
        .count_each(&filter, &["a", "b", "none", "c"])
        .unwrap();
    assert_eq!(counts, [3, 1, 0, 1]);
    for (operation, n) in [("a", 3), ("b", 1), ("none", 0)] {
        let one = Filter {
            operation: Some(operation.into()),
            ..filter.clone()
        };
        assert_eq!(reader.count(&one).unwrap(), n, "{operation}");
    }
}

on_both_backends!(
    a_list_leaves_payloads_out_and_marks_where_one_is_stored,
    count_each_counts_every_operation_in_one_call_as_count_does,
    a_rust_caller_gets_the_default_redaction_and_none_turns_it_off,
    tool_execution_round_trips_with_lineage_and_compliance_rows,
    review_rules_and_default_classification_reach_the_stored_row,
    update_stores_the_computed_change_set,
    retention_sets_expires_at_and_cleanup_deletes_expired_events_without_orphans,
    session_summary_counts_every_kind_including_prompts,
    every_summary_scope_counts_operations_not_their_pending_intents,
    a_view_audit_keeps_the_real_actor,
    audit_level_off_records_nothing_and_writes_level_skips_reads,
    writing_through_a_read_only_store_is_refused,
    sync_record_is_durable_when_it_returns,
    the_callers_rollback_does_not_undo_the_audit_record,
    a_failed_batch_in_batch_mode_surfaces_in_flush_and_the_counter,
    observe_returns_the_tools_own_error_even_when_recording_fails,
    backpressure_records_every_event_exactly_once_with_dense_seqs,
    events_nobody_waits_for_share_one_commit_within_the_linger,
    an_event_somebody_waits_for_is_not_held_by_the_linger,
    a_lingering_batch_is_written_at_shutdown,
    concurrent_async_callers_all_get_durable_distinct_seqs,
    cursor_pages_never_skip_or_repeat_while_events_arrive,
    every_filter_narrows_the_query,
    a_log_filter_reads_its_log_and_another_log_matches_nothing,
    tool_stats_give_calls_error_rate_and_latency_percentiles,
    pending_intents_without_an_outcome_are_found_for_recovery,
    the_writer_keeps_one_log_id_per_database,
    a_duplicate_id_fails_alone_and_the_rest_of_its_batch_is_written,
    record_all_writes_every_event_or_none,
);

/// A `batch` recorder on `db` whose store gives up on a lock after 100 ms, with at most
/// `backlog` records kept through an outage.
fn outage_recorder(db: &Db, backlog: usize, max_outage: Option<Duration>) -> Recorder {
    let store = SqliteStore::open(
        &db.path,
        SqliteOptions {
            lock_timeout: Duration::from_millis(100),
        },
    )
    .unwrap();
    Recorder::start(
        store,
        RecorderConfig {
            durability: Durability::Batch,
            backlog,
            max_outage,
            ..RecorderConfig::default()
        },
    )
    .unwrap()
}

/// Waits until the recorder's writer has met the lock (it tried and failed).
fn until_unwritable(r: &Recorder) {
    within_a_minute({
        let r = r.clone();
        move || {
            while r.unwritable_for().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
}

#[test]
fn records_nobody_waits_for_outlive_a_lock_longer_than_the_timeout_and_are_written_in_order() {
    let db = Db::sqlite();
    let r = outage_recorder(&db, 100, None);
    record(&r, AuditEvent::tool_execution("before"));
    r.flush().unwrap();
    let holder = rusqlite::Connection::open(&db.path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for i in 0..5 {
        record(&r, AuditEvent::tool_execution(format!("during-{i}")));
    }
    until_unwritable(&r);
    // Several times the lock timeout: on the old writer every one of them was lost by now.
    std::thread::sleep(Duration::from_millis(600));
    record(&r, AuditEvent::tool_execution("late"));
    // A flush says that they wait, not durable and not lost.
    match r.flush() {
        Err(RecordError::Held {
            held: 6,
            last_error,
        }) => {
            assert!(last_error.contains("locked"), "{last_error}")
        }
        other => panic!("expected 6 held, got {other:?}"),
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 1);
    holder.execute_batch("ROLLBACK").unwrap();

    r.flush().unwrap();
    assert!(r.unwritable_for().is_none(), "the outage is over");
    let stats = r.shutdown().unwrap();
    assert_eq!((stats.recorded, stats.failed), (7, 0));
    let ops: Vec<String> = db.all().into_iter().rev().map(|e| e.operation).collect();
    assert_eq!(
        ops,
        [
            "before", "during-0", "during-1", "during-2", "during-3", "during-4", "late"
        ],
        "every record, in the order recorded, and no gap"
    );
}

#[test]
fn records_past_the_backlog_are_lost_and_a_gap_event_is_written_first_with_their_number() {
    let db = Db::sqlite();
    let r = outage_recorder(&db, 3, None);
    let holder = rusqlite::Connection::open(&db.path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for i in 0..10 {
        record(&r, AuditEvent::tool_execution(format!("record-{i}")));
    }
    // The flush tries the store, still locked: three records wait, seven were lost.
    match r.flush() {
        Err(RecordError::Lost {
            failed: 7,
            last_error,
        }) => assert!(last_error.contains("locked"), "{last_error}"),
        other => panic!("expected 7 lost, got {other:?}"),
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 0);
    holder.execute_batch("ROLLBACK").unwrap();
    r.flush().unwrap();
    r.shutdown().unwrap();

    let all: Vec<AuditEvent> = db.all().into_iter().rev().collect();
    assert_eq!(all.len(), 4, "{all:#?}");
    let gap = &all[0];
    assert_eq!(mcp_audit_store::gap_size(gap), Some(7), "{gap:#?}");
    assert_eq!(gap.kind, EventKind::Protocol);
    assert_eq!(gap.operation, mcp_audit_store::GAP_OPERATION);
    assert_eq!(gap.outcome, Outcome::Incomplete);
    assert_eq!(gap.compliance.requires_review, Some(true));
    assert_eq!(gap.payload.details.as_ref().unwrap()["lost"], json!(7));
    let kept: Vec<&str> = all[1..].iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(kept, ["record-0", "record-1", "record-2"]);
    // A gap is a hole on record, not damage: the log verifies.
    let report =
        mcp_audit_store::integrity::verify(&mut db.reader(), None, &[], &mut |_| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(
        report.gaps,
        [mcp_audit_store::integrity::Gap { seq: 0, lost: 7 }]
    );
}

#[test]
fn a_recorder_past_its_max_outage_asks_callers_to_stop_until_the_store_is_back() {
    let db = Db::sqlite();
    let r = outage_recorder(&db, 100, Some(Duration::from_millis(200)));
    record(&r, AuditEvent::tool_execution("before"));
    r.flush().unwrap();
    assert!(r.outage_refusal().is_none());
    let holder = rusqlite::Connection::open(&db.path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    record(&r, AuditEvent::tool_execution("during"));
    until_unwritable(&r);
    within_a_minute({
        let r = r.clone();
        move || {
            while r.outage_refusal().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    match r.outage_refusal() {
        Some(RecordError::Outage {
            limit_ms: 200,
            for_ms,
            // Refused only once down for longer than the limit; the milliseconds are truncated,
            // so a refusal at 200.4 ms says 200.
        }) => assert!(for_ms >= 200, "{for_ms}"),
        other => panic!("expected an outage refusal, got {other:?}"),
    }
    holder.execute_batch("ROLLBACK").unwrap();
    // The writer tries again on its own, with nothing new recorded.
    within_a_minute({
        let r = r.clone();
        move || {
            while r.outage_refusal().is_some() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    r.shutdown().unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 2);
}

/// One commit naming many people not seen before stores each of their pseudonyms once (the
/// mapping's new rows go in sorted, 64 to a statement: 300 rows are several statements, the
/// last one short), and a person named twice in the commit adds no second row.
#[test]
fn a_commit_naming_many_new_people_stores_each_pseudonym_once() {
    let db = Db::sqlite();
    let r = db.sync();
    let mut events: Vec<AuditEvent> = (0..150)
        .map(|n| {
            AuditEvent::tool_execution("lookup")
                .user(format!("person-{n}"))
                .data_subject(format!("subject-{n}"))
                .build()
                .unwrap()
        })
        .collect();
    events.push(
        AuditEvent::tool_execution("lookup")
            .user("person-7")
            .data_subject("subject-7")
            .build()
            .unwrap(),
    );
    // `record_all`: every event in one commit.
    r.record_all(events).unwrap();
    r.shutdown().unwrap();

    let mut store = db.open();
    let links = store.pseudonym_links().unwrap();
    assert_eq!(links.len(), 300);
    for n in [0, 7, 63, 64, 127, 128, 149] {
        let user = store.links_of(&format!("person-{n}")).unwrap();
        let subject = store.links_of(&format!("subject-{n}")).unwrap();
        assert_eq!((user.len(), subject.len()), (1, 1), "person {n}");
    }
    let users: std::collections::HashSet<String> = db
        .all()
        .into_iter()
        .filter_map(|e| e.actor.user_id)
        .collect();
    assert_eq!(users.len(), 150);
    assert!(users.contains("person-149"));
}
