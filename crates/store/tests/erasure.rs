//! Erasure that erases every record of a call and says so in the log, and what `verify` makes
//! of payloads, lineage rows and checkpoints that were changed behind the log's back: on both
//! backends, then what only SQLite's files can show (the bytes leave the file and its WAL).

mod backend;

use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_core::{
    AuditEvent, ComplianceEvent, DataSource, EventId, EventKind, FlowDirection, Outcome, RiskLevel,
};
use mcp_audit_store::erasure::{EraseError, Erasure, erase_call, erased_ids};
use mcp_audit_store::integrity::{Finding, Report, sign_checkpoint, verify};
use mcp_audit_store::{Filter, Recorder, RecorderConfig, Scrub, SqliteOptions, SqliteStore, Store};
#[cfg(feature = "postgres")]
use mcp_audit_store::{PgOptions, PgStore};
use serde_json::json;

use backend::{Backend, Db, files_hold};

/// A call recorded as `sync` records it: the intent with the arguments, then the outcome that
/// completes it with the result. Returns (intent, outcome).
fn record_call(r: &Recorder, secret: &str) -> (EventId, EventId) {
    let intent = AuditEvent::tool_execution("search")
        .user("alice")
        .input(json!({"q": format!("{secret}-in")}))
        .outcome(Outcome::Pending)
        .build()
        .unwrap();
    let outcome = AuditEvent::tool_execution("search")
        .user("alice")
        .completes(intent.id)
        .input(json!({"q": format!("{secret}-in")}))
        .output(json!({"found": format!("{secret}-out")}))
        .build()
        .unwrap();
    let ids = (intent.id, outcome.id);
    r.record(intent).unwrap();
    r.record(outcome).unwrap();
    ids
}

/// A log of `before` tool events, one call (intent and outcome), `after` tool events; the call's
/// ids.
fn log_with_call(db: &Db, before: u64, after: u64) -> (EventId, EventId) {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    for i in 0..before {
        r.record(backend::tool_event(i)).unwrap();
    }
    let call = record_call(&r, "needle");
    for i in before..before + after {
        r.record(backend::tool_event(i)).unwrap();
    }
    r.shutdown().unwrap();
    call
}

/// The recorder `erase` records with: on SQLite the file's one log; on PostgreSQL a log of its
/// own (the test log has one writer, and it is the erasing store).
fn admin_recorder(db: &Db) -> Recorder {
    let store: Box<dyn Store> = match db.backend {
        Backend::Sqlite => db.open(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Box::new(
            db.open_pg(PgOptions {
                log_id: Some("admin".into()),
                ..PgOptions::default()
            })
            .unwrap(),
        ),
    };
    Recorder::start(store, RecorderConfig::default()).unwrap()
}

/// Erases event `id`'s call as `mcp-audit erase` does.
fn erase(db: &Db, id: EventId) -> Result<Erasure, EraseError> {
    let mut store = db.open();
    let recorder = admin_recorder(db);
    let erased = erase_call(&mut store, &recorder, id, &backend::request());
    recorder.shutdown().unwrap();
    erased
}

/// A reader of the test log (on PostgreSQL, the log the events are in).
fn log_reader(db: &Db) -> Box<dyn Store> {
    match db.backend {
        Backend::Sqlite => db.reader(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut store = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
            store.read_log(backend::LOG_ID).unwrap();
            Box::new(store)
        }
    }
}

fn verify_log(db: &Db, signer: Option<&NoteSigner>) -> Report {
    let verifier = signer.map(NoteSigner::verifier);
    verify(&mut log_reader(db), verifier.as_ref(), &[], &mut |_| {}).unwrap()
}

fn erasing_an_outcome_erases_its_intent_and_records_who_why_and_which(db: Db) {
    let (intent, outcome) = log_with_call(&db, 2, 1);
    let erased = erase(&db, outcome).unwrap();
    let records: Vec<(EventId, bool, bool)> = erased
        .records
        .iter()
        .map(|r| (r.id, r.intent, r.payload_deleted))
        .collect();
    assert_eq!(records, [(outcome, false, true), (intent, true, true)]);
    let mut reader = db.reader();
    for id in [intent, outcome] {
        let stored = reader.get(id).unwrap().unwrap();
        assert!(stored.redacted && stored.event.payload.is_empty(), "{id}");
    }
    // Each erasure is an event of the log: who, why, which record, kept forever.
    let erasures: Vec<AuditEvent> = {
        let mut found = Vec::new();
        reader
            .for_each(
                &Filter {
                    kinds: vec![EventKind::Admin],
                    ..Filter::default()
                },
                &mut |e| {
                    found.push(e.event);
                    Ok(())
                },
            )
            .unwrap();
        found
    };
    assert_eq!(erasures.len(), 2);
    for (e, record) in erasures.iter().zip(&erased.records) {
        assert_eq!(e.id, record.erasure_event);
        assert_eq!(e.operation, "DELETE audit_event");
        assert_eq!(e.actor.user_id.as_deref(), Some("dpo"));
        assert_eq!(e.compliance.purpose.as_deref(), Some("erasure request 17"));
        assert_eq!(e.target.resource_id, Some(record.id.to_string()));
        assert_eq!(e.compliance.expires_at, None, "kept forever");
    }
    assert_eq!(
        erased_ids(&mut reader).unwrap(),
        [intent, outcome]
            .into_iter()
            .collect::<std::collections::HashSet<_>>()
    );
    let report = verify_log(&db, None);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.redacted, 2);
    // Nothing is left to erase, and saying so records nothing more.
    assert!(matches!(
        erase(&db, intent),
        Err(EraseError::AlreadyErased(id)) if id == intent
    ));
    assert_eq!(erased_ids(&mut db.reader()).unwrap().len(), 2);
}

fn erasing_an_intent_erases_its_outcome_too(db: Db) {
    let (intent, outcome) = log_with_call(&db, 0, 0);
    let erased = erase(&db, intent).unwrap();
    let ids: Vec<EventId> = erased.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [intent, outcome]);
    assert!(db.reader().get(outcome).unwrap().unwrap().redacted);
}

fn a_payload_deleted_without_an_erasure_record_is_tampering_not_redacted(db: Db) {
    log_with_call(&db, 3, 2);
    db.exec("DELETE FROM payloads WHERE seq = 1");
    let report = verify_log(&db, None);
    assert_eq!(report.findings, [Finding::MissingPayload { seq: 1 }]);
    assert_eq!(report.redacted, 0);
}

fn erase_records_an_erasure_made_before_erasures_were_recorded(db: Db) {
    // A database erased by an older mcp-audit: the payload gone, no erasure event.
    let (intent, outcome) = log_with_call(&db, 1, 0);
    db.exec("DELETE FROM payloads WHERE seq IN (1, 2)");
    assert_eq!(verify_log(&db, None).findings.len(), 2);
    let erased = erase(&db, outcome).unwrap();
    assert!(erased.records.iter().all(|r| !r.payload_deleted));
    assert_eq!(erased.records.len(), 2);
    let report = verify_log(&db, None);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.redacted, 2);
    assert!(matches!(
        erase(&db, intent),
        Err(EraseError::AlreadyErased(_))
    ));
}

fn erasing_an_unknown_event_is_refused_and_records_nothing(db: Db) {
    log_with_call(&db, 1, 0);
    let unknown = EventId::new();
    assert!(matches!(
        erase(&db, unknown),
        Err(EraseError::NoSuchEvent(id)) if id == unknown
    ));
    assert!(erased_ids(&mut db.reader()).unwrap().is_empty());
}

/// An event with two data sources (one with metadata whose keys a writer might order either
/// way) and a compliance event with details and mitigations.
fn event_with_lineage() -> AuditEvent {
    AuditEvent::tool_execution("export")
        .user("alice")
        .data_source(DataSource::input("postgres://crm/customers").source_type("database"))
        .data_source(
            DataSource::input("s3://exports/x.csv")
                .direction(FlowDirection::Output)
                .transformation("csv")
                .metadata(json!({"zeta": 1, "alpha": {"rows": 3, "b": [1.5, null]}})),
        )
        .compliance_event(ComplianceEvent {
            framework: "GDPR".into(),
            event_type: "data_export".into(),
            risk_level: RiskLevel::High,
            details: Some(json!({"subjects": 12, "fields": ["name", "email"]})),
            mitigation: vec!["encrypted".into()],
        })
        .build()
        .unwrap()
}

fn an_edited_added_or_deleted_lineage_or_compliance_row_is_found(db: Db) {
    // PostgreSQL's child rows carry their event's log and time (its partition key).
    let key = match db.backend {
        Backend::Sqlite => "",
        #[cfg(feature = "postgres")]
        Backend::Postgres => "log_id, ts, ",
    };
    let edits = [
        (
            "UPDATE data_sources SET uri = 'file:///elsewhere' WHERE seq = 1 AND ordinal = 1"
                .to_string(),
            1,
            "data_sources",
        ),
        (
            "DELETE FROM data_sources WHERE seq = 1 AND ordinal = 0".into(),
            1,
            "data_sources",
        ),
        (
            r#"UPDATE data_sources SET metadata = '{"zeta":2}' WHERE seq = 1 AND ordinal = 1"#
                .into(),
            1,
            "data_sources",
        ),
        (
            "UPDATE compliance_events SET risk_level = 'low' WHERE seq = 1".into(),
            1,
            "compliance_events",
        ),
        (
            "UPDATE compliance_events SET mitigation = NULL WHERE seq = 1".into(),
            1,
            "compliance_events",
        ),
        (
            "DELETE FROM compliance_events WHERE seq = 1".into(),
            1,
            "compliance_events",
        ),
        (
            format!(
                "INSERT INTO compliance_events ({key}seq, ordinal, framework, event_type, risk_level) \
                 SELECT {key}seq, 0, 'GDPR', 'forged', 'low' FROM events WHERE seq = 2"
            ),
            2,
            "compliance_events",
        ),
    ];
    for (edit, seq, table) in edits {
        let Some(db) = Db::new(db.backend) else {
            return;
        };
        let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
        r.record(backend::tool_event(0)).unwrap();
        r.record(event_with_lineage()).unwrap();
        r.record(backend::tool_event(2)).unwrap();
        r.shutdown().unwrap();
        let clean = verify_log(&db, None);
        assert!(clean.is_ok(), "{edit}: {:?}", clean.findings);
        db.exec(&edit);
        assert_eq!(
            verify_log(&db, None).findings,
            [Finding::ModifiedLineage { seq, table }],
            "{edit}"
        );
    }
}

fn a_key_with_no_checkpoint_left_is_a_finding(db: Db) {
    log_with_call(&db, 2, 0);
    let signer = NoteSigner::generate("audit-test").unwrap();
    sign_checkpoint(&mut db.open(), &signer, "test/log").unwrap();
    assert!(verify_log(&db, Some(&signer)).is_ok());
    db.exec("DELETE FROM checkpoints");
    let report = verify_log(&db, Some(&signer));
    assert_eq!(report.findings, [Finding::NoSignedCheckpoint]);
    assert_eq!(report.checkpoints_verified, 0);
    // Without a key nothing was to be checked against a signature.
    assert!(verify_log(&db, None).is_ok());
}

fn the_same_checkpoint_stored_and_kept_outside_counts_once(db: Db) {
    log_with_call(&db, 2, 0);
    let signer = NoteSigner::generate("audit-test").unwrap();
    let outside = sign_checkpoint(&mut db.open(), &signer, "test/log").unwrap();
    let twice = [outside.clone(), outside];
    let report = verify(
        &mut log_reader(&db),
        Some(&signer.verifier()),
        &twice,
        &mut |_| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.checkpoints_verified, 1);
}

/// A recorder that runs through the whole test, as a long-lived proxy does: on PostgreSQL in
/// a log of its own, beside the test log that the erasure opens.
fn live_recorder(db: &Db) -> Recorder {
    let store: Box<dyn Store> = match db.backend {
        Backend::Sqlite => db.open(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Box::new(
            db.open_pg(PgOptions {
                log_id: Some("live".into()),
                ..PgOptions::default()
            })
            .unwrap(),
        ),
    };
    Recorder::start(store, RecorderConfig::default()).unwrap()
}

/// The events of user `user` as a reader finds them (through the mapping), by operation.
fn operations_of(db: &Db, user: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    db.reader()
        .for_each(
            &Filter {
                user_id: Some(user.into()),
                ..Filter::default()
            },
            &mut |e| {
                found.push((e.event.operation, e.event.actor.user_id));
                Ok(())
            },
        )
        .unwrap();
    found
}

/// Regression: a recorder running while another process erased a subject kept the erased
/// pseudonym cached, so its next event about the person recorded a pseudonym nothing
/// resolved any more (the event unreadable by identity), tied to the erased events.
fn a_running_recorder_names_an_erased_person_afresh_after_the_erasure(db: Db) {
    let user = "erin-erased-3141";
    let event = |op: &str| {
        AuditEvent::tool_execution(op)
            .user(user)
            .input(json!({"q": op}))
            .build()
            .unwrap()
    };
    let live = live_recorder(&db);
    live.record(event("before")).unwrap();
    assert_eq!(operations_of(&db, user).len(), 1);

    let mut store = db.open();
    let admin = admin_recorder(&db);
    let erased =
        mcp_audit_store::subject::erase_subject(&mut store, &admin, user, &backend::request())
            .unwrap();
    admin.shutdown().unwrap();
    assert!(erased.links_forgotten >= 1);
    assert!(operations_of(&db, user).is_empty(), "erased");

    live.record(event("after")).unwrap();
    live.shutdown().unwrap();
    assert_eq!(
        operations_of(&db, user),
        vec![("after".to_string(), Some(user.to_string()))],
        "the new event is found by its identity, and only it"
    );
    // The erased event still names nobody: its pseudonym was not linked again.
    let mut before = Vec::new();
    db.reader()
        .for_each(&Filter::default(), &mut |e| {
            if e.event.operation == "before" {
                before.push(e.event.actor.user_id.unwrap_or_default());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(before.len(), 1);
    assert!(before[0].starts_with("pn:"), "{before:?}");
    // The event named afresh by the writer, after it was sealed, verifies.
    let mut live_log: Box<dyn Store> = match db.backend {
        Backend::Sqlite => db.reader(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut store = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
            store.read_log("live").unwrap();
            Box::new(store)
        }
    };
    let report = verify(&mut live_log, None, &[], &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
}

on_both_backends!(
    a_running_recorder_names_an_erased_person_afresh_after_the_erasure,
    erasing_an_outcome_erases_its_intent_and_records_who_why_and_which,
    erasing_an_intent_erases_its_outcome_too,
    a_payload_deleted_without_an_erasure_record_is_tampering_not_redacted,
    erase_records_an_erasure_made_before_erasures_were_recorded,
    erasing_an_unknown_event_is_refused_and_records_nothing,
    an_edited_added_or_deleted_lineage_or_compliance_row_is_found,
    a_key_with_no_checkpoint_left_is_a_finding,
    the_same_checkpoint_stored_and_kept_outside_counts_once,
);

#[test]
fn erased_arguments_leave_the_database_file_and_its_write_ahead_log() {
    let db = Db::sqlite();
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    // Enough rows around the calls that pages fill, split and are rewritten, and one call
    // whose arguments need overflow pages.
    let filler = "x".repeat(700);
    let mut calls = Vec::new();
    for i in 0..400u64 {
        let e = AuditEvent::tool_execution("fill")
            .input(json!({"n": i, "pad": filler}))
            .build()
            .unwrap();
        r.record(e).unwrap();
        if i == 150 {
            calls.push(record_call(&r, "small-secret-7f3a"));
        }
        if i == 300 {
            let big = format!("big-secret-9c1d{}", "y".repeat(60_000));
            calls.push(record_call(&r, &big));
        }
    }
    r.shutdown().unwrap();
    for secret in ["small-secret-7f3a", "big-secret-9c1d"] {
        assert!(
            !files_hold(&db.path, secret).is_empty(),
            "{secret} is there"
        );
    }
    // A writer stays open meanwhile, as a proxy's would: the WAL is there and must be cleared.
    let other_writer = SqliteStore::open(&db.path, SqliteOptions::default()).unwrap();
    for (_, outcome) in &calls {
        let erased = erase(&db, *outcome).unwrap();
        assert_eq!(erased.scrub, Scrub::Done);
    }
    for secret in ["small-secret-7f3a", "big-secret-9c1d"] {
        assert_eq!(
            files_hold(&db.path, secret),
            Vec::<String>::new(),
            "{secret}"
        );
    }
    drop(other_writer);
    let report = verify_log(&db, None);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.redacted, 4);
}

#[test]
fn a_reader_that_holds_the_write_ahead_log_is_reported_not_hidden() {
    let db = Db::sqlite();
    let (_, outcome) = log_with_call(&db, 1, 0);
    let reader = rusqlite::Connection::open(&db.path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let erased = erase(&db, outcome).unwrap();
    match erased.scrub {
        Scrub::Pending(why) => assert!(why.contains("write-ahead log"), "{why}"),
        other => panic!("a reader pinned the WAL, yet the scrub says {other:?}"),
    }
    reader.execute_batch("COMMIT").unwrap();
}
