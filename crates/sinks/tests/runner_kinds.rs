//! The sink runner with the OTLP and syslog destinations, against their real receivers (the
//! OTLP HTTP and gRPC servers decoding the official protobuf types, and Debian's rsyslogd): a
//! receiver down for a while and back loses nothing and sees each log in seq order, an OTLP
//! receiver that refuses one record forever puts that one in the dead letters while the rest
//! flows, and a syslog receiver that is down never fills the dead letters (TCP syslog has no
//! refusal: the sink waits for it).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mcp_audit_core::AuditEvent;
use mcp_audit_sinks::config::{Kind, KindConfig};
use mcp_audit_sinks::format::Format;
use mcp_audit_sinks::otlp::{OtlpConfig, Protocol, Signals};
use mcp_audit_sinks::runner::{self, Backoff, SinkSpec, Start};
use mcp_audit_sinks::stats::SinkStats;
use mcp_audit_sinks::status::status;
use mcp_audit_sinks::syslog::SyslogConfig;
use mcp_audit_store::SinkState;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use support::Db;
use support::otlp::{Answer, Receiver};
use support::rsyslog::{Rsyslog, sd_param, wait_for};

const LOG: &str = "log-a";
const BATCH: u32 = 7;

fn call(i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool{i}"))
        .user("alice")
        .input(json!({"n": i}))
        .build()
        .unwrap()
}

fn calls(range: std::ops::Range<u64>) -> Vec<AuditEvent> {
    range.map(call).collect()
}

/// Short backoffs, so that an outage of a second is many retries.
fn spec(name: &str) -> SinkSpec {
    SinkSpec {
        name: name.into(),
        batch: BATCH,
        max_tries: 3,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(80),
        },
        poll: Duration::from_millis(20),
        start: Start::Beginning,
        logs: None,
        redactor: None,
        durable: true,
        lease: Duration::from_secs(15),
    }
}

/// A running sink, stopped (and waited for) by [`Running::stop`].
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<SinkStats>,
}

fn start(db: &Db, spec: SinkSpec, kind: &KindConfig) -> Running {
    let destination = Kind::new(&spec.name, kind).unwrap();
    let stop = CancellationToken::new();
    let stats = Arc::new(SinkStats::default());
    let task = tokio::spawn(runner::run(
        spec,
        destination,
        db.follower(),
        stop.clone(),
        stats.clone(),
    ));
    Running { stop, task, stats }
}

impl Running {
    async fn stop(self) -> Arc<SinkStats> {
        self.stop.cancel();
        self.task.await.unwrap();
        self.stats
    }
}

async fn log_id(db: &Db) -> String {
    let mut state = db.follower();
    tokio::task::spawn_blocking(move || state.logs().unwrap()[0].log_id.clone())
        .await
        .unwrap()
}

/// Runs `f` on the sink's own tables, from a blocking thread.
async fn on_state<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut dyn SinkState) -> T + Send + 'static,
) -> T {
    let mut state = db.follower();
    tokio::task::spawn_blocking(move || f(&mut *state))
        .await
        .unwrap()
}

/// Polls `done` (in the test's runtime) for a minute at most: a bound on a hang.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1_200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

/// The seqs of `log` among `keys` (`LOG:SEQ`), in arrival order.
fn seqs_of(keys: &[String], log: &str) -> Vec<u64> {
    keys.iter()
        .filter_map(|k| k.rsplit_once(':'))
        .filter(|(l, _)| *l == log)
        .map(|(_, s)| s.parse().unwrap())
        .collect()
}

/// `seqs` with each one's repeats left out: the order of first arrivals.
fn first_arrivals(seqs: &[u64]) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    seqs.iter().copied().filter(|s| seen.insert(*s)).collect()
}

// ---------------------------------------------------------------------------------------------
// OTLP

const PROTOCOLS: [Protocol; 2] = [Protocol::HttpProtobuf, Protocol::Grpc];

/// The OTLP sink's `timeout_ms` in these tests: short, so that a late answer is quickly one
/// the sink gave up on.
const TIMEOUT_MS: u64 = 300;

fn otlp(receiver: &Receiver, protocol: Protocol, signals: Signals) -> KindConfig {
    let mut config = OtlpConfig::new(receiver.endpoint(), protocol);
    config.timeout_ms = TIMEOUT_MS;
    config.signals = signals;
    KindConfig::Otlp(config)
}

async fn an_otlp_receiver_down_for_a_while_and_back_gets_every_record_in_seq_order_and_only_unacknowledged_ones_twice(
    db: Db,
) {
    db.record(LOG, calls(0..30)).await;
    let log = log_id(&db).await;
    let mut recorded = 30;
    for protocol in PROTOCOLS {
        // A sink of its own per protocol: each starts from the log's beginning.
        let name = format!("otlp-{protocol:?}");
        // Nothing listens on its port at first: every export fails to connect.
        let mut receiver = Receiver::down(protocol).await;
        let sink = start(&db, spec(&name), &otlp(&receiver, protocol, Signals::Logs));
        until("several failed exports", || sink.stats.snapshot().1 >= 4).await;

        // Up, but answering "unavailable" (HTTP 503, gRPC UNAVAILABLE) for a while: it keeps
        // nothing of what it does not acknowledge.
        receiver.answer(Answer::Unavailable);
        receiver.restart(protocol).await;
        let retries = sink.stats.snapshot().1;
        until("more failed exports", || {
            sink.stats.snapshot().1 >= retries + 3
        })
        .await;
        assert!(receiver.log_keys().is_empty(), "{protocol:?}");

        // Back, but one answer comes after the sink gave up: those records arrived without an
        // acknowledgement, and only those may arrive twice.
        receiver.answer(Answer::Late(Duration::from_millis(2 * TIMEOUT_MS)));
        until("a late answer", || {
            !receiver
                .shared
                .received
                .lock()
                .unwrap()
                .unacknowledged
                .is_empty()
        })
        .await;
        receiver.answer(Answer::Accept);
        db.record(LOG, calls(recorded..recorded + 15)).await;
        recorded += 15;
        until("every record", || {
            first_arrivals(&seqs_of(&receiver.log_keys(), &log)).len() as u64 >= recorded
        })
        .await;
        let stats = sink.stop().await;
        receiver.stop().await;

        let keys = receiver.log_keys();
        assert_eq!(
            first_arrivals(&seqs_of(&keys, &log)),
            (0..recorded).collect::<Vec<_>>(),
            "{protocol:?}: every record, in seq order"
        );
        let unacknowledged = receiver
            .shared
            .received
            .lock()
            .unwrap()
            .unacknowledged
            .clone();
        let mut counted = BTreeMap::<&str, u32>::new();
        for k in &keys {
            *counted.entry(k).or_default() += 1;
        }
        let twice: Vec<&str> = counted
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k)
            .collect();
        assert!(!twice.is_empty(), "{protocol:?}: the late batch came again");
        assert!(
            twice.iter().all(|k| unacknowledged.contains(*k)),
            "{protocol:?}: duplicates only of unacknowledged records: {twice:?} vs {unacknowledged:?}"
        );
        let (_, _, dead, lag) = stats.snapshot();
        assert_eq!((dead, lag), (0, 0), "{protocol:?}");
        let (n, l) = (name.clone(), log.clone());
        let cursor = on_state(&db, move |s| s.cursor(&n, &l).unwrap().unwrap()).await;
        assert_eq!(
            (cursor.next_seq, cursor.tries, cursor.last_error),
            (recorded, 0, None)
        );
    }
}

async fn with_both_signals_a_receiver_back_from_down_gets_every_log_and_span_in_seq_order(db: Db) {
    db.record(LOG, calls(0..20)).await;
    let log = log_id(&db).await;
    let protocol = Protocol::HttpProtobuf;
    let mut receiver = Receiver::down(protocol).await;
    let sink = start(&db, spec("both"), &otlp(&receiver, protocol, Signals::Both));
    until("several failed exports", || sink.stats.snapshot().1 >= 4).await;
    receiver.restart(protocol).await;
    until("every span", || receiver.span_keys().len() >= 20).await;
    sink.stop().await;
    receiver.stop().await;

    // A batch counts as delivered once both its logs and its spans are acknowledged; here
    // each was, at its first try.
    let expected: Vec<u64> = (0..20).collect();
    assert_eq!(seqs_of(&receiver.log_keys(), &log), expected);
    assert_eq!(seqs_of(&receiver.span_keys(), &log), expected);
}

async fn an_otlp_record_refused_forever_goes_to_the_dead_letters_and_the_rest_flows(db: Db) {
    let ids = db.record(LOG, calls(0..20)).await;
    let log = log_id(&db).await;
    for protocol in PROTOCOLS {
        let name = format!("otlp-{protocol:?}");
        let receiver = Receiver::start(protocol).await;
        // HTTP 400 / gRPC INVALID_ARGUMENT for any export holding seq 9, whatever its index:
        // OTLP does not say which record, so the runner narrows the batch down to it.
        receiver.refuse(&format!("{log}:9"));
        let sink = start(&db, spec(&name), &otlp(&receiver, protocol, Signals::Both));
        until("the records after the refused one", || {
            seqs_of(&receiver.span_keys(), &log).contains(&19)
        })
        .await;
        let stats = sink.stop().await;

        let expected: Vec<u64> = (0..20).filter(|&s| s != 9).collect();
        let logs = seqs_of(&receiver.log_keys(), &log);
        assert_eq!(first_arrivals(&logs), expected, "{protocol:?}: logs");
        assert_eq!(
            first_arrivals(&seqs_of(&receiver.span_keys(), &log)),
            expected,
            "{protocol:?}: spans"
        );
        // A refused export keeps nothing, so narrowing sends nothing twice.
        assert_eq!(logs.len(), expected.len(), "{protocol:?}: {logs:?}");
        assert_eq!(stats.snapshot().2, 1);

        let n = name.clone();
        let (letters, statuses) = on_state(&db, move |s| {
            let letters = s.dead_letters(Some(&n)).unwrap();
            let statuses = status(s, None).unwrap();
            (
                letters,
                statuses.into_iter().find(|st| st.sink == n).unwrap(),
            )
        })
        .await;
        assert_eq!(letters.len(), 1, "{protocol:?}");
        assert_eq!(
            (letters[0].seq, letters[0].event_id, letters[0].tries),
            (9, ids[9], 3)
        );
        let said = match protocol {
            Protocol::HttpProtobuf => "400",
            Protocol::Grpc => "bad attribute",
        };
        assert!(
            letters[0].last_error.contains(said),
            "{protocol:?}: {}",
            letters[0].last_error
        );
        assert_eq!(
            (statuses.cursor, statuses.lag_records, statuses.dead_letters),
            (20, 0, 1)
        );
    }
}

/// A receiver that rejects one record in a `partial_success` keeps the rest of each export
/// that holds it, and OTLP does not say which record it was: the runner narrows the refused
/// batch one record at a time, in one pass. Regression: it went back to whole batches after
/// each record taken, sending the rest of the batch again for every record before the refused
/// one (here 7 exports of up to 7 records, each kept again by the receiver).
async fn an_otlp_partial_success_narrows_its_batch_in_one_pass_and_each_record_comes_at_most_twice(
    db: Db,
) {
    db.record(LOG, calls(0..20)).await;
    let log = log_id(&db).await;
    for protocol in PROTOCOLS {
        let name = format!("otlp-partial-{protocol:?}");
        let receiver = Receiver::start(protocol).await;
        // Seq 13 is the last of the second batch (7..14): the narrowing passes 7..=12 first.
        receiver.reject(&format!("{log}:13"));
        let sink = start(&db, spec(&name), &otlp(&receiver, protocol, Signals::Logs));
        until("the records after the rejected one", || {
            seqs_of(&receiver.log_keys(), &log).contains(&19)
        })
        .await;
        sink.stop().await;

        let logs = seqs_of(&receiver.log_keys(), &log);
        let expected: Vec<u64> = (0..20).filter(|&s| s != 13).collect();
        assert_eq!(first_arrivals(&logs), expected, "{protocol:?}");
        // The export holding seq 13 was kept without it, unacknowledged: 7..=12 came then, and
        // once more each alone while the batch was narrowed; nothing else twice.
        let mut twice: Vec<u64> = logs.clone();
        twice.sort_unstable();
        let twice: Vec<u64> = twice
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        assert_eq!(twice, (7..13).collect::<Vec<_>>(), "{protocol:?}: {logs:?}");
        let unacknowledged = receiver
            .shared
            .received
            .lock()
            .unwrap()
            .unacknowledged
            .clone();
        assert!(
            twice
                .iter()
                .all(|s| unacknowledged.contains(&format!("{log}:{s}"))),
            "{protocol:?}: duplicates only of unacknowledged records"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Syslog

fn syslog(receiver: &Rsyslog) -> KindConfig {
    KindConfig::Syslog(SyslogConfig {
        address: receiver.address(),
        tls: None,
        app_name: "mcp-audit".into(),
        hostname: Some("proxy-1.example.net".into()),
        facility: mcp_audit_sinks::syslog::Facility::Local4,
        format: Format::Cef,
        framing: mcp_audit_sinks::syslog::Framing::OctetCounting,
        timeout_seconds: 2,
    })
}

/// The seqs of `log` that rsyslogd wrote, in arrival order.
fn syslog_seqs(receiver: &Rsyslog, log: &str) -> Vec<u64> {
    receiver
        .received()
        .iter()
        .filter(|m| sd_param(m, "log").as_deref() == Some(log))
        .filter_map(|m| sd_param(m, "seq")?.parse().ok())
        .collect()
}

async fn a_syslog_receiver_stopped_and_restarted_gets_every_record_in_order_and_nothing_is_dead(
    db: Db,
) {
    let Some(mut receiver) = Rsyslog::start(false) else {
        return;
    };
    db.record(LOG, calls(0..20)).await;
    let log = log_id(&db).await;
    let sink = start(&db, spec("siem"), &syslog(&receiver));
    wait_for("the first records", || {
        syslog_seqs(&receiver, &log).contains(&19).then_some(())
    });

    // A crash of the receiver: the connection the sink holds is dead and nothing listens,
    // far longer than max_tries backoffs; TCP syslog has no refusal, so nothing may be dead.
    receiver.stop();
    db.record(LOG, calls(20..40)).await;
    until("many failed deliveries", || {
        sink.stats.snapshot().1 >= 3 * u64::from(spec("siem").max_tries)
    })
    .await;
    let letters = on_state(&db, |s| s.dead_letters(Some("siem")).unwrap()).await;
    assert!(
        letters.is_empty(),
        "a down receiver filled the dead letters"
    );

    receiver.restart();
    wait_for("every record", || {
        syslog_seqs(&receiver, &log).contains(&39).then_some(())
    });
    let stats = sink.stop().await;

    let seqs = syslog_seqs(&receiver, &log);
    assert_eq!(first_arrivals(&seqs), (0..40).collect::<Vec<_>>());
    let mut counted = BTreeMap::<u64, usize>::new();
    for s in &seqs {
        *counted.entry(*s).or_default() += 1;
    }
    let twice = counted.values().filter(|n| **n > 1).count();
    assert!(
        twice <= BATCH as usize,
        "at most the batch in flight arrives twice: {seqs:?}"
    );
    let (_, retries, dead, lag) = stats.snapshot();
    assert!(retries >= 9 && dead == 0 && lag == 0);
    let statuses = on_state(&db, |s| status(s, None).unwrap()).await;
    assert_eq!(
        (statuses[0].cursor, statuses[0].dead_letters),
        (40, 0),
        "sink status"
    );
}

on_both_backends!(
    an_otlp_receiver_down_for_a_while_and_back_gets_every_record_in_seq_order_and_only_unacknowledged_ones_twice,
    with_both_signals_a_receiver_back_from_down_gets_every_log_and_span_in_seq_order,
    an_otlp_record_refused_forever_goes_to_the_dead_letters_and_the_rest_flows,
    an_otlp_partial_success_narrows_its_batch_in_one_pass_and_each_record_comes_at_most_twice,
    a_syslog_receiver_stopped_and_restarted_gets_every_record_in_order_and_nothing_is_dead,
);
