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
