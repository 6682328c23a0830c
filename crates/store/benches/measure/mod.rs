//! The benchmarks' shared measuring: settings from the environment, nearest-rank percentiles of
//! timings, and the query and summary figures, so that the SQLite and PostgreSQL benchmarks
//! measure their reads the same way and their figures compare.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use mcp_audit_store::{
    Durability, Filter, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
    SummaryScope,
};

use crate::events::{SESSIONS, TOOLS, USERS, mix};

/// A whole number from the environment, or `default` when unset or not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nearest-rank percentile of sorted timings (the stores' rule for durations too).
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The CPU time (user and system) a `/proc/.../stat` file reports (in clock ticks of 10 ms);
/// `None` where there is none (not Linux, or the process is gone).
pub fn stat_cpu(path: &std::path::Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // After the command's closing parenthesis: field 3 (state) on; utime and stime are fields
    // 14 and 15.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time the calling thread has used so far (zero where `/proc` can not tell).
pub fn thread_cpu() -> Duration {
    stat_cpu(std::path::Path::new("/proc/thread-self/stat")).unwrap_or_default()
}

/// The CPU time this process (all its threads) has used so far.
pub fn process_cpu() -> Duration {
    stat_cpu(std::path::Path::new("/proc/self/stat")).unwrap_or_default()
}

/// Prints how long this disk takes to make a 16 KiB write durable (`fsync`, p50 and p99 of
/// 200), in `dir`: the floor under every durable commit, so that figures from different days
/// or machines can be read against the disk they ran on.
pub fn print_fsync_floor(dir: &std::path::Path) {
    use std::io::Write as _;
    let path = dir.join("fsync-floor");
    let mut file = std::fs::File::create(&path).expect("a scratch file");
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            file.write_all(&[0u8; 16_384]).expect("write");
            let t = Instant::now();
            file.sync_data().expect("fsync");
            t.elapsed()
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(&path);
    times.sort_unstable();
    println!(
        "this disk: fsync of a 16 KiB write p50 {:?}, p99 {:?}",
        percentile(&times, 50),
        percentile(&times, 99)
    );
}

/// Prints `label`, padded to `column` characters, then the p50 and p95 of `times`.
pub fn print_p50_p95(label: &str, column: usize, mut times: Vec<Duration>) {
    times.sort_unstable();
    println!(
        "{label:<column$}p50 {:?}, p95 {:?}",
        percentile(&times, 50),
        percentile(&times, 95)
    );
}

/// The recorder's configuration for a bench: the library's default (the built-in secrets
/// redaction on, identifiers as pseudonyms), or with `REDACTION=none` no redaction and with
/// `PSEUDONYMS=off` identifiers hashed as given, to tell each one's cost from the rest.
pub fn recorder_config(durability: Durability) -> RecorderConfig {
    let mut config = RecorderConfig {
        durability,
        ..RecorderConfig::default()
    };
    if std::env::var("REDACTION").is_ok_and(|v| v == "none") {
        config.redaction = std::sync::Arc::new(mcp_audit_core::redact::Redactor::none());
    }
    if std::env::var("PSEUDONYMS").is_ok_and(|v| v == "off") {
        config.pseudonyms = false;
    }
    config
}

/// A batch-mode recorder over a new SQLite store at `path`.
pub fn sqlite_batch_recorder(path: &std::path::Path) -> Recorder {
    Recorder::start(
        SqliteStore::open(path, SqliteOptions::default()).expect("db"),
        recorder_config(Durability::Batch),
    )
    .expect("recorder")
}

/// A named way of picking a filter for the i-th query.
type FilterFor = (&'static str, fn(u64) -> Filter);

/// Times filtered queries of 100 rows by user, tool and session (200 each), then a session
/// summary (50), over the benchmark events in `reader`, and prints their p50 and p95 with the
/// figures in `column`.
pub fn query_figures(reader: &mut impl Read, column: usize) {
    let queries: [FilterFor; 3] = [
        ("user", |k| Filter {
            user_id: Some(format!("user-{}", k % USERS)),
            ..Filter::default()
        }),
        ("tool", |k| Filter {
            operation: Some(format!("tool_{}", k % TOOLS)),
            ..Filter::default()
        }),
        ("session", |k| Filter {
            session_id: Some(format!("session-{}", k % SESSIONS)),
            ..Filter::default()
        }),
    ];
    for (name, filter) in queries {
        page_figures(
            reader,
            &format!("query 100 rows by {name}"),
            column,
            200,
            |i| filter(mix(i + 7)),
        );
    }
    summary_figures(reader, "session summary:", column, 50, |i| {
        SummaryScope::Session(format!("session-{}", mix(i) % SESSIONS))
    });
}

/// Times `runs` newest-first pages of 100 rows, the i-th of `filter(i)`, and prints their p50
/// and p95 after `label`.
pub fn page_figures(
    reader: &mut impl Read,
    label: &str,
    column: usize,
    runs: u64,
    filter: impl Fn(u64) -> Filter,
) {
    let times = (0..runs)
        .map(|i| {
            let q = Query {
                filter: filter(i),
                limit: 100,
                ..Query::default()
            };
            let t = Instant::now();
            let page = reader.query(&q).expect("query");
            std::hint::black_box(page.events.len());
            t.elapsed()
        })
        .collect();
    print_p50_p95(label, column, times);
}

/// Times `runs` summaries, the i-th of `scope(i)`, and prints their p50 and p95 after `label`.
pub fn summary_figures(
    reader: &mut impl Read,
    label: &str,
    column: usize,
    runs: u64,
    scope: impl Fn(u64) -> SummaryScope,
) {
    let times = (0..runs)
        .map(|i| {
            let t = Instant::now();
            let s = reader.summary(&scope(i)).expect("summary");
            std::hint::black_box(s.total_operations);
            t.elapsed()
        })
        .collect();
    print_p50_p95(label, column, times);
}
