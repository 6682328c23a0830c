//! Where an event came from when it was not recorded here first: the mark `mcp-audit import`
//! puts on every event it reads from a seed logger's database.
//!
//! Why a typed field in the hashed metadata rather than compliance tags: the mark is part of
//! what the log promises (a later reader must be able to tell an imported record from one this
//! trail saw happen, and that cannot be changed without `verify` noticing), and a reader asks
//! it precise questions (which file, which row, did its own hash hold), which free tags cannot
//! answer. Absent on every event recorded directly, so those encode, and hash, as before.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The logger whose database an event was imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeedSystem {
    /// MockLoop's `MCPAuditLogger` (`mockloop-mcp`): `mcp_audit_logs` and its lineage and
    /// compliance tables.
    Mockloop,
    /// IBM ContextForge's audit trail service (`mcp-contextforge-gateway`): `audit_trails`.
    Contextforge,
}

impl SeedSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            SeedSystem::Mockloop => "mockloop",
            SeedSystem::Contextforge => "contextforge",
        }
    }
}

/// What became of a row's own integrity hash when it was imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HashCheck {
    /// Recomputed as the seed computes it, and equal to the stored value.
    Matched,
    /// Recomputed, and different: the row was changed after its logger wrote it (imported only
    /// with `--on-mismatch flag`, and then marked for review).
    Mismatched,
    /// The seed never hashes rows of this kind, so the stored value cannot be recomputed.
    Unverifiable,
}

/// A row's own `content_hash`, as stored by its logger, and what checking it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginalHash {
    /// The stored value (hex SHA-256 for MockLoop).
    pub value: String,
    pub check: HashCheck,
}

/// The import mark: which logger, file, table and row an event was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub system: SeedSystem,
    /// The database's file name, without its directories: the name says which export it was,
    /// and the directories of the importing machine say nothing worth keeping.
    pub file: String,
    /// The table the row was read from (`mcp_audit_logs`, `mcp_compliance_events`,
    /// `audit_trails`).
    pub table: String,
    /// The row's own id in that table (`entry_id`, `id`), as text.
    pub original_id: String,
    /// The row's own `content_hash`, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<OriginalHash>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEvent, seal, unseal};

    #[test]
    fn the_origin_is_hashed_metadata_and_absent_when_unset() {
        let plain = AuditEvent::tool_execution("t").build().unwrap();
        let meta = String::from_utf8(seal(plain.clone()).unwrap().meta_json).unwrap();
        assert!(!meta.contains("origin"), "{meta}");

        let mut imported = plain;
        imported.origin = Some(Origin {
            system: SeedSystem::Mockloop,
            file: "mcp_audit.db".into(),
            table: "mcp_audit_logs".into(),
            original_id: "e-1".into(),
            content_hash: Some(OriginalHash {
                value: "ab".into(),
                check: HashCheck::Matched,
            }),
        });
        let sealed = seal(imported.clone()).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        assert!(
            meta.contains(
                r#""origin":{"content_hash":{"check":"matched","value":"ab"},"file":"mcp_audit.db""#
            ),
            "{meta}"
        );
        assert_eq!(
            unseal(&sealed.meta_json, None).unwrap().origin,
            imported.origin
        );
        // A changed mark is a changed leaf.
        let mut other = imported;
        if let Some(origin) = other.origin.as_mut() {
            origin.original_id = "e-2".into();
        }
        assert_ne!(seal(other).unwrap().meta_digest, sealed.meta_digest);
    }
}
