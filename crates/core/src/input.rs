//! Turning the bytes a user hands to `mcp-audit log` or to the ingest API into an
//! [`AuditEvent`], or into a problem that names what is wrong in one line.
//!
//! Shared by both ways in, so that an event `log -` takes is exactly an event the API takes.
//! The model's own checks (normalisation, policy) run later, in the recorder; here are the
//! checks only raw input needs: encoding, JSON syntax, and a negative duration, which serde
//! would report as an unhelpful "expected u64"; and the seed loggers' forms of a field
//! (`success`, a top-level `error_message`), rewritten into the event's own
//! ([`crate::rewrite_seed_forms`]).

use serde_json::Value;

use crate::AuditEvent;

/// Why one line (or document) of input is no event. Each message names the problem within
/// the line; the caller adds the line number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8 (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// The text is not one JSON document (the message says where).
    #[error("{0}")]
    Malformed(String),
    /// `duration_us` is below zero.
    #[error("negative duration: duration_us is {0}; a duration must be zero or more")]
    NegativeDuration(Value),
    /// An integer field beyond what a double keeps exact.
    #[error(
        "{field} is {value}: beyond 2^53 - 1, the largest integer every JSON reader keeps exact"
    )]
    BeyondExact { field: &'static str, value: Value },
    /// Valid JSON that is not an event (unknown kind, missing field, wrong type, ...).
    #[error("invalid event: {0}")]
    Invalid(String),
}

/// One event read from input.
#[derive(Debug)]
pub struct InputEvent {
    pub event: AuditEvent,
    /// The input named the event's id (rather than leaving it to be generated), so it may
    /// repeat one already recorded.
    pub id_given: bool,
}

/// Parses one event from one line (or one document) of input.
pub fn parse_event(bytes: &[u8]) -> Result<InputEvent, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| InputError::NotUtf8(e.valid_up_to()))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json ends its message with "at line L column C"; within one line of input the
        // column is what helps.
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        InputError::Malformed(if e.line() <= 1 {
            format!("malformed JSON at column {}: {message}", e.column())
        } else if message == "trailing characters" {
            format!(
                "malformed JSON at line {}: more than one event (for JSON lines, use `mcp-audit log - < FILE`)",
                e.line()
            )
        } else {
            format!(
                "malformed JSON at line {} column {}: {message}",
                e.line(),
                e.column()
            )
        })
    })?;
    if let Some(duration) = value.get("duration_us").filter(|d| is_negative(d)) {
        return Err(InputError::NegativeDuration(duration.clone()));
    }
    for field in ["duration_us", "error_code"] {
        if let Some(n) = value.get(field).filter(|n| is_beyond_exact(n)) {
            return Err(InputError::BeyondExact {
                field,
                value: n.clone(),
            });
        }
    }
    let mut value = value;
    if let Some(object) = value.as_object_mut() {
        crate::rewrite_seed_forms(object).map_err(|e| InputError::Invalid(e.to_string()))?;
    }
    let id_given = value.get("id").is_some();
    let event = serde_json::from_value(value).map_err(|e| InputError::Invalid(e.to_string()))?;
    Ok(InputEvent { event, id_given })
}

fn is_negative(value: &Value) -> bool {
    value.as_f64().is_some_and(|n| n < 0.0)
}

/// The largest integer an IEEE double, and so every JSON reader, holds exactly.
const MAX_EXACT: u64 = (1 << 53) - 1;

/// An integer of the event's own fields beyond what a double holds (see
/// `ModelError::NumberOutOfRange`).
fn is_beyond_exact(value: &Value) -> bool {
    match (value.as_u64(), value.as_i64()) {
        (Some(n), _) => n > MAX_EXACT,
        (None, Some(n)) => n.unsigned_abs() > MAX_EXACT,
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(input: &[u8]) -> String {
        parse_event(input).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_line_becomes_an_event() {
        let event =
            parse_event(br#"{"kind":"tool_execution","action":"EXECUTE","operation":"search"}"#)
                .unwrap();
        assert_eq!(event.event.operation, "search");
        assert!(!event.id_given);
    }

    #[test]
    fn each_kind_of_bad_input_is_named() {
        assert!(problem(b"\xff\xfe{}").starts_with("not valid UTF-8"));
        assert!(problem(b"{\"kind\":").starts_with("malformed JSON at column"));
        assert!(
            problem(
                br#"{"kind":"tool_execution","action":"EXECUTE","operation":"x","duration_us":-5}"#
            )
            .starts_with("negative duration")
        );
        let huge = format!(
            r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"x","duration_us":{}}}"#,
            u64::MAX
        );
        assert!(problem(huge.as_bytes()).starts_with("duration_us is 18446744073709551615"));
        let unknown = problem(br#"{"kind":"teleport","action":"EXECUTE","operation":"x"}"#);
        assert!(unknown.contains("teleport"), "{unknown}");
    }
}
