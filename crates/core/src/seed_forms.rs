//! The fields the seed loggers' callers send that the event's JSON form spells otherwise,
//! rewritten into it before the event is read, so that what is stored has one spelling and a
//! caller ported from a seed loses no record to a refusal.
//!
//! The gateway's audit trail (ContextForge) reports how an action ended as `success: bool` and
//! its error as a top-level `error_message`; the event says `outcome` and keeps the message in
//! the erasable `payload`. [`rewrite_seed_forms`] moves them there:
//!
//! - `success: true` is `outcome: success`; `success: false` is `outcome: tool_error` (the
//!   outcome of an operation that ran and failed). With an `outcome` beside it, the two must
//!   agree: `success: false` with any error outcome (`denied`, `protocol_error`, ...), `true`
//!   with `success`. A contradiction is refused rather than guessed at.
//! - A top-level `error_message` is `payload.error_message`; given in both places, the two
//!   must be the same text.
//!
//! `null` in either field is the seed's default, and means the field was not given.
//!
//! The other seed forms are accepted by the types themselves, wherever an event is read:
//! action names in any case ([`crate::Action`]), `classification` in any case
//! ([`crate::Classification`]), data sources as URI strings ([`crate::AuditEvent`]'s
//! `data_sources`).

use serde_json::{Map, Value};

use crate::error::ModelError;
use crate::kind::Outcome;

/// Rewrites the seed forms of the event object `event` (see the module documentation) into
/// the event's own fields, in place. Errs when a seed form is of the wrong type or contradicts
/// the field it stands for; `event` may then be half rewritten, and is meant to be refused.
pub fn rewrite_seed_forms(event: &mut Map<String, Value>) -> Result<(), ModelError> {
    rewrite_success(event)?;
    rewrite_error_message(event)
}

fn rewrite_success(event: &mut Map<String, Value>) -> Result<(), ModelError> {
    let success = match event.remove("success") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(ModelError::SeedForm {
                form: "success",
                problem: format!("must be true or false, got {other}"),
            });
        }
    };
    let implied = if success {
        Outcome::Success
    } else {
        Outcome::ToolError
    };
    let given = match event.get("outcome") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.parse::<Outcome>()?),
        // Not a string: left for the event's own reading to refuse with its message.
        Some(_) => return Ok(()),
    };
    match given {
        None => {
            event.insert("outcome".into(), Value::String(implied.as_str().into()));
            Ok(())
        }
        Some(outcome) if (outcome == Outcome::Success) == success => Ok(()),
        Some(outcome) => Err(ModelError::SeedForm {
            form: "success",
            problem: format!("`success: {success}` contradicts `outcome: {outcome}`"),
        }),
    }
}

fn rewrite_error_message(event: &mut Map<String, Value>) -> Result<(), ModelError> {
    let message = match event.remove("error_message") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ModelError::SeedForm {
                form: "error_message",
                problem: format!("must be a string, got {other}"),
            });
        }
    };
    let payload = event
        .entry("payload")
        .or_insert_with(|| Value::Object(Map::new()));
    if payload.is_null() {
        *payload = Value::Object(Map::new());
    }
    let Some(payload) = payload.as_object_mut() else {
        // Not an object: left for the event's own reading to refuse with its message.
        return Ok(());
    };
    match payload.get("error_message") {
        None | Some(Value::Null) => {
            payload.insert("error_message".into(), Value::String(message));
            Ok(())
        }
        Some(Value::String(inner)) if *inner == message => Ok(()),
        Some(inner) => Err(ModelError::SeedForm {
            form: "error_message",
            problem: format!(
                "the top-level error message {message:?} differs from payload.error_message {inner}"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::AuditEvent;

    /// The event `fields` describe (a tool call plus them), read after the rewrite.
    fn read(fields: Value) -> Result<AuditEvent, String> {
        let mut event = json!({"kind": "admin", "action": "DELETE", "operation": "server"});
        let object = event.as_object_mut().unwrap();
        object.extend(fields.as_object().unwrap().clone());
        rewrite_seed_forms(object).map_err(|e| e.to_string())?;
        serde_json::from_value(event).map_err(|e| e.to_string())
    }

    #[test]
    fn success_false_is_a_tool_error_and_true_a_success() {
        assert_eq!(
            read(json!({"success": false})).unwrap().outcome,
            Outcome::ToolError
        );
        assert_eq!(
            read(json!({"success": true})).unwrap().outcome,
            Outcome::Success
        );
        assert_eq!(
            read(json!({"success": null})).unwrap().outcome,
            Outcome::Success
        );
    }

    #[test]
    fn success_beside_an_outcome_must_agree_with_it() {
        let denied = read(json!({"success": false, "outcome": "denied"})).unwrap();
        assert_eq!(denied.outcome, Outcome::Denied);
        let error = read(json!({"success": true, "outcome": "denied"})).unwrap_err();
        assert!(error.contains("contradicts"), "{error}");
        let error = read(json!({"success": false, "outcome": "success"})).unwrap_err();
        assert!(error.contains("contradicts"), "{error}");
        let error = read(json!({"success": "no"})).unwrap_err();
        assert!(error.contains("true or false"), "{error}");
    }

    #[test]
    fn a_top_level_error_message_goes_into_the_payload() {
        let event = read(json!({"success": false, "error_message": "no such server"})).unwrap();
        assert_eq!(
            event.payload.error_message.as_deref(),
            Some("no such server")
        );
        let beside_input = read(json!({
            "error_message": "boom",
            "payload": {"input": {"id": 7}},
        }))
        .unwrap();
        assert_eq!(beside_input.payload.error_message.as_deref(), Some("boom"));
        assert_eq!(beside_input.payload.input, Some(json!({"id": 7})));
        let same = read(json!({"error_message": "boom", "payload": {"error_message": "boom"}}));
        assert_eq!(same.unwrap().payload.error_message.as_deref(), Some("boom"));
        let error =
            read(json!({"error_message": "a", "payload": {"error_message": "b"}})).unwrap_err();
        assert!(error.contains("differs"), "{error}");
    }

    #[test]
    fn without_seed_forms_the_event_is_untouched() {
        let mut plain = json!({"kind": "admin", "action": "DELETE", "operation": "server"});
        let before = plain.clone();
        rewrite_seed_forms(plain.as_object_mut().unwrap()).unwrap();
        assert_eq!(plain, before);
    }
}
