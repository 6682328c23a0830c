//! Full-text search over arguments and results, on both backends: a value is found where a call
//! carried it (arguments or result), paging through the matches reaches the end with no
//! duplicate and no gap, hostile search text is plain words, an erased or expired payload is
//! no longer found, and a database from before the index is searchable once migrated.

mod backend;

use std::collections::HashSet;

use mcp_audit_core::{AuditEvent, EventId, Outcome};
#[cfg(feature = "postgres")]
use mcp_audit_store::PgOptions;
use mcp_audit_store::erasure::erase_call;
use mcp_audit_store::{Filter, PageStart, Query, Recorder, RecorderConfig, Store, TextSearch};
use serde_json::json;

use backend::{Backend, Db, clean_up, files_hold};

/// The ids of the events a search for `text` finds, newest first (one page of up to 1,000).
fn found(store: &mut dyn Store, text: &str) -> Vec<EventId> {
    let filter = Filter {
        search: Some(TextSearch::new(text).unwrap()),
        include_pending: true,
        ..Filter::default()
    };
    let page = store
        .query(&Query {
            filter: filter.clone(),
            start: PageStart::Newest,
            limit: 1000,
        })
        .unwrap();
    assert_eq!(
        store.count(&filter).unwrap(),
        page.events.len() as u64,
        "count and page agree for {text:?}"
    );
    page.events.iter().map(|e| e.event.id).collect()
}

/// On SQLite, FTS5's own check that the index holds exactly the words of the payloads there
/// (`rank` 1: against the content table): what the triggers keep true through every write.
fn index_matches_payloads(db: &Db) {
    if db.backend == Backend::Sqlite {
        rusqlite::Connection::open(&db.path)
            .unwrap()
            .execute_batch(
                "INSERT INTO payload_text (payload_text, rank) VALUES ('integrity-check', 1)",
            )
            .unwrap();
    }
}

/// A call of `tool` whose arguments hold `argument` and whose result holds `result`.
fn call(tool: &str, argument: &str, result: &str) -> AuditEvent {
    AuditEvent::tool_execution(tool)
        .user("alice")
        .input(json!({"customer": argument, "note": "lookup"}))
        .output(json!({"content": [{"type": "text", "text": result}]}))
        .build()
        .unwrap()
}

/// Records `events` and returns their ids.
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

fn a_value_is_found_in_arguments_and_in_results(db: Db) {
    let ids = record(
        &db,
        vec![
            call("lookup", "customer-123", "no orders"),
            call("lookup", "customer-456", "billed Alice.B@Example.com"),
            call("lookup", "customer-1234", "customer 123 is mentioned here"),
        ],
    );
    let mut reader = db.reader();
    // In the arguments of the first, in the result of the third ("customer 123" is the same
    // two words); never the 1234 of the second call's neighbour.
    assert_eq!(found(reader.as_mut(), "customer-123"), [ids[2], ids[0]]);
    assert_eq!(found(reader.as_mut(), "CUSTOMER-456"), [ids[1]]);
    // An address, whole or by its domain; case does not matter.
    assert_eq!(found(reader.as_mut(), "alice.b@example.com"), [ids[1]]);
    assert_eq!(found(reader.as_mut(), "example.com"), [ids[1]]);
    // Words, not substrings; and words in order.
    assert!(found(reader.as_mut(), "custom").is_empty());
    assert!(found(reader.as_mut(), "123 customer").is_empty());
    // Other filters still narrow.
    let filter = Filter {
        search: Some(TextSearch::new("lookup").unwrap()),
        operation: Some("other".into()),
        ..Filter::default()
    };
    assert_eq!(reader.count(&filter).unwrap(), 0);
    // The metadata is not searched: the tool's name is no payload word here.
    assert_eq!(
        found(reader.as_mut(), "lookup").len(),
        3,
        "the note says lookup"
    );
}

fn hostile_search_text_finds_only_its_words_and_never_fails(db: Db) {
    let ids = record(
        &db,
        vec![
            call("t", "near or not", "a \"quoted\" (value) with *stars*"),
            call("t", "plain", "nothing"),
        ],
    );
    let mut reader = db.reader();
    for text in [
        "\"quoted\"",
        "\"quoted",
        "quoted\" OR \"plain",
        "NEAR(or not",
        "-stars*",
        "body:stars",
        "with * stars",
        "(value)",
        "^near",
    ] {
        // Each is its words as a phrase: found in the first call only, or (the OR and the
        // column filter are words too) nowhere; never an error, never the second call.
        let hits = found(reader.as_mut(), text);
        assert!(
            hits.is_empty() || hits == [ids[0]],
            "{text:?} found {hits:?}"
        );
    }
    assert_eq!(found(reader.as_mut(), "NEAR(or not"), [ids[0]]);
    assert_eq!(found(reader.as_mut(), "\"quoted"), [ids[0]]);
    assert!(found(reader.as_mut(), "quoted\" OR \"plain").is_empty());
    // The longest text taken, of one word the index has never seen: a correct empty answer.
    let long = "x".repeat(mcp_audit_store::search::MAX_SEARCH_BYTES);
    assert!(found(reader.as_mut(), &long).is_empty());
    // And the longest phrase of short words.
    let many = "a ".repeat(mcp_audit_store::search::MAX_SEARCH_BYTES / 2);
    assert!(found(reader.as_mut(), &many).is_empty());
}

fn paging_through_a_search_reaches_the_end_with_no_duplicate_or_gap(db: Db) {
    let events: Vec<AuditEvent> = (0..57)
        .map(|i| {
            if i % 3 == 0 {
                call("page", &format!("acct-{i}"), "holds needle-77 somewhere")
            } else {
                call("page", &format!("acct-{i}"), "holds other-77")
            }
        })
        .collect();
    let ids = record(&db, events);
    let expected: Vec<EventId> = ids.iter().copied().step_by(3).rev().collect();
    let mut reader = db.reader();
    let filter = Filter {
        search: Some(TextSearch::new("needle-77").unwrap()),
        ..Filter::default()
    };
    let mut seen = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let page = reader
            .query(&Query {
                filter: filter.clone(),
                start,
                limit: 4,
            })
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.event.id));
        match page.next {
            Some(cursor) => start = PageStart::After(cursor),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

/// The recorder an erasure records with: the file's one log on SQLite, a log of its own on
/// PostgreSQL (as `erasure.rs` does).
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

fn an_erased_payload_is_no_longer_found(db: Db) {
    let ids = record(
        &db,
        vec![
            call("lookup", "zebracustomer-991", "kept"),
            call("lookup", "other", "zebracustomer-991 in a result"),
            call("lookup", "third", "nothing"),
        ],
    );
    assert_eq!(found(db.reader().as_mut(), "zebracustomer-991").len(), 2);
    let recorder = admin_recorder(&db);
    erase_call(&mut db.open(), &recorder, ids[1], &backend::request()).unwrap();
    recorder.shutdown().unwrap();
    let mut reader = db.reader();
    assert_eq!(found(reader.as_mut(), "zebracustomer-991"), [ids[0]]);
    assert!(found(reader.as_mut(), "in a result").is_empty());
    let recorder = admin_recorder(&db);
    erase_call(&mut db.open(), &recorder, ids[0], &backend::request()).unwrap();
    recorder.shutdown().unwrap();
    assert!(found(reader.as_mut(), "zebracustomer").is_empty());
    assert_eq!(found(reader.as_mut(), "nothing"), [ids[2]]);
    index_matches_payloads(&db);
    if db.backend == Backend::Sqlite {
        // Not masked but gone: the index's pages no longer hold the word (secure-delete), nor
        // do the file and its write-ahead log (erasure's scrub).
        assert_eq!(files_hold(&db.path, "zebracustomer"), Vec::<String>::new());
        let conn = rusqlite::Connection::open(&db.path).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, payload_text, row)",
        )
        .unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM temp.words WHERE term IN ('zebracustomer', 'kept')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
}

fn an_expired_payload_is_no_longer_found(db: Db) {
    let expired = AuditEvent::tool_execution("old")
        .input(json!({"customer": "lapsed-4411"}))
        .retention("1s")
        .timestamp("2020-01-10T00:00:00Z".parse().unwrap())
        .build()
        .unwrap();
    let kept = AuditEvent::tool_execution("new")
        .input(json!({"customer": "lapsed-4411 still"}))
        .retention("forever")
        .outcome(Outcome::Success)
        .build()
        .unwrap();
    let ids = record(&db, vec![expired, kept]);
    assert_eq!(found(db.reader().as_mut(), "lapsed-4411").len(), 2);
    clean_up(&db).expect("something expired");
    assert_eq!(found(db.reader().as_mut(), "lapsed-4411"), [ids[1]]);
    index_matches_payloads(&db);
}

fn a_database_from_before_the_index_is_searchable_once_migrated(db: Db) {
    let old = call("old", "legacy-77", "from before search");
    match db.backend {
        Backend::Sqlite => {
            let store = mcp_audit_store::SqliteStore::open_at_schema_version(&db.path, 8).unwrap();
            let r = Recorder::start(store, RecorderConfig::default()).unwrap();
            r.record(old.clone()).unwrap();
            r.shutdown().unwrap();
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            record(&db, vec![old.clone()]);
            db.exec(
                "DROP INDEX payloads_text;
                 DROP FUNCTION mcp_audit_search_doc(TEXT);
                 DROP FUNCTION mcp_audit_search_query(TEXT);
                 UPDATE mcp_audit_schema SET version = 3;",
            );
        }
    }
    // Read as it is: said so, not "no such table".
    let filter = Filter {
        search: Some(TextSearch::new("legacy-77").unwrap()),
        ..Filter::default()
    };
    let refused = db.reader().count(&filter).unwrap_err().to_string();
    assert!(refused.contains("predates full-text search"), "{refused}");
    // A writer migrates it; the old payload is in the index (backfilled), and new ones join.
    let new = record(&db, vec![call("new", "legacy-77 again", "after")]);
    let mut reader = db.reader();
    assert_eq!(found(reader.as_mut(), "legacy-77"), [new[0], old.id]);
    assert_eq!(found(reader.as_mut(), "from before search"), [old.id]);
    index_matches_payloads(&db);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_search_uses_the_payload_index() {
    let Some(db) = Db::new(Backend::Postgres) else {
        return;
    };
    record(&db, vec![call("t", "indexed-1", "x")]);
    let mut client = db.pg.as_ref().unwrap().raw();
    client.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT 1 FROM payloads s
              WHERE mcp_audit_search_doc(s.body) @@ mcp_audit_search_query('indexed 1')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter()
            .any(|line| line.contains("payloads_text") || line.contains("search_doc_idx")),
        "{plan:#?}"
    );
}

/// SQLite's text index is written behind the writer (see `sqlite/text_tail.rs`): while a
/// recorder runs, its latest events are past the index's bound. A search finds them with the
/// indexed ones, newest first, and pages across the bound with no duplicate or gap, by cursor
/// and by offset; a payload erased while past the bound is not found, neither then nor once the
/// writer has indexed its neighbours; and FTS5's own check then finds the index and the
/// payloads in agreement. On PostgreSQL, whose index the server writes with each row, the same
/// holds.
fn a_search_reads_the_events_the_index_does_not_reach_yet(db: Db) {
    let indexed = record(
        &db,
        (0..5)
            .map(|i| call("bound", &format!("acct-{i}"), "seal-44 indexed"))
            .collect(),
    );
    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let mut tail = Vec::new();
    for i in 0..5 {
        let e = call(
            "bound",
            &format!("acct-{}", i + 5),
            "seal-44 past the bound",
        );
        tail.push(e.id);
        r.record(e).unwrap();
    }
    r.flush().unwrap();
    if db.backend == Backend::Sqlite {
        // The five latest are not in the index yet: what this test is about.
        let reach =
            db.count("SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'text_indexed_to'");
        assert!(reach <= 5, "the index reaches {reach}");
    }
    let all: Vec<EventId> = indexed.iter().chain(&tail).copied().rev().collect();
    let mut reader = db.reader();
    assert_eq!(found(reader.as_mut(), "seal-44"), all);
    assert_eq!(found(reader.as_mut(), "past the bound"), all[..5]);
    let filter = Filter {
        search: Some(TextSearch::new("seal-44").unwrap()),
        ..Filter::default()
    };
    let page_of = |reader: &mut dyn Store, start: PageStart| {
        reader
            .query(&Query {
                filter: filter.clone(),
                start,
                limit: 3,
            })
            .unwrap()
    };
    let mut seen = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let page = page_of(reader.as_mut(), start);
        seen.extend(page.events.iter().map(|e| e.event.id));
        match page.next {
            Some(cursor) => start = PageStart::After(cursor),
            None => break,
        }
    }
    assert_eq!(seen, all);
    for offset in 0..=all.len() {
        let page = page_of(reader.as_mut(), PageStart::Offset(offset as u64));
        let ids: Vec<EventId> = page.events.iter().map(|e| e.event.id).collect();
        assert_eq!(
            ids,
            all[offset..(offset + 3).min(all.len())],
            "offset {offset}"
        );
    }

    // On PostgreSQL a log has one writer at a time: the erasure's store waits for this one.
    let mut running = Some(r);
    if db.backend != Backend::Sqlite {
        running.take().unwrap().shutdown().unwrap();
    }
    let admin = admin_recorder(&db);
    erase_call(&mut db.open(), &admin, tail[2], &backend::request()).unwrap();
    admin.shutdown().unwrap();
    let kept: Vec<EventId> = all.iter().copied().filter(|id| *id != tail[2]).collect();
    assert_eq!(found(reader.as_mut(), "seal-44"), kept);
    if let Some(r) = running {
        r.shutdown().unwrap();
    }
    assert_eq!(found(reader.as_mut(), "seal-44"), kept);
    index_matches_payloads(&db);
}

on_both_backends!(
    a_search_reads_the_events_the_index_does_not_reach_yet,
    a_value_is_found_in_arguments_and_in_results,
    hostile_search_text_finds_only_its_words_and_never_fails,
    paging_through_a_search_reaches_the_end_with_no_duplicate_or_gap,
    an_erased_payload_is_no_longer_found,
    an_expired_payload_is_no_longer_found,
    a_database_from_before_the_index_is_searchable_once_migrated,
);

/// Schema 12 moved the index's writes from a trigger per payload to the writer's one statement
/// per commit, and rebuilt the index without its column sizes. A file whose index the trigger
/// kept (schema 11) is rebuilt from its payloads; then events of several commits are found
/// the moment each commit returns, an erased old payload leaves the index and the file, and
/// FTS5's own check finds the index and the payloads in agreement at every step.
#[test]
fn a_file_indexed_row_by_row_is_rebuilt_and_then_indexed_a_commit_at_a_time() {
    let db = Db::new(Backend::Sqlite).unwrap();
    let old = {
        let store = mcp_audit_store::SqliteStore::open_at_schema_version(&db.path, 11).unwrap();
        let r = Recorder::start(Box::new(store), RecorderConfig::default()).unwrap();
        let events = [
            call("old", "quokka-1", "from the trigger's time"),
            call("old", "quokka-2", "erased later"),
        ];
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        for e in events {
            r.record(e).unwrap();
        }
        r.shutdown().unwrap();
        ids
    };
    index_matches_payloads(&db);

    let r = Recorder::start(db.open(), RecorderConfig::default()).unwrap();
    let mut new = Vec::new();
    for n in 0..3 {
        let e = call("new", &format!("quokka-{}", n + 10), "a commit of its own");
        new.push(e.id);
        // `flush`: each event is its own commit, found as soon as it is durable.
        r.record(e).unwrap();
        r.flush().unwrap();
        assert_eq!(
            found(db.reader().as_mut(), &format!("quokka {}", n + 10)),
            [new[n]]
        );
    }
    r.shutdown().unwrap();
    index_matches_payloads(&db);
    let mut reader = db.reader();
    assert_eq!(found(reader.as_mut(), "quokka-1"), [old[0]]);
    assert_eq!(found(reader.as_mut(), "a commit of its own").len(), 3);

    let recorder = admin_recorder(&db);
    erase_call(&mut db.open(), &recorder, old[1], &backend::request()).unwrap();
    recorder.shutdown().unwrap();
    assert!(found(reader.as_mut(), "erased later").is_empty());
    assert!(found(reader.as_mut(), "quokka-2").is_empty());
    assert_eq!(files_hold(&db.path, "erased later"), Vec::<String>::new());
    index_matches_payloads(&db);
    // The column sizes are gone with the rebuild: nothing of the index is kept per row but
    // its words.
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let docsize: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'payload_text_docsize'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(docsize, 0);
}
