//! JSON-RPC 2.0 framing: one frame (a line on stdio, a body over HTTP) into messages.
//!
//! A frame is one message or, in protocol 2025-03-26, a batch (a JSON array of messages). The
//! JSON is read by [`crate::json`], as permissively as servers read it, so that what a server
//! may run is a message here too. A frame that is still not JSON-RPC is not an error of the
//! proxy: this module only classifies; the interpreter records it, and in `sync` the adapters
//! refuse it.

use serde_json::{Map, Value};

use crate::json;

/// A JSON-RPC id, kept as its JSON text so that `7` and `"7"` stay different ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(pub String);

impl Id {
    /// The id as a JSON value, to answer with it.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or_else(|_| Value::String(self.0.clone()))
    }
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Id,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    Response {
        id: Id,
        outcome: Reply,
    },
}

/// What a response carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Result(Value),
    Error {
        /// The code as the peer wrote it: any JSON value, often not an integer of the model's
        /// range (see `Interpreter`'s use of it).
        code: Value,
        message: String,
        data: Option<Value>,
    },
}

/// Why a frame, or one element of a batch, is not JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not JSON: {0}")]
    NotJson(#[from] json::JsonError),
    #[error("not a JSON-RPC message: {0}")]
    NotJsonRpc(&'static str),
}

/// Parses one frame into its messages (one, or the elements of a batch); any element that is
/// not a message makes the whole frame an error.
pub fn parse_frame(frame: &[u8]) -> Result<Vec<Message>, FrameError> {
    parse_elements(frame)?.into_iter().collect()
}

/// Parses one frame into its elements: each a message, or why it is not one. `Err` when the
/// frame as a whole is not JSON, or an empty batch.
pub fn parse_elements(frame: &[u8]) -> Result<Vec<Result<Message, FrameError>>, FrameError> {
    elements(json::parse(frame)?)
}

/// The messages the start of a frame holds (see [`json::parse_start`]): what can be known of
/// a frame that is not whole JSON, or too large to hold.
pub fn parse_start(frame: &[u8]) -> Vec<Message> {
    json::parse_start(frame)
        .and_then(|value| elements(value).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .collect()
}

fn elements(value: Value) -> Result<Vec<Result<Message, FrameError>>, FrameError> {
    match value {
        Value::Array(items) if !items.is_empty() => Ok(items.into_iter().map(message).collect()),
        Value::Array(_) => Err(FrameError::NotJsonRpc("empty batch")),
        other => Ok(vec![message(other)]),
    }
}

fn message(value: Value) -> Result<Message, FrameError> {
    let Value::Object(mut object) = value else {
        return Err(FrameError::NotJsonRpc("not an object"));
    };
    let id = object
        .remove("id")
        .filter(|v| !v.is_null())
        .map(|v| Id(v.to_string()));
    let method = match object.remove("method") {
        Some(Value::String(m)) => Some(m),
        Some(_) => return Err(FrameError::NotJsonRpc("method is not a string")),
        None => None,
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(method)) => Ok(Message::Request { id, method, params }),
        (None, Some(method)) => Ok(Message::Notification { method, params }),
        (Some(id), None) => Ok(Message::Response {
            id,
            outcome: reply(&mut object)?,
        }),
        (None, None) => Err(FrameError::NotJsonRpc("neither a method nor an id")),
    }
}

fn reply(object: &mut Map<String, Value>) -> Result<Reply, FrameError> {
    if let Some(result) = object.remove("result") {
        return Ok(Reply::Result(result));
    }
    match object.remove("error") {
        Some(Value::Object(mut e)) => Ok(Reply::Error {
            code: e.remove("code").unwrap_or(Value::Null),
            message: e
                .remove("message")
                .and_then(|m| m.as_str().map(str::to_string))
                .unwrap_or_default(),
            data: e.remove("data"),
        }),
        _ => Err(FrameError::NotJsonRpc("a response without result or error")),
    }
}

/// The proxy's own answer to the requests of a frame it did not forward, for `reason`: a
/// JSON-RPC error for each request (an array for a batch), or `None` when the frame holds no
/// request to answer. A frame that is not whole JSON (or only the start of one too large to
/// hold) is answered for the requests its start holds. Ends with a newline.
pub(crate) fn refusal(frame: &[u8], reason: &str) -> Option<Vec<u8>> {
    let message = format!("mcp-audit: {reason}");
    let value = json::parse_start(frame)?;
    let batch = value.is_array();
    let elements = elements(value).ok()?;
    let mut answers: Vec<Value> = elements
        .iter()
        .filter_map(|element| match element {
            Ok(Message::Request { id, .. }) => Some(serde_json::json!({
                "jsonrpc": "2.0",
                "id": id.value(),
                "error": {"code": -32603, "message": message},
            })),
            _ => None,
        })
        .collect();
    let answers = match (batch, answers.len()) {
        (_, 0) => return None,
        (false, _) => answers.swap_remove(0),
        (true, _) => Value::Array(answers),
    };
    let mut line = serde_json::to_vec(&answers).ok()?;
    line.push(b'\n');
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let m = parse_frame(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#,
        )
        .unwrap();
        assert!(
            matches!(&m[0], Message::Request { id, method, .. } if id.0 == "7" && method == "tools/call")
        );
        let m = parse_frame(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(&m[0], Message::Notification { .. }));
        let m =
            parse_frame(br#"{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"nope"}}"#)
                .unwrap();
        assert!(
            matches!(&m[0], Message::Response { id, outcome: Reply::Error { code, .. } } if id.0 == "\"a\"" && code == -32601)
        );
    }

    #[test]
    fn a_batch_yields_every_element() {
        let m = parse_frame(
            br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#,
        )
        .unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn number_and_string_ids_stay_different() {
        let a = parse_frame(br#"{"id":1,"result":{}}"#).unwrap();
        let b = parse_frame(br#"{"id":"1","result":{}}"#).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_frames_are_classified() {
        assert!(matches!(
            parse_frame(b"\xff\xfe"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(parse_frame(b"{nope"), Err(FrameError::NotJson(_))));
        assert!(matches!(parse_frame(b"42"), Err(FrameError::NotJsonRpc(_))));
        assert!(matches!(parse_frame(b"[]"), Err(FrameError::NotJsonRpc(_))));
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::refusal;
    use serde_json::{Value, json};

    fn answer(frame: &str) -> Option<Value> {
        let line = refusal(
            frame.as_bytes(),
            "not written (the audit writer has stopped)",
        )?;
        assert_eq!(line.last(), Some(&b'\n'), "one line");
        Some(serde_json::from_slice(&line).unwrap())
    }

    #[test]
    fn a_refused_request_is_answered_with_its_own_id() {
        let got =
            answer(r#"{"jsonrpc":"2.0","id":"a-7","method":"tools/call","params":{}}"#).unwrap();
        assert_eq!(got["id"], "a-7");
        assert_eq!(got["error"]["code"], -32603);
        let message = got["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            "mcp-audit: not written (the audit writer has stopped)"
        );
    }

    #[test]
    fn a_refused_batch_answers_each_request_and_no_notification() {
        let got = answer(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"},
                {"jsonrpc":"2.0","method":"notifications/progress"},
                {"jsonrpc":"2.0","id":2,"method":"tools/list"}]"#,
        )
        .unwrap();
        let ids: Vec<&Value> = got.as_array().unwrap().iter().map(|a| &a["id"]).collect();
        assert_eq!(ids, [&json!(1), &json!(2)]);
        assert_eq!(
            answer(r#"[{"jsonrpc":"2.0","method":"notifications/progress"}]"#),
            None
        );
        assert_eq!(answer("not json"), None);
    }
}
