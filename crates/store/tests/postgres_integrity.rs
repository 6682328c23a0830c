//! Tamper evidence on PostgreSQL: the same edits behind the store's back as `integrity.rs` does
//! to SQLite files, found with the same findings; proofs and checkpoints per log when many logs
//! share the database.

mod backend;

use mcp_audit_core::AuditEvent;
use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_store::erasure::{EraseError, erase_call};
use mcp_audit_store::integrity::{
    Finding, OutsideCheckpoint, Report, prove, sign_checkpoint, verify,
};
use mcp_audit_store::{Append, Audit, PgOptions, PgStore, Recorder, RecorderConfig};
use serde_json::json;

use backend::{Backend, Db};

const ORIGIN: &str = "mcp-audit.test/log";

/// A test database with `logs` logs of `n` events each, and a signed checkpoint of each.
struct Logs {
    db: Db,
    signer: NoteSigner,
    ids: Vec<Vec<mcp_audit_core::EventId>>,
    outside: Vec<OutsideCheckpoint>,
}

fn log_name(i: usize) -> String {
    format!("proxy-{i}")
}

fn logs(logs: usize, n: u64) -> Option<Logs> {
    let db = Db::new(Backend::Postgres)?;
    let signer = NoteSigner::generate("audit-test").unwrap();
    let mut ids = Vec::new();
    let mut outside = Vec::new();
    for l in 0..logs {
        let options = PgOptions {
            log_id: Some(log_name(l)),
            ..PgOptions::default()
        };
        let r = Recorder::start(
            db.open_pg(options.clone()).unwrap(),
            RecorderConfig::default(),
        )
        .unwrap();
        let mut log_ids = Vec::new();
        for i in 0..n {
            let e = backend::tool_event(i);
            log_ids.push(e.id);
            r.record(e).unwrap();
        }
        r.shutdown().unwrap();
        let mut store = db.open_pg(options).unwrap();
        outside.push(sign_checkpoint(&mut store, &signer, ORIGIN).unwrap());
        ids.push(log_ids);
    }
    Some(Logs {
        db,
        signer,
        ids,
        outside,
    })
}

impl Logs {
    fn reader(&self, log: usize) -> PgStore {
        let mut store = PgStore::open_read_only(&self.db.pg.as_ref().unwrap().url).unwrap();
        store.read_log(&log_name(log)).unwrap();
        store
    }

    fn verify(&self, log: usize, outside: &[OutsideCheckpoint]) -> Report {
        verify(
            &mut self.reader(log),
            Some(&self.signer.verifier()),
            outside,
            &mut |_| {},
        )
        .unwrap()
    }
}

#[test]
fn every_log_of_a_shared_database_verifies_on_its_own() {
    let Some(logs) = logs(3, 10) else { return };
    let mut reader = PgStore::open_read_only(&logs.db.pg.as_ref().unwrap().url).unwrap();
    assert_eq!(reader.logs().unwrap(), ["proxy-0", "proxy-1", "proxy-2"]);
    for l in 0..3 {
        let report = logs.verify(l, std::slice::from_ref(&logs.outside[l]));
        assert!(report.is_ok(), "log {l}: {:?}", report.findings);
        assert_eq!((report.entries, report.covered), (10, 10));
    }
}

#[test]
fn editing_any_column_a_query_show_or_cleanup_reads_is_found() {
    let at = "log_id = 'proxy-0' AND seq = 1";
    for (column, edit) in backend::column_edits(Backend::Postgres, at) {
        let Some(db) = Db::new(Backend::Postgres) else {
            return;
        };
        let options = PgOptions {
            log_id: Some(log_name(0)),
            ..PgOptions::default()
        };
        let r = Recorder::start(db.open_pg(options).unwrap(), RecorderConfig::default()).unwrap();
        let intent = backend::tool_event(0);
        let full = backend::event_with_every_column(intent.id);
        r.record(intent).unwrap();
        r.record(full).unwrap();
        r.shutdown().unwrap();
        let mut reader = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
        reader.read_log(&log_name(0)).unwrap();
        let clean = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
        assert!(clean.is_ok(), "{column}: {:?}", clean.findings);
        db.exec(&edit);
        let report = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
        assert_eq!(
            report.findings,
            [Finding::ModifiedColumn { seq: 1, column }],
            "{edit}"
        );
    }
}

#[test]
fn edits_behind_the_stores_back_are_found_in_the_log_they_touch_only() {
    let Some(logs) = logs(2, 10) else { return };
    logs.db.exec(
        "UPDATE events SET user_id = 'mallory' WHERE log_id = 'proxy-1' AND seq = 3;
         UPDATE payloads SET body = replace(body, 's5', 'forged') WHERE log_id = 'proxy-1' AND seq = 5;
         DELETE FROM events WHERE log_id = 'proxy-1' AND seq = 6;",
    );
    assert!(logs.verify(0, &[]).is_ok());
    let findings = logs.verify(1, &[]).findings;
    assert_eq!(
        findings,
        [
            Finding::ModifiedColumn {
                seq: 3,
                column: "user_id"
            },
            Finding::ModifiedPayload { seq: 5 },
            Finding::MissingEntry { seq: 6 },
        ]
    );
}

#[test]
fn changing_the_hashed_metadata_breaks_the_checkpoint() {
    let Some(logs) = logs(1, 10) else { return };
    logs.db
        .exec(r#"UPDATE events SET meta = replace(meta, '"user_id":"pn:', '"user_id":"pn:f') WHERE seq = 4"#);
    let findings = logs.verify(0, &[]).findings;
    assert_eq!(findings[0], Finding::ModifiedMetadata { seq: 4 });
    assert!(findings.contains(&Finding::CheckpointMismatch { size: 10 }));
}

#[test]
fn cutting_the_tail_is_found_against_an_outside_checkpoint() {
    let Some(logs) = logs(1, 10) else { return };
    logs.db.exec(
        "DELETE FROM events WHERE seq >= 8; DELETE FROM payloads WHERE seq >= 8;
         DELETE FROM checkpoints; UPDATE logs SET next_seq = 8",
    );
    assert_eq!(logs.verify(0, &[]).findings, [Finding::NoSignedCheckpoint]);
    assert_eq!(
        logs.verify(0, &logs.outside).findings,
        [Finding::TruncatedTail {
            checkpoint_size: 10,
            log_size: 8
        }]
    );
}

#[test]
fn an_erased_payload_verifies_as_redacted_and_proofs_still_verify() {
    let Some(logs) = logs(2, 10) else { return };
    // The erasures are recorded in a log of their own, as `mcp-audit erase` records them.
    let mut store = logs.db.open();
    let admin = PgOptions {
        log_id: Some("admin".into()),
        ..PgOptions::default()
    };
    let recorder =
        Recorder::start(logs.db.open_pg(admin).unwrap(), RecorderConfig::default()).unwrap();
    let request = backend::request();
    let erased = erase_call(&mut store, &recorder, logs.ids[1][5], &request).unwrap();
    assert!(erased.records[0].payload_deleted);
    assert!(matches!(
        erase_call(&mut store, &recorder, logs.ids[1][5], &request),
        Err(EraseError::AlreadyErased(_))
    ));
    recorder.shutdown().unwrap();
    drop(store);
    let report = logs.verify(1, &logs.outside[1..]);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.redacted, 1);

    for (seq, id) in logs.ids[1].iter().enumerate() {
        let proof = prove(&mut logs.reader(1), *id).unwrap();
        let event = proof.verify(&logs.signer.verifier()).unwrap();
        assert_eq!(event.id, *id, "seq {seq}");
    }
    // An event of another log has no place in this log's tree.
    assert!(prove(&mut logs.reader(1), logs.ids[0][0]).is_err());
}

#[test]
fn the_writer_signs_checkpoints_and_keeps_tree_nodes_in_its_own_log() {
    let Some(db) = Db::new(Backend::Postgres) else {
        return;
    };
    let signer = NoteSigner::generate("writer").unwrap();
    let config = RecorderConfig {
        checkpoints: Some(mcp_audit_store::CheckpointPolicy {
            signer: std::sync::Arc::new(NoteSigner::from_text(&signer.to_text()).unwrap()),
            origin: ORIGIN.into(),
            every_entries: 100,
            every: std::time::Duration::from_secs(3600),
            out: None,
            publish: None,
        }),
        ..RecorderConfig::default()
    };
    let r = Recorder::start(db.open(), config).unwrap();
    let mut ids = Vec::new();
    for i in 0..600 {
        let e = AuditEvent::tool_execution("t")
            .input(json!({"i": i}))
            .build()
            .unwrap();
        ids.push(e.id);
        r.record(e).unwrap();
    }
    r.shutdown().unwrap();
    assert!(db.count("SELECT COUNT(*) FROM checkpoints") >= 6);
    assert_eq!(db.count("SELECT MAX(size) FROM checkpoints"), 600);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM tree_nodes WHERE level = 8"),
        2
    );
    let mut reader = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
    reader.read_log(backend::LOG_ID).unwrap();
    let report = verify(&mut reader, Some(&signer.verifier()), &[], &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.covered, 600);
    let proof = prove(&mut reader, ids[520]).unwrap();
    proof.verify(&signer.verifier()).unwrap();
    let consistency = mcp_audit_store::integrity::consistency(&mut reader, 300, 600).unwrap();
    assert_eq!(
        Some(consistency),
        mcp_audit_core::merkle::consistency_proof(&reader.leaf_hashes(0).unwrap(), 300)
    );
}

#[test]
fn a_long_log_is_verified_in_two_halves_on_two_connections() {
    let Some(db) = Db::new(Backend::Postgres) else {
        return;
    };
    let r = Recorder::start(
        db.open(),
        RecorderConfig {
            durability: mcp_audit_store::Durability::Batch,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    for i in 0..70_000u32 {
        r.record(
            AuditEvent::tool_execution("t")
                .duration_us(u64::from(i))
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    r.shutdown().unwrap();
    // One edit in each half.
    db.exec("UPDATE events SET user_id = 'mallory' WHERE seq IN (10, 69000)");
    let mut reader = PgStore::open_read_only(&db.pg.as_ref().unwrap().url).unwrap();
    reader.read_log(backend::LOG_ID).unwrap();
    assert!(reader.another_reader().unwrap().is_some());
    let report = verify(&mut reader, None, &[], &mut |_| {}).unwrap();
    assert_eq!(report.entries, 70_000);
    assert_eq!(
        report.findings,
        [
            Finding::ModifiedColumn {
                seq: 10,
                column: "user_id"
            },
            Finding::ModifiedColumn {
                seq: 69_000,
                column: "user_id"
            },
        ]
    );
}
