//! What an event says in the OpenTelemetry MCP semantic conventions (status: development,
//! `gen-ai/mcp.md`), and in our own `mcp_audit.*` attributes where the conventions have no
//! name.
//!
//! The store keeps an event's kind and operation, not the JSON-RPC method itself; the method is
//! recovered from the kind as the proxy classifies requests (`tools/call` → tool execution
//! named by the tool, ...). Where that is ambiguous (a resource event other than a read:
//! `resources/subscribe` and `unsubscribe` are both recorded as `ACCESS`) or the event is not
//! an MCP request at all (admin actions, context operations, session start and end, a
//! library-reported resource change), there is no method, hence no span: a wrong method name
//! would be worse than none. Every event still becomes a log record.

use mcp_audit_core::{AuditEvent, EventKind, Outcome};
use mcp_audit_store::StoredEvent;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// The MCP method (`mcp.method.name`) of an event, if it records one MCP request or
/// notification with a known outcome. `None` for a `PENDING` intent too: its outcome event,
/// which carries the duration, makes the span.
pub fn mcp_method(event: &AuditEvent) -> Option<&str> {
    if event.outcome == Outcome::Pending {
        return None;
    }
    let operation = event.operation.as_str();
    match event.kind {
        EventKind::ToolExecution => Some("tools/call"),
        EventKind::PromptExecution => Some("prompts/get"),
        EventKind::ResourceAccess if event.action == mcp_audit_core::Action::Read => {
            Some("resources/read")
        }
        EventKind::Completion => Some("completion/complete"),
        EventKind::Sampling => Some("sampling/createMessage"),
        EventKind::Elicitation => Some("elicitation/create"),
        // The proxy names these by their method (`tools/list`, `initialize`, a notification);
        // its own markers (`server_start`, `oversized_frame`, `malformed`) have no slash.
        EventKind::ServerOperation | EventKind::Protocol
            if operation.contains('/') || operation == "initialize" || operation == "ping" =>
        {
            Some(operation)
        }
        _ => None,
    }
}

/// The span kind's side: a request the server sends to the client (sampling, elicitation) is
/// reported as the conventions' client span; the rest as server spans.
pub fn server_initiated(event: &AuditEvent) -> bool {
    matches!(event.kind, EventKind::Sampling | EventKind::Elicitation)
}

/// The low-cardinality target of a span name (`tools/call get_weather`): the tool or prompt.
pub fn span_target(event: &AuditEvent) -> Option<&str> {
    match event.kind {
        EventKind::ToolExecution | EventKind::PromptExecution
            if mcp_method(event).is_some_and(|m| m != event.operation) =>
        {
            Some(&event.operation)
        }
        _ => None,
    }
}

/// `error.type`, present if and only if the operation failed: the JSON-RPC error code as a
/// string where there is one (as the conventions ask), else `tool_error` for a tool that
/// reported failure, else the outcome's name.
pub fn error_type(event: &AuditEvent) -> Option<String> {
    let failed = matches!(
        event.outcome,
        Outcome::ToolError
            | Outcome::ProtocolError
            | Outcome::Denied
            | Outcome::Cancelled
            | Outcome::Incomplete
    );
    if !failed {
        return None;
    }
    Some(match (event.outcome, event.error_code) {
        (Outcome::ToolError, _) => "tool_error".to_string(),
        (_, Some(code)) => code.to_string(),
        (outcome, None) => outcome.as_str().to_ascii_lowercase(),
    })
}

/// The attributes a log record and a span share: the record's identity in the trail, then
/// what the conventions name.
pub fn attributes(stored: &StoredEvent) -> Vec<KeyValue> {
    let mut out = Attributes::default();
    trail_attributes(stored, &mut out);
    convention_attributes(&stored.event, &mut out);
    out.0
}

/// The record's place in the trail (`mcp_audit.*`): what a receiver deduplicates on and what
/// `mcp-audit prove` proves, then the event's own fields the conventions have no name for.
fn trail_attributes(stored: &StoredEvent, out: &mut Attributes) {
    let event = &stored.event;
    out.string("mcp_audit.log_id", &stored.log_id);
    out.int("mcp_audit.seq", stored.seq);
    out.string("mcp_audit.key", crate::record_key(stored));
    out.string("mcp_audit.leaf_hash", stored.leaf_hash.to_string());
    out.string("mcp_audit.event_id", event.id.to_string());
    out.string("mcp_audit.kind", event.kind.as_str());
    out.string("mcp_audit.action", event.action.as_str());
    out.string("mcp_audit.operation", &event.operation);
    out.string("mcp_audit.outcome", event.outcome.as_str());
    out.maybe("mcp_audit.session_id", event.session_id.as_deref());
    out.maybe("mcp_audit.correlation_id", event.correlation_id.as_deref());
    if let Some(intent) = event.completes {
        out.string("mcp_audit.completes", intent.to_string());
    }
    if let Some(us) = event.duration_us {
        out.int("mcp_audit.duration_us", us);
    }
    if stored.redacted {
        out.bool("mcp_audit.erased", true);
    }
    out.maybe("mcp_audit.client.name", event.actor.client_name.as_deref());
    out.maybe("mcp_audit.server.name", event.target.server_name.as_deref());
    out.maybe("mcp_audit.transport", event.target.transport.as_deref());
}

/// What the MCP, GenAI, JSON-RPC and general conventions name.
fn convention_attributes(event: &AuditEvent, out: &mut Attributes) {
    if let Some(method) = mcp_method(event) {
        out.string("mcp.method.name", method);
    }
    // The transport's session id where there is one; over stdio, our own session (one run of
    // a client against a server) is the MCP session.
    out.maybe(
        "mcp.session.id",
        event
            .mcp_session_id
            .as_deref()
            .or(event.session_id.as_deref()),
    );
    out.maybe(
        "jsonrpc.request.id",
        event.request_id.as_deref().map(request_id_text),
    );
    out.maybe(
        "mcp.protocol.version",
        event.target.protocol_version.as_deref(),
    );
    match event.kind {
        EventKind::ToolExecution => {
            out.string("gen_ai.tool.name", &event.operation);
            out.string("gen_ai.operation.name", "execute_tool");
        }
        EventKind::PromptExecution => out.string("gen_ai.prompt.name", &event.operation),
        EventKind::ResourceAccess => out.string("mcp.resource.uri", &event.operation),
        _ => {}
    }
    if let Some(error) = error_type(event) {
        out.string("error.type", error);
    }
    if let Some(code) = event.error_code {
        out.string("rpc.response.status_code", code.to_string());
    }
    if let Some(transport) = event.target.transport.as_deref() {
        match transport {
            "stdio" => out.string("network.transport", "pipe"),
            "streamable_http" | "sse" => {
                out.string("network.transport", "tcp");
                out.string("network.protocol.name", "http");
            }
            _ => {}
        }
    }
    out.maybe("user.id", event.actor.user_id.as_deref());
    out.maybe("client.address", event.actor.client_ip.as_deref());
}

/// A JSON-RPC id as the conventions want it: its string form, without a JSON string's quotes.
fn request_id_text(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        _ => json.to_string(),
    }
}

/// A list of OTLP attributes under construction.
#[derive(Default)]
pub struct Attributes(pub Vec<KeyValue>);

impl Attributes {
    pub fn string(&mut self, key: &str, value: impl Into<String>) {
        self.push(key, any_value::Value::StringValue(value.into()));
    }

    pub fn maybe(&mut self, key: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    /// An integer attribute; OTLP's are signed 64-bit, and a value past `i64::MAX` (no seq or
    /// duration reaches it) saturates rather than wraps.
    pub fn int(&mut self, key: &str, value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        self.push(key, any_value::Value::IntValue(value));
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.push(key, any_value::Value::BoolValue(value));
    }

    fn push(&mut self, key: &str, value: any_value::Value) {
        self.0.push(KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use mcp_audit_core::{Action, AuditEvent, EventKind, Outcome};

    use super::{error_type, mcp_method, span_target};

    fn event(kind: EventKind, action: Action, operation: &str) -> AuditEvent {
        AuditEvent::builder(kind, action, operation)
            .build()
            .unwrap()
    }

    #[test]
    fn the_method_is_recovered_from_the_kind_and_only_where_it_is_certain() {
        let cases = [
            (
                EventKind::ToolExecution,
                Action::Execute,
                "echo",
                Some("tools/call"),
            ),
            (
                EventKind::PromptExecution,
                Action::Execute,
                "p",
                Some("prompts/get"),
            ),
            (
                EventKind::ResourceAccess,
                Action::Read,
                "file:///a",
                Some("resources/read"),
            ),
            (EventKind::ResourceAccess, Action::Access, "file:///a", None),
            (EventKind::ResourceAccess, Action::Update, "file:///a", None),
            (
                EventKind::Sampling,
                Action::Execute,
                "sampling/createMessage",
                Some("sampling/createMessage"),
            ),
            (
                EventKind::ServerOperation,
                Action::Read,
                "tools/list",
                Some("tools/list"),
            ),
            (
                EventKind::ServerOperation,
                Action::Execute,
                "initialize",
                Some("initialize"),
            ),
            (
                EventKind::ServerOperation,
                Action::Execute,
                "server_start",
                None,
            ),
            (
                EventKind::Protocol,
                Action::Access,
                "notifications/cancelled",
                Some("notifications/cancelled"),
            ),
            (EventKind::Protocol, Action::Access, "oversized_frame", None),
            (EventKind::Session, Action::Create, "session_start", None),
            (EventKind::Admin, Action::Create, "users/create", None),
        ];
        for (kind, action, operation, method) in cases {
            assert_eq!(
                mcp_method(&event(kind, action, operation)),
                method,
                "{kind:?} {operation}"
            );
        }
        let mut pending = event(EventKind::ToolExecution, Action::Execute, "echo");
        pending.outcome = Outcome::Pending;
        assert_eq!(mcp_method(&pending), None);
    }

    #[test]
    fn a_span_is_named_by_its_tool_or_prompt_and_not_by_a_resource_uri() {
        assert_eq!(
            span_target(&event(EventKind::ToolExecution, Action::Execute, "echo")),
            Some("echo")
        );
        assert_eq!(
            span_target(&event(EventKind::ResourceAccess, Action::Read, "file:///x")),
            None
        );
    }

    #[test]
    fn error_type_is_the_json_rpc_code_or_tool_error_and_absent_on_success() {
        let mut e = event(EventKind::ToolExecution, Action::Execute, "echo");
        assert_eq!(error_type(&e), None);
        e.outcome = Outcome::ToolError;
        assert_eq!(error_type(&e).as_deref(), Some("tool_error"));
        e.outcome = Outcome::ProtocolError;
        e.error_code = Some(-32602);
        assert_eq!(error_type(&e).as_deref(), Some("-32602"));
        e.outcome = Outcome::Denied;
        e.error_code = None;
        assert_eq!(error_type(&e).as_deref(), Some("denied"));
    }
}
