//! An event as an OTLP log record: the whole stored event as the body, the trail's and the
//! conventions' attributes beside it.

use mcp_audit_core::Outcome;
use mcp_audit_store::StoredEvent;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};

use super::resource::Origin;
use super::{ids, semconv, spans};

/// One export request holding `records` (in their order).
pub fn request(origin: &Origin, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(origin.resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(origin.scope.clone()),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// The log record of one event.
///
/// The body is the stored event's JSON (one line of `query --jsonl`), so a log backend shows
/// the record as the trail has it: its payload as the store keeps it (redacted before it was
/// written; absent once erased). The time is the event's own `timestamp`; the observed time is
/// when the recorder received it. An event that has a span carries the span's trace and span
/// ids, so a backend links the two; otherwise the trace id the proxy recorded, if any.
pub fn log_record(stored: &StoredEvent) -> LogRecord {
    let event = &stored.event;
    let (severity, severity_text) = severity(event.outcome);
    let (trace_id, span_id) = if spans::has_span(stored) {
        (
            ids::trace_id(stored).to_vec(),
            ids::span_id(stored).to_vec(),
        )
    } else if event.trace_id.is_some() {
        (ids::trace_id(stored).to_vec(), Vec::new())
    } else {
        (Vec::new(), Vec::new())
    };
    // Serializing a value that came out of the store cannot fail (string keys, finite numbers);
    // an empty body would still leave the attributes.
    let body = serde_json::to_string(stored).unwrap_or_default();
    LogRecord {
        time_unix_nano: super::unix_nanos(event.timestamp),
        observed_time_unix_nano: super::unix_nanos(event.received_at.unwrap_or(event.timestamp)),
        severity_number: severity as i32,
        severity_text: severity_text.to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes: semconv::attributes(stored),
        trace_id,
        span_id,
        event_name: "mcp_audit.event".to_string(),
        ..LogRecord::default()
    }
}

/// A failure is an error, a refusal or an operation that never finished a warning, the rest
/// information.
fn severity(outcome: Outcome) -> (SeverityNumber, &'static str) {
    match outcome {
        Outcome::ToolError | Outcome::ProtocolError => (SeverityNumber::Error, "ERROR"),
        Outcome::Denied | Outcome::Cancelled | Outcome::Incomplete => {
            (SeverityNumber::Warn, "WARN")
        }
        _ => (SeverityNumber::Info, "INFO"),
    }
}
