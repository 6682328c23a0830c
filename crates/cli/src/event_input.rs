//! Turning the bytes a user hands to `mcp-audit log` into an [`AuditEvent`], or into a problem
//! that names what is wrong in one line.
//!
//! The model's own checks (normalisation, policy) run later, in the recorder; here are the
//! checks only raw input needs: encoding, JSON syntax, and a negative duration, which serde
//! would report as an unhelpful "expected u64"; and the seed loggers' forms of a field
//! (`success`, a top-level `error_message`), rewritten into the event's own
//! (`mcp_audit_core::rewrite_seed_forms`).

use anyhow::anyhow;
use mcp_audit_core::AuditEvent;
use serde_json::Value;

/// One event read from input.
#[derive(Debug)]
pub struct InputEvent {
    pub event: AuditEvent,
    /// The input named the event's id (rather than leaving it to be generated), so it may
    /// repeat one already recorded.
    pub id_given: bool,
}

/// Parses one event from one line (or one document) of input.
pub fn parse_event(bytes: &[u8]) -> anyhow::Result<InputEvent> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json ends its message with "at line L column C"; within one line of input the
        // column is what helps.
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        if e.line() <= 1 {
            anyhow!("malformed JSON at column {}: {message}", e.column())
        } else if message == "trailing characters" {
            anyhow!(
                "malformed JSON at line {}: more than one event (for JSON lines, use `mcp-audit log - < FILE`)",
                e.line()
            )
        } else {
            anyhow!(
                "malformed JSON at line {} column {}: {message}",
                e.line(),
                e.column()
            )
        }
    })?;
    if let Some(duration) = value.get("duration_us").filter(|d| is_negative(d)) {
        return Err(anyhow!(
            "negative duration: duration_us is {duration}; a duration must be zero or more"
        ));
    }
    for field in ["duration_us", "error_code"] {
        if let Some(n) = value.get(field).filter(|n| is_beyond_exact(n)) {
            return Err(anyhow!(
                "{field} is {n}: beyond 2^53 - 1, the largest integer every JSON reader keeps exact"
            ));
        }
    }
    let mut value = value;
    if let Some(object) = value.as_object_mut() {
        mcp_audit_core::rewrite_seed_forms(object).map_err(|e| anyhow!("invalid event: {e}"))?;
    }
    let id_given = value.get("id").is_some();
    let event = serde_json::from_value(value).map_err(|e| anyhow!("invalid event: {e}"))?;
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
        format!("{:#}", parse_event(input).unwrap_err())
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
