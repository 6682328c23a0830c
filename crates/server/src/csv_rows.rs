//! The CSV form of stored events, one place for `mcp-audit export --format csv` and the
//! console's `/api/v1/export?format=csv`: a column for every field of the event's JSON, so a
//! CSV export leaves out nothing a JSON one has, whichever door it came through.

use mcp_audit_store::StoredEvent;

/// The CSV columns, as paths into a stored event's JSON form (`actor.user_id`): every field of
/// it, so that a CSV export leaves out nothing a JSON one has. The header names the last part
/// of each path (`user_id`), which is unique. Objects and lists that have no columns of their
/// own (the personal `payload`, `data_sources`, `compliance_events`, `origin`, `tags`) are one cell of
/// compact JSON. A unit test holds this list to the event's JSON Schema, so a field added to
/// the event and forgotten here fails the build's tests.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "log_id",
    "id",
    "timestamp",
    "received_at",
    "version",
    "kind",
    "action",
    "operation",
    "outcome",
    "duration_us",
    "error_code",
    "correlation_id",
    "trace_id",
    "session_id",
    "mcp_session_id",
    "request_id",
    "completes",
    "actor.user_id",
    "actor.team",
    "actor.auth_method",
    "actor.client_name",
    "actor.client_version",
    "actor.email",
    "actor.client_ip",
    "actor.user_agent",
    "target.server_name",
    "target.server_version",
    "target.transport",
    "target.protocol_version",
    "target.request_method",
    "target.request_path",
    "target.resource_type",
    "target.resource_id",
    "target.resource_name",
    "compliance.classification",
    "compliance.requires_review",
    "compliance.tags",
    "compliance.purpose",
    "compliance.legal_basis",
    "compliance.gdpr",
    "compliance.ccpa",
    "compliance.data_subject_id",
    "compliance.retention",
    "compliance.redactions",
    "compliance.expires_at",
    "compliance_events",
    "data_sources",
    "origin",
    "payload",
    "payload_commitment",
    "leaf_hash",
    "redacted",
];

/// Flags the JSON form leaves out when false: `false` in their cells rather than blank.
const FALSE_WHEN_ABSENT: &[&str] = &["compliance.gdpr", "compliance.ccpa", "redacted"];

/// The header: the last part of each column's path.
pub fn header() -> Vec<&'static str> {
    CSV_COLUMNS
        .iter()
        .map(|path| path.rsplit('.').next().unwrap_or(path))
        .collect()
}

/// One CSV row of `stored`, a cell per [`CSV_COLUMNS`]: text as is, numbers and flags as
/// written in JSON, objects and lists as compact JSON, absent as blank.
pub fn row(stored: &StoredEvent) -> serde_json::Result<Vec<String>> {
    let json = serde_json::to_value(stored)?;
    Ok(CSV_COLUMNS
        .iter()
        .map(|path| {
            let value = path.split('.').try_fold(&json, |v, key| v.get(key));
            match value {
                None | Some(serde_json::Value::Null) if FALSE_WHEN_ABSENT.contains(path) => {
                    "false".to_string()
                }
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(serde_json::Value::Object(o)) if o.is_empty() => String::new(),
                Some(other) => other.to_string(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mcp_audit_core::{AuditEvent, Hash};
    use serde_json::Value;

    use super::*;

    /// Every field path of the event's JSON form, from its JSON Schema: the nested objects
    /// with a schema of their own (`actor`, `target`, `compliance`) by field.
    fn schema_paths() -> BTreeSet<String> {
        let schema = mcp_audit_core::event_json_schema();
        let defs = &schema["$defs"];
        let mut paths = BTreeSet::new();
        for (name, property) in schema["properties"].as_object().unwrap() {
            let nested = property["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|def| defs[def]["properties"].as_object())
                .filter(|_| name != "payload");
            match nested {
                Some(fields) => paths.extend(fields.keys().map(|f| format!("{name}.{f}"))),
                None => {
                    paths.insert(name.clone());
                }
            }
        }
        // Read from other loggers' callers and stored in the event's own form (`outcome`,
        // `payload.error_message`): never part of a stored event's JSON.
        paths.remove("success");
        paths.remove("error_message");
        paths
    }

    #[test]
    fn every_field_of_the_event_json_has_a_csv_column() {
        let columns: BTreeSet<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
        let missing: Vec<String> = schema_paths()
            .into_iter()
            .filter(|p| !columns.contains(p))
            .collect();
        assert!(
            missing.is_empty(),
            "event fields without a CSV column: {missing:?}"
        );

        // The stored event's own fields too (seq, log id, hashes), from its JSON.
        let stored = StoredEvent {
            log_id: "l".into(),
            seq: 0,
            event: serde_json::from_value(
                serde_json::json!({"kind": "admin", "action": "READ", "operation": "x"}),
            )
            .unwrap(),
            payload_commitment: Hash::default(),
            leaf_hash: Hash::default(),
            redacted: true,
            payload_left_out: false,
        };
        let json = serde_json::to_value(&stored).unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(
                CSV_COLUMNS
                    .iter()
                    .any(|c| c == key || c.starts_with(&format!("{key}."))),
                "stored-event field `{key}` has no CSV column"
            );
        }
        let header = header();
        let unique: BTreeSet<&&str> = header.iter().collect();
        assert_eq!(
            unique.len(),
            header.len(),
            "header names repeat: {header:?}"
        );
    }

    #[test]
    fn a_row_holds_nested_fields_lists_as_json_and_false_for_absent_flags() {
        let event: AuditEvent = serde_json::from_value(serde_json::json!({
            "kind": "tool_execution", "action": "EXECUTE", "operation": "search",
            "actor": {"user_id": "alice", "auth_method": "jwt", "client_ip": "10.0.0.7",
                      "email": "a@example.com", "team": "red"},
            "compliance": {"tags": ["pii", "hr"], "purpose": "support", "gdpr": true,
                           "legal_basis": "consent"}
        }))
        .unwrap();
        let stored = StoredEvent {
            log_id: "l".into(),
            seq: 7,
            event,
            payload_commitment: Hash::default(),
            leaf_hash: Hash::default(),
            redacted: false,
            payload_left_out: false,
        };
        let row = row(&stored).unwrap();
        let cell = |name: &str| -> &str {
            let at = header().iter().position(|h| *h == name).unwrap();
            &row[at]
        };
        assert_eq!(cell("seq"), "7");
        assert_eq!(cell("auth_method"), "jwt");
        assert_eq!(cell("client_ip"), "10.0.0.7");
        assert_eq!(cell("email"), "a@example.com");
        assert_eq!(cell("team"), "red");
        assert_eq!(cell("purpose"), "support");
        assert_eq!(cell("gdpr"), "true");
        assert_eq!(cell("ccpa"), "false");
        assert_eq!(cell("redacted"), "false");
        assert_eq!(
            serde_json::from_str::<Value>(cell("tags")).unwrap(),
            serde_json::json!(["pii", "hr"])
        );
        assert!(!cell("legal_basis").is_empty());
        assert_eq!(cell("payload"), "");
    }
}
