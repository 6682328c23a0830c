//! Reading the seeds' SQLite tables into the row types of `mcp_audit_core::import`, read-only,
//! with a clear error for a file that is not such a database.

use std::path::Path;

use anyhow::{Context, bail};
use mcp_audit_core::import::contextforge::{AUDIT_TRAILS, Trail};
use mcp_audit_core::import::mockloop::{
    AUDIT_LOGS, COMPLIANCE_EVENTS, ComplianceRow, Entry, LINEAGE, Lineage,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

/// A seed database opened read-only (the import never writes the seed's file), with the names
/// of its tables.
pub struct SeedDb {
    conn: Connection,
    tables: Vec<String>,
    shown: String,
}

impl SeedDb {
    /// Opens `path`; errs when it is missing or not a SQLite database.
    pub fn open(path: &Path) -> anyhow::Result<SeedDb> {
        let shown = path.display().to_string();
        if !path.is_file() {
            bail!("{shown}: no such file");
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {shown}"))?;
        // SQLite reads the header only on the first statement: this is where a file that is
        // not a database is found out.
        let tables = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .with_context(|| format!("{shown} is not a SQLite database"))?;
        Ok(SeedDb {
            conn,
            tables,
            shown,
        })
    }

    fn has(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t == table)
    }

    /// Errs, naming the seed, when `table` is missing.
    pub fn require(&self, seed: &str, table: &str) -> anyhow::Result<()> {
        if !self.has(table) {
            bail!(
                "{} is not a {seed} audit database: it has no table {table}",
                self.shown
            );
        }
        Ok(())
    }

    /// Every row of `mcp_audit_logs`, in rowid order, each with its lineage rows.
    pub fn mockloop_entries(&self) -> anyhow::Result<Vec<(Entry, Vec<Lineage>)>> {
        let mut lineage = self.mockloop_lineage()?;
        let sql = format!(
            "SELECT entry_id, session_id, user_id, timestamp, operation_type, operation_name,
                    input_parameters, output_data, execution_time_ms, data_sources,
                    compliance_tags, processing_purpose, legal_basis, content_hash,
                    gdpr_applicable, ccpa_applicable, data_subject_id, context_state_before,
                    context_state_after, expires_at, retention_policy
             FROM {AUDIT_LOGS} ORDER BY rowid"
        );
        self.rows(AUDIT_LOGS, &sql, |r| {
            let entry = Entry {
                entry_id: required(r, 0)?,
                session_id: text(r, 1)?,
                user_id: text(r, 2)?,
                timestamp: required(r, 3)?,
                operation_type: required(r, 4)?,
                operation_name: required(r, 5)?,
                input_parameters: text(r, 6)?,
                output_data: text(r, 7)?,
                execution_time_ms: r.get(8)?,
                data_sources: text(r, 9)?,
                compliance_tags: text(r, 10)?,
                processing_purpose: text(r, 11)?,
                legal_basis: text(r, 12)?,
                content_hash: text(r, 13)?,
                gdpr_applicable: flag(r, 14)?,
                ccpa_applicable: flag(r, 15)?,
                data_subject_id: text(r, 16)?,
                context_state_before: text(r, 17)?,
                context_state_after: text(r, 18)?,
                expires_at: text(r, 19)?,
                retention_policy: text(r, 20)?,
            };
            Ok(entry)
        })
        .map(|entries| {
            entries
                .into_iter()
                .map(|e| {
                    let rows = lineage.remove(&e.entry_id).unwrap_or_default();
                    (e, rows)
                })
                .collect()
        })
    }

    /// `mcp_data_lineage` by entry id, each entry's rows in id order; empty without the table.
    fn mockloop_lineage(&self) -> anyhow::Result<std::collections::HashMap<String, Vec<Lineage>>> {
        let mut by_entry = std::collections::HashMap::<String, Vec<Lineage>>::new();
        if !self.has(LINEAGE) {
            return Ok(by_entry);
        }
        let sql = format!(
            "SELECT entry_id, id, source_uri, source_type, source_identifier, source_metadata,
                    transformation_applied, destination_uri, data_flow_direction
             FROM {LINEAGE} ORDER BY id"
        );
        for (entry_id, row) in self.rows(LINEAGE, &sql, |r| {
            Ok((
                required(r, 0)?,
                Lineage {
                    id: r.get(1)?,
                    source_uri: required(r, 2)?,
                    source_type: text(r, 3)?,
                    source_identifier: text(r, 4)?,
                    source_metadata: text(r, 5)?,
                    transformation_applied: text(r, 6)?,
                    destination_uri: text(r, 7)?,
                    data_flow_direction: text(r, 8)?,
                },
            ))
        })? {
            by_entry.entry(entry_id).or_default().push(row);
        }
        Ok(by_entry)
    }

    /// Every row of `mcp_compliance_events`; empty without the table.
    pub fn mockloop_compliance(&self) -> anyhow::Result<Vec<ComplianceRow>> {
        if !self.has(COMPLIANCE_EVENTS) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, session_id, event_type, compliance_framework, event_details, risk_level,
                    mitigation_actions, timestamp
             FROM {COMPLIANCE_EVENTS} ORDER BY id"
        );
        self.rows(COMPLIANCE_EVENTS, &sql, |r| {
            Ok(ComplianceRow {
                id: r.get(0)?,
                session_id: text(r, 1)?,
                event_type: required(r, 2)?,
                compliance_framework: required(r, 3)?,
                event_details: text(r, 4)?,
                risk_level: text(r, 5)?,
                mitigation_actions: text(r, 6)?,
                timestamp: required(r, 7)?,
            })
        })
    }

    /// Every row of `audit_trails`, oldest first.
    pub fn contextforge_trails(&self) -> anyhow::Result<Vec<Trail>> {
        let sql = format!(
            "SELECT id, timestamp, correlation_id, request_id, action, resource_type, resource_id,
                    resource_name, user_id, user_email, team_id, client_ip, user_agent,
                    request_path, request_method, old_values, new_values, changes,
                    data_classification, requires_review, success, error_message, context,
                    auth_method, acting_as, delegation_chain
             FROM {AUDIT_TRAILS} ORDER BY timestamp, rowid"
        );
        self.rows(AUDIT_TRAILS, &sql, |r| {
            Ok(Trail {
                id: required(r, 0)?,
                timestamp: required(r, 1)?,
                correlation_id: text(r, 2)?,
                request_id: text(r, 3)?,
                action: required(r, 4)?,
                resource_type: required(r, 5)?,
                resource_id: text(r, 6)?,
                resource_name: text(r, 7)?,
                user_id: required(r, 8)?,
                user_email: text(r, 9)?,
                team_id: text(r, 10)?,
                client_ip: text(r, 11)?,
                user_agent: text(r, 12)?,
                request_path: text(r, 13)?,
                request_method: text(r, 14)?,
                old_values: text(r, 15)?,
                new_values: text(r, 16)?,
                changes: text(r, 17)?,
                data_classification: text(r, 18)?,
                requires_review: flag(r, 19)?,
                success: flag(r, 20)?,
                error_message: text(r, 21)?,
                context: text(r, 22)?,
                auth_method: text(r, 23)?,
                acting_as: text(r, 24)?,
                delegation_chain: text(r, 25)?,
            })
        })
    }

    fn rows<T>(
        &self,
        table: &str,
        sql: &str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let context = || {
            format!(
                "cannot read table {table} of {} (not the columns its logger writes?)",
                self.shown
            )
        };
        let mut statement = self.conn.prepare(sql).with_context(context)?;
        let rows = statement
            .query_map([], map)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .with_context(context)?;
        Ok(rows)
    }
}

/// A column as text, whatever SQLite type it was stored with (the seeds' columns are typed
/// loosely); `NULL` is `None`.
fn text(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(at)? {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

/// A column that must not be `NULL`.
fn required(row: &Row<'_>, at: usize) -> rusqlite::Result<String> {
    text(row, at)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(
            at,
            row.as_ref()
                .column_name(at)
                .map_or_else(|_| at.to_string(), str::to_string),
            rusqlite::types::Type::Null,
        )
    })
}

/// A boolean column (SQLite keeps `0`/`1`; `NULL` is false, the seeds' default).
fn flag(row: &Row<'_>, at: usize) -> rusqlite::Result<bool> {
    Ok(match row.get_ref(at)? {
        ValueRef::Null => false,
        ValueRef::Integer(i) => i != 0,
        ValueRef::Real(f) => f != 0.0,
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            matches!(t, b"1" | b"true" | b"TRUE" | b"True")
        }
    })
}
