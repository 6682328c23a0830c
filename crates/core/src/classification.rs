//! Data classification and the review rules, ported from the gateway audit trail.
//!
//! Classification answers "how sensitive is what this event touched": an explicit value always
//! wins; otherwise it is derived from the resource type. `requires_review` answers "should a
//! person look at this": again an explicit value wins; otherwise sensitive data and destructive
//! administrative actions are flagged.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::kind::{Action, EventKind};

/// How sensitive the data an event touched is, from least to most. Written lower case; read in
/// any case (`CONFIDENTIAL`, as some callers send it), so the stored form is one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Restricted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Restricted => "restricted",
        }
    }

    /// The default for a resource type: people, teams and secrets are confidential; tools,
    /// servers, prompts, resources and everything else are internal.
    pub fn default_for_resource_type(resource_type: &str) -> Classification {
        match resource_type.to_ascii_lowercase().as_str() {
            "user" | "team" | "token" | "credential" => Classification::Confidential,
            _ => Classification::Internal,
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Classification {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Classification::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ModelError::UnknownClassification(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Classification {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Classification {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Classification".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Classification::ALL.iter().map(|c| c.as_str()).collect();
        schemars::json_schema!({
            "description": "public, internal, confidential or restricted; any case on input, stored lower case.",
            "type": "string",
            "pattern": crate::kind::any_case_pattern(&names)
        })
    }
}

/// Custom actions that always call for review, whatever they touched.
pub const REVIEWED_ACTIONS: [&str; 6] = [
    "delete_server",
    "delete_tool",
    "delete_resource",
    "delete_gateway",
    "update_sensitive_config",
    "bulk_delete",
];

/// Resource types whose `DELETE` calls for review.
pub const REVIEWED_DELETE_TYPES: [&str; 3] = ["tool", "server", "gateway"];

/// The derived classification: the explicit one, else the resource type's default.
pub fn derive_classification(
    explicit: Option<Classification>,
    resource_type: Option<&str>,
    kind: EventKind,
) -> Classification {
    if let Some(c) = explicit {
        return c;
    }
    match resource_type {
        Some(t) => Classification::default_for_resource_type(t),
        // An MCP operation without a resource type touched a tool, prompt or resource.
        None => {
            let _ = kind;
            Classification::Internal
        }
    }
}

/// The derived review flag: the explicit one, else true for confidential or restricted data,
/// for the actions in [`REVIEWED_ACTIONS`], and for `DELETE` of a tool, server or gateway.
pub fn derive_requires_review(
    explicit: Option<bool>,
    classification: Classification,
    action: &Action,
    resource_type: Option<&str>,
) -> bool {
    if let Some(r) = explicit {
        return r;
    }
    if classification >= Classification::Confidential {
        return true;
    }
    if let Action::Custom(c) = action
        && REVIEWED_ACTIONS.contains(&c.as_str())
    {
        return true;
    }
    *action == Action::Delete
        && resource_type
            .is_some_and(|t| REVIEWED_DELETE_TYPES.contains(&t.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(t: Option<&str>) -> Classification {
        derive_classification(None, t, EventKind::Admin)
    }

    #[test]
    fn people_teams_and_secrets_default_to_confidential() {
        for t in ["user", "team", "token", "credential", "USER"] {
            assert_eq!(classify(Some(t)), Classification::Confidential, "{t}");
        }
    }

    #[test]
    fn tools_servers_prompts_and_resources_default_to_internal() {
        for t in [
            "tool", "server", "prompt", "resource", "gateway", "anything",
        ] {
            assert_eq!(classify(Some(t)), Classification::Internal, "{t}");
        }
        assert_eq!(classify(None), Classification::Internal);
    }

    #[test]
    fn explicit_classification_wins_over_the_default() {
        let c = derive_classification(Some(Classification::Public), Some("user"), EventKind::Admin);
        assert_eq!(c, Classification::Public);
    }

    #[test]
    fn classification_is_read_in_any_case_and_written_lower_case() {
        for written in ["confidential", "CONFIDENTIAL", "Confidential"] {
            let c: Classification = serde_json::from_value(serde_json::json!(written)).unwrap();
            assert_eq!(c, Classification::Confidential, "{written}");
            assert_eq!(serde_json::to_value(c).unwrap(), "confidential");
        }
        let error = serde_json::from_value::<Classification>(serde_json::json!("secret"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("restricted"), "{error}");
    }

    #[test]
    fn the_schema_pattern_spells_every_name_in_both_cases() {
        let names: Vec<&str> = Classification::ALL.iter().map(|c| c.as_str()).collect();
        let pattern = crate::kind::any_case_pattern(&names);
        assert!(
            pattern.starts_with("^([Pp][Uu][Bb][Ll][Ii][Cc]|"),
            "{pattern}"
        );
        assert!(pattern.ends_with("[Dd])$"), "{pattern}");
    }

    fn review(explicit: Option<bool>, c: Classification, a: &str, t: Option<&str>) -> bool {
        derive_requires_review(explicit, c, &a.parse().unwrap(), t)
    }

    #[test]
    fn confidential_and_restricted_data_require_review() {
        assert!(review(
            None,
            Classification::Confidential,
            "READ",
            Some("user")
        ));
        assert!(review(None, Classification::Restricted, "READ", None));
        assert!(!review(
            None,
            Classification::Internal,
            "READ",
            Some("tool")
        ));
        assert!(!review(None, Classification::Public, "UPDATE", None));
    }

    #[test]
    fn listed_custom_actions_require_review() {
        for a in REVIEWED_ACTIONS {
            assert!(review(None, Classification::Internal, a, None), "{a}");
        }
        assert!(!review(None, Classification::Internal, "rename_tool", None));
    }

    #[test]
    fn delete_of_tool_server_or_gateway_requires_review() {
        for t in REVIEWED_DELETE_TYPES {
            assert!(
                review(None, Classification::Internal, "DELETE", Some(t)),
                "{t}"
            );
            assert!(
                !review(None, Classification::Internal, "UPDATE", Some(t)),
                "{t}"
            );
        }
        assert!(!review(
            None,
            Classification::Internal,
            "DELETE",
            Some("prompt")
        ));
    }

    #[test]
    fn explicit_review_flag_wins_both_ways() {
        assert!(!review(
            Some(false),
            Classification::Restricted,
            "bulk_delete",
            Some("tool")
        ));
        assert!(review(Some(true), Classification::Public, "READ", None));
    }
}
