//! The sink runner against a real webhook receiver (an HTTP server in the test that checks
//! every signature and injects failures), on SQLite and PostgreSQL: a receiver that is down
//! and comes back loses nothing and sees each log in order, a record refused forever lands in
//! the dead letters while the rest flows, erased payloads are never sent, and a sink's own
//! redaction applies before anything leaves.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mcp_audit_core::AuditEvent;
use mcp_audit_core::redact::Redactor;
use mcp_audit_sinks::config::{Kind, KindConfig};
use mcp_audit_sinks::runner::{self, Backoff, SinkSpec, Start};
use mcp_audit_sinks::stats::SinkStats;
use mcp_audit_sinks::status::status;
use mcp_audit_sinks::webhook::WebhookConfig;
use mcp_audit_store::Maintain;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use support::{Db, Mode, Receiver, SECRET};

const LOG: &str = "log-a";

fn call(i: u64) -> AuditEvent {
    AuditEvent::tool_execution(format!("tool{i}"))
        .user("alice")
        .input(json!({"n": i, "ticket": format!("TCK-{i:06}")}))
        .output(json!({"personal": format!("p{i}")}))
        .build()
        .unwrap()
}

fn calls(range: std::ops::Range<u64>) -> Vec<AuditEvent> {
    range.map(call).collect()
}

fn spec(name: &str) -> SinkSpec {
    SinkSpec {
        name: name.into(),
        batch: 7,
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

fn webhook(receiver: &Receiver, timeout_ms: u64) -> KindConfig {
    let mut config: WebhookConfig = toml::from_str(&format!(
        "url = \"{}\"\nsecret = \"{SECRET}\"\ntimeout_ms = {timeout_ms}",
        receiver.url
    ))
    .unwrap();
    config.timeout_ms = timeout_ms;
    KindConfig::Webhook(config)
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

/// The seqs of `log` in the order they first arrived.
fn first_arrivals(receiver: &Receiver, log: &str) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    receiver.with(|s| {
        s.records
            .iter()
            .filter(|(_, r)| r["log_id"] == log)
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(_, r)| r["seq"].as_u64().unwrap())
            .collect()
    })
}

async fn log_id(db: &Db) -> String {
    let mut state = db.follower();
    tokio::task::spawn_blocking(move || state.logs().unwrap()[0].log_id.clone())
        .await
        .unwrap()
}

async fn a_receiver_down_for_a_while_loses_nothing_and_sees_each_log_in_order(db: Db) {
    db.record(LOG, calls(0..40)).await;
    let log = log_id(&db).await;
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Down);
    let sink = start(&db, spec("hook"), &webhook(&receiver, 300));
    receiver
        .wait_for("several refused attempts", |s| {
            s.answers.get(&503).copied().unwrap_or(0) >= 4
        })
        .await;
    assert!(
        receiver.keys().is_empty(),
        "nothing is kept while the receiver is down"
    );

    // Back, but one answer comes after the client gave up: those records arrived without an
    // acknowledgement, and only those may arrive twice.
    receiver.set_mode(Mode::Slow(Duration::from_millis(600)));
    receiver
        .wait_for("a slow answer", |s| !s.unacknowledged.is_empty())
        .await;
    receiver.set_mode(Mode::Up);
    db.record(LOG, calls(40..60)).await;
    receiver
        .wait_for("every record", |s| {
            s.records
                .iter()
                .map(|(k, _)| k)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 60
        })
        .await;
    let stats = sink.stop().await;

    assert_eq!(
        first_arrivals(&receiver, &log),
        (0..60).collect::<Vec<_>>(),
        "in order, none lost"
    );
    let (duplicates, unacknowledged, bad) = receiver.with(|s| {
        let mut counted = std::collections::BTreeMap::<&str, u32>::new();
        for (k, _) in &s.records {
            *counted.entry(k).or_default() += 1;
        }
        let twice: Vec<String> = counted
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k.to_string())
            .collect();
        (twice, s.unacknowledged.clone(), s.bad_signatures)
    });
    assert!(
        duplicates.iter().all(|k| unacknowledged.contains(k)),
        "duplicates only of unacknowledged records: {duplicates:?} vs {unacknowledged:?}"
    );
    assert_eq!(bad, 0, "every batch was signed with the shared secret");
    let (delivered, retries, dead, lag) = stats.snapshot();
    assert!(delivered >= 60 && retries >= 5 && dead == 0 && lag == 0);

    let mut state = db.follower();
    let cursor = tokio::task::spawn_blocking(move || state.cursor("hook", &log).unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (cursor.next_seq, cursor.tries, cursor.last_error),
        (60, 0, None)
    );
}

async fn a_record_refused_forever_goes_to_the_dead_letters_and_the_rest_flows(db: Db) {
    let ids = db.record(LOG, calls(0..20)).await;
    let log = log_id(&db).await;
    let receiver = Receiver::start().await;
    receiver.refuse(&format!("{log}:9"));
    let sink = start(&db, spec("hook"), &webhook(&receiver, 5_000));
    receiver
        .wait_for("the records after the refused one", |s| {
            s.records.iter().any(|(_, r)| r["seq"] == 19)
        })
        .await;
    let stats = sink.stop().await;

    let arrived = first_arrivals(&receiver, &log);
    let expected: Vec<u64> = (0..20).filter(|&s| s != 9).collect();
    assert_eq!(arrived, expected);
    assert_eq!(
        receiver.with(|s| s.answers.get(&422).copied()),
        Some(3),
        "tried max_tries times"
    );
    assert_eq!(stats.snapshot().2, 1);

    let mut state = db.follower();
    let (letters, statuses) = tokio::task::spawn_blocking(move || {
        (
            state.dead_letters(Some("hook")).unwrap(),
            status(&mut state, None).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].seq, letters[0].event_id, letters[0].tries),
        (9, ids[9], 3)
    );
    assert!(
        letters[0].last_error.contains("422"),
        "{}",
        letters[0].last_error
    );
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        (
            statuses[0].cursor,
            statuses[0].lag_records,
            statuses[0].dead_letters
        ),
        (20, 0, 1)
    );
}

async fn an_erased_payload_is_never_sent_and_a_sinks_redaction_applies(db: Db) {
    let ids = db.record(LOG, calls(0..3)).await;
    let mut writer = db.writer(LOG);
    let erased = ids[1];
    tokio::task::spawn_blocking(move || assert!(writer.erase_payload(erased).unwrap()))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let mut spec = spec("hook");
    let policy = "secrets = false\n[[rule]]\nid = \"ticket\"\npattern = \"TCK-[0-9]{6}\"\n";
    spec.redactor = Some(Arc::new(
        Redactor::from_toml(policy, |_| Err("no key".into())).unwrap(),
    ));
    let sink = start(&db, spec, &webhook(&receiver, 5_000));
    receiver
        .wait_for("three records", |s| s.records.len() >= 3)
        .await;
    sink.stop().await;

    let records: Vec<serde_json::Value> =
        receiver.with(|s| s.records.iter().map(|(_, r)| r.clone()).collect());
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("p1"), "the erased payload left: {text}");
    assert!(
        !text.contains("TCK-"),
        "the sink's redaction did not apply: {text}"
    );
    assert!(text.contains("p0") && text.contains("p2"));
    assert_eq!(records[1]["redacted"], true);
    assert_eq!(records[1]["event"]["id"], erased.to_string());
    assert!(
        records[0]["event"]["compliance"]["redactions"]
            .to_string()
            .contains("ticket")
    );
}

async fn a_new_cursor_that_starts_at_the_end_sends_only_what_comes_after(db: Db) {
    db.record(LOG, calls(0..5)).await;
    let log = log_id(&db).await;
    let receiver = Receiver::start().await;
    let mut spec = spec("late");
    spec.start = Start::End;
    let sink = start(&db, spec, &webhook(&receiver, 5_000));
    let mut state = db.follower();
    let name_log = log.clone();
    // The cursor exists (at the end) before anything new is recorded.
    for _ in 0..1_200 {
        let mut s = db.follower();
        let l = name_log.clone();
        if tokio::task::spawn_blocking(move || s.cursor("late", &l).unwrap())
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.record(LOG, calls(5..8)).await;
    receiver
        .wait_for("the new records", |s| s.records.len() >= 3)
        .await;
    sink.stop().await;
    assert_eq!(first_arrivals(&receiver, &log), [5, 6, 7]);
    let c = tokio::task::spawn_blocking(move || state.cursor("late", &log).unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(c.next_seq, 8);
}

on_both_backends!(
    a_receiver_down_for_a_while_loses_nothing_and_sees_each_log_in_order,
    a_record_refused_forever_goes_to_the_dead_letters_and_the_rest_flows,
    an_erased_payload_is_never_sent_and_a_sinks_redaction_applies,
    a_new_cursor_that_starts_at_the_end_sends_only_what_comes_after,
);

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_log_of_the_database_is_followed() {
    let Some(db) = Db::new(support::Backend::Postgres) else {
        return;
    };
    db.record("log-a", calls(0..10)).await;
    db.record("log-b", calls(10..25)).await;
    let receiver = Receiver::start().await;
    let sink = start(&db, spec("hook"), &webhook(&receiver, 5_000));
    receiver
        .wait_for("both logs", |s| s.records.len() >= 25)
        .await;
    db.record("log-b", calls(25..27)).await;
    receiver
        .wait_for("the new records", |s| s.records.len() >= 27)
        .await;
    sink.stop().await;
    assert_eq!(
        first_arrivals(&receiver, "log-a"),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        first_arrivals(&receiver, "log-b"),
        (0..17).collect::<Vec<_>>()
    );
    let keys = receiver.keys();
    assert!(keys.contains("log-a:0") && keys.contains("log-b:16"));
}
