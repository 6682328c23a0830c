//! The metadata stored in its dense form (SQLite schema 18, `sqlite/packed.rs`): new rows
//! keep `meta` compressed, every reader and `verify` get back the exact canonical bytes the
//! leaf hashes, a file written before reads and verifies after its upgrade with its old rows as
//! they were, and a changed byte of a packed value is a finding about its entry.

mod backend;

use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_store::integrity::{OutsideCheckpoint, Report, sign_checkpoint, verify};
use mcp_audit_store::{
    Filter, PageStart, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};

fn record(store: SqliteStore, events: std::ops::Range<u64>) {
    let r = Recorder::start(store, RecorderConfig::default()).unwrap();
    for i in events {
        r.record(backend::tool_event(i)).unwrap();
    }
    r.shutdown().unwrap();
}

fn connection(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    SqliteStore::register_functions(&conn).unwrap();
    conn
}

/// Each row's storage class of `meta`, in seq order.
fn meta_types(path: &std::path::Path) -> Vec<String> {
    let conn = connection(path);
    let mut stmt = conn
        .prepare("SELECT typeof(meta) FROM events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const ORIGIN: &str = "mcp-audit.test/packed";

/// A signed checkpoint of the log as it is now, kept outside the file.
fn checkpoint(path: &std::path::Path, signer: &NoteSigner) -> OutsideCheckpoint {
    let mut store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    sign_checkpoint(&mut store, signer, ORIGIN).unwrap()
}

/// `verify` with the key and the checkpoints kept outside: every leaf rehashed from the stored
/// rows and the tree checked against the signed roots.
fn verify_file(
    path: &std::path::Path,
    signer: &NoteSigner,
    outside: &[OutsideCheckpoint],
) -> Report {
    let mut store = SqliteStore::open_read_only(path, SqliteOptions::default()).unwrap();
    verify(&mut store, Some(&signer.verifier()), outside, &mut |_| {}).unwrap()
}

/// The operations of every event, newest first, as a page reads them.
fn operations(path: &std::path::Path) -> Vec<String> {
    let mut store = SqliteStore::open_read_only(path, SqliteOptions::default()).unwrap();
    let page = store
        .query(&Query {
            filter: Filter::default(),
            start: PageStart::default(),
            limit: 1_000,
        })
        .unwrap();
    page.events
        .iter()
        .map(|e| e.event.operation.clone())
        .collect()
}

#[test]
fn new_rows_keep_their_metadata_packed_and_verify_rehashes_the_exact_canonical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    record(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        0..20,
    );
    let signer = NoteSigner::generate("packed-test").unwrap();
    let outside = [checkpoint(&path, &signer)];
    assert_eq!(meta_types(&path), vec!["blob"; 20]);
    // Smaller than the text it decodes to, every row.
    let conn = connection(&path);
    let larger: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE length(meta) >= length(mcp_audit_text(meta))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(larger, 0);
    // The leaf of each entry is rehashed from the decoded bytes: equal to the leaf the writer
    // computed from the sealed bytes, and to the signed root, only if they are the same bytes.
    let report = verify_file(&path, &signer, &outside);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.covered, 20);
    let expected: Vec<String> = (0..20).rev().map(|i| format!("tool{i}")).collect();
    assert_eq!(operations(&path), expected);
}

#[test]
fn a_file_written_before_packing_reads_and_verifies_after_its_upgrade_with_its_old_rows_as_they_were()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let signer = NoteSigner::generate("packed-test").unwrap();
    record(
        SqliteStore::open_at_schema_version(&path, 15).unwrap(),
        0..10,
    );
    // Signed before the upgrade, by a store at schema 15.
    let before = {
        let mut store = SqliteStore::open_at_schema_version(&path, 15).unwrap();
        sign_checkpoint(&mut store, &signer, ORIGIN).unwrap()
    };
    assert_eq!(meta_types(&path), vec!["text"; 10]);

    let upgraded = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(upgraded.schema_version().unwrap(), 18);
    record(upgraded, 10..20);
    let after = checkpoint(&path, &signer);
    let mut types = vec!["text"; 10];
    types.extend(vec!["blob"; 10]);
    assert_eq!(meta_types(&path), types, "old rows are not rewritten");
    let report = verify_file(&path, &signer, &[before, after]);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!((report.checkpoints_verified, report.covered), (2, 20));
    let expected: Vec<String> = (0..20).rev().map(|i| format!("tool{i}")).collect();
    assert_eq!(operations(&path), expected);
}

/// Every byte of one packed value flipped in turn: each change that decodes to another text,
/// and each that does not decode at all, is a finding about that entry (never an error that
/// stops the verification, never a clean report).
#[test]
fn a_changed_byte_of_a_packed_metadata_value_is_a_finding_about_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    record(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        0..5,
    );
    let signer = NoteSigner::generate("packed-test").unwrap();
    let outside = [checkpoint(&path, &signer)];
    let conn = connection(&path);
    let (packed, text): (Vec<u8>, String) = conn
        .query_row(
            "SELECT meta, mcp_audit_text(meta) FROM events WHERE seq = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (mut changed, mut unchanged) = (0, 0);
    for at in 0..packed.len() {
        let mut damaged = packed.clone();
        damaged[at] ^= 0x20;
        conn.execute(
            "UPDATE events SET meta = ?1 WHERE seq = 2",
            [damaged.as_slice()],
        )
        .unwrap();
        let decoded: Option<String> = conn
            .query_row(
                "SELECT mcp_audit_text(meta) FROM events WHERE seq = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if decoded.as_deref() == Some(text.as_str()) {
            // The same text from other bytes: nothing hashed changed.
            unchanged += 1;
            continue;
        }
        changed += 1;
        let report = verify_file(&path, &signer, &outside);
        assert!(!report.is_ok(), "byte {at}: a clean report");
        assert!(
            format!("{:?}", report.findings[0]).contains("seq: 2"),
            "byte {at}: {:?}",
            report.findings
        );
    }
    conn.execute(
        "UPDATE events SET meta = ?1 WHERE seq = 2",
        [packed.as_slice()],
    )
    .unwrap();
    assert!(verify_file(&path, &signer, &outside).is_ok());
    assert!(changed > unchanged, "{changed} changed, {unchanged} not");
}
