//! The OTLP sink against real receivers started by each test, over both protocols: an HTTP
//! server that decodes `/v1/logs` and `/v1/traces` bodies with the official OTLP protobuf
//! definitions, and a tonic gRPC server implementing the collector's Logs and Trace services
//! from the same definitions. The events are recorded into a real SQLite log and read back, so
//! what is delivered is what a sink following the log would read.

mod support;
// Beside this file, not at `tests/` level, so that it is this suite's and no other's.
#[path = "otlp/trail.rs"]
mod trail;

use mcp_audit_core::{Action, AuditEvent, Outcome, Target};
use mcp_audit_sinks::otlp::{Compression, Otlp, OtlpConfig, OtlpError, Protocol, Signals};
use mcp_audit_sinks::{Destination, Failure};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use serde_json::json;

use support::otlp::{Answer, Receiver};
use trail::Trail;

const PROTOCOLS: [Protocol; 2] = [Protocol::HttpProtobuf, Protocol::Grpc];
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A morning's worth of MCP traffic, and one event of each kind that makes no span.
fn traffic() -> Vec<AuditEvent> {
    let http = Target {
        transport: Some("streamable_http".into()),
        protocol_version: Some("2025-06-18".into()),
        server_name: Some("weather".into()),
        ..Target::default()
    };
    vec![
        AuditEvent::session_start("s-1").build().unwrap(),
        AuditEvent::tool_execution("get_weather")
            .target(http.clone())
            .session("s-1")
            .mcp_session("mcp-abc")
            .request_id("7")
            .trace_id(TRACE_ID)
            .user("alice")
            .duration_us(1_500)
            .input(json!({"city": "Paris"}))
            .output(json!({"temp": 21}))
            .build()
            .unwrap(),
        AuditEvent::tool_execution("delete_repo")
            .target(http)
            .session("s-1")
            .request_id("\"abc\"")
            .outcome(Outcome::Denied)
            .error_code(-32600)
            .build()
            .unwrap(),
        AuditEvent::tool_execution("search")
            .session("s-1")
            .outcome(Outcome::Pending)
            .build()
            .unwrap(),
        AuditEvent::resource_access("file:///etc/motd", Action::Read)
            .session("s-1")
            .build()
            .unwrap(),
        AuditEvent::tool_execution("flaky")
            .session("s-1")
            .failed("boom")
            .duration_us(20)
            .build()
            .unwrap(),
    ]
}

fn config(protocol: Protocol, endpoint: String) -> OtlpConfig {
    let mut config = OtlpConfig::new(endpoint, protocol);
    config.service_name = "audit-test".into();
    config
        .resource_attributes
        .insert("deployment.environment.name".into(), "test".into());
    config.headers.insert("X-Tenant".into(), "acme".into());
    config.timeout_ms = 5_000;
    config
}

// ---------------------------------------------------------------------------------------------
// Reading what arrived

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

fn nanos(time: jiff::Timestamp) -> u64 {
    time.as_nanosecond() as u64
}

fn span_named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Delivery

#[tokio::test]
async fn every_event_arrives_as_a_log_record_in_seq_order_with_its_place_in_the_trail() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        otlp.deliver(&events).await.unwrap();

        let logs = receiver.logs();
        assert_eq!(logs.len(), events.len(), "{protocol:?}");
        for (log, stored) in logs.iter().zip(&events) {
            let a = &log.attributes;
            assert_eq!(text(a, "mcp_audit.log_id"), Some(stored.log_id.as_str()));
            assert_eq!(int(a, "mcp_audit.seq"), Some(stored.seq as i64));
            let key = format!("{}:{}", stored.log_id, stored.seq);
            assert_eq!(text(a, "mcp_audit.key"), Some(key.as_str()));
            let leaf = stored.leaf_hash.to_string();
            assert_eq!(text(a, "mcp_audit.leaf_hash"), Some(leaf.as_str()));
            assert_eq!(log.time_unix_nano, nanos(stored.event.timestamp));
            // The body is the stored event, whole.
            let Some(any_value::Value::StringValue(body)) =
                log.body.as_ref().and_then(|b| b.value.as_ref())
            else {
                panic!("no string body")
            };
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body, serde_json::to_value(stored).unwrap());
        }
        let severities: Vec<&str> = logs.iter().map(|l| l.severity_text.as_str()).collect();
        assert_eq!(
            severities,
            ["INFO", "INFO", "WARN", "INFO", "INFO", "ERROR"]
        );

        let received = receiver.shared.received.lock().unwrap();
        let resource = received.logs[0].resource_logs[0].resource.as_ref().unwrap();
        assert_eq!(
            text(&resource.attributes, "service.name"),
            Some("audit-test")
        );
        assert_eq!(
            text(&resource.attributes, "deployment.environment.name"),
            Some("test")
        );
        assert!(
            received.tenants.iter().all(|t| t == "acme"),
            "{:?}",
            received.tenants
        );
        assert_eq!(received.tenants.len(), 2, "one logs and one traces export");
    }
}

#[tokio::test]
async fn each_mcp_operation_arrives_as_a_span_with_the_mcp_semantic_conventions() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    let stored = |operation: &str| {
        events
            .iter()
            .find(|e| e.event.operation == operation && e.event.outcome != Outcome::Pending)
            .unwrap()
    };
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        otlp.deliver(&events).await.unwrap();
        let spans = receiver.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        // No span for the session start or the pending intent.
        assert_eq!(
            names,
            [
                "tools/call get_weather",
                "tools/call delete_repo",
                "resources/read",
                "tools/call flaky"
            ],
            "{protocol:?}"
        );

        let ok = span_named(&spans, "tools/call get_weather");
        let a = &ok.attributes;
        assert_eq!(hex(&ok.trace_id), TRACE_ID, "the caller's trace");
        assert_eq!(ok.kind, SpanKind::Server as i32);
        let event = &stored("get_weather").event;
        assert_eq!(ok.end_time_unix_nano, nanos(event.timestamp));
        assert_eq!(ok.end_time_unix_nano - ok.start_time_unix_nano, 1_500_000);
        assert_eq!(ok.status, None, "success leaves the status unset");
        assert_eq!(text(a, "mcp.method.name"), Some("tools/call"));
        assert_eq!(text(a, "gen_ai.tool.name"), Some("get_weather"));
        assert_eq!(text(a, "gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(text(a, "jsonrpc.request.id"), Some("7"));
        assert_eq!(text(a, "mcp.session.id"), Some("mcp-abc"));
        assert_eq!(text(a, "mcp.protocol.version"), Some("2025-06-18"));
        assert_eq!(text(a, "network.transport"), Some("tcp"));
        assert_eq!(text(a, "user.id"), Some("alice"));
        assert_eq!(text(a, "error.type"), None);
        assert_eq!(
            text(a, "gen_ai.tool.call.arguments"),
            Some(r#"{"city":"Paris"}"#)
        );
        assert_eq!(text(a, "gen_ai.tool.call.result"), Some(r#"{"temp":21}"#));
        let leaf = stored("get_weather").leaf_hash.to_string();
        assert_eq!(text(a, "mcp_audit.leaf_hash"), Some(leaf.as_str()));
        assert_eq!(
            int(a, "mcp_audit.seq"),
            Some(stored("get_weather").seq as i64)
        );

        let denied = span_named(&spans, "tools/call delete_repo");
        let status = denied.status.as_ref().unwrap();
        assert_eq!(status.code, SpanStatus::Error as i32);
        assert_eq!(text(&denied.attributes, "error.type"), Some("-32600"));
        assert_eq!(
            text(&denied.attributes, "rpc.response.status_code"),
            Some("-32600")
        );
        assert_eq!(text(&denied.attributes, "jsonrpc.request.id"), Some("abc"));
        assert_eq!(text(&denied.attributes, "mcp.session.id"), Some("s-1"));

        let failed = span_named(&spans, "tools/call flaky");
        let status = failed.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (SpanStatus::Error as i32, "boom")
        );
        assert_eq!(text(&failed.attributes, "error.type"), Some("tool_error"));

        let read = span_named(&spans, "resources/read");
        assert_eq!(
            text(&read.attributes, "mcp.resource.uri"),
            Some("file:///etc/motd")
        );
        assert_eq!(text(&read.attributes, "gen_ai.tool.name"), None);

        // Spans are distinct, and each event's log record points at its span.
        let mut span_ids: Vec<&[u8]> = spans.iter().map(|s| s.span_id.as_slice()).collect();
        span_ids.sort();
        span_ids.dedup();
        assert_eq!(span_ids.len(), spans.len());
        for span in &spans {
            assert_eq!(span.span_id.len(), 8);
            assert_eq!(span.trace_id.len(), 16);
            let log = receiver
                .logs()
                .into_iter()
                .find(|l| l.span_id == span.span_id)
                .unwrap_or_else(|| panic!("no log record for {}", span.name));
            assert_eq!(log.trace_id, span.trace_id);
            assert_eq!(
                int(&log.attributes, "mcp_audit.seq"),
                int(&span.attributes, "mcp_audit.seq")
            );
        }
        let session_log = &receiver.logs()[0];
        assert!(session_log.span_id.is_empty(), "no span, no span id");
    }
}

#[tokio::test]
async fn a_batch_sent_again_carries_the_same_trace_and_span_ids() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        otlp.deliver(&events).await.unwrap();
        // A second sink, as after a restart, sends the same records.
        let mut again = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        again.deliver(&events).await.unwrap();

        let spans = receiver.spans();
        let (first, second) = spans.split_at(spans.len() / 2);
        assert_eq!(first.len(), 4);
        for (a, b) in first.iter().zip(second) {
            assert_eq!(
                (&a.trace_id, &a.span_id),
                (&b.trace_id, &b.span_id),
                "{}",
                a.name
            );
        }
        // Without a recorded trace id, each operation still has a valid trace of its own.
        let derived = span_named(first, "tools/call delete_repo");
        assert_ne!(hex(&derived.trace_id), TRACE_ID);
        assert_ne!(derived.trace_id, vec![0; 16]);
        assert_ne!(
            derived.trace_id,
            span_named(first, "tools/call flaky").trace_id
        );
    }
}

#[tokio::test]
async fn signals_choose_logs_or_spans() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        for (signals, logs, spans) in [(Signals::Logs, 6, 0), (Signals::Spans, 0, 4)] {
            let receiver = Receiver::start(protocol).await;
            let mut config = config(protocol, receiver.endpoint());
            config.signals = signals;
            Otlp::new(config).unwrap().deliver(&events).await.unwrap();
            assert_eq!(
                (receiver.logs().len(), receiver.spans().len()),
                (logs, spans),
                "{protocol:?} {signals:?}"
            );
        }
        // A batch with no MCP operation sends no empty trace export.
        let receiver = Receiver::start(protocol).await;
        let mut config = config(protocol, receiver.endpoint());
        config.signals = Signals::Spans;
        Otlp::new(config)
            .unwrap()
            .deliver(&events[..1])
            .await
            .unwrap();
        assert!(receiver.shared.received.lock().unwrap().tenants.is_empty());
    }
}

#[tokio::test]
async fn with_gzip_the_requests_arrive_compressed_and_decode_to_the_same_records() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let plain = Receiver::start(protocol).await;
        let gzipped = Receiver::start(protocol).await;
        Otlp::new(config(protocol, plain.endpoint()))
            .unwrap()
            .deliver(&events)
            .await
            .unwrap();
        let mut config = config(protocol, gzipped.endpoint());
        config.compression = Compression::Gzip;
        Otlp::new(config).unwrap().deliver(&events).await.unwrap();

        assert_eq!(
            plain.shared.received.lock().unwrap().encodings,
            ["identity", "identity"],
            "{protocol:?}"
        );
        assert_eq!(
            gzipped.shared.received.lock().unwrap().encodings,
            ["gzip", "gzip"],
            "{protocol:?}"
        );
        assert_eq!(gzipped.logs(), plain.logs());
        assert_eq!(gzipped.spans(), plain.spans());
    }
}

// ---------------------------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn a_receiver_that_is_down_is_unavailable_and_the_batch_arrives_once_it_is_back() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let mut receiver = Receiver::down(protocol).await;
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        let failure = otlp.deliver(&events).await.unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(_)),
            "{protocol:?}: {failure:?}"
        );

        receiver.restart(protocol).await;
        otlp.deliver(&events).await.unwrap();
        assert_eq!(receiver.logs().len(), events.len());

        // Down again after a working connection, then back.
        receiver.stop().await;
        let failure = otlp.deliver(&events).await.unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(_)),
            "{protocol:?}: {failure:?}"
        );
        receiver.restart(protocol).await;
        otlp.deliver(&events).await.unwrap();
        assert_eq!(receiver.logs().len(), 2 * events.len());
        let seqs: Vec<Option<i64>> = receiver
            .logs()
            .iter()
            .map(|l| int(&l.attributes, "mcp_audit.seq"))
            .collect();
        let once: Vec<Option<i64>> = events.iter().map(|e| Some(e.seq as i64)).collect();
        assert_eq!(
            seqs,
            [once.clone(), once].concat(),
            "in order, each delivery whole"
        );
    }
}

/// A wrong token is the operator's to fix: the records wait in the trail rather than go to the
/// dead letters one by one.
#[tokio::test]
async fn a_receiver_answering_unavailable_busy_or_unauthenticated_is_unavailable() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        for (answer, said) in [
            (Answer::Unavailable, "restarting"),
            (Answer::Busy, "slow down"),
            (Answer::Unauthenticated, "who are you"),
        ] {
            let receiver = Receiver::start(protocol).await;
            receiver.answer(answer);
            let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
            match otlp.deliver(&events).await {
                Err(Failure::Unavailable(reason)) => {
                    assert!(reason.contains(said), "{protocol:?} {answer:?}: {reason}")
                }
                other => panic!("{protocol:?} {answer:?}: {other:?}"),
            }
            receiver.answer(Answer::Accept);
            otlp.deliver(&events).await.unwrap();
            assert_eq!(receiver.logs().len(), events.len());
        }
    }
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_within_the_timeout_is_unavailable() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        receiver.answer(Answer::Hang);
        let mut config = config(protocol, receiver.endpoint());
        config.timeout_ms = 200;
        let failure = Otlp::new(config)
            .unwrap()
            .deliver(&events)
            .await
            .unwrap_err();
        assert!(
            matches!(failure, Failure::Unavailable(_)),
            "{protocol:?}: {failure:?}"
        );
    }
}

#[tokio::test]
async fn a_receiver_that_refuses_the_data_refuses_the_batch_at_its_first_record() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        receiver.answer(Answer::Refuse);
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        match otlp.deliver(&events).await {
            Err(Failure::Refused { accepted, reason }) => {
                assert_eq!(accepted, 0);
                assert!(reason.contains("bad attribute"), "{protocol:?}: {reason}");
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
        assert!(receiver.logs().is_empty());
    }
}

#[tokio::test]
async fn a_partial_success_that_rejects_records_is_refused_at_the_first_record() {
    let trail = Trail::record(traffic());
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        receiver.answer(Answer::RejectOne);
        let mut otlp = Otlp::new(config(protocol, receiver.endpoint())).unwrap();
        match otlp.deliver(&events).await {
            Err(Failure::Refused { accepted, reason }) => {
                assert_eq!(accepted, 0);
                assert!(
                    reason.contains("rejected 1 log records"),
                    "{protocol:?}: {reason}"
                );
                assert!(
                    reason.contains("one record too large"),
                    "{protocol:?}: {reason}"
                );
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
        // Spans alone: the trace export's partial success decides.
        let mut config = config(protocol, receiver.endpoint());
        config.signals = Signals::Spans;
        match Otlp::new(config).unwrap().deliver(&events).await {
            Err(Failure::Refused {
                accepted: 0,
                reason,
            }) => {
                assert!(
                    reason.contains("rejected 1 spans"),
                    "{protocol:?}: {reason}"
                )
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request size

/// `n` tool calls whose arguments take about `bytes` bytes each.
fn calls(n: usize, bytes: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            AuditEvent::tool_execution(format!("tool-{i}"))
                .request_id(i.to_string())
                .input(json!({"blob": "x".repeat(bytes)}))
                .build()
                .unwrap()
        })
        .collect()
}

fn seqs(logs: &[LogRecord]) -> Vec<i64> {
    logs.iter()
        .map(|l| int(&l.attributes, "mcp_audit.seq").unwrap())
        .collect()
}

#[tokio::test]
async fn a_batch_larger_than_max_request_bytes_arrives_as_several_requests_in_order() {
    let trail = Trail::record(calls(12, 400));
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        let mut config = config(protocol, receiver.endpoint());
        config.max_request_bytes = 4096;
        Otlp::new(config).unwrap().deliver(&events).await.unwrap();

        let expected: Vec<i64> = events.iter().map(|e| e.seq as i64).collect();
        assert_eq!(seqs(&receiver.logs()), expected, "{protocol:?}");
        assert_eq!(receiver.spans().len(), events.len());
        let received = receiver.shared.received.lock().unwrap();
        assert!(received.logs.len() > 1, "{protocol:?}: one request");
        assert!(received.traces.len() > 1, "{protocol:?}: one request");
        for request in &received.logs {
            assert!(request.encoded_len() <= 4096, "{}", request.encoded_len());
        }
        for request in &received.traces {
            assert!(request.encoded_len() <= 4096, "{}", request.encoded_len());
        }
    }
}

#[tokio::test]
async fn a_record_too_large_to_send_is_refused_by_its_index_after_the_ones_before_it_arrive() {
    let mut events = calls(3, 100);
    events.extend(calls(1, 8_000));
    events.extend(calls(2, 100));
    let trail = Trail::record(events);
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        let mut config = config(protocol, receiver.endpoint());
        config.max_request_bytes = 4096;
        match Otlp::new(config).unwrap().deliver(&events).await {
            Err(Failure::Refused { accepted, reason }) => {
                assert_eq!(accepted, 3, "{protocol:?}");
                assert!(reason.contains("max_request_bytes"), "{reason}");
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
        let before: Vec<i64> = events[..3].iter().map(|e| e.seq as i64).collect();
        assert_eq!(seqs(&receiver.logs()), before, "{protocol:?}");
        assert_eq!(receiver.spans().len(), 3);
    }
}

#[tokio::test]
async fn a_part_the_receiver_refuses_is_refused_at_its_first_record_after_the_parts_before_it() {
    let trail = Trail::record(calls(12, 400));
    let events = trail.read();
    for protocol in PROTOCOLS {
        let receiver = Receiver::start(protocol).await;
        receiver.answer(Answer::RejectAfter(1));
        let mut config = config(protocol, receiver.endpoint());
        config.max_request_bytes = 4096;
        config.signals = Signals::Logs;
        let failure = Otlp::new(config)
            .unwrap()
            .deliver(&events)
            .await
            .unwrap_err();
        let first_part = receiver.shared.received.lock().unwrap().logs[0].resource_logs[0]
            .scope_logs[0]
            .log_records
            .len();
        assert!(first_part > 0 && first_part < events.len());
        match failure {
            Failure::Refused { accepted, .. } => assert_eq!(accepted, first_part, "{protocol:?}"),
            other => panic!("{protocol:?}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Erasure

#[tokio::test]
async fn an_erased_payload_is_not_in_what_arrives() {
    let call = AuditEvent::tool_execution("lookup")
        .request_id("1")
        .user("alice")
        .email("alice@example.com")
        .input(json!({"customer": "S3CR3T-IN"}))
        .output(json!({"card": "S3CR3T-OUT"}))
        .failed("S3CR3T-ERR")
        .build()
        .unwrap();
    let id = call.id;
    let trail = Trail::record(vec![call]);
    let secrets = ["S3CR3T-IN", "S3CR3T-OUT", "S3CR3T-ERR", "alice@example.com"];
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    for protocol in PROTOCOLS {
        // Before the erasure the payload is sent, so this test can see it.
        let before = Receiver::start(protocol).await;
        let mut otlp = Otlp::new(config(protocol, before.endpoint())).unwrap();
        otlp.deliver(&trail.read()).await.unwrap();
        for secret in secrets {
            assert!(
                contains(&before.bytes(), secret),
                "{protocol:?}: {secret} not sent"
            );
        }
    }
    trail.erase(id);
    let erased = trail.read();
    assert!(erased[0].redacted);
    for protocol in PROTOCOLS {
        let after = Receiver::start(protocol).await;
        let mut otlp = Otlp::new(config(protocol, after.endpoint())).unwrap();
        otlp.deliver(&erased).await.unwrap();
        let bytes = after.bytes();
        for secret in secrets {
            assert!(
                !contains(&bytes, secret),
                "{protocol:?}: {secret} sent after erasure"
            );
        }
        let log = &after.logs()[0];
        assert_eq!(
            attr(&log.attributes, "mcp_audit.erased"),
            Some(&any_value::Value::BoolValue(true))
        );
        let span = &after.spans()[0];
        assert_eq!(text(&span.attributes, "gen_ai.tool.call.arguments"), None);
        assert_eq!(
            text(&span.attributes, "error.type"),
            Some("tool_error"),
            "metadata stays"
        );
        assert_eq!(
            text(&span.attributes, "user.id"),
            Some("alice"),
            "metadata stays"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn parse(toml_text: &str) -> Result<OtlpConfig, toml::de::Error> {
    toml::from_str(toml_text)
}

#[test]
fn a_config_names_the_protocol_and_signals_as_opentelemetry_does_and_defaults_the_rest() {
    let config = parse(
        r#"
        endpoint = "http://collector:4317"
        protocol = "grpc"
        signals = "spans"
        compression = "gzip"
        headers = { authorization = "Bearer t0ken" }
        resource_attributes = { "deployment.environment.name" = "prod" }
        "#,
    )
    .unwrap();
    assert_eq!(config.protocol, Protocol::Grpc);
    assert_eq!(config.signals, Signals::Spans);
    assert_eq!(config.compression, Compression::Gzip);
    assert_eq!(config.headers["authorization"], "Bearer t0ken");
    assert_eq!(
        config.resource_attributes["deployment.environment.name"],
        "prod"
    );
    let defaults = parse(r#"endpoint = "http://collector:4318""#).unwrap();
    assert_eq!(defaults.protocol, Protocol::HttpProtobuf);
    assert_eq!(defaults.signals, Signals::Both);
    assert_eq!(defaults.timeout_ms, 10_000);
    assert_eq!(defaults.service_name, "mcp-audit");
    assert_eq!(defaults.max_request_bytes, 4 * 1024 * 1024);
    assert_eq!(defaults.compression, Compression::None);
    assert!(Otlp::new(config).is_ok() && Otlp::new(defaults).is_ok());
}

#[test]
fn a_config_with_an_unknown_field_or_value_is_refused_by_name() {
    let unknown = parse("endpoint = \"http://c:4318\"\ninsecure = true").unwrap_err();
    assert!(unknown.to_string().contains("insecure"), "{unknown}");
    let protocol = parse("endpoint = \"http://c:4318\"\nprotocol = \"http/json\"").unwrap_err();
    assert!(protocol.to_string().contains("http/json"), "{protocol}");
    let missing = parse("protocol = \"grpc\"").unwrap_err();
    assert!(missing.to_string().contains("endpoint"), "{missing}");
}

#[test]
fn a_bad_endpoint_header_timeout_size_or_service_name_is_a_clear_error() {
    for protocol in PROTOCOLS {
        let build = |edit: &dyn Fn(&mut OtlpConfig)| {
            let mut config = OtlpConfig::new("http://127.0.0.1:4318", protocol);
            edit(&mut config);
            Otlp::new(config).err()
        };
        for endpoint in ["collector:4318", "ftp://collector", "http://", "not a url"] {
            let error = build(&|c| c.endpoint = endpoint.into());
            assert!(
                matches!(error, Some(OtlpError::Endpoint { .. })),
                "{protocol:?} {endpoint}: {error:?}"
            );
        }
        for (name, value) in [("bad header", "v"), ("x-ok", "line\nbreak")] {
            let error = build(&|c| {
                c.headers.insert(name.into(), value.into());
            });
            assert!(
                matches!(&error, Some(OtlpError::Header { name: n, .. }) if n == name),
                "{protocol:?} {name}: {error:?}"
            );
        }
        assert!(matches!(
            build(&|c| c.timeout_ms = 0),
            Some(OtlpError::Timeout)
        ));
        assert!(matches!(
            build(&|c| c.service_name = " ".into()),
            Some(OtlpError::ServiceName)
        ));
    }
}

#[test]
fn a_config_printed_for_debugging_does_not_show_header_values() {
    let config = parse(
        r#"
        endpoint = "http://collector:4318"
        headers = { authorization = "Bearer t0ken" }
        "#,
    )
    .unwrap();
    let printed = format!("{config:?}");
    assert!(printed.contains("authorization"), "{printed}");
    assert!(!printed.contains("t0ken"), "{printed}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The runner may run a sink on a multi-threaded runtime (`tokio::spawn`): the delivery must
/// be a `Send` future. A compile-time check; the call is never polled.
#[test]
fn a_delivery_can_run_on_any_thread_of_the_runtime() {
    fn send<T: Send>(_: &T) {}
    for protocol in PROTOCOLS {
        let mut otlp = Otlp::new(OtlpConfig::new("http://127.0.0.1:4318", protocol)).unwrap();
        let delivery = otlp.deliver(&[]);
        send(&delivery);
    }
}
