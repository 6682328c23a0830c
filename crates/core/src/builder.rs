//! Typed construction of events: one constructor per kind of operation on [`AuditEvent`], then
//! chained setters, then [`EventBuilder::build`].
//!
//! ```
//! use mcp_audit_core::{AuditEvent, DataSource, LegalBasis};
//! use serde_json::json;
//!
//! let event = AuditEvent::tool_execution("search_customers")
//!     .user("alice")
//!     .session("s-42")
//!     .input(json!({"query": "acme"}))
//!     .output(json!({"rows": 3}))
//!     .duration_us(1_250)
//!     .data_source(DataSource::input("postgres://crm/customers").source_type("database"))
//!     .purpose("customer support")
//!     .legal_basis(LegalBasis::Contract)
//!     .retention("30d")
//!     .build()
//!     .unwrap();
//! assert_eq!(event.operation, "search_customers");
//! ```

use jiff::Timestamp;
use serde_json::Value;

use crate::changeset::change_set;
use crate::classification::Classification;
use crate::error::ModelError;
use crate::event::{
    Actor, AuditEvent, Compliance, ComplianceEvent, DataSource, EVENT_SCHEMA_VERSION, EventId,
    LegalBasis, Payload, Target, now_micros, truncate_to_micros,
};
use crate::kind::{Action, EventKind, Outcome};
use crate::retention::Retention;

/// What a context operation did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextOp {
    Set,
    Get,
    Update,
    Delete,
}

impl ContextOp {
    fn action(self) -> Action {
        match self {
            ContextOp::Set => Action::Create,
            ContextOp::Get => Action::Read,
            ContextOp::Update => Action::Update,
            ContextOp::Delete => Action::Delete,
        }
    }
}

impl AuditEvent {
    /// A tool run (`EXECUTE`).
    pub fn tool_execution(tool_name: impl Into<String>) -> EventBuilder {
        EventBuilder::new(EventKind::ToolExecution, Action::Execute, tool_name)
            .resource_type("tool")
    }

    /// An access to a resource by URI; `action` is READ, UPDATE (a write), DELETE, ...
    pub fn resource_access(uri: impl Into<String>, action: Action) -> EventBuilder {
        let uri = uri.into();
        EventBuilder::new(EventKind::ResourceAccess, action, uri.clone())
            .resource_type("resource")
            .resource_id(uri)
    }

    /// A set, get, update or delete of a context key.
    pub fn context_operation(key: impl Into<String>, op: ContextOp) -> EventBuilder {
        EventBuilder::new(EventKind::ContextOperation, op.action(), key)
    }

    /// A prompt invocation (`EXECUTE`).
    pub fn prompt_execution(prompt_name: impl Into<String>) -> EventBuilder {
        EventBuilder::new(EventKind::PromptExecution, Action::Execute, prompt_name)
            .resource_type("prompt")
    }

    /// A server-level operation such as `tools/list`, `start` or `configure`.
    pub fn server_operation(operation: impl Into<String>, action: Action) -> EventBuilder {
        EventBuilder::new(EventKind::ServerOperation, action, operation).resource_type("server")
    }

    /// A CRUD action on a managed resource. The operation name is `<action> <type>`, e.g.
    /// `UPDATE tool`.
    pub fn admin(
        action: Action,
        resource_type: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> EventBuilder {
        let resource_type = resource_type.into();
        let operation = format!("{action} {resource_type}");
        EventBuilder::new(EventKind::Admin, action, operation)
            .resource_type(resource_type)
            .resource_id(resource_id)
    }

    /// The start of a session.
    pub fn session_start(session_id: impl Into<String>) -> EventBuilder {
        EventBuilder::new(EventKind::Session, Action::Create, "session_start").session(session_id)
    }

    /// The end of a session.
    pub fn session_end(session_id: impl Into<String>) -> EventBuilder {
        EventBuilder::new(EventKind::Session, Action::Delete, "session_end").session(session_id)
    }

    /// Any kind, for what the constructors above do not cover.
    pub fn builder(kind: EventKind, action: Action, operation: impl Into<String>) -> EventBuilder {
        EventBuilder::new(kind, action, operation)
    }
}

/// Builds an [`AuditEvent`]; see the module documentation.
#[derive(Debug, Clone)]
#[must_use = "an event builder does nothing until `build` is called"]
pub struct EventBuilder {
    event: AuditEvent,
    /// The first error a setter met; `build` reports it. Keeps the setters chainable without
    /// each returning a `Result`.
    error: Option<ModelError>,
}

impl EventBuilder {
    fn new(kind: EventKind, action: Action, operation: impl Into<String>) -> EventBuilder {
        EventBuilder {
            event: AuditEvent {
                version: EVENT_SCHEMA_VERSION,
                id: EventId::new(),
                timestamp: now_micros(),
                received_at: None,
                kind,
                action,
                operation: operation.into(),
                correlation_id: None,
                trace_id: None,
                session_id: None,
                mcp_session_id: None,
                request_id: None,
                completes: None,
                actor: Actor::default(),
                target: Target::default(),
                outcome: Outcome::Success,
                error_code: None,
                duration_us: None,
                compliance: Compliance::default(),
                data_sources: Vec::new(),
                compliance_events: Vec::new(),
                payload: Payload::default(),
                origin: None,
            },
            error: None,
        }
    }

    /// Checks the event and fills what can be derived: a correlation id when none was given,
    /// and for an UPDATE with old and new values, the change set.
    pub fn build(self) -> Result<AuditEvent, ModelError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut event = self.event;
        event.normalize()?;
        Ok(event)
    }

    pub fn id(mut self, id: EventId) -> Self {
        self.event.id = id;
        self
    }

    pub fn timestamp(mut self, ts: Timestamp) -> Self {
        self.event.timestamp = truncate_to_micros(ts);
        self
    }

    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.correlation_id = Some(id.into());
        self
    }

    /// The W3C trace id of the request that caused the operation (`traceparent`).
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.event.trace_id = Some(id.into());
        self
    }

    pub fn session(mut self, id: impl Into<String>) -> Self {
        self.event.session_id = Some(id.into());
        self
    }

    pub fn mcp_session(mut self, id: impl Into<String>) -> Self {
        self.event.mcp_session_id = Some(id.into());
        self
    }

    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.event.request_id = Some(id.into());
        self
    }

    /// Marks this event as the outcome of the pending event `intent`.
    pub fn completes(mut self, intent: EventId) -> Self {
        self.event.completes = Some(intent);
        self
    }

    /// The actor's user id.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.event.actor.user_id = Some(user_id.into());
        self
    }

    /// The whole actor.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.event.actor = actor;
        self
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.event.actor.email = Some(email.into());
        self
    }

    pub fn team(mut self, team: impl Into<String>) -> Self {
        self.event.actor.team = Some(team.into());
        self
    }

    pub fn client_ip(mut self, ip: impl Into<String>) -> Self {
        self.event.actor.client_ip = Some(ip.into());
        self
    }

    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.event.actor.user_agent = Some(ua.into());
        self
    }

    /// The whole target.
    pub fn target(mut self, target: Target) -> Self {
        self.event.target = target;
        self
    }

    pub fn server(mut self, name: impl Into<String>) -> Self {
        self.event.target.server_name = Some(name.into());
        self
    }

    pub fn resource_type(mut self, t: impl Into<String>) -> Self {
        self.event.target.resource_type = Some(t.into());
        self
    }

    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.event.target.resource_id = Some(id.into());
        self
    }

    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.event.target.resource_name = Some(name.into());
        self
    }

    /// The HTTP request path and method an admin action came through.
    pub fn request(mut self, method: impl Into<String>, path: impl Into<String>) -> Self {
        self.event.target.request_method = Some(method.into());
        self.event.target.request_path = Some(path.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.event.outcome = outcome;
        self
    }

    /// Marks the operation as failed with `message` (outcome `tool_error`).
    pub fn failed(mut self, message: impl Into<String>) -> Self {
        self.event.outcome = Outcome::ToolError;
        self.event.payload.error_message = Some(message.into());
        self
    }

    pub fn error_code(mut self, code: i64) -> Self {
        self.event.error_code = Some(code);
        self
    }

    pub fn duration_us(mut self, micros: u64) -> Self {
        self.event.duration_us = Some(micros);
        self
    }

    pub fn duration(self, d: std::time::Duration) -> Self {
        self.duration_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn input(mut self, v: Value) -> Self {
        self.event.payload.input = Some(v);
        self
    }

    pub fn output(mut self, v: Value) -> Self {
        self.event.payload.output = Some(v);
        self
    }

    pub fn old_values(mut self, v: Value) -> Self {
        self.event.payload.old_values = Some(v);
        self
    }

    pub fn new_values(mut self, v: Value) -> Self {
        self.event.payload.new_values = Some(v);
        self
    }

    pub fn state_before(mut self, v: Value) -> Self {
        self.event.payload.state_before = Some(v);
        self
    }

    pub fn state_after(mut self, v: Value) -> Self {
        self.event.payload.state_after = Some(v);
        self
    }

    pub fn content_preview(mut self, s: impl Into<String>) -> Self {
        self.event.payload.content_preview = Some(s.into());
        self
    }

    pub fn context(mut self, v: Value) -> Self {
        self.event.payload.context = Some(v);
        self
    }

    pub fn details(mut self, v: Value) -> Self {
        self.event.payload.details = Some(v);
        self
    }

    pub fn metadata(mut self, v: Value) -> Self {
        self.event.payload.metadata = Some(v);
        self
    }

    pub fn data_source(mut self, source: DataSource) -> Self {
        self.event.data_sources.push(source);
        self
    }

    pub fn compliance_event(mut self, e: ComplianceEvent) -> Self {
        self.event.compliance_events.push(e);
        self
    }

    pub fn classification(mut self, c: Classification) -> Self {
        self.event.compliance.classification = Some(c);
        self
    }

    pub fn requires_review(mut self, r: bool) -> Self {
        self.event.compliance.requires_review = Some(r);
        self
    }

    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.event.compliance.tags.push(tag.into());
        self
    }

    pub fn purpose(mut self, p: impl Into<String>) -> Self {
        self.event.compliance.purpose = Some(p.into());
        self
    }

    pub fn legal_basis(mut self, b: LegalBasis) -> Self {
        self.event.compliance.legal_basis = Some(b);
        self
    }

    pub fn gdpr(mut self, applies: bool) -> Self {
        self.event.compliance.gdpr = applies;
        self
    }

    pub fn ccpa(mut self, applies: bool) -> Self {
        self.event.compliance.ccpa = applies;
        self
    }

    pub fn data_subject(mut self, id: impl Into<String>) -> Self {
        self.event.compliance.data_subject_id = Some(id.into());
        self
    }

    /// The retention as text (`30d`, `6mo`, `7y`, `forever`, a policy name). An invalid one is
    /// reported by [`EventBuilder::build`].
    pub fn retention(mut self, r: &str) -> Self {
        match Retention::parse(r) {
            Ok(r) => self.event.compliance.retention = Some(r),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    pub fn expires_at(mut self, ts: Timestamp) -> Self {
        self.event.compliance.expires_at = Some(ts);
        self
    }
}

impl AuditEvent {
    /// Checks what the type system does not, and fills what can be derived. Run by
    /// [`EventBuilder::build`], and by readers of the JSON form before recording.
    pub fn normalize(&mut self) -> Result<(), ModelError> {
        if self.operation.trim().is_empty() {
            return Err(ModelError::EmptyOperation);
        }
        self.timestamp = truncate_to_micros(self.timestamp);
        // Kept within ±2^53 (I-JSON, RFC 7493): readers of an export that hold numbers as
        // doubles would read another number beyond it. Arguments and results keep every
        // digit (see `canonical`); these fields are the model's own.
        const EXACT: i128 = 1 << 53;
        let checks = [
            ("duration_us", self.duration_us.map(i128::from)),
            ("error_code", self.error_code.map(i128::from)),
        ];
        for (field, value) in checks {
            if let Some(value) = value
                && value.abs() > EXACT
            {
                return Err(ModelError::NumberOutOfRange { field, value });
            }
        }
        if self.correlation_id.is_none() {
            self.correlation_id = Some(EventId::new().to_string());
        }
        if self.action == Action::Update
            && self.payload.changes.is_none()
            && let (Some(old), Some(new)) = (&self.payload.old_values, &self.payload.new_values)
        {
            self.payload.changes = change_set(old, new);
        }
        Ok(())
    }
}
