//! Admission: what becomes of a frame a client sends, before it reaches the server. In `sync`
//! (intents recorded before forwarding) whatever the proxy can not put on record as the
//! operation it is does not run: a frame it can not interpret, a request id still in flight, a
//! frame larger than the adapter holds. This is the one place that decides forward or refuse,
//! and that records refused requests as the operations they are; the rest of the interpreter
//! turns frames into operations.

use std::collections::HashSet;
use std::time::Instant;

use mcp_audit_core::{Action, EventKind, Outcome};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Direction, Elements, Interpreter, REFUSED, Record, classify, record, unnamed};
use crate::flood::Verdict;
use crate::jsonrpc::{Id, Message, parse_elements, parse_start};

/// What becomes of a frame the proxy has read (see [`Interpreter::admit`]).
#[derive(Debug)]
pub enum Admission {
    /// Forward it, once its records that say so are durable.
    Forward(Vec<Record>),
    /// Do not forward it: its requests are answered with the proxy's own JSON-RPC error for
    /// `reason` (see `jsonrpc::refusal`), and `records` (queued, not held) say it was denied.
    Refuse {
        records: Vec<Record>,
        reason: String,
    },
}

impl Interpreter {
    /// Records the requests of a frame that the proxy refused to forward (bad credentials,
    /// an audit trail that could not take their intent): one event per request, with
    /// `outcome` and `reason`, paired with nothing. A frame without requests, or with anything
    /// that is not a message, is (also) recorded as one `refused_frame` protocol event, so
    /// that no refusal goes unrecorded.
    pub fn refused(
        &mut self,
        direction: Direction,
        frame: &[u8],
        outcome: Outcome,
        reason: &str,
    ) -> Vec<Record> {
        self.refused_elements(direction, frame, parse_elements(frame), outcome, reason)
    }

    fn refused_elements(
        &mut self,
        direction: Direction,
        frame: &[u8],
        elements: Elements,
        outcome: Outcome,
        reason: &str,
    ) -> Vec<Record> {
        let (requests, unread) = match elements {
            Ok(elements) => {
                let unread = elements.iter().any(Result::is_err);
                let requests: Vec<(Id, String, Value)> = elements
                    .into_iter()
                    .filter_map(|m| match m {
                        Ok(Message::Request { id, method, params }) => Some((id, method, params)),
                        _ => None,
                    })
                    .collect();
                (requests, unread)
            }
            // What its start holds is on record as denied too.
            Err(_) => (
                parse_start(frame)
                    .into_iter()
                    .filter_map(|m| match m {
                        Message::Request { id, method, params } => Some((id, method, params)),
                        _ => None,
                    })
                    .collect(),
                true,
            ),
        };
        let mut records = Vec::new();
        if unread || requests.is_empty() {
            let sha: [u8; 32] = Sha256::digest(frame).into();
            let details = json!({
                "direction": direction.as_str(),
                "size": frame.len(),
                "sha256": hex::encode(sha),
                "excerpt": self.excerpt(frame),
            });
            // A flood of junk that names no request is counted like malformed frames; a
            // request refused is always recorded on its own.
            let counted = requests.is_empty()
                && outcome == Outcome::Denied
                && self.flood.admit(
                    direction,
                    REFUSED,
                    || json!({"reason": reason, "frame": details.clone()}),
                    Instant::now(),
                ) == Verdict::Counted;
            if !counted {
                let event = self
                    .base(EventKind::Protocol, Action::Access, REFUSED)
                    .failed(reason)
                    .outcome(outcome)
                    .details(details);
                records.push(record(event, false));
            }
        }
        for (id, method, params) in requests {
            records.push(self.refused_request(id, &method, &params, outcome, reason));
        }
        records
    }

    /// One request the proxy did not forward, as the operation it is.
    fn refused_request(
        &self,
        id: Id,
        method: &str,
        params: &Value,
        outcome: Outcome,
        reason: &str,
    ) -> Record {
        let (kind, action, operation, resource_type) = classify(method, params);
        let mut event = self
            .base(kind, action, &operation)
            .request_id(id.0)
            .failed(reason)
            .outcome(outcome);
        if let Some(t) = resource_type {
            event = event.resource_type(t);
        }
        if let Some(name) = unnamed(method, params) {
            event = event.details(json!({ "name": name }));
        }
        // What was asked, though it did not run.
        let input = match method {
            "tools/call" | "prompts/get" => params.get("arguments").cloned(),
            _ => Some(params.clone()),
        };
        if let Some(input) = input.filter(|i| !i.is_null()) {
            event = event.input(self.capture(input));
        }
        record(event, false)
    }

    /// Reads a frame from a peer and decides what becomes of it. In `sync` (intents recorded
    /// before forwarding), a frame the proxy cannot interpret, in whole or in part, and a
    /// request whose id is that of a request still in flight are refused: what a server may
    /// run is on record as the operation it is before it runs, or it does not run. Otherwise
    /// the frame is interpreted as [`Interpreter::frame`] does, and forwarded.
    pub fn admit(&mut self, direction: Direction, frame: &[u8], at: Instant) -> Admission {
        let elements = parse_elements(frame);
        // A blank line is nothing a server can run: it passes, recorded as malformed.
        let blank = frame.iter().all(u8::is_ascii_whitespace);
        if self.config.record_intents
            && !blank
            && let Some(reason) = self.uninterpretable(direction, &elements)
        {
            let mut records = self.due(at);
            records.extend(self.refused_elements(
                direction,
                frame,
                elements,
                Outcome::Denied,
                &reason,
            ));
            return Admission::Refuse { records, reason };
        }
        Admission::Forward(self.interpret(direction, frame, elements, at))
    }

    /// Why a frame can not be forwarded in `sync`, if it can not.
    fn uninterpretable(&self, direction: Direction, elements: &Elements) -> Option<String> {
        let elements = match elements {
            Ok(elements) => elements,
            Err(problem) => return Some(format!("the frame could not be interpreted: {problem}")),
        };
        let mut ids = HashSet::new();
        for element in elements {
            match element {
                Err(problem) => {
                    return Some(format!(
                        "a message of the frame could not be interpreted: {problem}"
                    ));
                }
                Ok(Message::Request { id, .. }) => {
                    if self.calls.contains_key(&(direction, id.clone())) || !ids.insert(id) {
                        return Some(format!(
                            "request id {} is that of a request still in flight",
                            id.0
                        ));
                    }
                }
                Ok(_) => {}
            }
        }
        None
    }

    /// Decides what becomes of a frame too large to hold (more than the adapter keeps of
    /// one), of which only its start, size and hash are known. In `sync` it is refused: what
    /// it asks can not be put on record whole before it runs. Otherwise it is forwarded and
    /// recorded as an `oversized_frame`, and each request its start names is recorded as the
    /// operation it is, its arguments replaced by the frame's size and hash.
    pub fn admit_oversize(
        &mut self,
        direction: Direction,
        start: &[u8],
        size: usize,
        sha256: [u8; 32],
        at: Instant,
    ) -> Admission {
        let mut records = self.due(at);
        let mut oversize = self.oversize(direction, start, size, sha256);
        let requests = parse_start(start).into_iter().filter_map(|m| match m {
            Message::Request { id, method, params } => Some((id, method, params)),
            _ => None,
        });
        if self.config.record_intents {
            let reason = format!(
                "the frame is {size} bytes, more than the {} bytes the proxy can hold",
                crate::tap::MAX_FRAME
            );
            oversize.event.outcome = Outcome::Denied;
            oversize.event.payload.error_message = Some(reason.clone());
            records.push(oversize);
            for (id, method, params) in requests {
                records.push(self.refused_request(id, &method, &params, Outcome::Denied, &reason));
            }
            return Admission::Refuse { records, reason };
        }
        records.push(oversize);
        let marker = json!({
            "truncated": true,
            "size": size,
            "sha256": hex::encode(sha256),
        });
        for (id, method, mut params) in requests {
            if let Some(arguments) = params.get_mut("arguments") {
                *arguments = marker.clone();
            }
            records.extend(self.request(direction, id, method, params, at));
        }
        Admission::Forward(records)
    }
}
