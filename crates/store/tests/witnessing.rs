//! The witness tables on both backends: the witness state moves only by a compare-and-swap on
//! the size a submission extends (a stale or raced submission is told the stored size, and
//! nothing is written), and a log keeps its witnesses' cosignatures.

mod backend;

use mcp_audit_core::merkle::leaf_hash;
use mcp_audit_store::{Advance, StoredCosignature, Witnessed, Witnessing};

use backend::Db;

fn state(size: u64, tag: &str) -> Witnessed {
    Witnessed {
        size,
        root: leaf_hash(tag.as_bytes()),
        note: format!("o\n{size}\n{tag}\n\n— k sig\n"),
    }
}

fn the_witness_state_moves_only_from_the_size_it_extends(db: Db) {
    let mut store = db.open();
    assert_eq!(store.witnessed("o").unwrap(), None);
    // A submission that claims to extend a size the witness never saw is refused.
    assert_eq!(
        store.advance_witnessed("o", 3, &state(5, "a")).unwrap(),
        Advance::Conflict { size: 0 }
    );
    assert_eq!(store.witnessed("o").unwrap(), None);
    assert_eq!(
        store.advance_witnessed("o", 0, &state(5, "a")).unwrap(),
        Advance::Advanced
    );
    assert_eq!(store.witnessed("o").unwrap(), Some(state(5, "a")));
    // From 0 again (a second first submission): refused with the stored size, nothing changed.
    assert_eq!(
        store.advance_witnessed("o", 0, &state(2, "b")).unwrap(),
        Advance::Conflict { size: 5 }
    );
    assert_eq!(
        store.advance_witnessed("o", 5, &state(9, "c")).unwrap(),
        Advance::Advanced
    );
    // Two submissions that both extend 5: the one that comes second finds 9.
    assert_eq!(
        store.advance_witnessed("o", 5, &state(7, "d")).unwrap(),
        Advance::Conflict { size: 9 }
    );
    assert_eq!(store.witnessed("o").unwrap(), Some(state(9, "c")));
    // Origins are apart.
    assert_eq!(store.witnessed("other").unwrap(), None);
}

fn of_racing_submissions_from_one_size_exactly_one_wins(db: Db) {
    let mut first = db.open();
    first
        .advance_witnessed("race", 0, &state(4, "start"))
        .unwrap();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            // Each racer a connection of its own (on PostgreSQL a reader's connection would
            // refuse to write, and a log has one writer: the witness state is not a log's).
            let mut store = racer(&db, i);
            std::thread::spawn(move || {
                store
                    .advance_witnessed("race", 4, &state(10 + i, &format!("t{i}")))
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<Advance> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = outcomes.iter().filter(|o| **o == Advance::Advanced).count();
    assert_eq!(won, 1, "{outcomes:?}");
    let stored = first.witnessed("race").unwrap().unwrap();
    for outcome in outcomes {
        if let Advance::Conflict { size } = outcome {
            assert_eq!(size, stored.size);
        }
    }
}

fn a_log_keeps_its_witnesses_cosignatures(db: Db) {
    let mut store = db.open();
    assert!(store.cosignatures().unwrap().is_empty());
    let c = |size, witness: &str, line: &str| StoredCosignature {
        size,
        witness: witness.into(),
        line: line.into(),
    };
    store.put_cosignature(&c(5, "w2+0000", "— w2 a\n")).unwrap();
    store.put_cosignature(&c(5, "w1+0000", "— w1 a\n")).unwrap();
    store.put_cosignature(&c(3, "w1+0000", "— w1 b\n")).unwrap();
    // The same witness and size again: the newer line replaces the older.
    store.put_cosignature(&c(5, "w1+0000", "— w1 c\n")).unwrap();
    assert_eq!(
        store.cosignatures().unwrap(),
        vec![
            c(3, "w1+0000", "— w1 b\n"),
            c(5, "w1+0000", "— w1 c\n"),
            c(5, "w2+0000", "— w2 a\n"),
        ]
    );
}

fn a_posting_targets_cursor_moves_only_forward(db: Db) {
    let mut store = db.open();
    assert_eq!(store.sent_size("http://a").unwrap(), 0);
    store.put_sent_size("http://a", 5).unwrap();
    store.put_sent_size("http://a", 3).unwrap();
    store.put_sent_size("http://b", 1).unwrap();
    assert_eq!(store.sent_size("http://a").unwrap(), 5);
    assert_eq!(store.sent_size("http://b").unwrap(), 1);
}

/// A writable store of the test database beside `db.open()`'s.
fn racer(db: &Db, i: u64) -> Box<dyn mcp_audit_store::Store> {
    let _ = i; // names the PostgreSQL racer's log
    match db.backend {
        backend::Backend::Sqlite => db.open(),
        #[cfg(feature = "postgres")]
        backend::Backend::Postgres => Box::new(
            db.open_pg(mcp_audit_store::PgOptions {
                log_id: Some(format!("witness-racer-{i}")),
                ..mcp_audit_store::PgOptions::default()
            })
            .unwrap(),
        ),
    }
}

on_both_backends!(
    the_witness_state_moves_only_from_the_size_it_extends,
    of_racing_submissions_from_one_size_exactly_one_wins,
    a_log_keeps_its_witnesses_cosignatures,
    a_posting_targets_cursor_moves_only_forward,
);

/// On PostgreSQL a witness sink reaches each log through a store that claims none: pointed at
/// a log whose writer is running (and holds its lock), it keeps that log's cosignatures and
/// cursors, which the writer sees, and appending through it is refused.
#[cfg(feature = "postgres")]
#[test]
fn postgres_an_unclaimed_store_keeps_a_running_logs_cosignatures_and_cannot_append_to_it() {
    use mcp_audit_store::{Append, Entry, Log, PgStore, StoreError};

    let Some(db) = Db::new(backend::Backend::Postgres) else {
        return;
    };
    let mut writer = db.open();
    let event = backend::tool_event(0);
    let sealed = mcp_audit_core::seal(event).unwrap();
    backend::append_sealed(&mut writer, 0, std::slice::from_ref(&sealed));
    let url = &db.pg.as_ref().unwrap().url;
    let mut unclaimed = PgStore::open_unclaimed(url).unwrap();
    unclaimed.read_log(backend::LOG_ID).unwrap();
    let cosignature = StoredCosignature {
        size: 1,
        witness: "w.test+01020304".into(),
        line: "— w.test AQIDBA==\n".into(),
    };
    unclaimed.put_cosignature(&cosignature).unwrap();
    unclaimed.put_sent_size("http://a", 1).unwrap();
    assert_eq!(writer.cosignatures().unwrap(), vec![cosignature]);
    assert_eq!(writer.sent_size("http://a").unwrap(), 1);
    let refused = unclaimed.append(&[Entry {
        seq: 1,
        leaf_hash: sealed.leaf_hash(1),
        sealed: &sealed,
    }]);
    assert!(
        matches!(refused, Err(StoreError::ReadOnly { .. })),
        "{refused:?}"
    );
    assert_eq!(unclaimed.next_seq().unwrap(), 1);
    // The writer still holds its log: a second writer of it is refused.
    assert!(matches!(
        db.open_pg(db.pg_options()),
        Err(StoreError::LogInUse { .. })
    ));
}
