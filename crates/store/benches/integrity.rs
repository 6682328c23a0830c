//! Integrity speed, in one run:
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench integrity          # 1,000,000 entries
//! EVENTS=200000 cargo bench -p mcp-audit-store --bench integrity
//! ```
//!
//! Prints batch ingest with the writer signing checkpoints (every 1,000 entries) against ingest
//! without, `verify` over the whole log in entries per second, and `prove` for one event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_audit_core::AuditEvent;
use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_store::integrity::{prove, sign_checkpoint, verify};
use mcp_audit_store::{
    CheckpointPolicy, Durability, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
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

fn ingest(path: &std::path::Path, n: u64, checkpoints: Option<CheckpointPolicy>) -> f64 {
    let recorder = Recorder::start(
        SqliteStore::open(path, SqliteOptions::default()).expect("db"),
        RecorderConfig {
            durability: Durability::Batch,
            checkpoints,
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
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
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
    };
    let path = dir.path().join("on.db");
    let on = ingest(&path, n, Some(policy));
    println!(
        "ingest, batch: {off:>9.0} events/s without checkpoints, {on:>9.0} with a checkpoint every 1,000 ({:.0}%)",
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

    let id = mcp_audit_store::Store::query(
        &mut store,
        &mcp_audit_store::Query {
            limit: 1,
            ..Default::default()
        },
    )
    .expect("query")
    .events[0]
        .event
        .id;
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(prove(&mut store, id).expect("prove"));
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    println!("prove one event in a log of {n}: median {:?}", times[2]);
}
