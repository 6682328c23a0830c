//! Open Cybersecurity Schema Framework, schema 1.3.0, class **API Activity** (`class_uid`
//! 6003, category Application Activity, `category_uid` 6): an MCP operation is an API call
//! made by an actor on a service (the MCP server).
//!
//! Mapping:
//! - `activity_id` from the action: CREATE 1, READ and ACCESS 2, UPDATE 3, DELETE 4, every
//!   other (EXECUTE, EXPORT, IMPORT, custom) 99 Other with the action as `activity_name`;
//!   `type_uid` = `class_uid` × 100 + `activity_id`;
//! - `time` the event's time (epoch ms); `metadata.logged_time` when the trail received it;
//!   `metadata.uid` the record key `LOG:SEQ` (what a receiver deduplicates on);
//!   `metadata.correlation_uid` the correlation id; `metadata.product` mcp-audit;
//! - `actor.user` (uid, email), `actor.app_name` (the MCP client), `actor.session.uid`;
//! - `api.operation` (tool, resource, prompt or method), `api.service` (server name and
//!   version), `api.request.uid` (the JSON-RPC id);
//! - `src_endpoint.ip` (only when an address), `http_request.user_agent`;
//! - `status_id` 1 Success, 2 Failure (tool, protocol error, denied, cancelled), 0 Unknown
//!   (pending, incomplete); `status_detail` the outcome; `status_code` the error code;
//! - `severity_id` from [`Severity`]; `duration` in milliseconds;
//! - `unmapped`: everything else the record holds (log id, seq, leaf hash and payload
//!   commitment, kind, classification and the rest of compliance, target, lineage, payload),
//!   so that nothing the store keeps is lost on the way.
//!
//! The class's `cloud` object is left out: the trail records no cloud provider, and an
//! invented one would mislead.

use mcp_audit_core::{Action, Outcome};
use mcp_audit_store::StoredEvent;
use serde_json::{Map, Value, json};

use super::{PRODUCT, PRODUCT_VERSION, Severity, VENDOR, client_ip, epoch_millis};

/// The schema version the records follow.
pub const SCHEMA_VERSION: &str = "1.3.0";
pub const CLASS_UID: u32 = 6003;
pub const CATEGORY_UID: u32 = 6;

/// The OCSF object for `event` (absent values left out, not `null`).
pub fn record(event: &StoredEvent) -> Value {
    let e = &event.event;
    let (activity_id, activity_name) = activity(&e.action);
    let (status_id, status) = status(e.outcome);
    let severity = Severity::of(event);
    let mut record = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": CLASS_UID * 100 + activity_id,
        "time": epoch_millis(e.timestamp),
        "severity_id": severity.ocsf_id(),
        "severity": severity.ocsf_name(),
        "status_id": status_id,
        "status": status,
        "status_detail": e.outcome.as_str(),
        "status_code": e.error_code.map(|c| c.to_string()),
        "duration": e.duration_us.map(|us| us / 1000),
        "message": super::title(event),
        "metadata": {
            "version": SCHEMA_VERSION,
            "uid": crate::record_key(event),
            "correlation_uid": e.correlation_id,
            "logged_time": e.received_at.map(epoch_millis),
            "product": {
                "name": PRODUCT,
                "vendor_name": VENDOR,
                "version": PRODUCT_VERSION,
            },
        },
        "actor": {
            "user": {
                "uid": e.actor.user_id,
                "email_addr": e.actor.email,
            },
            "app_name": e.actor.client_name,
            "session": { "uid": e.session_id },
        },
        "api": {
            "operation": e.operation,
            "service": {
                "name": e.target.server_name,
                "version": e.target.server_version,
            },
            "request": { "uid": e.request_id },
        },
        "src_endpoint": { "ip": client_ip(event).map(|ip| ip.to_string()) },
        "http_request": { "user_agent": e.actor.user_agent },
        "unmapped": unmapped(event),
    });
    prune(&mut record);
    record
}

/// CREATE 1, READ/ACCESS 2, UPDATE 3, DELETE 4, anything else 99 Other under its own name.
fn activity(action: &Action) -> (u32, String) {
    match action {
        Action::Create => (1, "Create".into()),
        Action::Read | Action::Access => (2, "Read".into()),
        Action::Update => (3, "Update".into()),
        Action::Delete => (4, "Delete".into()),
        other => (99, other.as_str().to_string()),
    }
}

/// OCSF's status: whether the call did what was asked.
fn status(outcome: Outcome) -> (u32, &'static str) {
    match outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Pending | Outcome::Incomplete => (0, "Unknown"),
        _ => (2, "Failure"),
    }
}

/// The fields with no OCSF home, under their own names.
fn unmapped(event: &StoredEvent) -> Value {
    let e = &event.event;
    let mut rest = Map::new();
    let mut put = |key: &str, value: Value| {
        rest.insert(key.to_string(), value);
    };
    put("log_id", json!(event.log_id));
    put("seq", json!(event.seq));
    put("leaf_hash", json!(event.leaf_hash.to_string()));
    put(
        "payload_commitment",
        json!(event.payload_commitment.to_string()),
    );
    put("event_id", json!(e.id.to_string()));
    put("kind", json!(e.kind.as_str()));
    put("action", json!(e.action.as_str()));
    put("trace_id", json!(e.trace_id));
    put("mcp_session_id", json!(e.mcp_session_id));
    put("completes", json!(e.completes.map(|id| id.to_string())));
    put("team", json!(e.actor.team));
    put("auth_method", json!(e.actor.auth_method));
    put("client_version", json!(e.actor.client_version));
    if client_ip(event).is_none() {
        // Not an address: kept as text rather than dropped.
        put("client_ip", json!(e.actor.client_ip));
    }
    put("duration_us", json!(e.duration_us));
    put(
        "target",
        serde_json::to_value(&e.target).unwrap_or(Value::Null),
    );
    put(
        "compliance",
        serde_json::to_value(&e.compliance).unwrap_or(Value::Null),
    );
    put(
        "data_sources",
        serde_json::to_value(&e.data_sources).unwrap_or(Value::Null),
    );
    put(
        "compliance_events",
        serde_json::to_value(&e.compliance_events).unwrap_or(Value::Null),
    );
    put(
        "payload",
        serde_json::to_value(&e.payload).unwrap_or(Value::Null),
    );
    put("redacted", json!(event.redacted));
    // Only absent fields go: inside the payload and the rest, a `null` is the caller's own.
    rest.retain(|_, v| !is_empty(v));
    Value::Object(rest)
}

/// Drops `null`s, and objects left empty by that, from the OCSF objects we built, so that a
/// reader sees only what the record holds. `unmapped` is left as [`unmapped`] made it: what is
/// inside the payload is the caller's, `null`s included.
fn prune(value: &mut Value) {
    if let Value::Object(map) = value {
        for (key, v) in map.iter_mut() {
            if key != "unmapped" {
                prune(v);
            }
        }
        map.retain(|_, v| !is_empty(v));
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}
