//! The recording cost of redaction (issue 18's target: with the default policy, at least 80% of
//! the throughput without it), measured in one run:
//!
//! ```sh
//! cargo bench -p mcp-audit-store --bench redaction                 # 200,000 events a round
//! EVENTS=50000 ROUNDS=5 cargo bench -p mcp-audit-store --bench redaction
//! ```
//!
//! `batch` ingest of the ingest benchmark's events into SQLite with no redaction, the default
//! (built-in secrets) policy, the secrets plus every personal-data detector, and those plus
//! every national identifier, each round running the four one after the other (alternated, so
//! that a slower stretch of the machine does not fall on one policy alone); then the caller's
//! cost of redaction alone, per event.
//! Figures, never assertions.

use std::sync::Arc;
use std::time::Instant;

mod events;
mod measure;

use events::event;
use mcp_audit_core::redact::Redactor;
use mcp_audit_store::{Durability, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use measure::env_usize;

const PERSONAL_DATA: &str = r#"
[[rule]]
id = "email"
detector = "email"
[[rule]]
id = "phone"
detector = "phone"
[[rule]]
id = "card"
detector = "card"
[[rule]]
id = "iban"
detector = "iban"
"#;

/// The personal-data detectors and every national identifier: the most a policy can ask of the
/// one `RegexSet`.
const NATIONAL_IDS: &[&str] = &[
    "us-ssn",
    "uk-nino",
    "de-steuer-id",
    "fr-nir",
    "es-dni",
    "it-codice-fiscale",
    "nl-bsn",
    "in-aadhaar",
    "ca-sin",
    "pl-pesel",
    "br-cpf",
];

fn main() {
    let n_events = env_usize("EVENTS", 200_000) as u64;
    let rounds = env_usize("ROUNDS", 3);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let personal = Redactor::from_toml(PERSONAL_DATA, |_| Err("no key file".into()))
        .expect("the benchmark's policy");
    let national_text: String = NATIONAL_IDS
        .iter()
        .map(|id| format!("[[rule]]\nid = \"{id}\"\ndetector = \"{id}\"\n"))
        .collect();
    let national = Redactor::from_toml(&format!("{PERSONAL_DATA}{national_text}"), |_| {
        Err("no key file".into())
    })
    .expect("the benchmark's policy");
    let policies: [(&str, Arc<Redactor>); 4] = [
        ("none", Arc::new(Redactor::none())),
        ("default (secrets)", Redactor::shared_secrets()),
        ("secrets + personal data", Arc::new(personal)),
        ("+ national identifiers", Arc::new(national)),
    ];
    println!(
        "mcp-audit redaction benchmark: {n_events} events a round, {rounds} rounds, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    let mut rates = vec![Vec::new(); policies.len()];
    for round in 0..rounds {
        for (p, (name, redaction)) in policies.iter().enumerate() {
            let path = dir.path().join(format!("r{round}-{p}.db"));
            let recorder = Recorder::start(
                SqliteStore::open(&path, SqliteOptions::default()).expect("db"),
                RecorderConfig {
                    durability: Durability::Batch,
                    redaction: redaction.clone(),
                    ..RecorderConfig::default()
                },
            )
            .expect("recorder");
            let started = Instant::now();
            for i in 0..n_events {
                recorder.record(event(i)).expect("record");
            }
            recorder.flush().expect("flush");
            let rate = n_events as f64 / started.elapsed().as_secs_f64();
            recorder.shutdown().expect("shutdown");
            println!("round {round}, {name:<24} {rate:>10.0} events/s");
            rates[p].push(rate);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&rates[0]);
    for (p, (name, _)) in policies.iter().enumerate() {
        let m = median(&rates[p]);
        println!(
            "batch ingest, {name:<24} median {m:>10.0} events/s ({:.0}% of none)",
            100.0 * m / base
        );
    }

    // The caller's cost alone: redact a fresh copy of each event (the copy's cost measured
    // apart and taken off).
    let sample: Vec<_> = (0..20_000u64).map(event).collect();
    let started = Instant::now();
    let mut kept = 0usize;
    for e in &sample {
        kept += e.clone().operation.len();
    }
    let copy_ns = started.elapsed().as_nanos() as f64 / sample.len() as f64;
    for (name, redaction) in &policies {
        let started = Instant::now();
        for e in &sample {
            let mut e = e.clone();
            kept += redaction.redact(&mut e).len();
        }
        let ns = started.elapsed().as_nanos() as f64 / sample.len() as f64 - copy_ns;
        println!("redaction alone, {name:<24} {ns:>8.0} ns/event");
    }
    std::hint::black_box(kept);
}
