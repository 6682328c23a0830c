//! Full-text search benchmark (issue 17): what the payloads' text index costs and how fast one
//! search is, in one run.
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench search                 # 100,000 events, SQLite
//! EVENTS=1000000 cargo bench -p mcp-audit-store --bench search
//! MCP_AUDIT_TEST_PG=postgres://... cargo bench -p mcp-audit-store --features postgres --bench search
//! ```
//!
//! SQLite: the same realistic ~1 KB events recorded twice in this run, into a file at the
//! schema before the index (version 8) and into one with it, so that the index's share of the
//! ingest rate is a ratio of two figures from the same machine and minute; the index's bytes per
//! event (from `dbstat`) against the whole file's; then searches of 100 rows, p50 and p95 of
//! 200 each: a value in one event's arguments (rare), words in every event's result (a full first
//! page), and words no event holds (a miss). PostgreSQL (with the feature and
//! `MCP_AUDIT_TEST_PG`): the same searches and the GIN index's bytes per event. Figures, never
//! assertions.

use std::time::{Duration, Instant};

mod events;
mod measure;

use events::{event, mix};
use measure::{env_usize, print_p50_p95, sqlite_batch_recorder};

use mcp_audit_store::{Filter, PageStart, Query, Read, SqliteStore, TextSearch};

/// Records `n` benchmark events through `recorder` and returns the rate (events/s).
fn record_all(recorder: mcp_audit_store::Recorder, n: u64) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        recorder.record(event(i)).expect("record");
    }
    recorder.shutdown().expect("shutdown");
    n as f64 / started.elapsed().as_secs_f64()
}

/// A named way of picking the i-th search text (of `n` events).
type SearchFor = (&'static str, fn(u64, u64) -> String);

/// p50 and p95 of 200 searches of 100 rows each for the text `text_for(k)` gives.
fn search_figures(reader: &mut impl Read, n: u64, column: usize) {
    let searches: [SearchFor; 3] = [
        ("search, one event (argument)", |k, n| {
            format!("\"request\": {}", mix(k) % n)
        }),
        ("search, every event (result)", |_, _| {
            "Initech Ltd (4 tickets)".to_string()
        }),
        ("search, no event", |k, _| format!("zebra-{k} unicorn")),
    ];
    for (label, text_for) in searches {
        let mut found = 0usize;
        let times: Vec<Duration> = (0..200u64)
            .map(|k| {
                let query = Query {
                    filter: Filter {
                        search: Some(TextSearch::new(&text_for(k, n)).expect("words")),
                        ..Filter::default()
                    },
                    start: PageStart::Newest,
                    limit: 100,
                };
                let started = Instant::now();
                let page = reader.query(&query).expect("search");
                found += page.events.len();
                started.elapsed()
            })
            .collect();
        print_p50_p95(
            &format!("{label} ({} rows/page)", found / 200),
            column,
            times,
        );
    }
}

fn sqlite(n: u64, dir: &std::path::Path) {
    let before = dir.join("before.db");
    let store = SqliteStore::open_at_schema_version(&before, 8).expect("db at version 8");
    let recorder = mcp_audit_store::Recorder::start(
        store,
        measure::recorder_config(mcp_audit_store::Durability::Batch),
    )
    .expect("recorder");
    let rate_before = record_all(recorder, n);
    let path = dir.join("search.db");
    let rate = record_all(sqlite_batch_recorder(&path), n);
    println!(
        "SQLite batch ingest without the index:  {rate_before:>10.0} events/s\n\
         SQLite batch ingest with the index:     {rate:>10.0} events/s ({:.0}% of without)",
        100.0 * rate / rate_before
    );
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let bytes = |sql: &str| -> f64 {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .expect("dbstat") as f64
    };
    let index =
        bytes("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'payload_text%'");
    let file = bytes("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
    let payloads = bytes("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'payloads'");
    println!(
        "SQLite bytes per event: file {:.0}, payloads {:.0}, text index {:.0} ({:.0}% of the file)",
        file / n as f64,
        payloads / n as f64,
        index / n as f64,
        100.0 * index / file
    );
    let mut reader = SqliteStore::open_read_only(&path, mcp_audit_store::SqliteOptions::default())
        .expect("reader");
    search_figures(&mut reader, n, 44);
}

#[cfg(feature = "postgres")]
fn postgres(n: u64) {
    let Some(base) = std::env::var("MCP_AUDIT_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("PostgreSQL: skipped, MCP_AUDIT_TEST_PG is not set");
        return;
    };
    let name = format!("bench_search_{}", std::process::id());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{name}");
    let store =
        mcp_audit_store::PgStore::open(&url, mcp_audit_store::PgOptions::default()).expect("store");
    let recorder = mcp_audit_store::Recorder::start(
        store,
        measure::recorder_config(mcp_audit_store::Durability::Batch),
    )
    .expect("recorder");
    let rate = record_all(recorder, n);
    println!("PostgreSQL batch ingest with the index: {rate:>10.0} events/s");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    client.batch_execute("ANALYZE").expect("analyze");
    let mut size =
        |sql: &str| -> f64 { client.query_one(sql, &[]).expect("size").get::<_, i64>(0) as f64 };
    let index = size(&format!(
        "SELECT COALESCE(SUM(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c
           JOIN pg_namespace s ON s.oid = c.relnamespace
          WHERE s.nspname = '{name}' AND c.relkind = 'i' AND c.relname LIKE '%search_doc%'"
    ));
    let all = size(&format!(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
           JOIN pg_namespace s ON s.oid = c.relnamespace
          WHERE s.nspname = '{name}' AND c.relkind = 'r'"
    ));
    println!(
        "PostgreSQL bytes per event: all tables {:.0}, text index {:.0}",
        all / n as f64,
        index / n as f64
    );
    let mut reader = mcp_audit_store::PgStore::open_read_only(&url).expect("reader");
    println!("PostgreSQL, the GIN index's pending list not merged yet (as after a burst):");
    search_figures(&mut reader, n, 44);
    // What autovacuum does in time: merge the pending list into the index proper.
    client.batch_execute("VACUUM").expect("vacuum");
    println!("PostgreSQL, after VACUUM (autovacuum's steady state):");
    search_figures(&mut reader, n, 44);
    drop(reader);
    admin
        .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
        .expect("drop");
}

fn main() {
    let n = env_usize("EVENTS", 100_000) as u64;
    println!(
        "mcp-audit search benchmark: {n} events, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    sqlite(n, dir.path());
    #[cfg(feature = "postgres")]
    postgres(n);
}
