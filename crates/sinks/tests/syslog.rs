//! The syslog sink against Debian's rsyslog, started by each test on a port of its own: what
//! arrives parses as RFC 5424 with the record key in its structured data, and its body as CEF,
//! LEEF or OCSF with the event's fields; hostile values cannot split or forge a record; a
//! stopped receiver is `Unavailable` and a restarted one gets the batch; TLS with a CA that
//! vouches for the receiver works and one that does not is refused.
//!
//! Events come from a real SQLite store, recorded by the `Recorder` and read back with
//! `Read::for_each`, as the runner reads them.

mod support;

use std::collections::HashMap;

use mcp_audit_core::{AuditEvent, Classification, Outcome};
use mcp_audit_sinks::format::Format;
use mcp_audit_sinks::syslog::{Syslog, SyslogConfig, SyslogTls};
use mcp_audit_sinks::{Destination, Failure};
use mcp_audit_store::{
    Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore, StoredEvent,
};
use serde_json::{Value, json};
use tempfile::TempDir;

use support::rsyslog::{Rsyslog, sd_param, test_tls};

/// A value that holds every delimiter of every format and of syslog framing: CEF and LEEF
/// pipes, equals signs and backslashes, a tab, line breaks, and a line that looks like the
/// start of another octet-counted RFC 5424 message.
const HOSTILE: &str = "evil|tool\\ a=b\tc\r\n42 <13>1 2026-01-01T00:00:00Z h app - - [x@1 log=\"y\" seq=\"9\"] CEF:0|forged|x|1|2|3|10|";

// ---------------------------------------------------------------------------------------
// The receiver

// Rsyslog, `wait_for` and `sd_param` are in `support/rsyslog.rs`, shared with the runner's suites.

// ---------------------------------------------------------------------------------------
// The events

/// Records `events` in a new SQLite store and reads them back as the runner does (on a thread
/// of its own: the recorder blocks, which a runtime's thread may not).
fn stored(events: Vec<AuditEvent>) -> (TempDir, Vec<StoredEvent>) {
    std::thread::spawn(move || record_and_read(events))
        .join()
        .unwrap()
}

fn record_and_read(events: Vec<AuditEvent>) -> (TempDir, Vec<StoredEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default()).unwrap(),
        RecorderConfig::default(),
    )
    .unwrap();
    for event in events {
        recorder.record(event).unwrap();
    }
    recorder.shutdown().unwrap();
    let mut reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    let mut out = Vec::new();
    reader
        .for_each(&Filter::default(), &mut |e| {
            out.push(e);
            Ok(())
        })
        .unwrap();
    (dir, out)
}

/// A plain call, a denied one on restricted data with a hostile operation, user and session,
/// and a tool error.
fn sample_events() -> Vec<AuditEvent> {
    vec![
        AuditEvent::tool_execution("read_file")
            .user("alice")
            .session("s-1")
            .server("filesystem")
            .client_ip("192.0.2.7")
            .user_agent("claude-code/1.0")
            .input(json!({"path": "/etc/hosts"}))
            .build()
            .unwrap(),
        AuditEvent::tool_execution(HOSTILE)
            .user(HOSTILE)
            .session(HOSTILE)
            .server("db|prod")
            .client_ip("not an address")
            .outcome(Outcome::Denied)
            .classification(Classification::Restricted)
            .input(json!({"sql": HOSTILE}))
            .build()
            .unwrap(),
        AuditEvent::tool_execution("query")
            .user("bob")
            .outcome(Outcome::ToolError)
            .build()
            .unwrap(),
    ]
}

fn config(address: String, format: Format) -> SyslogConfig {
    SyslogConfig {
        address,
        tls: None,
        app_name: "mcp-audit".into(),
        hostname: Some("proxy-1.example.net".into()),
        facility: mcp_audit_sinks::syslog::Facility::Local4,
        format,
        framing: mcp_audit_sinks::syslog::Framing::OctetCounting,
        timeout_seconds: 10,
    }
}

// ---------------------------------------------------------------------------------------
// Parsers the test trusts: written from the specifications, apart from the sink's code

/// Splits a CEF line into its seven header fields and its extension, undoing the escapes.
fn parse_cef(line: &str) -> (Vec<String>, HashMap<String, String>) {
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while header.len() < 7 {
        match chars.next().expect("a CEF header has seven fields") {
            '\\' => field.push(chars.next().unwrap()),
            '|' => header.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    // The extension: `key=value` pairs split at spaces before the next unescaped `key=`.
    let ext: String = chars.collect();
    let mut pairs = HashMap::new();
    let mut key = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut it = ext.chars().peekable();
    let mut raw_tokens: Vec<(String, String)> = Vec::new();
    while let Some(c) = it.next() {
        if !in_value {
            if c == '=' {
                in_value = true;
            } else {
                key.push(c);
            }
            continue;
        }
        match c {
            '\\' => match it.next().unwrap() {
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                other => value.push(other),
            },
            '=' => {
                // An unescaped `=` ends the value: its last word was the next key.
                let cut = value.rfind(' ').expect("a space before the next key");
                let next_key = value[cut + 1..].to_string();
                value.truncate(cut);
                raw_tokens.push((std::mem::take(&mut key), std::mem::take(&mut value)));
                key = next_key;
            }
            c => value.push(c),
        }
    }
    raw_tokens.push((key, value));
    for (k, v) in raw_tokens {
        assert!(pairs.insert(k.clone(), v).is_none(), "key {k} twice");
    }
    (header, pairs)
}

/// Splits a LEEF 2.0 line into its six header fields and its tab-delimited attributes.
fn parse_leef(line: &str) -> (Vec<String>, HashMap<String, String>) {
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while header.len() < 6 {
        match chars.next().expect("a LEEF 2.0 header has six fields") {
            '\\' => field.push(chars.next().unwrap()),
            '|' => header.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    assert_eq!(header[5], "x09", "the delimiter is the tab");
    let attributes: String = chars.collect();
    let mut pairs = HashMap::new();
    for attribute in attributes.split('\t') {
        let (key, raw) = attribute.split_once('=').expect("key=value");
        let mut value = String::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.next().unwrap() {
                    't' => value.push('\t'),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        assert!(
            pairs.insert(key.to_string(), value).is_none(),
            "key {key} twice"
        );
    }
    (header, pairs)
}

/// What every message must be, whatever its body: RFC 5424, ours, in seq order, one per
/// record, with its record key. Returns the bodies.
fn check_syslog(received: &[Value], events: &[StoredEvent]) -> Vec<String> {
    assert_eq!(
        received.len(),
        events.len(),
        "one message per record: {received:#?}"
    );
    received
        .iter()
        .zip(events)
        .map(|(m, e)| {
            assert_eq!(m["protocol-version"], "1", "parsed as RFC 5424: {m}");
            assert_eq!(m["app-name"], "mcp-audit");
            assert_eq!(m["hostname"], "proxy-1.example.net");
            assert_eq!(m["msgid"], "tool_execution");
            assert_eq!(m["syslogfacility"], "20", "local4");
            assert_eq!(
                m["timereported"],
                e.event
                    .timestamp
                    .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
            );
            assert_eq!(sd_param(m, "log").as_deref(), Some(e.log_id.as_str()));
            assert_eq!(sd_param(m, "seq"), Some(e.seq.to_string()));
            m["msg"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn deliver_all(format: Format) -> Option<(Rsyslog, Vec<StoredEvent>, Vec<String>)> {
    let receiver = Rsyslog::start(false)?;
    let (_db, events) = stored(sample_events());
    let mut sink = Syslog::new(config(receiver.address(), format)).unwrap();
    sink.deliver(&events).await.unwrap();
    let received = receiver.received_through(events.last().unwrap().seq);
    let bodies = check_syslog(&received, &events);
    Some((receiver, events, bodies))
}

// ---------------------------------------------------------------------------------------
// Tests

/// The tests with rsyslog as the receiver (`scripts/test` leaves them out, counted as skipped,
/// where rsyslogd is not installed).
mod rsyslog {
    use super::*;

    #[tokio::test]
    async fn cef_records_arrive_as_rfc5424_and_parse_back_to_the_events_fields_even_when_hostile() {
        let Some((_receiver, events, bodies)) = deliver_all(Format::Cef).await else {
            return;
        };
        for (body, event) in bodies.iter().zip(&events) {
            let (header, ext) = parse_cef(body);
            let e = &event.event;
            assert_eq!(header[0], "CEF:0");
            assert_eq!(header[1], "mcp-audit");
            assert_eq!(header[2], "mcp-audit");
            // The header has no escape for line breaks: they are spaces there, exact in cs6.
            assert_eq!(
                header[4],
                format!(
                    "tool_execution/{}",
                    e.operation.replace(['\r', '\n', '\t'], " ")
                )
            );
            assert_eq!(ext["rt"], e.timestamp.as_millisecond().to_string());
            assert_eq!(ext["act"], "EXECUTE");
            assert_eq!(ext["cat"], "tool_execution");
            assert_eq!(ext["outcome"], e.outcome.as_str());
            assert_eq!(ext.get("suser"), e.actor.user_id.as_ref());
            assert_eq!(ext["externalId"], e.id.to_string());
            let labelled = |label: &str| {
                (1..=6)
                    .find(|n| ext.get(&format!("cs{n}Label")).map(String::as_str) == Some(label))
                    .map(|n| ext[&format!("cs{n}")].clone())
            };
            assert_eq!(labelled("logId"), Some(event.log_id.clone()));
            assert_eq!(labelled("seq"), Some(event.seq.to_string()));
            assert_eq!(labelled("leafHash"), Some(event.leaf_hash.to_string()));
            assert_eq!(labelled("operation"), Some(e.operation.clone()));
            assert_eq!(labelled("sessionId"), e.session_id.clone());
            assert_eq!(labelled("serverName"), e.target.server_name.clone());
        }
        let (header, ext) = parse_cef(&bodies[0]);
        assert_eq!(
            header[6], "1",
            "a success on internal data is informational"
        );
        assert_eq!(ext["src"], "192.0.2.7");
        assert_eq!(ext["requestClientApplication"], "claude-code/1.0");
        let (header, ext) = parse_cef(&bodies[1]);
        assert_eq!(header[6], "8", "a denial is high");
        assert!(!ext.contains_key("src"), "not an address, so not in `src`");
        let (header, _) = parse_cef(&bodies[2]);
        assert_eq!(header[6], "5", "a tool error is medium");
    }

    #[tokio::test]
    async fn leef_records_arrive_as_rfc5424_and_parse_back_to_the_events_fields_even_when_hostile()
    {
        let Some((_receiver, events, bodies)) = deliver_all(Format::Leef).await else {
            return;
        };
        for (body, event) in bodies.iter().zip(&events) {
            let (header, attrs) = parse_leef(body);
            let e = &event.event;
            assert_eq!(header[0], "LEEF:2.0");
            assert_eq!(header[1], "mcp-audit");
            assert_eq!(
                header[4],
                format!(
                    "tool_execution/{}",
                    e.operation.replace(['\r', '\n', '\t'], " ")
                )
            );
            assert_eq!(attrs["resource"], e.operation);
            assert_eq!(attrs.get("usrName"), e.actor.user_id.as_ref());
            assert_eq!(attrs.get("sessionId"), e.session_id.as_ref());
            assert_eq!(attrs["logId"], event.log_id);
            assert_eq!(attrs["seq"], event.seq.to_string());
            assert_eq!(attrs["leafHash"], event.leaf_hash.to_string());
            assert_eq!(attrs["eventId"], e.id.to_string());
            assert_eq!(attrs["outcome"], e.outcome.as_str());
            assert_eq!(attrs["devTimeFormat"], "yyyy-MM-dd'T'HH:mm:ss.SSSZ");
            assert_eq!(
                attrs["devTime"],
                e.timestamp
                    .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
                    .to_string()
            );
        }
        assert_eq!(parse_leef(&bodies[0]).1["src"], "192.0.2.7");
        assert_eq!(parse_leef(&bodies[1]).1["sev"], "8");
        assert_eq!(parse_leef(&bodies[1]).1["classification"], "restricted");
    }

    #[tokio::test]
    async fn ocsf_records_arrive_as_api_activity_json_with_the_record_key_and_the_rest_unmapped() {
        let Some((_receiver, events, bodies)) = deliver_all(Format::Ocsf).await else {
            return;
        };
        for (body, event) in bodies.iter().zip(&events) {
            let r: Value = serde_json::from_str(body).unwrap();
            let e = &event.event;
            assert_eq!(r["class_uid"], 6003);
            assert_eq!(r["category_uid"], 6);
            assert_eq!(r["activity_id"], 99, "EXECUTE has no CRUD activity");
            assert_eq!(r["activity_name"], "EXECUTE");
            assert_eq!(r["type_uid"], 600399);
            assert_eq!(r["time"], e.timestamp.as_millisecond());
            assert_eq!(
                r["metadata"]["uid"],
                format!("{}:{}", event.log_id, event.seq)
            );
            assert_eq!(r["metadata"]["product"]["name"], "mcp-audit");
            assert_eq!(r["api"]["operation"], e.operation.as_str());
            assert_eq!(
                r["actor"]["user"]["uid"].as_str(),
                e.actor.user_id.as_deref()
            );
            assert_eq!(
                r["actor"]["session"]["uid"].as_str(),
                e.session_id.as_deref()
            );
            assert_eq!(r["unmapped"]["seq"], event.seq);
            assert_eq!(r["unmapped"]["leaf_hash"], event.leaf_hash.to_string());
            let payload = serde_json::to_value(&e.payload).unwrap();
            if payload == json!({}) {
                assert!(
                    r["unmapped"].get("payload").is_none(),
                    "no payload, no field"
                );
            } else {
                assert_eq!(r["unmapped"]["payload"], payload, "the payload as stored");
            }
        }
        let first: Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(first["status_id"], 1);
        assert_eq!(first["severity_id"], 1);
        assert_eq!(first["src_endpoint"]["ip"], "192.0.2.7");
        assert_eq!(first["api"]["service"]["name"], "filesystem");
        let denied: Value = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!(denied["status_id"], 2);
        assert_eq!(denied["status_detail"], "denied");
        assert_eq!(denied["severity_id"], 4);
        assert!(denied.get("src_endpoint").is_none());
        assert_eq!(denied["unmapped"]["client_ip"], "not an address");
    }

    #[tokio::test]
    async fn json_records_arrive_as_the_stored_events_own_json() {
        let Some((_receiver, events, bodies)) = deliver_all(Format::Json).await else {
            return;
        };
        for (body, event) in bodies.iter().zip(&events) {
            let back: Value = serde_json::from_str(body).unwrap();
            assert_eq!(back, serde_json::to_value(event).unwrap());
        }
    }

    #[tokio::test]
    async fn a_stopped_receiver_is_unavailable_and_once_restarted_gets_the_batch_in_order() {
        stopped_and_restarted(false).await;
    }

    #[tokio::test]
    async fn a_stopped_tls_receiver_is_unavailable_and_once_restarted_gets_the_batch_in_order() {
        stopped_and_restarted(true).await;
    }

    async fn stopped_and_restarted(tls: bool) {
        let Some(mut receiver) = Rsyslog::start(tls) else {
            return;
        };
        let (_db, events) = stored(
            (0..6)
                .map(|i| {
                    AuditEvent::tool_execution(format!("tool{i}"))
                        .user("alice")
                        .build()
                        .unwrap()
                })
                .collect(),
        );
        let mut cfg = config(receiver.address(), Format::Cef);
        if tls {
            cfg.tls = Some(SyslogTls {
                ca_file: test_tls("ca.pem"),
                server_name: None,
            });
        }
        let mut sink = Syslog::new(cfg).unwrap();
        sink.deliver(&events[..3]).await.unwrap();
        receiver.received_through(events[2].seq);

        // A crash of the receiver: the connection we hold is dead, and nothing listens.
        receiver.stop();
        let failure = sink.deliver(&events[3..]).await.unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(_)),
            "expected Unavailable, got {failure:?}"
        );
        // And again: a retry while it is still down is no different.
        assert!(matches!(
            sink.deliver(&events[3..]).await,
            Err(Failure::Unavailable(_))
        ));

        receiver.restart();
        sink.deliver(&events[3..]).await.unwrap();
        let received = receiver.received_through(events[5].seq);
        let bodies = check_syslog(&received, &events);
        for (body, event) in bodies.iter().zip(&events) {
            assert_eq!(parse_cef(body).1["cs6"], event.event.operation);
        }
    }

    #[tokio::test]
    async fn a_frozen_receiver_is_unavailable_after_the_timeout_and_once_thawed_gets_every_record()
    {
        let Some(receiver) = Rsyslog::start(false) else {
            return;
        };
        // 24 MB in one batch: more than the loopback socket buffers of both ends hold.
        let (_db, events) = stored(
            (0..192)
                .map(|i| {
                    AuditEvent::tool_execution(format!("tool{i}"))
                        .input(json!({"blob": "x".repeat(128 * 1024)}))
                        .build()
                        .unwrap()
                })
                .collect(),
        );
        let mut cfg = config(receiver.address(), Format::Json);
        cfg.timeout_seconds = 1;
        let mut sink = Syslog::new(cfg).unwrap();
        sink.deliver(&events[..1]).await.unwrap();
        receiver.received_through(events[0].seq);

        receiver.signal(libc::SIGSTOP);
        let failure = sink.deliver(&events[1..]).await.unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(ref m) if m.contains("timed out writing")),
            "{failure:?}"
        );
        receiver.signal(libc::SIGCONT);

        // The retry of the whole batch, on a new connection.
        sink.deliver(&events[1..]).await.unwrap();
        let last = events.last().unwrap().seq;
        let received = receiver.received_through(last);
        // Nothing lost; what the frozen receiver had buffered arrives too (duplicates, by log and
        // seq, and a last message cut short when the sender gave up mid-write).
        let seqs: std::collections::BTreeSet<u64> = received
            .iter()
            .filter(|m| serde_json::from_str::<Value>(m["msg"].as_str().unwrap()).is_ok())
            .filter_map(|m| sd_param(m, "seq")?.parse().ok())
            .collect();
        let expected: std::collections::BTreeSet<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, expected);
        // The retried batch itself arrived whole and in order, after whatever came before.
        let retried: Vec<u64> = received
            .iter()
            .rev()
            .take(events.len() - 1)
            .filter_map(|m| sd_param(m, "seq")?.parse().ok())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert_eq!(
            retried,
            events[1..].iter().map(|e| e.seq).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn ocsf_over_tls_arrives_when_the_ca_file_vouches_for_the_receiver() {
        let Some(receiver) = Rsyslog::start(true) else {
            return;
        };
        let (_db, events) = stored(sample_events());
        let mut cfg = config(receiver.address(), Format::Ocsf);
        cfg.tls = Some(SyslogTls {
            ca_file: test_tls("ca.pem"),
            server_name: None,
        });
        let mut sink = Syslog::new(cfg).unwrap();
        sink.deliver(&events[..1]).await.unwrap();
        // The second batch goes over the same session (after its session tickets, if any).
        sink.deliver(&events[1..]).await.unwrap();
        let received = receiver.received_through(events.last().unwrap().seq);
        let bodies = check_syslog(&received, &events);
        for (body, event) in bodies.iter().zip(&events) {
            let r: Value = serde_json::from_str(body).unwrap();
            assert_eq!(r["api"]["operation"], event.event.operation.as_str());
        }
    }

    #[tokio::test]
    async fn a_tls_receiver_the_ca_file_does_not_vouch_for_is_unavailable_and_gets_nothing() {
        let Some(receiver) = Rsyslog::start(true) else {
            return;
        };
        assert!(receiver.tls());
        let (_db, events) = stored(sample_events());
        // The receiver's own certificate is no authority: it was signed by the test CA.
        let mut cfg = config(receiver.address(), Format::Cef);
        cfg.tls = Some(SyslogTls {
            ca_file: test_tls("server.pem"),
            server_name: None,
        });
        let mut sink = Syslog::new(cfg).unwrap();
        let failure = sink.deliver(&events).await.unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(ref m) if m.contains("certificate")),
            "{failure:?}"
        );
        // Once the CA is the right one, the same batch arrives: nothing went out before.
        let mut cfg = config(receiver.address(), Format::Cef);
        cfg.tls = Some(SyslogTls {
            ca_file: test_tls("ca.pem"),
            server_name: Some("localhost".into()),
        });
        let mut sink = Syslog::new(cfg).unwrap();
        sink.deliver(&events).await.unwrap();
        let received = receiver.received_through(events.last().unwrap().seq);
        check_syslog(&received, &events);
    }
}

/// The runner may hand a delivery to `tokio::spawn`.
#[test]
fn a_delivery_is_a_send_future() {
    fn send<T: Send>(_: T) {}
    let mut sink = Syslog::new(config("127.0.0.1:514".into(), Format::Cef)).unwrap();
    send(sink.deliver(&[]));
}

#[test]
fn a_config_reads_from_toml_with_defaults_and_refuses_unknown_fields_and_bad_values() {
    let cfg: SyslogConfig = toml::from_str(
        r#"
address = "siem.example.net:6514"
format = "leef"
facility = "audit"
tls = { ca_file = "/etc/ssl/siem-ca.pem" }
"#,
    )
    .unwrap();
    assert_eq!(cfg.format, Format::Leef);
    assert_eq!(cfg.app_name, "mcp-audit");
    assert_eq!(cfg.facility.code(), 13);
    assert_eq!(cfg.timeout_seconds, 10);

    // As the sink file will hold it: inside a table tagged with the sink's type.
    #[derive(serde::Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Sink {
        Syslog(SyslogConfig),
    }
    let Sink::Syslog(tagged) =
        toml::from_str("type = \"syslog\"\naddress = \"siem.example.net:6514\"\n").unwrap();
    assert_eq!(tagged.address, "siem.example.net:6514");
    let tagged_unknown =
        toml::from_str::<Sink>("type = \"syslog\"\naddress = \"a:1\"\nport = 514\n").err();
    assert!(tagged_unknown.is_some_and(|e| e.to_string().contains("unknown field `port`")));

    let unknown = toml::from_str::<SyslogConfig>("address = \"a:1\"\nport = 514\n").unwrap_err();
    assert!(
        unknown.to_string().contains("unknown field `port`"),
        "{unknown}"
    );
    let framing =
        toml::from_str::<SyslogConfig>("address = \"a:1\"\nframing = \"lf\"\n").unwrap_err();
    assert!(framing.to_string().contains("octet-counting"), "{framing}");

    let refused = |cfg: SyslogConfig| Syslog::new(cfg).err().map(|e| e.to_string());
    let base = config("127.0.0.1:514".into(), Format::Cef);
    let no_port = SyslogConfig {
        address: "siem.example.net".into(),
        ..base.clone()
    };
    assert!(refused(no_port).unwrap().contains("address"));
    let spaced = SyslogConfig {
        app_name: "mcp audit".into(),
        ..base.clone()
    };
    assert!(refused(spaced).unwrap().contains("app_name"));
    let host = SyslogConfig {
        hostname: Some("proxy\n1".into()),
        ..base.clone()
    };
    assert!(refused(host).unwrap().contains("hostname"));
    let missing_ca = SyslogConfig {
        tls: Some(SyslogTls {
            ca_file: "/nonexistent/ca.pem".into(),
            server_name: None,
        }),
        ..base.clone()
    };
    assert!(refused(missing_ca).unwrap().contains("/nonexistent/ca.pem"));
    let not_pem = SyslogConfig {
        tls: Some(SyslogTls {
            ca_file: test_tls("README.md"),
            server_name: None,
        }),
        ..base
    };
    assert!(
        refused(not_pem)
            .unwrap()
            .contains("no usable PEM certificate")
    );
}
