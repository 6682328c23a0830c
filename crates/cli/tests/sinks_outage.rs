//! Every kind of sink at once in one `mcp-audit follow`, through what a deployment lives
//! through: every receiver down for a minute while events keep coming, the follow killed with
//! SIGKILL in the middle of that minute and started again, and receivers that refuse one record
//! forever. The receivers are real and started here: a webhook receiver checking signatures,
//! OTLP receivers decoding the official protobuf types over HTTP and over gRPC, Debian's
//! rsyslogd over TCP and over TLS (the sinks crate's suites' own, shared with them), and a
//! witness (`mcp-audit serve --witness-key`). At the end each receiver has every record, the
//! first arrivals in seq order, duplicates only of records it never acknowledged; the refused
//! records are dead letters of their sinks, and `sink status` shows no lag.

mod support;

#[path = "../../sinks/tests/support/mod.rs"]
mod sink_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mcp_audit_core::AuditEvent;
use mcp_audit_core::checkpoint::NoteSigner;
use mcp_audit_sinks::otlp::Protocol;
use mcp_audit_store::{
    CheckpointPolicy, Log, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
use serde_json::{Value, json};

use sink_support::otlp;
use sink_support::rsyslog::{Rsyslog, sd_param, test_tls};
use support::BIN;
use support::follow::{sink_status, terminate, wait_until};
use support::witness::Witness;

/// How long every receiver stays down: the issue's bar, a real minute. Not shortened, because
/// what a minute brings is what a few seconds would not: every sink's backoff at its cap for
/// many rounds, pooled HTTP connections and a gRPC channel whose server went away long ago,
/// TLS sessions to start afresh, and a backlog of a minute of records to catch up.
const OUTAGE: Duration = Duration::from_secs(61);

/// When, into the outage, the follow is killed: with a backlog behind it and receivers still
/// down, so that the second run starts from the cursors into that same outage.
const KILL_AFTER: Duration = Duration::from_secs(20);

/// Records per delivery: a duplicate of an unacknowledged delivery is at most this many.
const BATCH: u64 = 50;

/// How long the writer waits between events (at most 25 a second, a good thousand in the run).
const WRITE_EVERY: Duration = Duration::from_millis(40);

/// The records each receiver refuses forever, as how many records into the outage they were
/// written: all in the outage's backlog, so that their refusals are met while catching up. The
/// webhook answers 422, the OTLP/HTTP receiver a `partial_success` that rejects its record, the
/// OTLP/gRPC receiver `INVALID_ARGUMENT`.
const REFUSED_BY_WEBHOOK: u64 = 100;
const REFUSED_BY_OTLP_HTTP: u64 = 101;
const REFUSED_BY_OTLP_GRPC: u64 = 277;

/// The origin the log signs its checkpoints with, as the witness trusts it.
const ORIGIN: &str = "log.test/outage";

/// A generous bound on each wait (a hang fails the test instead of stalling CI), not a speed
/// check: nothing here is timed.
const PATIENCE: Duration = Duration::from_secs(120);

/// An in-process writer recording events one by one (each durable before the next), signing
/// a checkpoint every `BATCH` entries, until told to stop; it can be paused.
struct Writer {
    written: Arc<AtomicU64>,
    paused: Arc<AtomicBool>,
    /// Set by the writer once it saw `paused` and stopped writing.
    idle: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Writer {
    fn start(db: &Path, signer: NoteSigner) -> Writer {
        let written = Arc::new(AtomicU64::new(0));
        let paused = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
        let config = RecorderConfig {
            checkpoints: Some(CheckpointPolicy {
                signer: Arc::new(signer),
                origin: ORIGIN.into(),
                every_entries: BATCH,
                every: Duration::from_secs(1),
                out: None,
                publish: None,
            }),
            ..RecorderConfig::default()
        };
        let recorder = Recorder::start(store, config).unwrap();
        let thread = {
            let (written, paused, idle, stop) =
                (written.clone(), paused.clone(), idle.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if paused.load(Ordering::SeqCst) {
                        idle.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    idle.store(false, Ordering::SeqCst);
                    let n = written.load(Ordering::SeqCst);
                    let event = AuditEvent::tool_execution(format!("tool{n}"))
                        .input(json!({"n": n}))
                        .build()
                        .unwrap();
                    recorder.record(event).unwrap();
                    written.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(WRITE_EVERY);
                }
                recorder.shutdown().unwrap();
            })
        };
        Writer {
            written,
            paused,
            idle,
            stop,
            thread,
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Pauses, and returns once the writer records nothing more: how many it wrote.
    fn pause(&self) -> u64 {
        self.paused.store(true, Ordering::SeqCst);
        while !self.idle.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.written()
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Stops and shuts the recorder down: how many it wrote.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        self.written.load(Ordering::SeqCst)
    }
}

/// The receivers of every kind, on a runtime of the test's own.
struct Receivers {
    runtime: tokio::runtime::Runtime,
    webhook: sink_support::Receiver,
    otlp_http: otlp::Receiver,
    otlp_grpc: otlp::Receiver,
    syslog: Rsyslog,
    syslog_tls: Rsyslog,
    witness: Witness,
}

/// What a receiver got: the key (`LOG:SEQ`) of every record, in arrival order.
type Arrivals = Vec<String>;

impl Receivers {
    /// Every receiver, or `None` (the test skipped, and says why) without rsyslogd and its
    /// TLS driver; under `CI=true` their absence fails instead.
    fn start(dir: &Path, log_key_pub: &str) -> Option<Receivers> {
        let syslog = Rsyslog::start(false)?;
        let syslog_tls = Rsyslog::start(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (webhook, otlp_http, otlp_grpc) = runtime.block_on(async {
            (
                sink_support::Receiver::start().await,
                otlp::Receiver::start(Protocol::HttpProtobuf).await,
                otlp::Receiver::start(Protocol::Grpc).await,
            )
        });
        let witness = Witness::start(
            dir,
            "witness.test/outage",
            &[format!("{ORIGIN}={log_key_pub}")],
        );
        Some(Receivers {
            runtime,
            webhook,
            otlp_http,
            otlp_grpc,
            syslog,
            syslog_tls,
            witness,
        })
    }

    /// Every receiver down: ports closed, processes killed.
    fn stop(&mut self) {
        self.runtime.block_on(async {
            self.webhook.stop().await;
            self.otlp_http.stop().await;
            self.otlp_grpc.stop().await;
        });
        self.syslog.stop();
        self.syslog_tls.stop();
        self.witness.stop();
    }

    /// Every receiver back, on its port.
    fn restart(&mut self) {
        self.runtime.block_on(async {
            self.webhook.restart().await;
            self.otlp_http.restart(Protocol::HttpProtobuf).await;
            self.otlp_grpc.restart(Protocol::Grpc).await;
        });
        self.syslog.restart();
        self.syslog_tls.restart();
        self.witness.restart();
    }

    /// What each record receiver got, by sink name.
    fn arrivals(&self) -> BTreeMap<&'static str, Arrivals> {
        let syslog_keys = |r: &Rsyslog| -> Arrivals {
            r.received()
                .iter()
                .filter_map(|m| Some(format!("{}:{}", sd_param(m, "log")?, sd_param(m, "seq")?)))
                .collect()
        };
        BTreeMap::from([
            (
                "webhook",
                self.webhook
                    .with(|s| s.records.iter().map(|(k, _)| k.clone()).collect()),
            ),
            ("otlp-http", self.otlp_http.log_keys()),
            ("otlp-grpc", self.otlp_grpc.log_keys()),
            ("syslog", syslog_keys(&self.syslog)),
            ("syslog-tls", syslog_keys(&self.syslog_tls)),
        ])
    }

    /// The keys each receiver got but was never acknowledged for (sent again, rightly): the
    /// webhook's late answers, the OTLP exports answered late or with a `partial_success`.
    /// Syslog has no acknowledgement: `None`.
    fn unacknowledged(&self, sink: &str) -> Option<BTreeSet<String>> {
        match sink {
            "webhook" => Some(self.webhook.with(|s| s.unacknowledged.clone())),
            "otlp-http" => Some(
                self.otlp_http
                    .shared
                    .received
                    .lock()
                    .unwrap()
                    .unacknowledged
                    .clone(),
            ),
            "otlp-grpc" => Some(
                self.otlp_grpc
                    .shared
                    .received
                    .lock()
                    .unwrap()
                    .unacknowledged
                    .clone(),
            ),
            _ => None,
        }
    }
}

/// The record sinks and the seq each refuses forever, for an outage that began after `before`
/// records.
fn record_sinks(before: u64) -> [(&'static str, Option<u64>); 5] {
    [
        ("webhook", Some(before + REFUSED_BY_WEBHOOK)),
        ("otlp-http", Some(before + REFUSED_BY_OTLP_HTTP)),
        ("otlp-grpc", Some(before + REFUSED_BY_OTLP_GRPC)),
        ("syslog", None),
        ("syslog-tls", None),
    ]
}

/// The sinks file: one sink of every kind, each at its receiver.
fn sinks_file(dir: &Path, r: &Receivers) -> PathBuf {
    let common = format!(
        "batch = {BATCH}\nmax_tries = 2\nbackoff_initial_ms = 100\nbackoff_max_ms = 2000\npoll_ms = 50\n"
    );
    let config = format!(
        r#"[[sink]]
name = "webhook"
type = "webhook"
url = "{webhook}"
secret = "{secret}"
{common}
[[sink]]
name = "otlp-http"
type = "otlp"
endpoint = "{otlp_http}"
protocol = "http/protobuf"
signals = "logs"
{common}
[[sink]]
name = "otlp-grpc"
type = "otlp"
endpoint = "{otlp_grpc}"
protocol = "grpc"
signals = "logs"
{common}
[[sink]]
name = "syslog"
type = "syslog"
address = "{syslog}"
format = "cef"
{common}
[[sink]]
name = "syslog-tls"
type = "syslog"
address = "{syslog_tls}"
format = "cef"
tls = {{ ca_file = "{ca}" }}
{common}
[[sink]]
name = "witness"
type = "witness"
target = "tlog-witness"
url = "{witness}"
key = "{witness_key}"
poll_ms = 100
backoff_initial_ms = 100
backoff_max_ms = 2000
"#,
        webhook = r.webhook.url,
        secret = sink_support::SECRET,
        otlp_http = r.otlp_http.endpoint(),
        otlp_grpc = r.otlp_grpc.endpoint(),
        syslog = r.syslog.address(),
        syslog_tls = r.syslog_tls.address(),
        ca = test_tls("ca.pem").display(),
        witness = r.witness.base,
        witness_key = r.witness.key_pub().display(),
    );
    let path = dir.join("sinks.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn follow(db: &Path, config: &Path) -> Child {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(["follow", "--sink"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The row of sink `name` in `sink status --json`.
fn row<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sink"] == name)
        .unwrap_or_else(|| panic!("no row for sink `{name}`: {status}"))
}

/// Whether `keys` holds every seq of `0..n` of `log` (but `refused`).
fn has_all(keys: &[String], log: &str, n: u64, refused: Option<u64>) -> bool {
    let got: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    (0..n)
        .filter(|&s| Some(s) != refused)
        .all(|s| got.contains(format!("{log}:{s}").as_str()))
}

fn run_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Under `rsyslog::`, the prefix `scripts/test` leaves out (and counts as skipped) without
/// rsyslogd: without it there is no syslog receiver, and the test would prove nothing.
mod rsyslog {
    #[test]
    fn every_sink_kind_survives_a_minute_long_outage_a_kill_9_and_a_record_refused_forever() {
        super::outage_kill_and_refusals();
    }
}

/// The scenario of the file's doc, every kind at once.
fn outage_kill_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let db = dir.path().join("audit.db");
    let log_id = SqliteStore::open(&db, SqliteOptions::default())
        .unwrap()
        .log_id()
        .to_string();
    run_ok(
        dir.path(),
        &["keygen", "--name", "log.test", "--out", &path("log.key")],
    );
    let Some(mut receivers) = Receivers::start(dir.path(), &path("log.key.pub")) else {
        return;
    };
    let key = |seq: u64| format!("{log_id}:{seq}");
    let config = sinks_file(dir.path(), &receivers);
    let signer = NoteSigner::from_text(&std::fs::read_to_string(path("log.key")).unwrap()).unwrap();
    let writer = Writer::start(&db, signer);
    let db_spec = db.display().to_string();
    let status = || sink_status(&db_spec, &config);

    // Up: every receiver takes records as they are written, the witness co-signs.
    let mut first = follow(&db, &config);
    wait_until(
        "every receiver to get records and the witness a checkpoint",
        PATIENCE,
        || {
            let arrivals = receivers.arrivals();
            (arrivals.values().all(|keys| keys.len() as u64 >= BATCH)
                && row(&status(), "witness")["cursor"].as_u64() > Some(0))
            .then_some(())
        },
        || format!("{:?}", status()),
    );

    // Down. The writer pauses while they go, so that no syslog batch is in a dead rsyslogd's
    // socket buffer: that loss is TCP syslog's (docs/sinks.md), not one a sink can prevent.
    let before = writer.pause();
    wait_until(
        "every receiver to have what was written",
        PATIENCE,
        || {
            receivers
                .arrivals()
                .values()
                .all(|keys| has_all(keys, &log_id, before, None))
                .then_some(())
        },
        || format!("{} written; {:?}", before, status()),
    );
    receivers.stop();
    let down_at = Instant::now();
    // Records not written yet, so no sink has met them: refused from their first try.
    receivers.webhook.refuse(&key(before + REFUSED_BY_WEBHOOK));
    receivers
        .otlp_http
        .reject(&key(before + REFUSED_BY_OTLP_HTTP));
    receivers
        .otlp_grpc
        .refuse(&key(before + REFUSED_BY_OTLP_GRPC));
    writer.resume();

    // Every sink notices, and says why.
    wait_until(
        "every sink to report its receiver down",
        PATIENCE,
        || {
            let s = status();
            s["sinks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["last_error"].is_string())
                .then_some(())
        },
        || format!("{:?}", status()),
    );

    // Killed in the middle of the outage, with nothing acknowledged since it began; started
    // again while the receivers are still down.
    std::thread::sleep(KILL_AFTER.saturating_sub(down_at.elapsed()));
    first.kill().unwrap(); // SIGKILL: no chance to save anything
    first.wait().unwrap();
    let at_kill = receivers.arrivals();
    let second = follow(&db, &config);
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    assert!(
        receivers.arrivals() == at_kill,
        "nothing arrives while every receiver is down"
    );

    // Back: the writer goes on a moment (and past the refused records, on a slow machine),
    // then stops, and a checkpoint covers the whole log.
    receivers.restart();
    std::thread::sleep(Duration::from_secs(2));
    wait_until(
        "the writer to write past the refused records",
        PATIENCE,
        || (writer.written() > before + REFUSED_BY_OTLP_GRPC + BATCH).then_some(()),
        || format!("{} written", writer.written()),
    );
    let total = writer.finish();
    run_ok(
        dir.path(),
        &[
            "--db",
            &db_spec,
            "checkpoint",
            "--key",
            &path("log.key"),
            "--origin",
            ORIGIN,
        ],
    );

    wait_until(
        "every receiver to get every record",
        PATIENCE,
        || {
            let arrivals = receivers.arrivals();
            record_sinks(before)
                .iter()
                .all(|(sink, refused)| has_all(&arrivals[sink], &log_id, total, *refused))
                .then_some(())
        },
        || format!("{total} written; {:?}", status()),
    );
    let last = wait_until(
        "no lag in sink status, the witness at the whole log",
        PATIENCE,
        || {
            let s = status();
            s["sinks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["lag_records"] == 0 && r["cursor"] == total)
                .then_some(s)
        },
        || format!("{total} written; {:?}", status()),
    );
    terminate(second);

    let arrivals = receivers.arrivals();
    for (sink, refused) in record_sinks(before) {
        let keys = &arrivals[sink];
        // First arrivals: every record but the refused one, in seq order (one log).
        let mut seen = BTreeSet::new();
        let firsts: Vec<&String> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let expected: Vec<String> = (0..total)
            .filter(|&s| Some(s) != refused)
            .map(key)
            .collect();
        assert!(
            firsts.iter().copied().eq(expected.iter()),
            "{sink}: every record once, in seq order"
        );
        // Duplicates: only of what was sent and not acknowledged, at most a delivery's worth.
        let mut counted = BTreeSet::new();
        let twice: Vec<&String> = keys.iter().filter(|k| !counted.insert(*k)).collect();
        assert!(
            twice.len() as u64 <= BATCH,
            "{sink}: {} duplicates",
            twice.len()
        );
        if let Some(unacknowledged) = receivers.unacknowledged(sink) {
            assert!(
                twice.iter().all(|k| unacknowledged.contains(*k)),
                "{sink}: duplicates only of unacknowledged records: {twice:?}"
            );
        }
        // `sink status`: caught up, and the refused record a dead letter of this sink only.
        let r = row(&last, sink);
        assert_eq!(
            r["dead_letters"],
            u64::from(refused.is_some()),
            "{sink}: {r}"
        );
        let letters: Vec<u64> = last["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["sink"] == sink)
            .map(|l| l["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(letters, refused.into_iter().collect::<Vec<_>>(), "{sink}");
    }
    assert_eq!(
        receivers.webhook.with(|s| s.bad_signatures),
        0,
        "every webhook batch signed"
    );
    // The OTLP/HTTP refusal was a `partial_success`, and the record it rejected was never kept.
    assert!(
        !arrivals["otlp-http"].contains(&key(before + REFUSED_BY_OTLP_HTTP)),
        "the rejected record is not kept"
    );

    // The witness co-signed the whole log, and `verify --witness` holds the log to it.
    assert_eq!(
        receivers.witness.witnessed(),
        vec![(ORIGIN.to_string(), total as i64)]
    );
    assert_eq!(row(&last, "witness")["last_error"], Value::Null);
    run_ok(
        dir.path(),
        &[
            "--db",
            &db_spec,
            "verify",
            "--no-record",
            "--key",
            &path("log.key.pub"),
            "--witness",
            &receivers.witness.key_pub().display().to_string(),
        ],
    );
}
