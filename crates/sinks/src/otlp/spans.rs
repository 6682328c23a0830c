//! An MCP operation as an OTLP span, after the OpenTelemetry MCP semantic conventions.

use mcp_audit_core::AuditEvent;
use mcp_audit_store::StoredEvent;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::ids;
use super::resource::Origin;
use super::semconv::{self, Attributes};

/// Whether `stored` is an MCP operation, which gets a span.
pub fn has_span(stored: &StoredEvent) -> bool {
    semconv::mcp_method(&stored.event).is_some()
}

/// One export request holding `spans` (in their order).
pub fn request(origin: &Origin, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(origin.resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(origin.scope.clone()),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The span of one event, if it records an MCP operation.
///
/// - name: `{mcp.method.name} {target}`, the target being the tool or prompt name (never a
///   resource URI: high cardinality);
/// - kind: `SERVER`, or `CLIENT` for a request the server sends (sampling, elicitation);
/// - time: the proxy stamps an outcome when the answer passes, so the event's `timestamp` is
///   the end and `timestamp - duration_us` the start (no duration: a zero-length span);
/// - status: `ERROR` when `error.type` is set (tool error, JSON-RPC error, denial,
///   cancellation, no outcome), with the recorded error message where the store still has it;
///   otherwise unset, as the conventions leave it.
pub fn span(stored: &StoredEvent) -> Option<Span> {
    let event = &stored.event;
    let method = semconv::mcp_method(event)?;
    let name = match semconv::span_target(event) {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    };
    let kind = if semconv::server_initiated(event) {
        SpanKind::Client
    } else {
        SpanKind::Server
    };
    let end = super::unix_nanos(event.timestamp);
    let start = end.saturating_sub(event.duration_us.unwrap_or(0).saturating_mul(1_000));
    let mut attributes = Attributes(semconv::attributes(stored));
    payload_attributes(event, &mut attributes);
    Some(Span {
        trace_id: ids::trace_id(stored).to_vec(),
        span_id: ids::span_id(stored).to_vec(),
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attributes.0,
        status: status(event),
        ..Span::default()
    })
}

/// A tool call's arguments and result (`gen_ai.tool.call.arguments`/`.result`, opt-in in the
/// conventions), as JSON text, only as the store has them: redacted before they were written,
/// absent once erased. The sink's own redaction policy, if any, ran before this.
fn payload_attributes(event: &AuditEvent, attributes: &mut Attributes) {
    if event.kind != mcp_audit_core::EventKind::ToolExecution {
        return;
    }
    if let Some(input) = &event.payload.input {
        attributes.string("gen_ai.tool.call.arguments", input.to_string());
    }
    if let Some(output) = &event.payload.output {
        attributes.string("gen_ai.tool.call.result", output.to_string());
    }
}

fn status(event: &AuditEvent) -> Option<Status> {
    let error = semconv::error_type(event)?;
    Some(Status {
        message: event.payload.error_message.clone().unwrap_or(error),
        code: StatusCode::Error as i32,
    })
}
