//! Integrity speed, in one run:
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench integrity          # 1,000,000 entries
//! EVENTS=200000 PROVE_EVENTS=1000000 cargo bench -p mcp-audit-store --bench integrity
//! ```
//!
//! Prints batch ingest with integrity on (interior nodes kept, a checkpoint signed every 1,000
//! entries) against ingest with it off, `verify` over the whole log in entries per second, and
//! `prove` in a log of `PROVE_EVENTS` entries (default 10,000,000; building it takes minutes).

mod events;
mod measure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_audit_core::AuditEvent;
use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_store::integrity::{prove, sign_checkpoint, verify};
use mcp_audit_store::{
    CheckpointPolicy, Durability, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
use measure::{env_usize, sqlite_batch_recorder};
use serde_json::json;

fn event(i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool_{}", i % 50))
        .user(format!("user-{}", i % 1000))
        .session(format!("session-{}", i % 10_000))
        .input(json!({"query": "customers in region EMEA with open tickets", "limit": 50, "request": i}))
        .output(json!({"content": [{"type": "text", "text": "Found 12 customers: ACME GmbH (3 tickets), Globex SARL (2 tickets), Initech Ltd (4 tickets) and 9 more."}]}))
        .duration_us(500 + i % 20_000)
        .build()
        .expect("a valid event")
}

/// Batch ingest of `n` events; `integrity` off is the baseline: no interior nodes, no
/// checkpoints (the leaf hash itself is part of every sealed event).
fn ingest(path: &std::path::Path, n: u64, checkpoints: Option<CheckpointPolicy>) -> f64 {
    let integrity = checkpoints.is_some();
    let recorder = Recorder::start(
        SqliteStore::open(path, SqliteOptions::default()).expect("db"),
        RecorderConfig {
            durability: Durability::Batch,
            checkpoints,
            tree_nodes: integrity,
            ..RecorderConfig::default()
        },
    )
    .expect("recorder");
    let t = Instant::now();
    for i in 0..n {
        recorder.record(event(i)).expect("record");
    }
    recorder.shutdown().expect("shutdown");
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n = env_usize("EVENTS", 1_000_000) as u64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let signer = NoteSigner::generate("bench").expect("key");
    println!("mcp-audit integrity benchmark: {n} entries, 2 cores");

    let off = ingest(&dir.path().join("off.db"), n, None);
    let policy = CheckpointPolicy {
        signer: Arc::new(NoteSigner::from_text(&signer.to_text()).expect("key")),
        origin: "bench".into(),
        every_entries: 1_000,
        every: Duration::from_secs(60),
        out: None,
        publish: None,
    };
    let path = dir.path().join("on.db");
    let on = ingest(&path, n, Some(policy));
    println!(
        "ingest, batch: {off:>9.0} events/s integrity off, {on:>9.0} on (tree nodes, a checkpoint every 1,000) ({:.0}%)",
        100.0 * on / off
    );

    let mut store = SqliteStore::open(&path, SqliteOptions::default()).expect("db");
    sign_checkpoint(&mut store, &signer, "bench").expect("checkpoint");
    let t = Instant::now();
    let report = verify(&mut store, Some(&signer.verifier()), &[], &mut |_| {}).expect("verify");
    let elapsed = t.elapsed();
    assert!(report.is_ok(), "{:?}", report.findings.first());
    println!(
        "verify: {} entries, {} checkpoints in {:.2} s = {:.0} entries/s",
        report.entries,
        report.checkpoints_verified,
        elapsed.as_secs_f64(),
        report.entries as f64 / elapsed.as_secs_f64()
    );

    drop(store);
    prove_at_scale(dir.path(), &signer);
}

/// `prove` in a log of `PROVE_EVENTS` entries (default 10,000,000), built by the recorder from
/// small events (two threads recording), with the interior nodes the writer keeps.
fn prove_at_scale(dir: &std::path::Path, signer: &NoteSigner) {
    let n = env_usize("PROVE_EVENTS", 10_000_000) as u64;
    let path = dir.join("prove.db");
    let recorder = sqlite_batch_recorder(&path);
    let t = Instant::now();
    let sample_every = (n / 200).max(1);
    let threads: Vec<_> = (0..2u64)
        .map(|part| {
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                let mut sampled = Vec::new();
                for i in (part..n).step_by(2) {
                    let event = AuditEvent::tool_execution("t")
                        .input(json!({"i": i}))
                        .build()
                        .expect("event");
                    if i % sample_every == 0 {
                        sampled.push(event.id);
                    }
                    recorder.record(event).expect("record");
                }
                sampled
            })
        })
        .collect();
    let ids: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("recording thread"))
        .collect();
    recorder.shutdown().expect("shutdown");
    let mut store = SqliteStore::open(&path, SqliteOptions::default()).expect("db");
    sign_checkpoint(&mut store, signer, "bench").expect("checkpoint");
    println!(
        "built a log of {n} entries in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let mut times: Vec<Duration> = ids
        .iter()
        .map(|id| {
            let t = Instant::now();
            let proof = prove(&mut store, *id).expect("prove");
            let elapsed = t.elapsed();
            std::hint::black_box(proof);
            elapsed
        })
        .collect();
    times.sort_unstable();
    let at = |p: usize| times[(times.len() - 1) * p / 100];
    println!(
        "prove one event in a log of {n}: median {:?}, p99 {:?} ({} events across the log)",
        at(50),
        at(99),
        times.len()
    );
}
