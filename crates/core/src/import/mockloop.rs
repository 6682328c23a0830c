//! MockLoop's tables (`mockloop-mcp`, its `MCPAuditLogger`) as events.
//!
//! - `mcp_audit_logs`: one event per row. `operation_type` is the kind; the row's
//!   `entry_id` is its correlation id and original id; `timestamp` is the stated time.
//! - `mcp_data_lineage`: the rows of an entry become its `data_sources`, in row order.
//! - `mcp_compliance_events`: the logger's table names a session, not an entry, so each row
//!   is an event of its own (kind `session`, the framework's `event_type` as operation) that
//!   carries the row as its one compliance event.
//!
//! The logger's `content_hash` is recomputed as it computes it (see [`content_hash`]) and the
//! result is kept in the event's [`Origin`].

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::import::python_json::dumps_sorted;
use crate::import::{ImportError, Problem, imported_id, parse_time};
use crate::origin::{HashCheck, Origin, OriginalHash, SeedSystem};
use crate::{
    Action, AuditEvent, ComplianceEvent, DataSource, EventKind, FlowDirection, LegalBasis,
    Retention, RiskLevel,
};

pub const AUDIT_LOGS: &str = "mcp_audit_logs";
pub const LINEAGE: &str = "mcp_data_lineage";
pub const COMPLIANCE_EVENTS: &str = "mcp_compliance_events";

/// One row of `mcp_audit_logs`, as the logger declares its columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub entry_id: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub timestamp: String,
    pub operation_type: String,
    pub operation_name: String,
    pub input_parameters: Option<String>,
    pub output_data: Option<String>,
    pub execution_time_ms: Option<f64>,
    pub data_sources: Option<String>,
    pub compliance_tags: Option<String>,
    pub processing_purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub content_hash: Option<String>,
    pub gdpr_applicable: bool,
    pub ccpa_applicable: bool,
    pub data_subject_id: Option<String>,
    pub context_state_before: Option<String>,
    pub context_state_after: Option<String>,
    pub expires_at: Option<String>,
    pub retention_policy: Option<String>,
}

/// One row of `mcp_data_lineage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    pub id: i64,
    pub source_uri: String,
    pub source_type: Option<String>,
    pub source_identifier: Option<String>,
    pub source_metadata: Option<String>,
    pub transformation_applied: Option<String>,
    pub destination_uri: Option<String>,
    pub data_flow_direction: Option<String>,
}

/// One row of `mcp_compliance_events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplianceRow {
    pub id: i64,
    pub session_id: Option<String>,
    pub event_type: String,
    pub compliance_framework: String,
    pub event_details: Option<String>,
    pub risk_level: Option<String>,
    pub mitigation_actions: Option<String>,
    pub timestamp: String,
}

/// The event of one `mcp_audit_logs` row and its lineage rows; `file` is the database's
/// file name.
pub fn entry_event(
    file: &str,
    entry: &Entry,
    lineage: &[Lineage],
) -> Result<AuditEvent, ImportError> {
    let problem = |problem| ImportError {
        table: AUDIT_LOGS,
        id: entry.entry_id.clone(),
        problem,
    };
    map_entry(file, entry, lineage).map_err(problem)
}

fn map_entry(file: &str, entry: &Entry, lineage: &[Lineage]) -> Result<AuditEvent, Problem> {
    let timestamp = parse_time("timestamp", &entry.timestamp)?;
    let input = json_column("input_parameters", &entry.input_parameters)?;
    let output = json_column("output_data", &entry.output_data)?;
    let kind: EventKind = entry.operation_type.parse().map_err(Problem::Model)?;
    let field = |name: &str| {
        input
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
    };
    let mut duration_ms = entry.execution_time_ms;
    let mut builder = match kind {
        EventKind::ResourceAccess => {
            let uri = field("uri").unwrap_or(&entry.operation_name);
            let action = match field("access_type").map(str::to_ascii_lowercase).as_deref() {
                Some("read") => Action::Read,
                Some("write" | "update") => Action::Update,
                Some("create") => Action::Create,
                Some("delete") => Action::Delete,
                _ => Action::Access,
            };
            duration_ms = duration_ms.or_else(|| {
                input
                    .as_ref()
                    .and_then(|v| v.get("execution_time_ms"))
                    .and_then(Value::as_f64)
            });
            AuditEvent::resource_access(uri, action)
        }
        EventKind::ContextOperation => {
            let key = field("context_key").unwrap_or(&entry.operation_name);
            let action = match field("operation").map(str::to_ascii_lowercase).as_deref() {
                Some("set" | "create") => Action::Create,
                Some("get" | "read") => Action::Read,
                Some("update") => Action::Update,
                Some("delete") => Action::Delete,
                _ => Action::Execute,
            };
            AuditEvent::builder(kind, action, key)
        }
        EventKind::ToolExecution => AuditEvent::tool_execution(&entry.operation_name),
        EventKind::PromptExecution => AuditEvent::prompt_execution(&entry.operation_name),
        _ => AuditEvent::builder(kind, Action::Execute, &entry.operation_name),
    };
    builder = builder
        .id(imported_id(
            SeedSystem::Mockloop,
            AUDIT_LOGS,
            &entry.entry_id,
            timestamp,
        ))
        .timestamp(timestamp)
        .correlation_id(&entry.entry_id);
    if let Some(ms) = duration_ms {
        if !ms.is_finite() || ms < 0.0 {
            return Err(Problem::Column {
                column: "execution_time_ms",
                message: format!("{ms} is not a duration"),
            });
        }
        builder = builder.duration_us((ms * 1000.0).round() as u64);
    }
    let mut event = builder.build().map_err(Problem::Model)?;
    event.session_id = entry.session_id.clone();
    if let Some(user) = &entry.user_id {
        event.actor.user_id = Some(user.clone());
    }

    // The personal half, as the logger split it.
    let personal = &mut event.payload;
    if kind == EventKind::ResourceAccess {
        personal.input = input.clone();
        if let Some(Value::Object(out)) = &output {
            personal.content_preview = out
                .get("content_preview")
                .and_then(Value::as_str)
                .map(str::to_string);
            personal.metadata = out.get("metadata").filter(|m| !m.is_null()).cloned();
        } else {
            personal.output = output.clone();
        }
    } else {
        personal.input = input.clone();
        personal.output = output.clone();
    }
    personal.state_before = json_column("context_state_before", &entry.context_state_before)?;
    personal.state_after = json_column("context_state_after", &entry.context_state_after)?;

    let compliance = &mut event.compliance;
    if let Some(tags) = json_column("compliance_tags", &entry.compliance_tags)? {
        compliance.tags = string_list("compliance_tags", tags)?;
    }
    compliance.purpose = entry.processing_purpose.clone();
    if let Some(basis) = &entry.legal_basis {
        match basis.parse::<LegalBasis>() {
            Ok(basis) => compliance.legal_basis = Some(basis),
            // The seed takes any text; one that is none of GDPR's six is kept as a tag.
            Err(_) => compliance.tags.push(format!("legal_basis:{basis}")),
        }
    }
    compliance.gdpr = entry.gdpr_applicable;
    compliance.ccpa = entry.ccpa_applicable;
    compliance.data_subject_id = entry.data_subject_id.clone();
    if let Some(retention) = &entry.retention_policy {
        compliance.retention = Some(Retention::parse(retention).map_err(Problem::Model)?);
    }
    if let Some(expires) = &entry.expires_at {
        compliance.expires_at = Some(parse_time("expires_at", expires)?);
    }

    event.data_sources = if lineage.is_empty() {
        // No lineage rows: the entry's own list of URIs, read by the operation.
        match json_column("data_sources", &entry.data_sources)? {
            Some(list) => string_list("data_sources", list)?
                .into_iter()
                .map(DataSource::input)
                .collect(),
            None => Vec::new(),
        }
    } else {
        lineage
            .iter()
            .map(lineage_source)
            .collect::<Result<_, _>>()?
    };

    let content_hash = entry.content_hash.as_ref().map(|stored| OriginalHash {
        value: stored.clone(),
        check: check_hash(kind, entry, input.as_ref(), output.as_ref(), stored),
    });
    event.origin = Some(Origin {
        system: SeedSystem::Mockloop,
        file: file.to_string(),
        table: AUDIT_LOGS.to_string(),
        original_id: entry.entry_id.clone(),
        content_hash,
    });
    Ok(event)
}

fn lineage_source(row: &Lineage) -> Result<DataSource, Problem> {
    let direction = match row
        .data_flow_direction
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("input" | "read") => FlowDirection::Input,
        Some("output" | "write" | "create" | "update" | "delete") => FlowDirection::Output,
        Some(_) => FlowDirection::Bidirectional,
    };
    let mut source = DataSource::input(&row.source_uri).direction(direction);
    source.source_type = row.source_type.clone();
    source.identifier = row.source_identifier.clone();
    source.transformation = row.transformation_applied.clone();
    source.destination = row.destination_uri.clone();
    source.metadata = json_column("source_metadata", &row.source_metadata)?;
    Ok(source)
}

/// The event of one `mcp_compliance_events` row.
pub fn compliance_event(file: &str, row: &ComplianceRow) -> Result<AuditEvent, ImportError> {
    map_compliance(file, row).map_err(|problem| ImportError {
        table: COMPLIANCE_EVENTS,
        id: row.id.to_string(),
        problem,
    })
}

fn map_compliance(file: &str, row: &ComplianceRow) -> Result<AuditEvent, Problem> {
    let timestamp = parse_time("timestamp", &row.timestamp)?;
    let original_id = row.id.to_string();
    let risk_level = match row
        .risk_level
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("low") => RiskLevel::Low,
        Some("medium") => RiskLevel::Medium,
        Some("high") => RiskLevel::High,
        Some("critical") => RiskLevel::Critical,
        Some(other) => {
            return Err(Problem::Column {
                column: "risk_level",
                message: format!("`{other}` is none of low, medium, high, critical"),
            });
        }
    };
    let mitigation = match json_column("mitigation_actions", &row.mitigation_actions)? {
        Some(Value::String(one)) => vec![one],
        Some(list) => string_list("mitigation_actions", list)?,
        None => Vec::new(),
    };
    let finding = ComplianceEvent {
        framework: row.compliance_framework.clone(),
        event_type: row.event_type.clone(),
        risk_level,
        details: json_column("event_details", &row.event_details)?,
        mitigation,
    };
    let mut event = AuditEvent::builder(EventKind::Session, Action::Access, &row.event_type)
        .id(imported_id(
            SeedSystem::Mockloop,
            COMPLIANCE_EVENTS,
            &original_id,
            timestamp,
        ))
        .timestamp(timestamp)
        .correlation_id(format!("{COMPLIANCE_EVENTS}:{original_id}"))
        .compliance_event(finding)
        .build()
        .map_err(Problem::Model)?;
    event.session_id = row.session_id.clone();
    event.origin = Some(Origin {
        system: SeedSystem::Mockloop,
        file: file.to_string(),
        table: COMPLIANCE_EVENTS.to_string(),
        original_id,
        content_hash: None,
    });
    Ok(event)
}

/// MockLoop's `content_hash` of an entry, recomputed as the logger computes it:
///
/// - tool executions: `sha256(json.dumps({"tool_name", "input_parameters",
///   "execution_result"}, sort_keys=True))`;
/// - prompt invocations: the same of `{"prompt_name", "input_parameters", "output_data"}`;
/// - resource accesses: `sha256(content_preview)` (UTF-8).
///
/// The logger stores an empty dictionary as `NULL` but hashes it as `{}`, so a `NULL`
/// column stands for either; the candidates are tried in turn. `None` for a kind that the
/// logger never hashes.
pub fn content_hash_candidates(
    kind: EventKind,
    entry: &Entry,
    input: Option<&Value>,
    output: Option<&Value>,
) -> Option<Vec<String>> {
    let alternatives = |v: Option<&Value>| match v {
        Some(v) => vec![v.clone()],
        None => vec![
            Value::Null,
            Value::Object(Map::new()),
            Value::Array(Vec::new()),
            Value::String(String::new()),
        ],
    };
    let pairs = |name_key: &str, output_key: &str| {
        let mut hashes = Vec::new();
        for input in alternatives(input) {
            for output in alternatives(output) {
                let mut content = Map::new();
                content.insert(name_key.into(), Value::String(entry.operation_name.clone()));
                content.insert("input_parameters".into(), input.clone());
                content.insert(output_key.into(), output);
                hashes.push(sha256_hex(dumps_sorted(&Value::Object(content)).as_bytes()));
            }
        }
        hashes
    };
    match kind {
        EventKind::ToolExecution => Some(pairs("tool_name", "execution_result")),
        EventKind::PromptExecution => Some(pairs("prompt_name", "output_data")),
        EventKind::ResourceAccess => {
            let preview = output
                .and_then(|o| o.get("content_preview"))
                .and_then(Value::as_str)?;
            Some(vec![sha256_hex(preview.as_bytes())])
        }
        _ => None,
    }
}

fn check_hash(
    kind: EventKind,
    entry: &Entry,
    input: Option<&Value>,
    output: Option<&Value>,
    stored: &str,
) -> HashCheck {
    match content_hash_candidates(kind, entry, input, output) {
        None => HashCheck::Unverifiable,
        Some(candidates) if candidates.iter().any(|c| c.eq_ignore_ascii_case(stored)) => {
            HashCheck::Matched
        }
        Some(_) => HashCheck::Mismatched,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A column of JSON text; `NULL` is `None`.
fn json_column(column: &'static str, text: &Option<String>) -> Result<Option<Value>, Problem> {
    text.as_deref()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| Problem::Column {
                column,
                message: format!("not JSON: {e}"),
            })
        })
        .transpose()
}

fn string_list(column: &'static str, value: Value) -> Result<Vec<String>, Problem> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(Problem::Column {
                    column,
                    message: format!("expected a list of strings, found {other}"),
                }),
            })
            .collect(),
        other => Err(Problem::Column {
            column,
            message: format!("expected a list of strings, found {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelError;

    /// A row as mockloop-mcp 2.2.9's `log_tool_execution` wrote it (its hash included).
    fn search_row() -> Entry {
        Entry {
            entry_id: "419edcf0-a036-452d-8771-a2ef05c6dfd3".into(),
            session_id: Some("sess-mockloop-1".into()),
            user_id: Some("alice".into()),
            timestamp: "2026-12-07T22:10:32.792384+00:00".into(),
            operation_type: "tool_execution".into(),
            operation_name: "search_customers".into(),
            input_parameters: Some(
                r#"{"query": "acme", "limit": 5, "ratio": 0.25, "name": "Zo\u00eb"}"#.into(),
            ),
            output_data: Some(r#"{"rows": [{"id": 1, "name": "Acme"}], "total": 1}"#.into()),
            execution_time_ms: Some(12.5),
            legal_basis: Some("legitimate_interests".into()),
            content_hash: Some(
                "4a57530cde38b66a8af0c5cba2e53ce2e8eeb0db8f0c344c320a7c9b2692f5ee".into(),
            ),
            ..Entry::default()
        }
    }

    fn check(entry: &Entry) -> Option<HashCheck> {
        let event = entry_event("f.db", entry, &[]).unwrap();
        event.origin.unwrap().content_hash.map(|h| h.check)
    }

    #[test]
    fn a_tool_rows_hash_is_recomputed_as_mockloop_computes_it_and_a_changed_row_fails() {
        assert_eq!(check(&search_row()), Some(HashCheck::Matched));
        let mut changed = search_row();
        changed.output_data = Some(r#"{"rows": [], "total": 1}"#.into());
        assert_eq!(check(&changed), Some(HashCheck::Mismatched));
        let mut renamed = search_row();
        renamed.operation_name = "search_clients".into();
        assert_eq!(check(&renamed), Some(HashCheck::Mismatched));
    }

    #[test]
    fn an_empty_dictionary_stored_as_null_matches_the_hash_of_braces() {
        // `log_tool_execution(tool_name="ping", input_parameters={})`: stored NULL, hashed `{}`.
        let ping = Entry {
            entry_id: "d99686c8".into(),
            timestamp: "2026-12-07T22:10:32.796871+00:00".into(),
            operation_type: "tool_execution".into(),
            operation_name: "ping".into(),
            content_hash: Some(
                "730f13b4b783607891af48a1d4440e9260895bbeeee6cb1254e3ec47cfce5ef8".into(),
            ),
            ..Entry::default()
        };
        assert_eq!(check(&ping), Some(HashCheck::Matched));
    }

    #[test]
    fn a_hash_on_a_kind_mockloop_never_hashes_is_unverifiable() {
        let mut context = search_row();
        context.operation_type = "context_operation".into();
        assert_eq!(check(&context), Some(HashCheck::Unverifiable));
    }

    #[test]
    fn an_unknown_legal_basis_is_kept_as_a_tag_and_an_unknown_kind_names_the_row() {
        let mut row = search_row();
        row.legal_basis = Some("legitimate_interest".into());
        let event = entry_event("f.db", &row, &[]).unwrap();
        assert_eq!(event.compliance.legal_basis, None);
        assert_eq!(event.compliance.tags, ["legal_basis:legitimate_interest"]);

        row.operation_type = "telepathy".into();
        let error = entry_event("f.db", &row, &[]).unwrap_err();
        assert_eq!(error.table, AUDIT_LOGS);
        assert_eq!(error.id, row.entry_id);
        assert!(matches!(
            error.problem,
            Problem::Model(ModelError::UnknownKind(_))
        ));
    }

    #[test]
    fn lineage_rows_become_the_entrys_data_sources_in_order() {
        let lineage = [
            Lineage {
                id: 1,
                source_uri: "s3://a".into(),
                data_flow_direction: Some("input".into()),
                source_metadata: Some(r#"{"k": 1}"#.into()),
                ..Lineage::default()
            },
            Lineage {
                id: 2,
                source_uri: "s3://b".into(),
                data_flow_direction: Some("write".into()),
                ..Lineage::default()
            },
        ];
        let mut row = search_row();
        row.data_sources = Some(r#"["ignored"]"#.into());
        let event = entry_event("f.db", &row, &lineage).unwrap();
        let got: Vec<(&str, FlowDirection)> = event
            .data_sources
            .iter()
            .map(|s| (s.uri.as_str(), s.direction))
            .collect();
        assert_eq!(
            got,
            [
                ("s3://a", FlowDirection::Input),
                ("s3://b", FlowDirection::Output)
            ]
        );
        assert_eq!(
            event.data_sources[0].metadata,
            Some(serde_json::json!({"k": 1}))
        );
    }
}
