//! The mcp-audit event model and everything about an event that needs no I/O.
//!
//! An [`AuditEvent`] records one operation: a tool execution, a resource access, a context
//! operation, a prompt run, a server operation, an MCP sampling/elicitation/completion, or an
//! administrative CRUD action with its before/after values. The same model serves the MCP proxy
//! and applications that record their own events through the library.
//!
//! - [`AuditEvent`] and its parts ([`Actor`], [`Target`], [`Compliance`], [`Payload`],
//!   [`DataSource`], [`ComplianceEvent`]), built with [`EventBuilder`].
//! - [`Policy`]: the audit level, and the derived classification, review flag and expiry.
//! - [`seal`]: the canonical encoding, the payload commitment and the Merkle leaf, which is what
//!   makes personal data erasable without breaking tamper evidence.
//! - [`merkle`]: RFC 6962 / RFC 9162 tree hashes, inclusion and consistency proofs.
//! - [`checkpoint`]: C2SP checkpoints signed as Ed25519 signed notes.
//! - [`import`]: the seed loggers' database rows as events, each marked with its [`Origin`].
//!
//! ```
//! use mcp_audit_core::{Action, AuditEvent, Policy};
//! use serde_json::json;
//!
//! let mut event = AuditEvent::admin(Action::Update, "tool", "t-1")
//!     .user("alice")
//!     .old_values(json!({"enabled": true}))
//!     .new_values(json!({"enabled": false}))
//!     .build()
//!     .unwrap();
//! Policy::default().apply(&mut event).unwrap();
//! assert_eq!(event.payload.changes, Some(json!({"enabled": {"old": true, "new": false}})));
//! ```
//!
//! This crate does no I/O and knows nothing of SQLite, JSON-RPC or async runtimes: that keeps
//! the rules that decide what a record says testable on their own.

mod builder;
mod canonical;
mod changeset;
pub mod checkpoint;
mod classification;
pub mod cosignature;
mod error;
mod event;
mod hash;
pub mod import;
pub mod input;
mod kind;
pub mod merkle;
mod national_id;
mod note_key;
mod origin;
mod policy;
pub mod proof;
pub mod pseudonym;
pub mod redact;
mod retention;
pub mod retention_classes;
pub mod seal;
mod seed_forms;
pub mod subject_export;
pub mod tiles;

pub use builder::{ContextOp, EventBuilder};
pub use changeset::change_set;
pub use classification::{
    Classification, REVIEWED_ACTIONS, REVIEWED_DELETE_TYPES, derive_classification,
    derive_requires_review,
};
pub use error::ModelError;
pub use event::{
    Actor, AuditEvent, Compliance, ComplianceEvent, DataSource, EVENT_SCHEMA_VERSION, EventId,
    FlowDirection, LegalBasis, MAX_CLOCK_SKEW, Payload, Redaction, RiskLevel, Target, now_micros,
    truncate_to_micros,
};
pub use hash::Hash;
pub use kind::{Action, CustomAction, EventKind, Outcome};
pub use origin::{HashCheck, Origin, OriginalHash, SeedSystem};
pub use policy::{AuditLevel, Policy};
pub use retention::{Retention, RetentionKind, add_span};
pub use retention_classes::{RetentionClass, RetentionClasses, RetentionPolicyError};
pub use seal::{SealedEvent, seal, unseal, unseal_without_payload};
pub use seed_forms::rewrite_seed_forms;

/// The JSON Schema of the JSON form of [`AuditEvent`] (what `mcp-audit log` reads and
/// `mcp-audit query --json` prints), generated from the Rust types.
///
/// The `id` and `timestamp` defaults are generated per event (a fresh UUIDv7, the current time),
/// so the schema says so in words instead of showing one arbitrary value: that keeps the schema
/// the same on every run, and the checked-in copy testable. The seed forms that
/// [`rewrite_seed_forms`] reads (`success`, a top-level `error_message`) are input only, and
/// added here.
pub fn event_json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(AuditEvent);
    let mut value = serde_json::to_value(schema).unwrap_or(serde_json::Value::Null);
    if let Some(properties) = value.get_mut("properties").and_then(|p| p.as_object_mut()) {
        for field in ["id", "timestamp"] {
            if let Some(property) = properties.get_mut(field).and_then(|p| p.as_object_mut()) {
                property.remove("default");
            }
        }
        properties.insert(
            "success".into(),
            serde_json::json!({
                "description": "Input only (the gateway audit trail's form): false is `outcome: tool_error`, true `outcome: success`; beside an `outcome`, the two must agree.",
                "type": ["boolean", "null"]
            }),
        );
        properties.insert(
            "error_message".into(),
            serde_json::json!({
                "description": "Input only (the gateway audit trail's form): stored as `payload.error_message`.",
                "type": ["string", "null"]
            }),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_is_the_same_on_every_call() {
        assert_eq!(event_json_schema(), event_json_schema());
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_refused() {
        let err = AuditEvent::tool_execution("t")
            .duration_us(1 << 60)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ModelError::NumberOutOfRange {
                field: "duration_us",
                ..
            }
        ));
        assert!(
            AuditEvent::tool_execution("t")
                .duration_us(1 << 53)
                .build()
                .is_ok()
        );
        let err = AuditEvent::tool_execution("t")
            .error_code(-(1 << 60))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ModelError::NumberOutOfRange {
                field: "error_code",
                ..
            }
        ));
    }
}
