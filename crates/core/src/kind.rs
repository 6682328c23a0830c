//! The closed vocabularies of an event: what kind of operation it was, the action taken, and
//! how it ended. Typed, so that a misspelt action can not reach the log; [`Action::Custom`] is
//! the one documented escape hatch for domain actions such as `delete_server`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ModelError;

/// What kind of operation an event records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// An MCP `tools/call` or a library-reported tool run.
    ToolExecution,
    /// A resource read, write, subscribe or delete (`resources/*`).
    ResourceAccess,
    /// A set, get, update or delete of a context key.
    ContextOperation,
    /// A prompt invocation (`prompts/get`) with its inputs and generated output.
    PromptExecution,
    /// A server-level operation: listing, configuration, start and stop.
    ServerOperation,
    /// A server-to-client `sampling/createMessage`.
    Sampling,
    /// A server-to-client `elicitation/create`.
    Elicitation,
    /// A `completion/complete` request.
    Completion,
    /// A CRUD action on a managed resource (the gateway world's audit trail).
    Admin,
    /// The start or end of a session.
    Session,
    /// A protocol-level event: a notification worth keeping, or an anomaly on the wire.
    Protocol,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 11] = [
        EventKind::ToolExecution,
        EventKind::ResourceAccess,
        EventKind::ContextOperation,
        EventKind::PromptExecution,
        EventKind::ServerOperation,
        EventKind::Sampling,
        EventKind::Elicitation,
        EventKind::Completion,
        EventKind::Admin,
        EventKind::Session,
        EventKind::Protocol,
    ];

    /// The stable name used in JSON, in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ToolExecution => "tool_execution",
            EventKind::ResourceAccess => "resource_access",
            EventKind::ContextOperation => "context_operation",
            EventKind::PromptExecution => "prompt_execution",
            EventKind::ServerOperation => "server_operation",
            EventKind::Sampling => "sampling",
            EventKind::Elicitation => "elicitation",
            EventKind::Completion => "completion",
            EventKind::Admin => "admin",
            EventKind::Session => "session",
            EventKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::UnknownKind(s.to_string()))
    }
}

/// The action an event records.
///
/// The eight standard actions serialize in upper case (`"UPDATE"`). Domain actions that the
/// standard set does not name (`delete_server`, `bulk_delete`, ...) use [`Action::Custom`]: a
/// lower-case identifier, so the two can never be confused. Parsing accepts every name in any
/// case: the standard ones become upper case, custom ones lower case (`DELETE_SERVER` is
/// `delete_server`, as the gateway's audit trail lower-cases them), so that the stored form is
/// one spelling and the review rules match it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Execute,
    Access,
    Export,
    Import,
    /// A domain action outside the standard set; see [`CustomAction`] for the allowed form.
    Custom(CustomAction),
}

impl Action {
    /// The standard actions, in declaration order.
    pub const STANDARD: [Action; 8] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Execute,
        Action::Access,
        Action::Export,
        Action::Import,
    ];

    /// The stable name used in JSON, in the database and on the command line.
    pub fn as_str(&self) -> &str {
        match self {
            Action::Create => "CREATE",
            Action::Read => "READ",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
            Action::Execute => "EXECUTE",
            Action::Access => "ACCESS",
            Action::Export => "EXPORT",
            Action::Import => "IMPORT",
            Action::Custom(c) => c.as_str(),
        }
    }

    /// Whether the `writes` audit level keeps this action: everything but plain reads.
    ///
    /// `EXPORT` counts as kept: data leaving the system is what auditors ask about first.
    /// Custom actions are kept too, since most of them (`bulk_delete`) change something.
    pub fn is_write_or_execute(&self) -> bool {
        !matches!(self, Action::Read | Action::Access)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(a) = Action::STANDARD
            .iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
        {
            return Ok(a.clone());
        }
        CustomAction::new(s).map(Action::Custom)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Action {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Action".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A standard action (CREATE, READ, UPDATE, DELETE, EXECUTE, ACCESS, EXPORT, IMPORT) or a custom action name such as `delete_server`; any case on input, stored upper case (standard) or lower case (custom).",
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_.:-]{0,63}$"
        })
    }
}

/// A domain action name outside the standard set: 1 to 64 characters, starting with a lower-case
/// ASCII letter, then lower-case letters, digits, `_`, `.`, `:` or `-`.
///
/// The rule keeps custom names machine-friendly (they are filtered and grouped on) and disjoint
/// from the upper-case standard names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomAction(String);

impl CustomAction {
    /// Checks the form described on the type, after lower-casing ASCII letters: callers write
    /// `DELETE_SERVER` or `Delete_Server` for `delete_server`, and one action must be one name
    /// in the log (filters, groups and review rules compare names).
    pub fn new(name: &str) -> Result<Self, ModelError> {
        let lower = name.to_ascii_lowercase();
        let mut chars = lower.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-')
        });
        if first_ok && rest_ok && lower.len() <= 64 {
            Ok(CustomAction(lower))
        } else {
            Err(ModelError::InvalidAction(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A JSON Schema pattern (ECMA-262, which has no flag for case) that matches exactly the
/// `names` in any case: `public` is `[Pp][Uu][Bb][Ll][Ii][Cc]`.
pub(crate) fn any_case_pattern(names: &[&str]) -> String {
    let alternatives: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^({})$", alternatives.join("|"))
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The operation completed normally.
    Success,
    /// The tool ran and reported failure (`isError: true`), or a library caller's operation
    /// returned an error.
    ToolError,
    /// A JSON-RPC error response, or a malformed exchange.
    ProtocolError,
    /// Refused before it ran: bad credentials, policy.
    Denied,
    /// Cancelled by either side before it finished.
    Cancelled,
    /// No outcome was ever seen: the peer died or left first, or the recorder crashed in
    /// between recording the intent and the result.
    Incomplete,
    /// The intent is recorded and the outcome is not known yet (a later event completes it).
    Pending,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::ToolError,
        Outcome::ProtocolError,
        Outcome::Denied,
        Outcome::Cancelled,
        Outcome::Incomplete,
        Outcome::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ToolError => "tool_error",
            Outcome::ProtocolError => "protocol_error",
            Outcome::Denied => "denied",
            Outcome::Cancelled => "cancelled",
            Outcome::Incomplete => "incomplete",
            Outcome::Pending => "pending",
        }
    }

    /// Whether this outcome counts as an error in statistics.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Outcome::ToolError | Outcome::ProtocolError | Outcome::Denied
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ModelError::UnknownOutcome(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_actions_parse_in_any_case_and_print_upper() {
        let a: Action = "update".parse().unwrap();
        assert_eq!(a, Action::Update);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"UPDATE\"");
    }

    #[test]
    fn custom_actions_keep_their_lower_case_name() {
        let a: Action = "delete_server".parse().unwrap();
        assert!(matches!(&a, Action::Custom(c) if c.as_str() == "delete_server"));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"delete_server\"");
    }

    #[test]
    fn custom_actions_in_any_case_become_their_lower_case_name() {
        for written in ["DELETE_SERVER", "Delete_Server", "delete_server"] {
            let a: Action = serde_json::from_value(serde_json::json!(written)).unwrap();
            assert!(
                matches!(&a, Action::Custom(c) if c.as_str() == "delete_server"),
                "{written}: {a:?}"
            );
        }
        assert_eq!(
            CustomAction::new("BULK_DELETE").unwrap().as_str(),
            "bulk_delete"
        );
    }

    #[test]
    fn free_form_action_names_are_refused() {
        for bad in ["", "Delete Server", "DROP TABLE", "9lives", &"x".repeat(65)] {
            assert!(bad.parse::<Action>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("tool_exec".parse::<EventKind>().is_err());
    }
}
