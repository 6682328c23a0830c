//! Errors of the event model: input that does not describe a valid event.

/// Why an event, or one of its parts, is not valid.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The event kind is not one of [`crate::EventKind`]'s names.
    #[error(
        "unknown event kind `{0}` (expected one of: tool_execution, resource_access, context_operation, prompt_execution, server_operation, sampling, elicitation, completion, admin, session, protocol)"
    )]
    UnknownKind(String),
    /// The action is neither a standard action nor a valid custom name.
    #[error(
        "invalid action `{0}`: use CREATE, READ, UPDATE, DELETE, EXECUTE, ACCESS, EXPORT, IMPORT, or a custom lower-case name like `delete_server`"
    )]
    InvalidAction(String),
    /// The outcome is not one of [`crate::Outcome`]'s names.
    #[error(
        "unknown outcome `{0}` (expected success, tool_error, protocol_error, denied, cancelled, incomplete or pending)"
    )]
    UnknownOutcome(String),
    /// The classification is not public, internal, confidential or restricted.
    #[error("unknown classification `{0}` (expected public, internal, confidential or restricted)")]
    UnknownClassification(String),
    /// The legal basis is not one of the six of GDPR Art. 6(1).
    #[error(
        "unknown legal basis `{0}` (expected consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests)"
    )]
    UnknownLegalBasis(String),
    /// The operation name is empty.
    #[error("the operation name is empty")]
    EmptyOperation,
    /// A retention or duration was negative.
    #[error("negative duration `{0}`: a duration must be zero or more")]
    NegativeDuration(String),
    /// A retention was neither a duration (`30d`, `6mo`, `7y`), `forever`, nor a policy name.
    #[error(
        "invalid retention `{0}`: write a duration such as 30d, 6mo or 7y, `forever`, or a policy name"
    )]
    InvalidRetention(String),
    /// A named retention policy that the policy table does not define; the message lists the
    /// names it does define.
    #[error(
        "unknown retention policy `{name}` (expected one of: {known}; or a duration such as 30d, 6mo or 7y, or `forever`)"
    )]
    UnknownRetentionPolicy {
        name: String,
        /// The names the policy table defines, comma-separated.
        known: String,
    },
    /// A seed logger's input form (`success`, a top-level `error_message`) that is not of its
    /// type, or that says otherwise than the event's own field.
    #[error("`{form}`: {problem}")]
    SeedForm { form: &'static str, problem: String },
    /// The JSON form's `version` is one this build does not read.
    #[error("unsupported event schema version {0} (this build reads version 1)")]
    UnsupportedVersion(u64),
    /// A number of the event's own beyond ±2^53: JSON readers that hold numbers as doubles
    /// (JavaScript, jq) would read another one in an export. The agent's own data (arguments,
    /// results) is recorded with every digit instead; these fields are ours to bound.
    #[error(
        "{field} = {value} is out of range: beyond ±2^53, JSON readers that use doubles would read another number"
    )]
    NumberOutOfRange { field: &'static str, value: i128 },
    /// A stored event could not be encoded or decoded.
    #[error("event encoding: {0}")]
    Encoding(String),
}
