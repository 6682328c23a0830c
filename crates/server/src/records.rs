//! The events the console records about its own use.
//!
//! A read of arguments and results (an event in full, a proof with its payload), an export and
//! a review each become an `admin` event of the log before anything is answered: the actor is
//! the token's name (auth method `console_token`) or the JWT's subject (auth method `jwt`, its
//! issuer in the details), the resource what was read, and the details say through which
//! endpoint and with which filter. A read that cannot be recorded is refused
//! (fail-closed), so the log never misses a read that happened.
//!
//! The event model has no `data_access` kind; a read is an `admin` event with action `READ`
//! (`EXPORT` for an export) and a `data_access` compliance event, which is how the model spells
//! an access to data elsewhere (see the `data_access` example).

use mcp_audit_core::{
    Action, AuditEvent, Classification, ComplianceEvent, CustomAction, EventId, RiskLevel,
};
use mcp_audit_store::{Durability, Receipt, Recorder};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::tokens::{Credential, TokenInfo};

/// The resource type of a read or review of one event.
pub const EVENT_RESOURCE: &str = "audit_event";
/// The resource type of an export.
pub const EXPORT_RESOURCE: &str = "audit_trail";
/// The resource id of a search's record (its resource type is [`EXPORT_RESOURCE`]: a search
/// reads across the trail, not one event).
pub const SEARCH_RESOURCE_ID: &str = "search";
/// The custom action of a review; its operation is `review audit_event`.
pub const REVIEW_ACTION: &str = "review";
/// The operation of every review event (what the queue subtracts).
pub const REVIEW_OPERATION: &str = "review audit_event";

/// A review's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approved,
    Flagged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Flagged => "flagged",
        }
    }

    /// The tag a review event carries, in the hashed metadata so that every role sees it.
    pub fn tag(self) -> String {
        format!("review:{}", self.as_str())
    }

    pub fn from_tags(tags: &[String]) -> Option<Verdict> {
        tags.iter().find_map(|t| match t.as_str() {
            "review:approved" => Some(Verdict::Approved),
            "review:flagged" => Some(Verdict::Flagged),
            _ => None,
        })
    }
}

fn base(
    action: Action,
    resource_type: &str,
    resource_id: &str,
    who: &TokenInfo,
) -> Result<AuditEvent, ApiError> {
    // Not for review: the console's own records would otherwise crowd the queue they serve.
    let mut event = AuditEvent::admin(action, resource_type, resource_id)
        .user(who.name.clone())
        .classification(Classification::Internal)
        .requires_review(false)
        .build()
        .map_err(|e| ApiError::internal(format!("cannot build the console's record: {e}")))?;
    event.actor.auth_method = Some(who.auth_method().into());
    event.target.server_name = Some("mcp-audit serve".into());
    Ok(event)
}

/// A read of personal data through `endpoint`.
pub fn read(who: &TokenInfo, event: EventId, endpoint: &str) -> Result<AuditEvent, ApiError> {
    let mut record = base(Action::Read, EVENT_RESOURCE, &event.to_string(), who)?;
    let mut access = json!({"endpoint": endpoint, "role": who.grant});
    let mut details = json!({"endpoint": endpoint});
    add_credential(&mut access, who);
    add_credential(&mut details, who);
    record.compliance_events.push(data_access(access));
    record.payload.details = Some(details);
    Ok(record)
}

/// An export with `filter` (the query string as given) in `format`.
pub fn export(who: &TokenInfo, filter: &str, format: &str) -> Result<AuditEvent, ApiError> {
    let mut record = base(Action::Export, EXPORT_RESOURCE, format, who)?;
    let mut details = json!({
        "endpoint": "/api/v1/export",
        "filter": filter,
        "format": format,
        "role": who.grant,
    });
    add_credential(&mut details, who);
    record.compliance_events.push(data_access(details.clone()));
    record.payload.details = Some(details);
    Ok(record)
}

/// A full-text search through `endpoint`: it reads payloads (which events hold the words), so
/// it is recorded as a read, with its words and the rest of the filter (`query`, the query
/// string as given) in the record's personal half, erasable like the payloads it searched.
pub fn search(
    who: &TokenInfo,
    endpoint: &str,
    words: &str,
    query: &str,
) -> Result<AuditEvent, ApiError> {
    let mut record = base(Action::Read, EXPORT_RESOURCE, SEARCH_RESOURCE_ID, who)?;
    record.compliance_events.push(data_access(json!({
        "endpoint": endpoint,
        "token_id": who.id,
        "role": who.grant,
    })));
    record.payload.details = Some(json!({
        "endpoint": endpoint,
        "search": words,
        "filter": query,
        "token_id": who.id,
    }));
    Ok(record)
}

/// A review of `event`: the verdict in the metadata (a tag), the comment in the values.
pub fn review(
    who: &TokenInfo,
    event: EventId,
    verdict: Verdict,
    comment: &str,
) -> Result<AuditEvent, ApiError> {
    let action = CustomAction::new(REVIEW_ACTION)
        .map(Action::Custom)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut record = base(action, EVENT_RESOURCE, &event.to_string(), who)?;
    record.compliance.tags.push(verdict.tag());
    let mut values = json!({
        "verdict": verdict.as_str(),
        "comment": comment,
    });
    add_credential(&mut values, who);
    record.payload.new_values = Some(values);
    Ok(record)
}

/// Which credential the caller used: the console token's id, or the JWT's issuer.
fn add_credential(details: &mut Value, who: &TokenInfo) {
    let Some(details) = details.as_object_mut() else {
        return;
    };
    match &who.credential {
        Credential::ConsoleToken => {
            details.insert("token_id".into(), json!(who.id));
        }
        Credential::Jwt { issuer } => {
            details.insert("issuer".into(), json!(issuer));
        }
    }
}

fn data_access(details: Value) -> ComplianceEvent {
    ComplianceEvent {
        framework: "mcp-audit".into(),
        event_type: "data_access".into(),
        risk_level: RiskLevel::Low,
        details: Some(details),
        mitigation: Vec::new(),
    }
}

/// Records `event` and waits until it is durable; blocking (call from `spawn_blocking`).
pub fn record(recorder: &Recorder, event: AuditEvent) -> Result<EventId, ApiError> {
    let id = event.id;
    match recorder.record(event) {
        Ok(Receipt::Durable { .. }) => Ok(id),
        Ok(Receipt::Queued { .. }) if recorder.durability() == Durability::Batch => {
            recorder.flush().map_err(ApiError::not_recorded)?;
            Ok(id)
        }
        Ok(other) => Err(ApiError::not_recorded(format!(
            "the recorder answered {other:?}"
        ))),
        Err(e) => Err(ApiError::not_recorded(e)),
    }
}
