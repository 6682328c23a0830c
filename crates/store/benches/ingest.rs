//! Ingest and query benchmark of the SQLite store (issue 2's figures), in one run:
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench ingest            # 1,000,000 events
//! EVENTS=100000 cargo bench -p mcp-audit-store --bench ingest
//! QUICK=1 SUBJECTS=1000 EVENTS=200000 cargo bench -p mcp-audit-store --bench ingest  # batch, bytes, ceiling
//! cargo bench -p mcp-audit-store --bench ingest --features bench-mimalloc   # as the binary runs
//! ```
//!
//! Prints: a baseline (one connection and one commit per event, as the reference Python logger
//! does), batch-mode ingest of realistic ~1 KB tool executions with two data sources each,
//! `sync` mode with 64 concurrent callers, one `sync` caller's latency, filtered queries of 100
//! rows by user, tool and session, a session summary, bytes on disk per event with the index
//! share, and the same pages and summary in a log where one user and one session own every
//! event (a proxy per user). Figures, never assertions: speed is measured here, not tested.
//!
//! It ends with the ceiling of `batch` ingest on this machine, measured in the same run: the
//! two halves of the work, each alone on its core. The caller's half builds and seals events
//! and writes nothing; the writer's half puts already-sealed events' bytes into SQLite in the
//! cheapest way that is still durable (one row each in a table with no index, commits of 4,096,
//! the store's page size, WAL and `synchronous`). Any store of these events in SQLite is at
//! most as fast as the slower half.

use std::time::{Duration, Instant};

/// `--features bench-mimalloc`: the allocator the `mcp-audit` binary uses (the recorder frees
/// each event in another thread than the one that built it, which glibc's malloc handles poorly).
#[cfg(feature = "bench-mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod events;
mod measure;

use events::event;
use measure::{
    env_usize, page_figures, percentile, print_fsync_floor, process_cpu, query_figures,
    sqlite_batch_recorder, summary_figures, thread_cpu,
};

use mcp_audit_store::{Filter, Recorder, SqliteOptions, SqliteStore, SummaryScope};

fn main() {
    let n_events = env_usize("EVENTS", 1_000_000) as u64;
    let n_sync = env_usize("SYNC_EVENTS", 100_000) as u64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "mcp-audit ingest benchmark: {n_events} events, {} cores, {} allocator",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(feature = "bench-mimalloc") {
            "mimalloc"
        } else {
            "system"
        }
    );

    print_fsync_floor(dir.path());
    // `QUICK=1`: batch ingest, bytes and the ceiling only (no baseline, `sync`, queries or
    // one-owner log), for before/after runs alternated on a busy host.
    let quick = std::env::var("QUICK").is_ok_and(|v| v == "1");
    let baseline = if quick {
        f64::NAN
    } else {
        baseline_rate(dir.path())
    };

    // Batch-mode ingest.
    let path = dir.path().join("bench.db");
    let recorder = sqlite_batch_recorder(&path);
    let (started, cpu) = (Instant::now(), process_cpu());
    for i in 0..n_events {
        recorder.record(event(i)).expect("record");
    }
    recorder.flush().expect("flush");
    let elapsed = started.elapsed();
    let batch_cpu = (process_cpu() - cpu).as_secs_f64() * 1e6 / n_events as f64;
    let batch_rate = n_events as f64 / elapsed.as_secs_f64();
    println!(
        "batch ingest, 1 caller:                   {batch_rate:>10.0} events/s ({:.2} s, {:.0}x baseline)",
        elapsed.as_secs_f64(),
        batch_rate / baseline
    );
    // The CPU of every thread (the caller's building and sealing, the writer's rows): on a
    // shared host the rate moves with the neighbours' load, this much less.
    println!(
        "batch ingest, CPU per event (all threads):  {batch_cpu:>8.1} µs ({} data subjects)",
        *events::SUBJECTS
    );
    recorder.shutdown().expect("shutdown");

    if !quick {
        sync_figures(&dir.path().join("sync.db"), n_sync);
    }
    // Queries over the batch database.
    if !quick {
        let mut reader =
            SqliteStore::open_read_only(&path, SqliteOptions::default()).expect("reader");
        query_figures(&mut reader, 42);
    }

    // Space: checkpoint the WAL into the file first.
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).expect("db");
    let conn = rusqlite::Connection::open(&path).expect("db");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let space = store.space_used().expect("dbstat");
    let index_bytes: u64 = space
        .iter()
        .filter(|(name, _)| {
            name.starts_with("events_")
                || name.starts_with("sqlite_autoindex")
                || name == "event_keys"
        })
        .map(|(_, b)| b)
        .sum();
    println!(
        "on disk: {:.0} bytes/event ({:.1} MB); indexes {:.0} bytes/event ({:.0}% of the file)",
        file as f64 / n_events as f64,
        file as f64 / 1e6,
        index_bytes as f64 / n_events as f64,
        100.0 * index_bytes as f64 / file as f64
    );
    for (name, bytes) in space {
        println!("  {name:<28} {:>8.1} MB", bytes as f64 / 1e6);
    }

    if !quick {
        one_owner_figures(&dir.path().join("one-user.db"), n_events);
    }
    let ceiling = ceiling_figures(&dir.path().join("ceiling.db"), n_events);
    println!(
        "batch ingest against the ceiling:         {:>9.0}% ({batch_rate:.0} of {ceiling:.0} events/s)",
        100.0 * batch_rate / ceiling
    );
}

/// The reference loggers' way, as a baseline: connect, insert one JSON row, commit and close,
/// per event.
fn baseline_rate(dir: &std::path::Path) -> f64 {
    let base_path = dir.join("baseline.db");
    {
        let c = rusqlite::Connection::open(&base_path).expect("baseline db");
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE audit (id INTEGER PRIMARY KEY, ts TEXT, body TEXT)")
            .expect("baseline schema");
    }
    let n_base = 3_000u64;
    let started = Instant::now();
    for i in 0..n_base {
        let c = rusqlite::Connection::open(&base_path).expect("baseline db");
        let body = serde_json::to_string(&event(i)).expect("json");
        c.execute(
            "INSERT INTO audit (ts, body) VALUES (datetime('now'), ?1)",
            [body],
        )
        .expect("insert");
    }
    let baseline = n_base as f64 / started.elapsed().as_secs_f64();
    println!("baseline (connection + commit per event): {baseline:>10.0} events/s");
    baseline
}

/// `sync` ingest with 64 concurrent callers into a database of its own, then one caller's
/// latency of a durable record.
fn sync_figures(sync_path: &std::path::Path, n_sync: u64) {
    let recorder = Recorder::start(
        SqliteStore::open(sync_path, SqliteOptions::default()).expect("db"),
        measure::recorder_config(mcp_audit_store::Durability::Sync),
    )
    .expect("recorder");
    let per_caller = n_sync / 64;
    let started = Instant::now();
    let callers: Vec<_> = (0..64u64)
        .map(|c| {
            let r = recorder.clone();
            std::thread::spawn(move || {
                for i in 0..per_caller {
                    r.record(event(c * per_caller + i)).expect("record");
                }
            })
        })
        .collect();
    for c in callers {
        c.join().expect("caller");
    }
    let sync_rate = (per_caller * 64) as f64 / started.elapsed().as_secs_f64();
    let stats = recorder.stats();
    println!(
        "sync ingest, 64 callers:                  {sync_rate:>10.0} events/s ({:.1} events per commit)",
        stats.recorded as f64 / stats.batches.max(1) as f64
    );

    // One sync caller: latency of one durable record.
    let mut latencies: Vec<Duration> = (0..2_000u64)
        .map(|i| {
            let e = event(i);
            let t = Instant::now();
            recorder.record(e).expect("record");
            t.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    println!(
        "sync, 1 caller, latency:                  p50 {:?}, p99 {:?}",
        percentile(&latencies, 50),
        percentile(&latencies, 99)
    );
    recorder.shutdown().expect("shutdown");
}

/// The two halves of `batch` ingest, each alone: `n` events built and sealed with nothing
/// written, then `n` sealed events' bytes inserted into SQLite with nothing else done. Returns
/// the slower half's rate: the most any store of these events in SQLite could ingest here.
fn ceiling_figures(path: &std::path::Path, n: u64) -> f64 {
    use mcp_audit_core::seal;

    let (started, cpu) = (Instant::now(), thread_cpu());
    for i in 0..n {
        std::hint::black_box(seal(event(i)).expect("seal"));
    }
    let caller = n as f64 / started.elapsed().as_secs_f64();
    let caller_cpu = (thread_cpu() - cpu).as_secs_f64() * 1e6 / n as f64;

    // The writer's half inserts the same 4,096 sealed events over and over: the bytes per
    // event are the benchmark's, and no caller's work is timed with them.
    const CHUNK: u64 = 4_096;
    let chunk: Vec<_> = (0..CHUNK).map(|i| seal(event(i)).expect("seal")).collect();
    let mut conn = rusqlite::Connection::open(path).expect("ceiling db");
    conn.pragma_update(None, "page_size", 16_384)
        .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|()| {
            conn.execute_batch(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, meta BLOB NOT NULL, personal BLOB NOT NULL)",
            )
        })
        .expect("ceiling schema");
    let (started, cpu) = (Instant::now(), thread_cpu());
    let mut seq = 0u64;
    while seq < n {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO events (seq, meta, personal) VALUES (?1, ?2, ?3)")
                .expect("insert");
            for sealed in chunk.iter().take((n - seq).min(CHUNK) as usize) {
                insert
                    .execute(rusqlite::params![
                        seq as i64,
                        sealed.meta_json,
                        sealed.personal_json
                    ])
                    .expect("insert");
                seq += 1;
            }
        }
        tx.commit().expect("commit");
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let writer = n as f64 / started.elapsed().as_secs_f64();
    let writer_cpu = (thread_cpu() - cpu).as_secs_f64() * 1e6 / n as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let bytes: usize = chunk
        .iter()
        .map(|s| s.meta_json.len() + s.personal_json.len())
        .sum();
    println!(
        "ceiling of batch ingest here, each half alone ({n} events):\n\
         \x20 caller: build and seal, nothing written    {caller:>10.0} events/s, CPU {caller_cpu:.1} µs/event\n\
         \x20 writer: the sealed bytes ({:.0} per event) into one SQLite table, no index, durable\n\
         \x20                                            {writer:>10.0} events/s, CPU {writer_cpu:.1} µs/event\n\
         \x20 at most {:.0} events/s: the slower half on a core of its own; {:.0} events/s: both halves' CPU on {cores} cores",
        bytes as f64 / CHUNK as f64,
        caller.min(writer),
        cores * 1e6 / (caller_cpu + writer_cpu),
    );
    caller.min(writer)
}

/// Pages of 100 rows and the session's and the user's summaries where one user and one session own all `n` events:
/// the shape of a proxy run per user, in which a keyed page must not cost the whole log.
fn one_owner_figures(path: &std::path::Path, n: u64) {
    let recorder = sqlite_batch_recorder(path);
    for i in 0..n {
        let mut e = event(i);
        e.actor.user_id = Some("owner".into());
        e.session_id = Some("the-session".into());
        recorder.record(e).expect("record");
    }
    recorder.shutdown().expect("shutdown");
    let mut reader = SqliteStore::open_read_only(path, SqliteOptions::default()).expect("reader");
    page_figures(&mut reader, "one owner: 100 rows by user", 42, 200, |_| {
        Filter {
            user_id: Some("owner".into()),
            ..Filter::default()
        }
    });
    page_figures(
        &mut reader,
        "one owner: 100 rows by session",
        42,
        200,
        |_| Filter {
            session_id: Some("the-session".into()),
            ..Filter::default()
        },
    );
    summary_figures(
        &mut reader,
        &format!("one owner: summary of {n} events"),
        42,
        5,
        |_| SummaryScope::Session("the-session".into()),
    );
    summary_figures(
        &mut reader,
        &format!("one owner: user summary, {n} events"),
        42,
        5,
        |_| SummaryScope::User("owner".into()),
    );
}
