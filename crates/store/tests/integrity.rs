//! Tamper evidence: each way of editing the SQLite file behind our back (through rusqlite, not
//! our API) is detected, with the exact finding; erasure through the supported path is not.

mod backend;

use mcp_audit_core::AuditEvent;
use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner};
use mcp_audit_store::erasure::erase_call;
use mcp_audit_store::integrity::{Finding, OutsideCheckpoint, Report, sign_checkpoint, verify};
use mcp_audit_store::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::json;

const ORIGIN: &str = "mcp-audit.test/log";

struct Log {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    signer: NoteSigner,
    ids: Vec<mcp_audit_core::EventId>,
}

/// Ten events, then a signed checkpoint of all ten.
fn log() -> (Log, OutsideCheckpoint) {
    signed_log(RecorderConfig::default(), (0..10).map(backend::tool_event))
}

/// `events` recorded through the writer with `config`, then a signed checkpoint of all of them:
/// how every log of these tests is made, whatever its length.
fn signed_log(
    config: RecorderConfig,
    events: impl IntoIterator<Item = AuditEvent>,
) -> (Log, OutsideCheckpoint) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let r = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        config,
    )
    .unwrap();
    let mut ids = Vec::new();
    for e in events {
        ids.push(e.id);
        r.record(e).unwrap();
    }
    r.shutdown().unwrap();
    let signer = NoteSigner::generate("audit-test").unwrap();
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let outside = sign_checkpoint(&mut store, &signer, ORIGIN).unwrap();
    (
        Log {
            _dir: dir,
            path,
            signer,
            ids,
        },
        outside,
    )
}

impl Log {
    /// Runs `sql` on the file through a connection of its own, with the functions that read
    /// and write a stored `meta` in its dense form (`mcp_audit_text`, `mcp_audit_pack`).
    fn sql(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        SqliteStore::register_functions(&conn).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn verify(&self, outside: &[OutsideCheckpoint]) -> Report {
        let mut store = SqliteStore::open_read_only(&self.path, SqliteOptions::default()).unwrap();
        verify(
            &mut store,
            Some(&self.signer.verifier()),
            outside,
            &mut |_| {},
        )
        .unwrap()
    }
}

#[test]
fn an_untouched_log_verifies_with_its_checkpoint() {
    let (log, outside) = log();
    let report = log.verify(&[outside]);
    assert!(report.is_ok(), "{:?}", report.findings);
    // The stored checkpoint and its outside copy are one checkpoint, counted once.
    assert_eq!(
        (report.entries, report.checkpoints_verified, report.covered),
        (10, 1, 10)
    );
}

#[test]
fn changing_one_indexed_field_is_found() {
    let (log, _) = log();
    log.sql("UPDATE events SET user_id = 'mallory' WHERE seq = 3");
    assert_eq!(
        log.verify(&[]).findings,
        [Finding::ModifiedColumn {
            seq: 3,
            column: "user_id"
        }]
    );
}

#[test]
fn editing_any_column_a_query_show_or_cleanup_reads_is_found() {
    for (column, edit) in backend::column_edits(backend::Backend::Sqlite, "seq = 1") {
        let intent = backend::tool_event(0);
        let full = backend::event_with_every_column(intent.id);
        let (log, _) = signed_log(RecorderConfig::default(), [intent, full]);
        assert!(log.verify(&[]).is_ok(), "{column}");
        log.sql(&edit);
        assert_eq!(
            log.verify(&[]).findings,
            [Finding::ModifiedColumn { seq: 1, column }],
            "{edit}"
        );
    }
}

#[test]
fn a_column_of_a_type_no_writer_gives_is_a_finding_not_an_error() {
    let (log, _) = log();
    // SQLite keeps text in an INTEGER column and a number in a BLOB one.
    log.sql(
        "UPDATE events SET requires_review = 'yes' WHERE seq = 2;
         UPDATE events SET ts = 'noon' WHERE seq = 5;
         UPDATE events SET id = 7.5 WHERE seq = 7;",
    );
    assert_eq!(
        log.verify(&[]).findings,
        [
            Finding::ModifiedColumn {
                seq: 2,
                column: "requires_review"
            },
            Finding::ModifiedColumn {
                seq: 5,
                column: "ts"
            },
            Finding::ModifiedColumn {
                seq: 7,
                column: "id"
            },
        ]
    );
}

#[test]
fn changing_the_hashed_metadata_is_found() {
    let (log, _) = log();
    log.sql(
        r#"UPDATE events SET meta = mcp_audit_pack(replace(mcp_audit_text(meta),
               '"user_id":"pn:', '"user_id":"pn:f')) WHERE seq = 4"#,
    );
    let findings = log.verify(&[]).findings;
    assert_eq!(findings[0], Finding::ModifiedMetadata { seq: 4 });
    assert!(
        findings.contains(&Finding::CheckpointMismatch { size: 10 }),
        "{findings:?}"
    );
}

#[test]
fn changing_a_payload_is_found() {
    let (log, _) = log();
    log.sql("UPDATE payloads SET body = replace(body, 's5', 'forged') WHERE seq = 5");
    assert_eq!(
        log.verify(&[]).findings,
        [Finding::ModifiedPayload { seq: 5 }]
    );
}

#[test]
fn deleting_an_event_in_the_middle_is_found() {
    let (log, _) = log();
    log.sql("DELETE FROM events WHERE seq = 6");
    assert_eq!(log.verify(&[]).findings, [Finding::MissingEntry { seq: 6 }]);
}

#[test]
fn cutting_the_tail_is_found_against_an_outside_checkpoint() {
    let (log, outside) = log();
    // The attacker removes the last events, the stored checkpoint, and fixes the counter.
    log.sql("DELETE FROM events WHERE seq >= 8; DELETE FROM payloads WHERE seq >= 8; DELETE FROM checkpoints; UPDATE log_state SET value = '8' WHERE key = 'next_seq'");
    // Without an outside copy the cut itself is invisible; a key with nothing to check
    // against is still a finding.
    assert_eq!(log.verify(&[]).findings, [Finding::NoSignedCheckpoint]);
    assert_eq!(
        log.verify(&[outside]).findings,
        [Finding::TruncatedTail {
            checkpoint_size: 10,
            log_size: 8
        }]
    );
}

#[test]
fn inserting_a_forged_event_is_found() {
    let (log, _) = log();
    log.sql("INSERT INTO events SELECT 10, randomblob(16), ts, kind, action, 'forged', user_id, session_id, correlation_id, server_name, resource_type, resource_id, outcome, classification, requires_review, data_subject_id, expires_at, duration_us, completes, meta, commitment, leaf_hash, received_at FROM events WHERE seq = 2");
    assert_eq!(log.verify(&[]).findings, [Finding::ExtraEntry { seq: 10 }]);
}

#[test]
fn swapping_two_events_is_found_as_reordering() {
    let (log, _) = log();
    log.sql("UPDATE events SET seq = -1 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 7; UPDATE events SET seq = 7 WHERE seq = -1;
             UPDATE payloads SET seq = -1 WHERE seq = 2; UPDATE payloads SET seq = 2 WHERE seq = 7; UPDATE payloads SET seq = 7 WHERE seq = -1;");
    let findings = log.verify(&[]).findings;
    assert!(
        findings.contains(&Finding::Reordered {
            seq: 2,
            belongs_at: 7
        }),
        "{findings:?}"
    );
    assert!(
        findings.contains(&Finding::Reordered {
            seq: 7,
            belongs_at: 2
        }),
        "{findings:?}"
    );
}

#[test]
fn a_checkpoint_signed_by_another_key_is_found() {
    let (log, _) = log();
    let intruder = NoteSigner::generate("audit-test").unwrap();
    let root: Vec<u8> = rusqlite::Connection::open(&log.path)
        .unwrap()
        .query_row("SELECT root FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    let forged = intruder.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size: 10,
        root: mcp_audit_core::Hash::from_slice(&root).unwrap(),
    });
    rusqlite::Connection::open(&log.path)
        .unwrap()
        .execute("UPDATE checkpoints SET note = ?1", [forged])
        .unwrap();
    let findings = log.verify(&[]).findings;
    assert!(
        matches!(&findings[..], [Finding::BadSignature { size: 10, .. }]),
        "{findings:?}"
    );
}

#[test]
fn erasing_a_payload_through_the_supported_path_verifies_as_redacted() {
    let (log, outside) = log();
    let mut store = SqliteStore::open(&log.path, SqliteOptions::default()).unwrap();
    let recorder = Recorder::start(
        SqliteStore::open(&log.path, SqliteOptions::default()).unwrap(),
        RecorderConfig::default(),
    )
    .unwrap();
    let erased = erase_call(&mut store, &recorder, log.ids[5], &backend::request()).unwrap();
    recorder.shutdown().unwrap();
    assert!(erased.records[0].payload_deleted);
    drop(store);
    let report = log.verify(&[outside]);
    // The erasure event came after the checkpoint: verified, not yet covered.
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!((report.redacted, report.entries), (1, 11));
    let mut reader = SqliteStore::open_read_only(&log.path, SqliteOptions::default()).unwrap();
    let e = mcp_audit_store::Read::get(&mut reader, log.ids[5])
        .unwrap()
        .unwrap();
    assert!(e.redacted && e.event.payload.is_empty());
}

#[test]
fn a_checkpoint_is_refused_when_the_log_no_longer_extends_the_previous_one() {
    let (log, _) = log();
    log.sql("UPDATE events SET leaf_hash = randomblob(32) WHERE seq = 1");
    let mut store = SqliteStore::open(&log.path, SqliteOptions::default()).unwrap();
    let err = sign_checkpoint(&mut store, &log.signer, ORIGIN).unwrap_err();
    assert!(err.to_string().contains("no longer extends"), "{err}");
}

fn policy(
    signer: &NoteSigner,
    every_entries: u64,
    every: std::time::Duration,
    out: Option<std::path::PathBuf>,
) -> mcp_audit_store::CheckpointPolicy {
    mcp_audit_store::CheckpointPolicy {
        signer: std::sync::Arc::new(NoteSigner::from_text(&signer.to_text()).unwrap()),
        origin: ORIGIN.into(),
        every_entries,
        every,
        out,
        publish: None,
    }
}

fn checkpoint_sizes(path: &std::path::Path) -> Vec<i64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT size FROM checkpoints ORDER BY size")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_writer_signs_every_n_entries_and_at_shutdown_and_keeps_and_publishes_outside_copies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let out = dir.path().join("checkpoints.jsonl");
    let signer = NoteSigner::generate("writer").unwrap();
    let published = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut checkpoints = policy(
        &signer,
        5,
        std::time::Duration::from_secs(3600),
        Some(out.clone()),
    );
    checkpoints.publish = Some(std::sync::Arc::new({
        let published = published.clone();
        move |c: &OutsideCheckpoint| published.lock().unwrap().push(c.clone())
    }));
    let config = RecorderConfig {
        max_batch: 1,
        checkpoints: Some(checkpoints),
        ..RecorderConfig::default()
    };
    let r = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        config,
    )
    .unwrap();
    for i in 0..12 {
        r.record(AuditEvent::tool_execution(format!("t{i}")).build().unwrap())
            .unwrap();
    }
    r.shutdown().unwrap();
    assert_eq!(checkpoint_sizes(&path), [5, 10, 12]);
    let outside: Vec<OutsideCheckpoint> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        outside.iter().map(|o| o.size).collect::<Vec<_>>(),
        [5, 10, 12]
    );
    // Every checkpoint is handed to the publisher too, as signed.
    let published = published.lock().unwrap().clone();
    assert_eq!(
        published.iter().map(|o| &o.note).collect::<Vec<_>>(),
        outside.iter().map(|o| &o.note).collect::<Vec<_>>()
    );
    let mut store = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    let report = verify(&mut store, Some(&signer.verifier()), &outside, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    // Each stored checkpoint is also in `outside`: counted once.
    assert_eq!((report.checkpoints_verified, report.covered), (3, 12));
}

#[test]
fn the_writer_signs_after_a_quiet_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let signer = NoteSigner::generate("writer").unwrap();
    let config = RecorderConfig {
        checkpoints: Some(policy(
            &signer,
            1_000_000,
            std::time::Duration::from_millis(200),
            None,
        )),
        ..RecorderConfig::default()
    };
    let r = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        config,
    )
    .unwrap();
    for i in 0..3 {
        r.record(AuditEvent::tool_execution(format!("t{i}")).build().unwrap())
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while checkpoint_sizes(&path) != [3] {
        assert!(
            std::time::Instant::now() < deadline,
            "no time-based checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    r.shutdown().unwrap();
    assert_eq!(
        checkpoint_sizes(&path),
        [3],
        "nothing new at shutdown, nothing signed"
    );
}

#[test]
fn the_writer_refuses_to_start_on_a_log_that_no_longer_extends_its_checkpoint() {
    let (log, _) = log();
    log.sql("UPDATE events SET leaf_hash = randomblob(32) WHERE seq = 3");
    let config = RecorderConfig {
        checkpoints: Some(policy(
            &log.signer,
            5,
            std::time::Duration::from_secs(60),
            None,
        )),
        ..RecorderConfig::default()
    };
    let err = Recorder::start(
        SqliteStore::open(&log.path, SqliteOptions::default()).unwrap(),
        config,
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("no longer extends its checkpoint of size 10"),
        "{err}"
    );
}

/// `n` small events recorded through the writer (which stores interior nodes as it goes), then
/// a signed checkpoint of all of them.
fn long_log(n: u64) -> (Log, OutsideCheckpoint) {
    let batch = RecorderConfig {
        durability: mcp_audit_store::Durability::Batch,
        ..RecorderConfig::default()
    };
    signed_log(
        batch,
        (0..n).map(|i| {
            AuditEvent::tool_execution("t")
                .input(json!({"n": i}))
                .build()
                .unwrap()
        }),
    )
}

impl Log {
    fn leaves(&self) -> Vec<mcp_audit_core::Hash> {
        let mut store = SqliteStore::open_read_only(&self.path, SqliteOptions::default()).unwrap();
        mcp_audit_store::Append::leaf_hashes(&mut store, 0).unwrap()
    }

    fn nodes(&self) -> Vec<(i64, i64, Vec<u8>)> {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        let mut stmt = conn
            .prepare("SELECT level, idx, hash FROM tree_nodes ORDER BY level, idx")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn prove(&self, seq: usize) -> mcp_audit_core::proof::InclusionProof {
        let mut store = SqliteStore::open(&self.path, SqliteOptions::default()).unwrap();
        mcp_audit_store::integrity::prove(&mut store, self.ids[seq]).unwrap()
    }
}

#[test]
fn the_writer_stores_the_root_of_every_256_entries() {
    let (log, _) = long_log(1000);
    let leaves = log.leaves();
    let nodes = log.nodes();
    // 1,000 entries hold three complete level-8 subtrees and no level-16 one.
    assert_eq!(
        nodes.iter().map(|(l, i, _)| (*l, *i)).collect::<Vec<_>>(),
        vec![(8, 0), (8, 1), (8, 2)]
    );
    for (_, index, hash) in nodes {
        let start = index as usize * 256;
        let expected = mcp_audit_core::merkle::root(&leaves[start..start + 256]);
        assert_eq!(hash, expected.0.to_vec(), "node {index}");
    }
}

#[test]
fn proofs_from_stored_nodes_equal_proofs_from_every_leaf_and_verify() {
    let (log, _) = long_log(700);
    let leaves = log.leaves();
    let verifier = log.signer.verifier();
    for seq in [0, 1, 255, 256, 300, 511, 512, 699] {
        let proof = log.prove(seq);
        assert_eq!(proof.tree_size, 700);
        assert_eq!(
            Some(proof.path.clone()),
            mcp_audit_core::merkle::inclusion_proof(&leaves, seq),
            "seq {seq}"
        );
        let event = proof.verify(&verifier).unwrap();
        assert_eq!(event.id, log.ids[seq]);
    }
}

#[test]
fn a_proof_recomputes_missing_nodes_and_stores_them_again() {
    let (log, _) = long_log(600);
    let before = log.nodes();
    assert_eq!(before.len(), 2);
    log.sql("DELETE FROM tree_nodes");
    // Seq 520's path holds the root of entries 0..512: both level-8 nodes are needed.
    let proof = log.prove(520);
    proof.verify(&log.signer.verifier()).unwrap();
    assert_eq!(log.nodes(), before);
}

#[test]
fn a_tampered_node_denies_a_proof_but_cannot_forge_one_and_verify_names_it() {
    let (log, outside) = long_log(600);
    assert!(log.verify(std::slice::from_ref(&outside)).is_ok());
    log.sql("UPDATE tree_nodes SET hash = zeroblob(32) WHERE idx = 0");
    assert_eq!(
        log.verify(std::slice::from_ref(&outside)).findings,
        [Finding::TreeNode { level: 8, index: 0 }]
    );
    // Seq 520's path uses the root of entries 0..512, built from node 0: the proof is wrong,
    // and verification says so.
    let proof = log.prove(520);
    assert!(proof.verify(&log.signer.verifier()).is_err());
    // A proof that does not need that node is unaffected.
    log.prove(100).verify(&log.signer.verifier()).unwrap();
}

#[test]
fn a_consistency_proof_from_stored_nodes_checks_out() {
    let (log, first) = long_log(300);
    let r = Recorder::start(
        SqliteStore::open(&log.path, SqliteOptions::default()).unwrap(),
        RecorderConfig::default(),
    )
    .unwrap();
    for i in 0..500 {
        r.record(
            AuditEvent::tool_execution("u")
                .input(json!({"i": i}))
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    r.shutdown().unwrap();
    let mut store = SqliteStore::open(&log.path, SqliteOptions::default()).unwrap();
    let second = sign_checkpoint(&mut store, &log.signer, ORIGIN).unwrap();
    let proof = mcp_audit_store::integrity::consistency(&mut store, 300, 800).unwrap();
    let leaves = log.leaves();
    assert_eq!(
        Some(proof.clone()),
        mcp_audit_core::merkle::consistency_proof(&leaves, 300)
    );
    let open = |o: &OutsideCheckpoint| log.signer.verifier().open(&o.note).unwrap();
    assert!(mcp_audit_core::merkle::verify_consistency(
        300,
        800,
        &proof,
        &open(&first).root,
        &open(&second).root
    ));
}

#[test]
fn a_long_log_verified_in_parts_finds_what_is_wrong_in_any() {
    // Long enough to be read by two threads, in three parts: 0.., 32,768.. and 65,536..
    let (log, outside) = long_log(70_000);
    let clean = log.verify(std::slice::from_ref(&outside));
    assert!(clean.is_ok(), "{:?}", clean.findings);
    assert_eq!((clean.entries, clean.checkpoints_verified), (70_000, 1));

    log.sql(
        "UPDATE payloads SET body = replace(body, '1', '2') WHERE seq = 68001;
         DELETE FROM events WHERE seq = 35000;
         UPDATE events SET operation = 'forged' WHERE seq = 10000;",
    );
    let report = log.verify(&[outside]);
    // These events have no session or user, so the lookup index has nothing to disagree on.
    assert_eq!(
        report.findings,
        vec![
            Finding::ModifiedColumn {
                seq: 10_000,
                column: "operation"
            },
            Finding::MissingEntry { seq: 35_000 },
            Finding::ModifiedPayload { seq: 68_001 },
        ]
    );
    assert_eq!(report.entries, 69_999);
}

/// Each part of a long log computes the interior nodes its own leaves complete, indexed in the
/// whole log's tree, and a node over two parts is computed where they join: a stored node
/// edited anywhere is found, and nothing else is.
#[test]
fn a_long_log_verified_in_parts_checks_the_stored_nodes_of_each() {
    let (log, outside) = long_log(70_000);
    // Level 8: node 3 covers entries 768..1,024 (first part), 200 entries 51,200..51,456
    // (second), 258 entries 66,048..66,304 (third). Level 16: node 0 covers the first two.
    log.sql(
        "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 8 AND idx IN (3, 200, 258);
         UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 16 AND idx = 0;",
    );
    let report = log.verify(&[outside]);
    assert_eq!(
        report.findings,
        vec![
            Finding::TreeNode {
                level: 16,
                index: 0
            },
            Finding::TreeNode { level: 8, index: 3 },
            Finding::TreeNode {
                level: 8,
                index: 200
            },
            Finding::TreeNode {
                level: 8,
                index: 258
            },
        ]
    );
    assert_eq!(report.checkpoints_verified, 1, "the entries are intact");
}

/// A log of exactly 65,536 entries is read in two parts of 32,768: the stored node over all of
/// it (level 16) is completed by neither part alone, and must be checked, not reported
/// missing or wrong.
#[test]
fn a_log_of_a_power_of_two_entries_checks_the_node_over_all_of_them() {
    let (log, outside) = long_log(65_536);
    let clean = log.verify(std::slice::from_ref(&outside));
    assert!(clean.is_ok(), "{:?}", clean.findings);
    assert!(
        log.nodes()
            .iter()
            .any(|(level, idx, _)| (*level, *idx) == (16, 0)),
        "the writer stored the node"
    );
    log.sql("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 16 AND idx = 0");
    assert_eq!(
        log.verify(&[outside]).findings,
        [Finding::TreeNode {
            level: 16,
            index: 0
        }]
    );
}

/// A long log is read in parts that begin at powers of two, and each part computes the roots
/// of the checkpoints that fall in it as it reads: roots before, at and after each place where
/// parts meet all check out, in logs read in three parts (70,000 entries: 0.., 32,768..,
/// 65,536..) and in two (100,000: 0.., 65,536..); an entry edited just past 65,536 breaks
/// exactly the checkpoints that cover it.
#[test]
fn checkpoints_on_either_side_of_where_the_parts_meet_are_checked() {
    for last in [70_000u64, 100_000] {
        checkpoints_around_the_parts_of(last);
    }
}

fn checkpoints_around_the_parts_of(last: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let signer = NoteSigner::generate("audit-test").unwrap();
    let batch = || RecorderConfig {
        durability: mcp_audit_store::Durability::Batch,
        ..RecorderConfig::default()
    };
    let mut outside = Vec::new();
    let mut n = 0u64;
    for size in [30_000u64, 32_768, 32_769, 65_536, 65_537, last] {
        let r = Recorder::start(
            SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
            batch(),
        )
        .unwrap();
        while n < size {
            r.record(
                AuditEvent::tool_execution("t")
                    .input(json!({"n": n}))
                    .build()
                    .unwrap(),
            )
            .unwrap();
            n += 1;
        }
        r.shutdown().unwrap();
        let mut store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        outside.push(sign_checkpoint(&mut store, &signer, ORIGIN).unwrap());
    }
    let check = || {
        let mut store = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
        verify(&mut store, Some(&signer.verifier()), &outside, &mut |_| {}).unwrap()
    };
    let clean = check();
    assert!(clean.is_ok(), "{last}: {:?}", clean.findings);
    // Each size stored once and given once from outside: one checkpoint each.
    assert_eq!((clean.checkpoints_verified, clean.covered), (6, last));

    let conn = rusqlite::Connection::open(&path).unwrap();
    SqliteStore::register_functions(&conn).unwrap();
    conn.execute_batch(
        "UPDATE events SET meta = mcp_audit_pack(replace(mcp_audit_text(meta), '\"t\"', '\"u\"'))
          WHERE seq = 65536",
    )
    .unwrap();
    drop(conn);
    let report = check();
    assert_eq!(
        report.findings,
        [
            Finding::ModifiedMetadata { seq: 65_536 },
            Finding::CheckpointMismatch { size: 65_537 },
            Finding::CheckpointMismatch { size: last },
        ],
        "{last}"
    );
    assert_eq!((report.checkpoints_verified, report.covered), (4, 65_536));
}
