//! Bytes per event on disk (issue 20), split per table and index, for two events:
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench bytes                    # 20,000 of each
//! EVENTS=100000 SEED_EVENTS=0 cargo bench -p mcp-audit-store --bench bytes
//! ```
//!
//! - the seed logger's own benchmark event (`read_file`, a result of 200 bytes, one data
//!   source, GDPR tags: `events::seed_event`), and
//! - the ingest benchmark's realistic ~1 KB tool execution (`events::event`),
//!
//! each recorded `EVENTS` times in `batch` mode into a database of its own, checkpointed, and
//! measured with `dbstat` (every table, index and tree node). With the seed's package installed
//! (`scripts/install-test-peers.sh`), the same seed event is also written `SEED_EVENTS` times
//! (default 2,000: it commits one event at a time) by the seed's own logger, and measured the
//! same way, in the same run. Bytes are the figure here; the CPU per event (every thread of the
//! process, as the ingest benchmark reads it) is printed so that the cost of a denser format
//! shows beside what it saves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod events;
mod measure;

use mcp_audit_core::AuditEvent;
use measure::{env_usize, process_cpu, sqlite_batch_recorder};

fn main() {
    let n_events = env_usize("EVENTS", 20_000) as u64;
    let n_seed = env_usize("SEED_EVENTS", 2_000) as u64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("mcp-audit bytes per event: {n_events} events of each kind");
    ours(
        "seed's read_file event",
        &dir.path().join("seed-event.db"),
        n_events,
        events::seed_event,
    );
    ours(
        "ingest benchmark's event",
        &dir.path().join("ingest-event.db"),
        n_events,
        events::event,
    );
    if n_seed > 0 {
        seeds(&dir.path().join("mockloop.db"), n_seed);
    }
}

/// Records `n` events of `make` into a new store at `path` and prints its bytes per event.
fn ours(label: &str, path: &Path, n: u64, make: fn(u64) -> AuditEvent) {
    let recorder = sqlite_batch_recorder(path);
    let (started, cpu) = (Instant::now(), process_cpu());
    for i in 0..n {
        recorder.record(make(i)).expect("record");
    }
    recorder.flush().expect("flush");
    let cpu = (process_cpu() - cpu).as_secs_f64() * 1e6 / n as f64;
    let elapsed = started.elapsed();
    recorder.shutdown().expect("shutdown");
    println!(
        "{label}, ours: CPU {cpu:.1} µs/event (all threads; {:.0} events/s)",
        n as f64 / elapsed.as_secs_f64()
    );
    print_space(path, n);
}

/// The seed's own logger writing the seed event `n` times, when its package is installed.
fn seeds(path: &Path, n: u64) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".test-peers/mockloop-venv/bin/python");
    if !python.exists() {
        println!(
            "seed's read_file event, the seed's logger: skipped (no .test-peers/mockloop-venv)"
        );
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/seed_bytes.py");
    let status = Command::new(python)
        .arg(script)
        .arg(path)
        .arg(n.to_string())
        .status()
        .expect("the seed's python");
    assert!(status.success(), "seed_bytes.py failed");
    println!("seed's read_file event, the seed's logger (mockloop-mcp), {n} events:");
    print_space(path, n);
}

/// Checkpoints the WAL of `path` and prints the file's bytes per event and each table's and
/// index's share.
fn print_space(path: &Path, n: u64) {
    let conn = rusqlite::Connection::open(path).expect("db");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut stmt = conn
        .prepare("SELECT name, SUM(pgsize), SUM(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .expect("dbstat");
    let rows: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("dbstat")
        .collect::<Result<_, _>>()
        .expect("dbstat");
    println!("  on disk: {:.0} bytes/event", file as f64 / n as f64);
    // Ours only: the metadata's stored and canonical sizes (`sqlite/packed.rs`).
    if mcp_audit_store::SqliteStore::register_functions(&conn).is_ok()
        && let Ok((stored, text)) = conn.query_row(
            "SELECT AVG(length(meta)), AVG(length(mcp_audit_text(meta))) FROM events",
            [],
            |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)),
        )
    {
        println!("  meta: {stored:.0} bytes stored, {text:.0} bytes of canonical JSON (averages)");
    }
    for (name, bytes, unused) in rows {
        if bytes as f64 / n as f64 >= 0.5 {
            println!(
                "  {name:<36} {:>7.1} bytes/event ({:.0} unused)",
                bytes as f64 / n as f64,
                unused as f64 / n as f64
            );
        }
    }
}
