//! ContextForge's `audit_trails` (`mcp-contextforge-gateway`, its `AuditTrailService`) as
//! events: one `admin` event per row, the gateway's CRUD action as the action and
//! `<ACTION> <resource_type>` as the operation (as [`AuditEvent::admin`] names it).
//!
//! The row's `id` is its original id; its own `correlation_id` (the gateway's request chain)
//! stays the correlation id, the row's `id` standing in where it has none. `success: false`
//! is `outcome: tool_error`, as the gateway's form reads everywhere else (see
//! [`crate::rewrite_seed_forms`]). The gateway keeps no content hash.

use serde_json::{Map, Value};

use crate::import::{ImportError, Problem, imported_id, parse_time};
use crate::origin::{Origin, SeedSystem};
use crate::{Action, AuditEvent, Classification, EventKind, Outcome};

pub const AUDIT_TRAILS: &str = "audit_trails";

/// One row of `audit_trails`, as the gateway's model declares its columns. The JSON columns
/// hold JSON text (`null` when unset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trail {
    pub id: String,
    pub timestamp: String,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub user_id: String,
    pub user_email: Option<String>,
    pub team_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_path: Option<String>,
    pub request_method: Option<String>,
    pub old_values: Option<String>,
    pub new_values: Option<String>,
    pub changes: Option<String>,
    pub data_classification: Option<String>,
    pub requires_review: bool,
    pub success: bool,
    pub error_message: Option<String>,
    pub context: Option<String>,
    pub auth_method: Option<String>,
    pub acting_as: Option<String>,
    pub delegation_chain: Option<String>,
}

/// The event of one `audit_trails` row; `file` is the database's file name.
pub fn trail_event(file: &str, row: &Trail) -> Result<AuditEvent, ImportError> {
    map_trail(file, row).map_err(|problem| ImportError {
        table: AUDIT_TRAILS,
        id: row.id.clone(),
        problem,
    })
}

fn map_trail(file: &str, row: &Trail) -> Result<AuditEvent, Problem> {
    let timestamp = parse_time("timestamp", &row.timestamp)?;
    let action: Action = row.action.parse().map_err(Problem::Model)?;
    let operation = format!("{action} {}", row.resource_type);
    let mut event = AuditEvent::builder(EventKind::Admin, action, operation)
        .id(imported_id(
            SeedSystem::Contextforge,
            AUDIT_TRAILS,
            &row.id,
            timestamp,
        ))
        .timestamp(timestamp)
        .correlation_id(row.correlation_id.clone().unwrap_or_else(|| row.id.clone()))
        .build()
        .map_err(Problem::Model)?;
    event.request_id = row.request_id.clone();
    event.outcome = if row.success {
        Outcome::Success
    } else {
        Outcome::ToolError
    };

    let actor = &mut event.actor;
    actor.user_id = Some(row.user_id.clone());
    actor.email = row.user_email.clone();
    actor.team = row.team_id.clone();
    actor.client_ip = row.client_ip.clone();
    actor.user_agent = row.user_agent.clone();
    actor.auth_method = row.auth_method.clone();

    let target = &mut event.target;
    target.resource_type = Some(row.resource_type.clone());
    target.resource_id = row.resource_id.clone();
    target.resource_name = row.resource_name.clone();
    target.request_path = row.request_path.clone();
    target.request_method = row.request_method.clone();

    let payload = &mut event.payload;
    payload.old_values = json_column("old_values", &row.old_values)?;
    payload.new_values = json_column("new_values", &row.new_values)?;
    payload.changes = json_column("changes", &row.changes)?;
    payload.error_message = row.error_message.clone();
    payload.context = json_column("context", &row.context)?;
    // Who acted for whom: identities, so in the erasable half.
    let mut details = Map::new();
    if let Some(acting_as) = &row.acting_as {
        details.insert("acting_as".into(), Value::String(acting_as.clone()));
    }
    if let Some(chain) = json_column("delegation_chain", &row.delegation_chain)? {
        details.insert("delegation_chain".into(), chain);
    }
    if !details.is_empty() {
        payload.details = Some(Value::Object(details));
    }

    if let Some(class) = &row.data_classification {
        event.compliance.classification =
            Some(class.parse::<Classification>().map_err(Problem::Model)?);
    }
    event.compliance.requires_review = Some(row.requires_review);
    event.origin = Some(Origin {
        system: SeedSystem::Contextforge,
        file: file.to_string(),
        table: AUDIT_TRAILS.to_string(),
        original_id: row.id.clone(),
        content_hash: None,
    });
    Ok(event)
}

/// A JSON column; `NULL` and JSON `null` are both `None`.
fn json_column(column: &'static str, text: &Option<String>) -> Result<Option<Value>, Problem> {
    match text.as_deref() {
        None => Ok(None),
        Some(t) => match serde_json::from_str(t) {
            Ok(Value::Null) => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(e) => Err(Problem::Column {
                column,
                message: format!("not JSON: {e}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn failed_delete() -> Trail {
        Trail {
            id: "d2156900df2c40c893d9e6a00d7c08d8".into(),
            timestamp: "2026-12-07 22:10:49.655985".into(),
            correlation_id: Some("c72b".into()),
            action: "DELETE".into(),
            resource_type: "server".into(),
            resource_id: Some("srv-3".into()),
            user_id: "alice".into(),
            old_values: Some(r#"{"name": "legacy"}"#.into()),
            new_values: Some("null".into()),
            changes: Some("null".into()),
            data_classification: Some("internal".into()),
            requires_review: true,
            success: false,
            error_message: Some("server is in use".into()),
            context: Some("null".into()),
            ..Trail::default()
        }
    }

    #[test]
    fn a_failed_trail_is_a_tool_error_with_its_message_and_json_null_is_absent() {
        let event = trail_event("mcp.db", &failed_delete()).unwrap();
        assert_eq!(event.kind, EventKind::Admin);
        assert_eq!(event.operation, "DELETE server");
        assert_eq!(event.outcome, Outcome::ToolError);
        assert_eq!(
            event.payload.error_message.as_deref(),
            Some("server is in use")
        );
        assert_eq!(event.payload.old_values, Some(json!({"name": "legacy"})));
        assert_eq!(event.payload.new_values, None);
        assert_eq!(event.payload.context, None);
        assert_eq!(event.correlation_id.as_deref(), Some("c72b"));
        assert_eq!(event.timestamp.to_string(), "2026-12-07T22:10:49.655985Z");
        let origin = event.origin.unwrap();
        assert_eq!(origin.original_id, "d2156900df2c40c893d9e6a00d7c08d8");
        assert_eq!(origin.content_hash, None);
    }

    #[test]
    fn an_unknown_classification_names_the_row() {
        let mut row = failed_delete();
        row.data_classification = Some("top secret".into());
        let error = trail_event("mcp.db", &row).unwrap_err().to_string();
        assert!(
            error.starts_with("audit_trails row d2156900df2c40c893d9e6a00d7c08d8: ")
                && error.contains("top secret"),
            "{error}"
        );
    }
}
