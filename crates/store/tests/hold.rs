//! Legal holds, retention classes, cleanup surveys and subject exports, on both backends: a hold
//! keeps its events from cleanup and erasure until released, holds are events of the log that
//! `verify` accepts, retention classes set `expires_at` at recording, a survey (dry run)
//! changes nothing, and a subject's export verifies offline and fails when edited.

mod backend;

use jiff::Timestamp;
use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_core::subject_export::ExportError;
use mcp_audit_core::{AuditEvent, EventId, Policy, RetentionClasses};
use mcp_audit_store::erasure::{EraseError, erase_call};
use mcp_audit_store::expiry::Plan;
use mcp_audit_store::hold::{HoldRequest, HoldScope, Holds, PLACE_OPERATION, release_event};
use mcp_audit_store::integrity::{Report, prove, sign_checkpoint, verify};
use mcp_audit_store::subject::{export_event, export_subject, exports_served};
use mcp_audit_store::{Filter, Read, Recorder, RecorderConfig, Store};
#[cfg(feature = "postgres")]
use mcp_audit_store::{PgOptions, PgStore};
use serde_json::json;

use backend::{Backend, Db, clean_up};

const ORIGIN: &str = "mcp-audit.test/hold";

/// An event of `user` about data subject `subject` that expired long ago.
fn expired(user: &str, subject: &str, i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool{i}"))
        .user(user)
        .data_subject(subject)
        .output(json!({"personal": format!("{user}-{i}")}))
        .retention("1s")
        .timestamp("2020-01-10T00:00:00Z".parse().unwrap())
        .build()
        .unwrap()
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

/// Places a hold as `mcp-audit hold add` does (recorded in the test log); its id.
fn place(db: &Db, scope: HoldScope) -> String {
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let (id, _) = HoldRequest {
        scope,
        until: None,
        reason: "litigation 2026-17".into(),
        actor: "counsel".into(),
    }
    .record(&r)
    .unwrap();
    r.shutdown().unwrap();
    id
}

fn release(db: &Db, id: &str) {
    record(
        db,
        vec![release_event(id, "counsel", "case closed").unwrap()],
    );
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

fn verify_log(db: &Db, signer: &NoteSigner) -> Report {
    sign_checkpoint(&mut db.open(), signer, ORIGIN).unwrap();
    verify(
        &mut log_reader(db),
        Some(&signer.verifier()),
        &[],
        &mut |_| {},
    )
    .unwrap()
}

/// The users of the test log's tool events still stored.
fn users_left(db: &Db) -> Vec<String> {
    let mut users = Vec::new();
    db.reader()
        .for_each(
            &Filter {
                kinds: vec![mcp_audit_core::EventKind::ToolExecution],
                ..Filter::default()
            },
            &mut |e| {
                users.push(e.event.actor.user_id.unwrap_or_default());
                Ok(())
            },
        )
        .unwrap();
    users.sort();
    users
}

fn a_hold_keeps_expired_events_from_cleanup_until_released(db: Db) {
    let signer = NoteSigner::generate("hold-test").unwrap();
    record(
        &db,
        vec![
            expired("alice", "s-a", 0),
            expired("bob", "s-b", 1),
            expired("alice", "s-a", 2),
        ],
    );
    let hold = place(&db, HoldScope::User("alice".into()));

    let survey = Plan::survey(&mut db.open(), Timestamp::now()).unwrap();
    assert_eq!(survey.held.get(&hold), Some(&2), "{survey:?}");
    assert_eq!(survey.by_retention.get("1s"), Some(&1));

    let (_, deleted) = clean_up(&db).unwrap();
    assert_eq!(deleted.events, 1, "only bob's event goes");
    assert_eq!(users_left(&db), ["alice", "alice"]);
    assert!(clean_up(&db).is_none(), "nothing left that may go");
    let report = verify_log(&db, &signer);
    assert!(report.is_ok(), "{:?}", report.findings);

    release(&db, &hold);
    let (_, deleted) = clean_up(&db).unwrap();
    assert_eq!(deleted.events, 2, "released: alice's events go too");
    assert!(users_left(&db).is_empty());
    let report = verify_log(&db, &signer);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.expired, 3);
}

fn a_hold_placed_after_the_plan_stops_the_removal(db: Db) {
    record(&db, vec![expired("alice", "s-a", 0)]);
    let plan = Plan::of(&mut db.open(), Timestamp::now()).unwrap().unwrap();
    let recorder = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let seq = plan.record_in(&recorder).unwrap();
    recorder.shutdown().unwrap();
    let hold = place(&db, HoldScope::Subject("s-a".into()));
    let error = plan.remove(&mut db.open(), seq).unwrap_err().to_string();
    assert!(error.contains(&hold), "{error}");
    assert_eq!(users_left(&db), ["alice"], "nothing was removed");
}

/// Erases as `mcp-audit erase` does: on PostgreSQL the erasures go to a log of their own.
fn erase(db: &Db, id: EventId) -> Result<mcp_audit_store::erasure::Erasure, EraseError> {
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
    let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
    let erased = erase_call(&mut db.open(), &recorder, id, &backend::request());
    recorder.shutdown().unwrap();
    erased
}

fn a_hold_refuses_erasure_naming_itself_and_release_lets_it_through(db: Db) {
    let signer = NoteSigner::generate("hold-test").unwrap();
    let ids = record(&db, vec![expired("alice", "s-a", 0)]);
    let hold = place(&db, HoldScope::Subject("s-a".into()));

    let error = erase(&db, ids[0]).unwrap_err();
    let EraseError::Held { id, hold: said } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*id, ids[0]);
    assert!(
        said.contains(&hold) && said.contains("litigation 2026-17"),
        "{error}"
    );
    assert!(
        !db.reader().get(ids[0]).unwrap().unwrap().redacted,
        "nothing erased"
    );

    release(&db, &hold);
    let erased = erase(&db, ids[0]).unwrap();
    assert!(erased.records[0].payload_deleted);
    assert!(db.reader().get(ids[0]).unwrap().unwrap().redacted);
    let report = verify_log(&db, &signer);
    assert!(report.is_ok(), "{:?}", report.findings);
}

fn holds_and_releases_are_events_of_the_log(db: Db) {
    let kept = place(&db, HoldScope::Session("s-1".into()));
    let lifted = place(&db, HoldScope::User("bob".into()));
    release(&db, &lifted);
    let holds = Holds::load(db.reader().as_mut()).unwrap();
    assert_eq!(holds.holds.len(), 2);
    let kept = holds.get(&kept).unwrap();
    assert_eq!(kept.scope, HoldScope::Session("s-1".into()));
    assert_eq!(kept.placed_by.as_deref(), Some("counsel"));
    assert!(kept.is_active(Timestamp::now()));
    let lifted = holds.get(&lifted).unwrap();
    assert_eq!(lifted.released.as_ref().unwrap().reason, "case closed");
    assert_eq!(holds.active(Timestamp::now()).count(), 1);
    let placed = db
        .reader()
        .count(&Filter {
            operation: Some(PLACE_OPERATION.into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(placed, 2);
}

fn retention_classes_set_expires_at_when_recorded(db: Db) {
    let text = r#"
[[class]]
name = "restricted-tools"
kind = "tool_execution"
classification = "restricted"
retention = "90d"

[[class]]
name = "kept"
retention = "forever"
"#;
    let policy = Policy {
        classes: RetentionClasses::from_toml(text, &Policy::default().builtin_names()).unwrap(),
        ..Policy::default()
    };
    let config = RecorderConfig {
        policy,
        ..RecorderConfig::default()
    };
    let restricted = AuditEvent::tool_execution("t")
        .classification(mcp_audit_core::Classification::Restricted)
        .timestamp("2026-01-01T00:00:00Z".parse().unwrap())
        .build()
        .unwrap();
    let public = AuditEvent::tool_execution("t").build().unwrap();
    let (a, b) = (restricted.id, public.id);
    let r = Recorder::start(db.open(), config).unwrap();
    r.record(restricted).unwrap();
    r.record(public).unwrap();
    r.shutdown().unwrap();
    let a = db.reader().get(a).unwrap().unwrap().event.compliance;
    assert_eq!(a.expires_at, Some("2026-04-01T00:00:00Z".parse().unwrap()));
    assert_eq!(a.retention.unwrap().as_str(), "restricted-tools");
    let b = db.reader().get(b).unwrap().unwrap().event.compliance;
    assert_eq!(
        (b.expires_at, b.retention.unwrap().as_str()),
        (None, "kept")
    );
}

fn a_survey_changes_nothing(db: Db) {
    record(
        &db,
        vec![expired("alice", "s-a", 0), expired("bob", "s-b", 1)],
    );
    place(&db, HoldScope::User("bob".into()));
    let count = |db: &Db| db.count("SELECT COUNT(*) FROM events");
    let before = (count(&db), db.count("SELECT COUNT(*) FROM payloads"));
    let survey = Plan::survey(&mut db.open(), Timestamp::now()).unwrap();
    assert_eq!(survey.plan.unwrap().record().entries, 1);
    assert_eq!(survey.held.values().sum::<u64>(), 1);
    assert_eq!(
        (count(&db), db.count("SELECT COUNT(*) FROM payloads")),
        before
    );
}

/// The export of `subject` from the test log, proofs from a store of it.
fn export_of(db: &Db, subject: &str) -> mcp_audit_core::subject_export::SubjectExport {
    let mut prover = db.open();
    export_subject(&mut db.reader(), subject, Timestamp::now(), &mut |stored| {
        prove(&mut prover, stored.event.id)
    })
    .unwrap()
}

fn a_subjects_export_verifies_offline_and_fails_when_edited(db: Db) {
    let signer = NoteSigner::generate("hold-test").unwrap();
    let by_subject = AuditEvent::tool_execution("lookup")
        .user("agent")
        .data_subject("cust-42")
        .input(json!({"email": "c42@example.org"}))
        .build()
        .unwrap();
    let by_user = AuditEvent::tool_execution("search")
        .user("cust-42")
        .build()
        .unwrap();
    let ids = record(&db, vec![by_subject, by_user, expired("bob", "s-b", 9)]);
    sign_checkpoint(&mut db.open(), &signer, ORIGIN).unwrap();

    let export = export_of(&db, "cust-42");
    let exported: Vec<EventId> = export.events.iter().map(|e| e.event.id).collect();
    assert_eq!(
        exported,
        ids[..2],
        "both of the subject's events, not bob's"
    );
    assert_eq!(export.verify(&signer.verifier()).unwrap(), 2);

    // Through its text, as a reader gets it: one byte of an argument changed.
    let text = serde_json::to_string(&export).unwrap();
    let edited = text.replacen("c42@example.org", "c43@example.org", 1);
    assert_ne!(edited, text);
    let edited: mcp_audit_core::subject_export::SubjectExport =
        serde_json::from_str(&edited).unwrap();
    assert!(matches!(
        edited.verify(&signer.verifier()),
        Err(ExportError::Altered { index: 0 } | ExportError::Proof { index: 0, .. })
    ));
    // Another key does not verify it.
    let other = NoteSigner::generate("hold-test").unwrap();
    assert!(export.verify(&other.verifier()).is_err());

    // The export is recorded, and counted.
    record(&db, vec![export_event("cust-42", "dpo", &export).unwrap()]);
    assert_eq!(exports_served(db.reader().as_mut(), None, None).unwrap(), 1);

    let none = export_of(&db, "nobody");
    assert!(none.events.is_empty());
    assert_eq!(none.verify(&signer.verifier()).unwrap(), 0);
}

on_both_backends!(
    a_hold_keeps_expired_events_from_cleanup_until_released,
    a_hold_placed_after_the_plan_stops_the_removal,
    a_hold_refuses_erasure_naming_itself_and_release_lets_it_through,
    holds_and_releases_are_events_of_the_log,
    retention_classes_set_expires_at_when_recorded,
    a_survey_changes_nothing,
    a_subjects_export_verifies_offline_and_fails_when_edited,
);
