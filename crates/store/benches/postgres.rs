//! Ingest and query benchmark of the PostgreSQL store, against the server named by
//! `MCP_AUDIT_TEST_PG` (skipped, with a message, without it):
//!
//! ```sh
//! MCP_AUDIT_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo bench -p mcp-audit-store --bench postgres
//! ... cargo bench -p mcp-audit-store --bench postgres --features bench-mimalloc   # as the binary runs
//! EVENTS=100000 ... cargo bench -p mcp-audit-store --bench postgres     # a quick run
//! ```
//!
//! Prints, with the same realistic events as the SQLite benchmark (`benches/ingest.rs`):
//! - a baseline: one `INSERT` and one commit per event, as a naive logger would;
//! - the write path alone (`Append::append` of pre-sealed batches of 4,096): binary `COPY`
//!   against multi-row `INSERT ... unnest`, to choose between them;
//! - batch-mode ingest through the `Recorder` (sealing included) with one writer, then four
//!   writers (four logs) at once;
//! - filtered queries of 100 rows by user, tool and session over the one-writer log, and a
//!   session summary;
//! - the ceiling of ingest on this machine: the sealed events' bytes alone, copied (binary
//!   `COPY`, 4,096 rows and a commit at a time) into one table without index or key. No store
//!   of these events in this server, with it on the same cores, is faster than that.
//!
//! Each part runs in a schema of its own, dropped at the end. Figures, never assertions.

/// `--features bench-mimalloc`: the allocator the `mcp-audit` binary uses (the recorder frees
/// each event in another thread than the one that built it, which glibc's malloc handles poorly).
#[cfg(feature = "bench-mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod events;
mod measure;

use std::time::{Duration, Instant};

use events::event;
use mcp_audit_store::{
    Append, Durability, Entry, Log, PgOptions, PgStore, Recorder, RecorderConfig, WriteMethod,
};
use measure::{env_usize, process_cpu, query_figures, stat_cpu};

/// A schema of its own, dropped when this value is.
struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn new(base: &str, name: &str) -> Schema {
        let name = format!("bench_{name}_{}", std::process::id());
        let mut c = postgres::Client::connect(base, postgres::NoTls).expect("connect");
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .expect("schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        Schema {
            base: base.to_string(),
            url: format!("{base}{sep}options=-csearch_path%3D{name}"),
            name,
        }
    }

    fn writer(&self, log_id: &str, method: WriteMethod) -> PgStore {
        PgStore::open(
            &self.url,
            PgOptions {
                log_id: Some(log_id.to_string()),
                write_method: method,
                ..PgOptions::default()
            },
        )
        .expect("writer")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// The events/s of `Append::append` alone: batches of 4,096 events are sealed first (not
/// timed), then appended (timed).
fn append_rate(schema: &Schema, method: WriteMethod, n: u64, offset: u64) -> f64 {
    let mut store = schema.writer(&format!("{method:?}"), method);
    let mut seq = store.next_seq().expect("next seq");
    let mut timed = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let size = 4_096.min(n - i);
        let sealed: Vec<_> = (i..i + size)
            .map(|k| mcp_audit_core::seal(event(offset + k)).expect("seal"))
            .collect();
        let entries: Vec<Entry<'_>> = sealed
            .iter()
            .enumerate()
            .map(|(j, s)| Entry {
                seq: seq + j as u64,
                leaf_hash: s.leaf_hash(seq + j as u64),
                sealed: s,
            })
            .collect();
        let t = Instant::now();
        store.append(&entries).expect("append");
        timed += t.elapsed();
        seq += size;
        i += size;
    }
    n as f64 / timed.as_secs_f64()
}

/// Records `n` events through one batch-mode recorder per log, `writers` logs at once, each
/// fed by its own thread; returns the aggregate events/s.
fn ingest(schema: &Schema, writers: u64, n: u64) -> f64 {
    let per = n / writers;
    let recorders: Vec<Recorder> = (0..writers)
        .map(|w| {
            Recorder::start(
                schema.writer(&format!("proxy-{w}"), WriteMethod::Copy),
                RecorderConfig {
                    durability: Durability::Batch,
                    ..RecorderConfig::default()
                },
            )
            .expect("recorder")
        })
        .collect();
    let started = Instant::now();
    let threads: Vec<_> = recorders
        .into_iter()
        .enumerate()
        .map(|(w, r)| {
            std::thread::spawn(move || {
                let base = w as u64 * per;
                for i in base..base + per {
                    r.record(event(i)).expect("record");
                }
                r.shutdown().expect("shutdown")
            })
        })
        .collect();
    for t in threads {
        let stats = t.join().expect("writer");
        assert_eq!(stats.failed, 0);
    }
    (per * writers) as f64 / started.elapsed().as_secs_f64()
}

/// The CPU time used so far by every process of this machine's PostgreSQL server (backends, WAL
/// writer, checkpointer, ...), by pid.
fn server_cpu_by_pid() -> std::collections::HashMap<u32, Duration> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.flatten()
        .filter_map(|p| {
            let pid = p.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(p.path().join("comm")).ok()?;
            if comm.trim() != "postgres" {
                return None;
            }
            Some((pid, stat_cpu(&p.path().join("stat"))?))
        })
        .collect()
}

/// The CPU time the server spends while `f` runs. A backend's time vanishes from `/proc` when
/// its connection closes, so the server is sampled every 20 ms while `f` runs and each
/// process's last sample counts: a backend's last 20 ms at most go uncounted (Linux, and a
/// server on this machine; zero otherwise).
fn server_cpu_during<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let before = server_cpu_by_pid();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = std::collections::HashMap::new();
            loop {
                last.extend(server_cpu_by_pid());
                if done.load(Ordering::Relaxed) {
                    return last;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = f();
    done.store(true, Ordering::Relaxed);
    let last = sampler.join().expect("sampler");
    let spent = last
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or_default()))
        .sum();
    (out, spent)
}

/// CPU time per event, in µs, in this process and in the server.
struct Cpu {
    own: f64,
    server: f64,
}

impl Cpu {
    /// The events/s this machine's cores, kept busy with nothing else, would allow.
    fn allows(&self, extra_own: f64) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
        cores * 1e6 / (self.own + extra_own + self.server)
    }
}

/// Runs `f`, which handles `n` events; returns its result and the CPU time per event it took.
fn with_cpu<T>(n: u64, f: impl FnOnce() -> T) -> (T, Cpu) {
    let own = process_cpu();
    let (out, server) = server_cpu_during(f);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let cpu = Cpu {
        own: per(process_cpu() - own),
        server: per(server),
    };
    (out, cpu)
}

/// The events/s of the cheapest durable way to put `n` sealed events' bytes into the server:
/// binary `COPY` of (seq, metadata, personal half) into a table with no key, a commit every
/// 4,096 rows. With `indexed`, the table also has the three columns the issue's queries
/// filter on (user, tool, session), each indexed with the page order: the least a store that
/// answers those queries from an index must also write. The same 4,096 sealed events are
/// copied over and over.
fn ceiling_rate(schema: &Schema, n: u64, indexed: bool) -> f64 {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::{ToSql, Type};

    const CHUNK: u64 = 4_096;
    let chunk: Vec<_> = (0..CHUNK)
        .map(|i| mcp_audit_core::seal(event(i)).expect("seal"))
        .collect();
    let mut c = postgres::Client::connect(&schema.url, postgres::NoTls).expect("connect");
    c.batch_execute(
        "CREATE TABLE events (seq int8 NOT NULL, meta bytea NOT NULL, personal bytea NOT NULL,
                             user_id text, operation text NOT NULL, session_id text)",
    )
    .expect("ceiling table");
    if indexed {
        c.batch_execute(
            "CREATE INDEX events_user ON events (user_id, seq);
             CREATE INDEX events_operation ON events (operation, seq);
             CREATE INDEX events_session ON events (session_id, seq);",
        )
        .expect("ceiling indexes");
    }
    let types = [
        Type::INT8,
        Type::BYTEA,
        Type::BYTEA,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let started = Instant::now();
    let mut seq = 0i64;
    while (seq as u64) < n {
        let mut tx = c.transaction().expect("begin");
        let sink = tx
            .copy_in(
                "COPY events (seq, meta, personal, user_id, operation, session_id)
                 FROM STDIN (FORMAT binary)",
            )
            .expect("copy");
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for sealed in chunk.iter().take((n - seq as u64).min(CHUNK) as usize) {
            let e = &sealed.event;
            let row: [&(dyn ToSql + Sync); 6] = [
                &seq,
                &sealed.meta_json,
                &sealed.personal_json,
                &e.actor.user_id,
                &e.operation,
                &e.session_id,
            ];
            writer.write(&row).expect("row");
            seq += 1;
        }
        writer.finish().expect("copy end");
        tx.commit().expect("commit");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let Some(base) = std::env::var("MCP_AUDIT_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: MCP_AUDIT_TEST_PG is not set");
        return;
    };
    let n_events = env_usize("EVENTS", 1_000_000) as u64;
    let n_append = env_usize("APPEND_EVENTS", 200_000) as u64;
    println!(
        "mcp-audit PostgreSQL benchmark: {n_events} events, {} cores (server on the same machine)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Baseline: one INSERT and one commit per event, the whole event as one JSON row.
    let baseline = {
        let schema = Schema::new(&base, "baseline");
        let mut c = postgres::Client::connect(&schema.url, postgres::NoTls).expect("connect");
        c.batch_execute("CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, ts TIMESTAMPTZ, body TEXT)")
            .expect("baseline table");
        let n = 3_000u64;
        let started = Instant::now();
        for i in 0..n {
            let body = serde_json::to_string(&event(i)).expect("json");
            c.execute("INSERT INTO audit (ts, body) VALUES (now(), $1)", &[&body])
                .expect("insert");
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    println!("baseline (one INSERT + commit per event):   {baseline:>10.0} events/s");

    // The write path alone: COPY against multi-row INSERT, each into a fresh schema.
    for method in [WriteMethod::Copy, WriteMethod::Insert] {
        let schema = Schema::new(&base, &format!("{method:?}").to_lowercase());
        let rate = append_rate(&schema, method, n_append, 0);
        println!(
            "append alone, {:<6} ({n_append} events):     {rate:>10.0} events/s ({:.0}x baseline)",
            format!("{method:?}"),
            rate / baseline
        );
    }

    // Batch-mode ingest through the recorder, one writer: the log the queries run over.
    let one = Schema::new(&base, "one_writer");
    let (rate, cpu) = with_cpu(n_events, || ingest(&one, 1, n_events));
    println!(
        "batch ingest, 1 writer:                     {rate:>10.0} events/s ({:.0}x baseline)\n\
         \x20 CPU per event {:.1} µs here (sealing included) + {:.1} µs in the server: the cores allow {:.0} events/s",
        rate / baseline,
        cpu.own,
        cpu.server,
        cpu.allows(0.0)
    );

    // Four writers (four logs) at once, into a database of their own.
    {
        let four = Schema::new(&base, "four_writers");
        let rate = ingest(&four, 4, n_events);
        println!(
            "batch ingest, 4 writers (aggregate):        {rate:>10.0} events/s ({:.0}x baseline)",
            rate / baseline
        );
    }

    // Queries over the one-writer log, with fresh statistics (as autovacuum would have).
    postgres::Client::connect(&one.url, postgres::NoTls)
        .and_then(|mut c| c.batch_execute("ANALYZE"))
        .expect("analyze");
    let mut reader = PgStore::open_read_only(&one.url).expect("reader");
    query_figures(&mut reader, 44);
    let size: i64 = postgres::Client::connect(&one.url, postgres::NoTls)
        .and_then(|mut c| {
            c.query_one(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
                &[],
            )
        })
        .map(|r| r.get(0))
        .expect("size");
    println!(
        "on disk: {:.0} bytes/event ({:.1} MB, tables with their indexes)",
        size as f64 / n_events as f64,
        size as f64 / 1e6
    );

    // The ceiling: the caller's half (build and seal, nothing written) and the server's half
    // (the sealed bytes alone, copied into a bare table), each alone.
    let started = Instant::now();
    let ((), sealing) = with_cpu(n_append, || {
        for i in 0..n_append {
            std::hint::black_box(mcp_audit_core::seal(event(i)).expect("seal"));
        }
    });
    let caller = n_append as f64 / started.elapsed().as_secs_f64();
    let (copy, copy_cpu) = with_cpu(n_append, || {
        ceiling_rate(&Schema::new(&base, "ceiling"), n_append, false)
    });
    let (indexed, indexed_cpu) = with_cpu(n_append, || {
        ceiling_rate(&Schema::new(&base, "ceiling_indexed"), n_append, true)
    });
    println!(
        "ceiling of ingest here, each half alone ({n_append} events):\n\
         \x20 caller: build and seal, nothing written     {caller:>10.0} events/s, CPU {:.1} µs per event\n\
         \x20 server: the sealed bytes, binary COPY into one table without index {copy:>10.0} events/s,\n\
         \x20   CPU per event {:.1} µs here + {:.1} µs in the server\n\
         \x20 the same with user, tool and session indexed           {indexed:>10.0} events/s,\n\
         \x20   CPU per event {:.1} µs here + {:.1} µs in the server\n\
         \x20 no store of these events in this server, on these cores, passes {:.0} events/s (the slower half\n\
         \x20 alone), or {:.0} events/s (both halves' CPU on the cores); with the three indexes the queries need, {:.0}",
        sealing.own,
        copy_cpu.own,
        copy_cpu.server,
        indexed_cpu.own,
        indexed_cpu.server,
        caller.min(copy),
        copy_cpu.allows(sealing.own),
        indexed_cpu.allows(sealing.own),
    );
}
