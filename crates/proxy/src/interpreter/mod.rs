//! The MCP interpreter: from copies of the frames that pass through the proxy to audit events.
//!
//! It is a plain state machine with no I/O, shared by every transport adapter: it pairs each
//! request with its response by (direction, id), in both directions (servers send requests too:
//! sampling, elicitation, roots), maps methods to event kinds, and turns outcomes (result,
//! `isError`, JSON-RPC error, cancellation, silence) into records. What becomes of a client's
//! frame before it is forwarded (forward, or refuse and record the refusal) is decided in
//! `admission.rs`.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use mcp_audit_core::{Action, Actor, AuditEvent, EventId, EventKind, Outcome, Target, now_micros};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::exit::ServerExit;
use crate::flood::{Flood, Summary, Verdict};
use crate::jsonrpc::{FrameError, Id, Message, Reply, parse_elements, parse_frame};

mod admission;

pub use admission::Admission;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
}

/// What the interpreter knows before the first frame.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our session id for this connection.
    pub session_id: String,
    /// The server's name from configuration; else the one it reports in `initialize`.
    pub server_name: Option<String>,
    /// Who runs the client.
    pub actor: Actor,
    /// `stdio`, `streamable_http`, ...
    pub transport: &'static str,
    /// Payloads larger than this (bytes of JSON) are stored as an excerpt with size and SHA-256.
    pub capture_limit: usize,
    /// Record an intent (`pending`) for tools/call, resources/read and prompts/get before they
    /// are forwarded (`sync` durability), and their outcome as a second event.
    pub record_intents: bool,
}

/// An event the adapter must record.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: AuditEvent,
    /// The frame may be forwarded only once this record is durable.
    pub before_forwarding: bool,
}

/// A request waiting for its response.
struct Call {
    template: AuditEvent,
    started: Instant,
    intent: Option<EventId>,
    recorded: bool,
    /// The method, to find the retry of an `input_required` answer.
    method: String,
}

/// Protocol 2026-07-28 keys in `_meta`.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The interpreter of one connection.
pub struct Interpreter {
    config: SessionConfig,
    calls: HashMap<(Direction, Id), Call>,
    cancelled: HashSet<(Direction, Id)>,
    /// 2026-07-28: operations answered `input_required`, waiting for the client's retry (a new
    /// request id): (direction, method, operation) → (correlation id, the answer's event id).
    awaiting_input: HashMap<(Direction, String, String), (Option<String>, EventId)>,
    protocol_version: Option<String>,
    server_info: Option<Value>,
    client_info: Option<Value>,
    started: bool,
    progress_notifications: u64,
    log_notifications: u64,
    pings: u64,
    anomalies: u64,
    /// Whether this interpreter owns a session (records `session_end`); `false` for one
    /// stateless HTTP exchange, which is not a session of its own.
    session_events: bool,
    /// `input_required` steps shared with the interpreters of other exchanges.
    continuations: Option<Continuations>,
    /// Notifications and malformed frames counted past their rate (see [`crate::flood`]).
    flood: Flood,
}

/// The `input_required` steps of stateless exchanges, shared by their interpreters: a retry
/// arrives in a new HTTP exchange (a new interpreter) and is linked to its step by the
/// `requestState` the server gave and the client echoes. Bounded: past `MAX_CONTINUATIONS`
/// waiting steps, new ones are not kept (their retries are then recorded unlinked).
#[derive(Clone, Default)]
pub struct Continuations(std::sync::Arc<std::sync::Mutex<Steps>>);

/// `requestState` → (correlation id, the `input_required` step's event id).
type Steps = HashMap<String, (Option<String>, EventId)>;

/// How many `input_required` steps may wait for their retry at once.
const MAX_CONTINUATIONS: usize = 10_000;

impl Continuations {
    fn map(&self) -> std::sync::MutexGuard<'_, Steps> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn offer(&self, state: String, step: (Option<String>, EventId)) {
        let mut map = self.map();
        if map.len() < MAX_CONTINUATIONS {
            map.insert(state, step);
        }
    }

    fn take(&self, state: &str) -> Option<(Option<String>, EventId)> {
        self.map().remove(state)
    }

    /// How many steps wait for their retry.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The methods whose intent is recorded before they run in `sync` mode: the ones that act or
/// read data on the user's behalf.
const INTENT_METHODS: [&str; 3] = ["tools/call", "resources/read", "prompts/get"];

impl Interpreter {
    pub fn new(config: SessionConfig) -> Interpreter {
        Interpreter {
            config,
            calls: HashMap::new(),
            cancelled: HashSet::new(),
            awaiting_input: HashMap::new(),
            protocol_version: None,
            server_info: None,
            client_info: None,
            started: false,
            progress_notifications: 0,
            log_notifications: 0,
            pings: 0,
            anomalies: 0,
            session_events: true,
            continuations: None,
            flood: Flood::default(),
        }
    }

    /// Shares `input_required` steps with other interpreters (see [`Continuations`]).
    pub fn with_continuations(mut self, continuations: Continuations) -> Interpreter {
        self.continuations = Some(continuations);
        self
    }

    /// The interpreter of one stateless HTTP exchange (a request without `Mcp-Session-Id`):
    /// it pairs the requests of that exchange with their responses but is no session, so it
    /// records neither a stateless `session_start` nor a `session_end`.
    pub fn exchange(config: SessionConfig) -> Interpreter {
        let mut interpreter = Interpreter::new(config);
        interpreter.started = true;
        interpreter.session_events = false;
        interpreter
    }

    /// Names the transport on later records (an HTTP exchange that turned out to be a legacy
    /// HTTP+SSE session is `sse`).
    pub fn set_transport(&mut self, transport: &'static str) {
        self.config.transport = transport;
    }

    /// Whether requests are held until their intent is durable (`sync`), and frames that can
    /// not be interpreted are refused (see [`Interpreter::admit`]).
    pub fn records_intents(&self) -> bool {
        self.config.record_intents
    }

    /// Whether this interpreter owns a session (see [`Interpreter::exchange`]).
    pub fn is_session(&self) -> bool {
        self.session_events
    }

    /// Makes an exchange's interpreter the interpreter of the session the server just opened
    /// (its answer carried a new `Mcp-Session-Id`): it will record the `session_end`.
    pub fn become_session(&mut self) {
        self.session_events = true;
    }

    /// Closes the requests of `frame` that are still waiting for an answer with `outcome` and
    /// `reason`: the transport lost them (the upstream is down or answered an HTTP error, the
    /// client left mid-stream, the upstream stalled). Requests already answered are untouched.
    pub fn abandon(
        &mut self,
        direction: Direction,
        frame: &[u8],
        outcome: Outcome,
        reason: &str,
        at: Instant,
    ) -> Vec<Record> {
        let Ok(messages) = parse_frame(frame) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for message in messages {
            let Message::Request { id, .. } = message else {
                continue;
            };
            if let Some(call) = self.calls.remove(&(direction, id))
                && call.recorded
            {
                records.push(self.outcome_of(call, outcome, None, Some(reason.to_string()), at));
            }
        }
        records
    }

    /// A fault of the transport itself (the upstream could not be reached, a body was refused),
    /// recorded as a `protocol` event with outcome `protocol_error`.
    pub fn transport_fault(&mut self, operation: &str, problem: &str, details: Value) -> Record {
        self.anomalies += 1;
        let event = self
            .base(EventKind::Protocol, Action::Access, operation)
            .failed(problem)
            .outcome(Outcome::ProtocolError)
            .details(details);
        record(event, false)
    }

    /// Interprets one frame that arrived at `at`.
    pub fn frame(&mut self, direction: Direction, frame: &[u8], at: Instant) -> Vec<Record> {
        self.interpret(direction, frame, parse_elements(frame), at)
    }

    fn interpret(
        &mut self,
        direction: Direction,
        frame: &[u8],
        elements: Elements,
        at: Instant,
    ) -> Vec<Record> {
        let mut records = self.due(at);
        match elements {
            Ok(elements) => {
                for element in elements {
                    match element {
                        Ok(m) => records.extend(self.message(direction, m, at)),
                        Err(problem) => records.extend(self.anomaly(
                            direction,
                            &problem.to_string(),
                            frame,
                            frame.len(),
                            at,
                        )),
                    }
                }
            }
            Err(problem) => records.extend(self.anomaly(
                direction,
                &problem.to_string(),
                frame,
                frame.len(),
                at,
            )),
        }
        records
    }

    /// The summaries of the flood counters whose second is over by `at`.
    fn due(&mut self, at: Instant) -> Vec<Record> {
        let summaries = self.flood.due(at);
        summaries.into_iter().map(|s| self.summary(s)).collect()
    }

    /// One event for the notifications (or malformed frames) counted in one second.
    fn summary(&self, summary: Summary) -> Record {
        let outcome = match summary.method.as_str() {
            MALFORMED => Outcome::ProtocolError,
            REFUSED => Outcome::Denied,
            _ => Outcome::Success,
        };
        let event = self
            .base(EventKind::Protocol, Action::Access, &summary.method)
            .outcome(outcome)
            .details(json!({
                "direction": summary.direction.as_str(),
                "aggregated": true,
                "count": summary.count,
                "recorded_alone_per_second": crate::flood::PER_METHOD,
                "sample": summary.sample,
            }));
        record(event, false)
    }

    /// Records a frame too large to interpret: only its size, hash and start are kept.
    pub fn oversize(
        &mut self,
        direction: Direction,
        start: &[u8],
        size: usize,
        sha256: [u8; 32],
    ) -> Record {
        self.anomalies += 1;
        let event = self
            .base(EventKind::Protocol, Action::Access, "oversized_frame")
            .outcome(Outcome::ProtocolError)
            .details(json!({
                "direction": direction.as_str(),
                "problem": "message larger than the interpretation limit",
                "size": size,
                "sha256": hex::encode(sha256),
                "excerpt": excerpt(start),
            }));
        record(event, false)
    }

    /// The server could not be started (`command`, and why): recorded as a failed
    /// `server_start`, so that an attempt that never ran a session is on record too.
    pub fn start_failed(&mut self, command: &str, error: &str) -> Record {
        let event = self
            .base(EventKind::ServerOperation, Action::Execute, "server_start")
            .failed(format!("the MCP server could not be started: {error}"))
            .outcome(Outcome::ProtocolError)
            .details(json!({ "command": command, "error": error }));
        record(event, false)
    }

    /// The end of the connection: every unanswered request becomes `incomplete`, then the
    /// session end is recorded with why it ended and what was counted.
    pub fn finish(&mut self, reason: &str, exit_status: Option<i32>, at: Instant) -> Vec<Record> {
        self.finish_after_exit(reason, exit_status.map(ServerExit::Code), at)
    }

    /// As [`Interpreter::finish`], for a server process that ended as `exit`: a server killed
    /// by a signal is recorded with the signal's name (`server_signal`), not as a status.
    pub fn finish_after_exit(
        &mut self,
        reason: &str,
        exit: Option<ServerExit>,
        at: Instant,
    ) -> Vec<Record> {
        let exit_status = exit.and_then(ServerExit::code);
        let mut records: Vec<Record> = std::mem::take(&mut self.calls)
            .into_values()
            .filter(|c| c.recorded)
            .map(|call| self.outcome_of(call, Outcome::Incomplete, None, None, at))
            .collect();
        let summaries = self.flood.drain();
        records.extend(summaries.into_iter().map(|s| self.summary(s)));
        let mut details = json!({
            "reason": reason,
            "server_exit_status": exit_status,
            "progress_notifications": self.progress_notifications,
            "log_notifications": self.log_notifications,
            "pings": self.pings,
            "anomalies": self.anomalies,
        });
        if let Some(signal) = exit.and_then(ServerExit::signal_name) {
            details["server_signal"] = json!(signal);
        }
        let end = self
            .base(EventKind::Session, Action::Delete, "session_end")
            .details(details);
        if self.session_events {
            records.push(record(end, false));
        }
        records
    }

    fn message(&mut self, direction: Direction, message: Message, at: Instant) -> Vec<Record> {
        match message {
            Message::Request { id, method, params } => {
                self.request(direction, id, method, params, at)
            }
            Message::Notification { method, params } => {
                self.notification(direction, &method, params, at)
            }
            Message::Response { id, outcome } => self.response(direction, id, outcome, at),
        }
    }

    fn request(
        &mut self,
        direction: Direction,
        id: Id,
        method: String,
        params: Value,
        at: Instant,
    ) -> Vec<Record> {
        if method == "initialize" {
            self.client_info = params.get("clientInfo").cloned();
            if let Some(v) = params.get("protocolVersion").and_then(Value::as_str) {
                self.protocol_version = Some(v.to_string());
            }
        }
        let mut records = Vec::new();
        if let Some(meta) = params.get("_meta") {
            if let Some(v) = meta.get(META_PROTOCOL_VERSION).and_then(Value::as_str) {
                self.protocol_version = Some(v.to_string());
            }
            if let Some(info) = meta.get(META_CLIENT_INFO) {
                self.client_info = Some(info.clone());
            }
            if !self.started && meta.get(META_PROTOCOL_VERSION).is_some() {
                // Stateless protocol: no handshake, so the session starts with its first request.
                self.started = true;
                let event = self
                    .base(EventKind::Session, Action::Create, "session_start")
                    .details(json!({
                        "stateless": true,
                        "client_info": self.client_info,
                        "protocol_version": self.protocol_version,
                        "client_capabilities": meta.get("io.modelcontextprotocol/clientCapabilities"),
                    }));
                records.push(record(event, false));
            }
        }
        let recorded = !matches!(method.as_str(), "ping" | "initialize");
        if method == "ping" {
            self.pings += 1;
        }
        let (kind, action, operation, resource_type) = classify(&method, &params);
        // The retry of an `input_required` answer continues that logical operation.
        let retry_of = params.get("inputResponses").and_then(|_| {
            self.awaiting_input
                .remove(&(direction, method.clone(), operation.clone()))
                .or_else(|| {
                    // A retry in another exchange (stateless HTTP): found by its echoed state.
                    let state = params.get("requestState").and_then(Value::as_str)?;
                    self.continuations.as_ref()?.take(state)
                })
        });
        let correlation = retry_of
            .as_ref()
            .and_then(|(c, _)| c.clone())
            .unwrap_or_else(|| EventId::new().to_string());
        let mut template = self
            .base(kind, action, &operation)
            .request_id(id.0.clone())
            .correlation_id(correlation);
        if let Some(responses) = params.get("inputResponses") {
            template =
                template.context(json!({ "inputResponses": self.capture(responses.clone()) }));
        }
        if let Some(t) = resource_type {
            template = template.resource_type(t);
        }
        let mut details = serde_json::Map::new();
        if let Some(name) = unnamed(&method, &params) {
            // A name no operation can be called by (blank, not text): kept as it came.
            details.insert("name".into(), name);
        }
        let earlier = self.calls.remove(&(direction, id.clone()));
        if let Some(earlier) = earlier {
            // A second request with the id of one in flight (refused in `sync`): the answers
            // to that id can not be told apart, so the earlier one is closed here rather than
            // given the later one's answer, and the later one says so.
            details.insert("request_id_reused".into(), Value::Bool(true));
            if earlier.recorded {
                records.push(self.outcome_of(
                    earlier,
                    Outcome::Incomplete,
                    None,
                    Some(REUSED_ID.to_string()),
                    at,
                ));
            }
        }
        if !details.is_empty() {
            template = template.details(Value::Object(details));
        }
        let input = if method == "tools/call" || method == "prompts/get" {
            params.get("arguments").cloned().unwrap_or(Value::Null)
        } else {
            params
        };
        let template = template.input(self.capture(input));
        let mut intent = None;
        if recorded && self.config.record_intents && INTENT_METHODS.contains(&method.as_str()) {
            let mut event = template.clone().outcome(Outcome::Pending);
            if let Some((_, step)) = &retry_of {
                event = event.completes(*step);
            }
            if let Ok(event) = event.build() {
                intent = Some(event.id);
                records.push(Record {
                    event,
                    before_forwarding: true,
                });
            }
        }
        match template.build() {
            Ok(template) => {
                self.calls.insert(
                    (direction, id),
                    Call {
                        template,
                        started: at,
                        // Without an intent of its own, a retry's outcome completes the step.
                        intent: intent.or(retry_of.map(|(_, step)| step)),
                        recorded,
                        method,
                    },
                );
            }
            Err(e) => tracing::warn!(error = %e, %method, "request not recordable"),
        }
        records
    }

    fn notification(
        &mut self,
        direction: Direction,
        method: &str,
        params: Value,
        at: Instant,
    ) -> Vec<Record> {
        match method {
            "notifications/progress" => {
                self.progress_notifications += 1;
                Vec::new()
            }
            "notifications/message" => {
                self.log_notifications += 1;
                Vec::new()
            }
            "notifications/initialized" => Vec::new(),
            "notifications/cancelled" => {
                let Some(request_id) = params.get("requestId").map(|v| Id(v.to_string())) else {
                    return Vec::new();
                };
                let key = (direction, request_id);
                match self.calls.remove(&key) {
                    Some(call) if call.recorded => {
                        let reason = params
                            .get("reason")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        self.cancelled.insert(key);
                        vec![self.outcome_of(
                            call,
                            Outcome::Cancelled,
                            None,
                            reason,
                            Instant::now(),
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            _ => {
                let limit = self.config.capture_limit;
                let verdict =
                    self.flood
                        .admit(direction, method, || capture(params.clone(), limit), at);
                if verdict == Verdict::Counted {
                    return Vec::new();
                }
                let event = self
                    .base(EventKind::Protocol, Action::Access, method)
                    .details(
                        json!({"direction": direction.as_str(), "params": self.capture(params)}),
                    );
                vec![record(event, false)]
            }
        }
    }

    fn response(
        &mut self,
        direction: Direction,
        id: Id,
        outcome: Reply,
        at: Instant,
    ) -> Vec<Record> {
        // A response travels the other way from its request.
        let request_direction = match direction {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        };
        let key = (request_direction, id);
        let Some(call) = self.calls.remove(&key) else {
            if self.cancelled.remove(&key) {
                return Vec::new(); // the late answer to a cancelled request
            }
            let text = format!("response to unknown id {}", key.1.0);
            return self
                .anomaly(direction, &text, text.as_bytes(), 0, at)
                .into_iter()
                .collect();
        };
        let mut records = Vec::new();
        if call.template.operation == "initialize" {
            records.extend(self.session_start(&outcome));
        }
        if !call.recorded {
            return records;
        }
        let record = match outcome {
            Reply::Result(result) => {
                if let Some(info) = result.get("_meta").and_then(|m| m.get(META_SERVER_INFO)) {
                    self.server_info = Some(info.clone());
                }
                let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
                if result.get("resultType").and_then(Value::as_str) == Some("input_required") {
                    // Not an end: the client answers the input requests by retrying the call.
                    let key = (
                        request_direction,
                        call.method.clone(),
                        call.template.operation.clone(),
                    );
                    let correlation = call.template.correlation_id.clone();
                    let state = result
                        .get("requestState")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let step = self.outcome_of(call, Outcome::Pending, Some(result), None, at);
                    if let (Some(state), Some(shared)) = (state, &self.continuations) {
                        shared.offer(state, (correlation.clone(), step.event.id));
                    }
                    self.awaiting_input
                        .insert(key, (correlation, step.event.id));
                    step
                } else if is_error {
                    let message = first_text(&result);
                    self.outcome_of(call, Outcome::ToolError, Some(result), message, at)
                } else {
                    self.outcome_of(call, Outcome::Success, Some(result), None, at)
                }
            }
            Reply::Error {
                code,
                message,
                data,
            } => {
                // The model keeps an error code within ±2^53 (see `AuditEvent::normalize`); a
                // peer may send any value, which must not cost the record: it goes in the
                // message as written.
                let exact = code.as_i64().filter(|c| c.unsigned_abs() <= 1 << 53);
                let message = match exact {
                    Some(_) => message,
                    None => format!("{message} (error code {code})"),
                };
                if call.method == DISCOVER && exact.is_some_and(|c| LEGACY_ANSWERS.contains(&c)) {
                    return records
                        .into_iter()
                        .chain([self.legacy_answer(call, exact, message, at)])
                        .collect();
                }
                let mut r = self.outcome_of(call, Outcome::ProtocolError, data, Some(message), at);
                r.event.error_code = exact;
                r
            }
        };
        records.push(record);
        records
    }

    /// A client's `server/discover` probe answered "not here" by a server that speaks only the
    /// handshake protocols: the probe did its job (the client falls back to `initialize`), so
    /// it is recorded as a `success` that found a legacy server, with the server's words, not
    /// as an error that fills error queries with every `auto`-mode client's first message.
    fn legacy_answer(&self, call: Call, code: Option<i64>, message: String, at: Instant) -> Record {
        let mut r = self.outcome_of(call, Outcome::Success, None, None, at);
        let mut details = match r.event.payload.details.take() {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        details.insert("discovery".into(), json!("legacy"));
        details.insert("error_code".into(), json!(code));
        details.insert("error_message".into(), json!(message));
        r.event.payload.details = Some(Value::Object(details));
        r
    }

    fn session_start(&mut self, outcome: &Reply) -> Option<Record> {
        let Reply::Result(result) = outcome else {
            return None;
        };
        if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
            self.protocol_version = Some(v.to_string());
        }
        self.server_info = result.get("serverInfo").cloned();
        self.started = true;
        let event = self
            .base(EventKind::Session, Action::Create, "session_start")
            .details(json!({
                "client_info": self.client_info,
                "server_info": self.server_info,
                "protocol_version": self.protocol_version,
                "server_capabilities": result.get("capabilities"),
                "instructions": result.get("instructions"),
            }));
        Some(record(event, false))
    }

    fn outcome_of(
        &self,
        call: Call,
        outcome: Outcome,
        output: Option<Value>,
        error: Option<String>,
        at: Instant,
    ) -> Record {
        let mut event = call.template;
        event.id = EventId::new();
        event.timestamp = now_micros();
        event.outcome = outcome;
        event.completes = call.intent;
        event.duration_us = Some(at.saturating_duration_since(call.started).as_micros() as u64);
        event.payload.output = output.map(|o| self.capture(o));
        event.payload.error_message = error;
        // Refresh what the handshake may have taught since the request.
        event.target.protocol_version = self.protocol_version.clone();
        event.target.server_name = self.server_name();
        Record {
            event,
            before_forwarding: false,
        }
    }

    /// A frame (or one message of a batch) that is not what JSON-RPC allows, or a response
    /// to no request: recorded, or counted past the flood rate.
    fn anomaly(
        &mut self,
        direction: Direction,
        problem: &str,
        frame: &[u8],
        size: usize,
        at: Instant,
    ) -> Option<Record> {
        self.anomalies += 1;
        let sha: [u8; 32] = Sha256::digest(frame).into();
        let details = json!({
            "direction": direction.as_str(),
            "problem": problem,
            "size": size,
            "sha256": hex::encode(sha),
            "excerpt": self.excerpt(frame),
        });
        if self
            .flood
            .admit(direction, MALFORMED, || details.clone(), at)
            == Verdict::Counted
        {
            return None;
        }
        let event = self
            .base(EventKind::Protocol, Action::Access, MALFORMED)
            .outcome(Outcome::ProtocolError)
            .details(details);
        Some(record(event, false))
    }

    /// The start of a frame that could not be read as messages: up to the capture limit, so
    /// that padding does not hide what follows it.
    fn excerpt(&self, frame: &[u8]) -> String {
        let text = String::from_utf8_lossy(frame);
        let mut cut = self.config.capture_limit.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text[..cut].to_string()
    }

    fn server_name(&self) -> Option<String> {
        self.config.server_name.clone().or_else(|| {
            self.server_info
                .as_ref()
                .and_then(|i| i.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    fn base(
        &self,
        kind: EventKind,
        action: Action,
        operation: &str,
    ) -> mcp_audit_core::EventBuilder {
        let mut actor = self.config.actor.clone();
        if let Some(info) = &self.client_info {
            actor.client_name = info.get("name").and_then(Value::as_str).map(str::to_string);
            actor.client_version = info
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let target = Target {
            server_name: self.server_name(),
            server_version: self
                .server_info
                .as_ref()
                .and_then(|i| i.get("version"))
                .and_then(Value::as_str)
                .map(str::to_string),
            transport: Some(self.config.transport.to_string()),
            protocol_version: self.protocol_version.clone(),
            ..Target::default()
        };
        AuditEvent::builder(kind, action, operation)
            .session(self.config.session_id.clone())
            .actor(actor)
            .target(target)
    }

    /// The value itself, or, past the capture limit, an excerpt with the full size and hash.
    fn capture(&self, value: Value) -> Value {
        capture(value, self.config.capture_limit)
    }
}

/// A frame read into its elements (see `jsonrpc::parse_elements`).
type Elements = Result<Vec<Result<Message, FrameError>>, FrameError>;

/// The version probe of the stateless protocol (2026-07-28) that `auto`-mode clients send first.
const DISCOVER: &str = "server/discover";

/// The answers to [`DISCOVER`] that say the server speaks only the handshake protocols: method
/// not found, and unsupported protocol version.
const LEGACY_ANSWERS: [i64; 2] = [-32601, -32022];

/// The operation under which malformed frames (and responses to no request) are recorded.
const MALFORMED: &str = "malformed_frame";

/// The operation under which a refused frame is recorded (besides its requests).
const REFUSED: &str = "refused_frame";

/// Why a request closed before its answer: another request took its id.
const REUSED_ID: &str = "another request reused this request's id while it was in flight; the \
                         answers to that id can not be told apart";

/// `value` itself, or, past `limit` bytes of JSON, an excerpt with the full size and hash.
fn capture(value: Value, limit: usize) -> Value {
    if fits(&value, limit) {
        return value;
    }
    let text = value.to_string();
    let mut cut = limit.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({
        "truncated": true,
        "size": text.len(),
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        "excerpt": &text[..cut],
    })
}

/// The `name` of a `tools/call` or `prompts/get` that names nothing (blank, or not text):
/// recorded beside the operation, which is then the method.
fn unnamed(method: &str, params: &Value) -> Option<Value> {
    if !matches!(method, "tools/call" | "prompts/get") {
        return None;
    }
    match params.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => None,
        Some(name) => Some(name.clone()),
        None => None,
    }
}

/// Whether `value` encodes to at most `limit` bytes of JSON. Counts without building the text
/// and stops at the limit: this runs for every argument and result, and nearly all fit.
fn fits(value: &Value, limit: usize) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| std::io::Error::other("over the capture limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), value).is_ok()
}

fn record(builder: mcp_audit_core::EventBuilder, before_forwarding: bool) -> Record {
    // Built from values this module controls: the operation is never empty.
    let event = builder.build().unwrap_or_else(|_| {
        AuditEvent::builder(EventKind::Protocol, Action::Access, "unrecordable")
            .build()
            .unwrap_or_else(|_| unreachable!("a non-empty operation always builds"))
    });
    Record {
        event,
        before_forwarding,
    }
}

/// At most 256 bytes of a frame, as text.
fn excerpt(frame: &[u8]) -> String {
    String::from_utf8_lossy(&frame[..frame.len().min(256)]).into_owned()
}

/// The first text content of a tool result, used as the error message of a failed tool.
fn first_text(result: &Value) -> Option<String> {
    result
        .get("content")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("text").and_then(Value::as_str))
        .map(str::to_string)
}

/// Kind, action, operation name and resource type of a request.
fn classify(method: &str, params: &Value) -> (EventKind, Action, String, Option<&'static str>) {
    let (kind, action, operation, resource_type) = classify_method(method, params);
    // An event needs an operation: a blank method still is a request on record.
    let operation = if operation.trim().is_empty() {
        BLANK_METHOD.to_string()
    } else {
        operation
    };
    (kind, action, operation, resource_type)
}

/// The operation of a request whose method is blank.
const BLANK_METHOD: &str = "(blank method)";

fn classify_method(
    method: &str,
    params: &Value,
) -> (EventKind, Action, String, Option<&'static str>) {
    let param = |key: &str| {
        params
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    };
    match method {
        "tools/call" => (
            EventKind::ToolExecution,
            Action::Execute,
            param("name").unwrap_or_else(|| method.to_string()),
            Some("tool"),
        ),
        "resources/read" => (
            EventKind::ResourceAccess,
            Action::Read,
            param("uri").unwrap_or_else(|| method.to_string()),
            Some("resource"),
        ),
        "resources/subscribe" | "resources/unsubscribe" => (
            EventKind::ResourceAccess,
            Action::Access,
            param("uri").unwrap_or_else(|| method.to_string()),
            Some("resource"),
        ),
        "prompts/get" => (
            EventKind::PromptExecution,
            Action::Execute,
            param("name").unwrap_or_else(|| method.to_string()),
            Some("prompt"),
        ),
        "completion/complete" => (
            EventKind::Completion,
            Action::Execute,
            method.to_string(),
            None,
        ),
        "sampling/createMessage" => (
            EventKind::Sampling,
            Action::Execute,
            method.to_string(),
            None,
        ),
        "elicitation/create" => (
            EventKind::Elicitation,
            Action::Execute,
            method.to_string(),
            None,
        ),
        m if m.ends_with("/list") => (
            EventKind::ServerOperation,
            Action::Read,
            m.to_string(),
            None,
        ),
        "logging/setLevel" => (
            EventKind::ServerOperation,
            Action::Update,
            method.to_string(),
            None,
        ),
        m => (
            EventKind::ServerOperation,
            Action::Execute,
            m.to_string(),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use mcp_audit_core::Payload;

    use super::*;

    fn payload(r: &Record) -> &Payload {
        &r.event.payload
    }

    fn interpreter(intents: bool) -> Interpreter {
        Interpreter::new(SessionConfig {
            session_id: "s".into(),
            server_name: None,
            actor: Actor::user("alice"),
            transport: "stdio",
            capture_limit: 1024,
            record_intents: intents,
        })
    }

    fn feed(i: &mut Interpreter, d: Direction, frame: &str) -> Vec<Record> {
        i.frame(d, frame.as_bytes(), Instant::now())
    }

    /// The session settings of the HTTP adapter's exchanges: no user, no intents.
    fn http_config() -> SessionConfig {
        SessionConfig {
            session_id: "s".into(),
            server_name: None,
            actor: Actor::default(),
            transport: "streamable_http",
            capture_limit: 1024,
            record_intents: false,
        }
    }

    /// A client request whose own records the test does not look at, then the server's
    /// answer: the answer's records.
    fn answered(i: &mut Interpreter, request: &str, answer: &str) -> Vec<Record> {
        feed(i, C2S, request);
        feed(i, S2C, answer)
    }

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    #[test]
    fn a_tool_call_is_paired_with_its_result() {
        let mut i = interpreter(false);
        assert!(feed(&mut i, C2S, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#).is_empty());
        let r = feed(
            &mut i,
            S2C,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Echo: hi"}]}}"#,
        );
        assert_eq!(r.len(), 1);
        let e = &r[0].event;
        assert_eq!(
            (e.kind, e.operation.as_str(), e.outcome),
            (EventKind::ToolExecution, "echo", Outcome::Success)
        );
        assert_eq!(payload(&r[0]).input, Some(json!({"message": "hi"})));
        assert_eq!(e.request_id.as_deref(), Some("1"));
        assert_eq!(e.actor.user_id.as_deref(), Some("alice"));
    }

    #[test]
    fn is_error_results_and_jsonrpc_errors_have_their_outcomes() {
        let mut i = interpreter(false);
        let r = answered(
            &mut i,
            r#"{"id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"id":1,"result":{"isError":true,"content":[{"type":"text","text":"boom"}]}}"#,
        );
        assert_eq!(r[0].event.outcome, Outcome::ToolError);
        assert_eq!(payload(&r[0]).error_message.as_deref(), Some("boom"));
        let r = answered(
            &mut i,
            r#"{"id":2,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"id":2,"error":{"code":-32602,"message":"bad params"}}"#,
        );
        assert_eq!(
            (r[0].event.outcome, r[0].event.error_code),
            (Outcome::ProtocolError, Some(-32602))
        );
    }

    #[test]
    fn sync_mode_records_an_intent_before_forwarding_and_links_the_outcome() {
        let mut i = interpreter(true);
        let r = feed(
            &mut i,
            C2S,
            r#"{"id":"x","method":"resources/read","params":{"uri":"file:///a"}}"#,
        );
        assert_eq!(r.len(), 1);
        assert!(r[0].before_forwarding);
        assert_eq!(r[0].event.outcome, Outcome::Pending);
        let intent = r[0].event.id;
        let done = feed(&mut i, S2C, r#"{"id":"x","result":{"contents":[]}}"#);
        assert_eq!(done[0].event.completes, Some(intent));
        assert_eq!(done[0].event.correlation_id, r[0].event.correlation_id);
        // List methods are not held.
        assert!(feed(&mut i, C2S, r#"{"id":3,"method":"tools/list"}"#).is_empty());
    }

    #[test]
    fn a_discovery_probe_a_legacy_server_turns_down_is_a_success_that_found_a_legacy_server() {
        let mut i = interpreter(false);
        for (id, code) in [(1, -32601), (2, -32022)] {
            let r = answered(
                &mut i,
                &format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"server/discover","params":{{}}}}"#
                ),
                &format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":"no"}}}}"#
                ),
            );
            assert_eq!(r.len(), 1, "{r:?}");
            let e = &r[0].event;
            assert_eq!(
                (e.operation.as_str(), e.outcome),
                ("server/discover", Outcome::Success)
            );
            assert_eq!(e.error_code, None, "not an error to error queries");
            let details = payload(&r[0]).details.clone().unwrap_or_default();
            assert_eq!(details["discovery"], "legacy");
            assert_eq!(details["error_code"], code);
            assert_eq!(details["error_message"], "no");
        }
        // Any other error is one.
        let r = answered(
            &mut i,
            r#"{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"internal"}}"#,
        );
        assert_eq!(r[0].event.outcome, Outcome::ProtocolError);
    }

    #[test]
    fn server_to_client_requests_are_paired_too() {
        let mut i = interpreter(false);
        feed(
            &mut i,
            S2C,
            r#"{"id":0,"method":"sampling/createMessage","params":{"messages":[]}}"#,
        );
        let r = feed(
            &mut i,
            C2S,
            r#"{"id":0,"result":{"role":"assistant","content":{"type":"text","text":"ok"}}}"#,
        );
        assert_eq!(r[0].event.kind, EventKind::Sampling);
    }

    #[test]
    fn cancellation_and_silence_have_their_outcomes() {
        let mut i = interpreter(false);
        feed(
            &mut i,
            C2S,
            r#"{"id":5,"method":"tools/call","params":{"name":"slow"}}"#,
        );
        let r = feed(
            &mut i,
            C2S,
            r#"{"method":"notifications/cancelled","params":{"requestId":5,"reason":"user"}}"#,
        );
        assert_eq!(r[0].event.outcome, Outcome::Cancelled);
        assert!(
            feed(&mut i, S2C, r#"{"id":5,"result":{}}"#).is_empty(),
            "a late answer is not an anomaly"
        );
        feed(
            &mut i,
            C2S,
            r#"{"id":6,"method":"tools/call","params":{"name":"never"}}"#,
        );
        let end = i.finish("client closed", Some(0), Instant::now());
        assert_eq!(end[0].event.outcome, Outcome::Incomplete);
        assert_eq!(end[1].event.operation, "session_end");
    }

    #[test]
    fn batches_record_every_element_and_junk_is_an_anomaly() {
        let mut i = interpreter(false);
        let r = answered(
            &mut i,
            r#"[{"id":1,"method":"tools/call","params":{"name":"a"}},{"id":2,"method":"tools/call","params":{"name":"b"}}]"#,
            r#"[{"id":1,"result":{}},{"id":2,"result":{}}]"#,
        );
        assert_eq!(r.len(), 2);
        let junk = feed(&mut i, C2S, "this is not json");
        assert_eq!(
            (junk[0].event.kind, junk[0].event.outcome),
            (EventKind::Protocol, Outcome::ProtocolError)
        );
        let unknown = feed(&mut i, S2C, r#"{"id":99,"result":{}}"#);
        assert_eq!(unknown[0].event.operation, "malformed_frame");
    }

    #[test]
    fn an_input_required_retry_continues_the_same_operation() {
        let mut i = interpreter(false);
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}"#;
        let start = feed(
            &mut i,
            C2S,
            &format!(
                r#"{{"id":1,"method":"tools/call","params":{{"name":"t","arguments":{{}},{meta}}}}}"#
            ),
        );
        assert_eq!(start[0].event.operation, "session_start");
        let step = feed(
            &mut i,
            S2C,
            r#"{"id":1,"result":{"resultType":"input_required","inputRequests":{}}}"#,
        );
        assert_eq!(step[0].event.outcome, Outcome::Pending);
        let done = answered(
            &mut i,
            &format!(
                r#"{{"id":2,"method":"tools/call","params":{{"name":"t","arguments":{{}},"inputResponses":{{"k":1}},{meta}}}}}"#
            ),
            r#"{"id":2,"result":{"resultType":"complete","content":[]}}"#,
        );
        assert_eq!(done[0].event.completes, Some(step[0].event.id));
        assert_eq!(done[0].event.correlation_id, step[0].event.correlation_id);
        assert_eq!(
            done[0].event.target.protocol_version.as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(done[0].event.actor.client_name.as_deref(), Some("c"));
    }

    #[test]
    fn a_value_fits_the_capture_limit_up_to_its_last_byte() {
        let v = json!({"a": "bc"}); // {"a":"bc"}: 10 bytes
        assert_eq!(v.to_string().len(), 10);
        assert!(fits(&v, 10));
        assert!(!fits(&v, 9));
        assert!(!fits(&json!("x".repeat(100_000)), 64));
    }

    #[test]
    fn large_payloads_are_capped_with_size_and_hash() {
        let mut i = interpreter(false);
        let big = "x".repeat(5000);
        let r = answered(
            &mut i,
            &format!(
                r#"{{"id":1,"method":"tools/call","params":{{"name":"t","arguments":{{"d":"{big}"}}}}}}"#
            ),
            r#"{"id":1,"result":{}}"#,
        );
        let input = payload(&r[0]).input.clone().unwrap();
        assert_eq!(input["truncated"], true);
        assert!(input["size"].as_u64().unwrap() > 5000);
        assert_eq!(input["sha256"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn refused_requests_are_recorded_as_their_operations_with_the_outcome() {
        let mut i = interpreter(true);
        let r = i.refused(
            C2S,
            br#"[{"id":1,"method":"tools/call","params":{"name":"echo"}},{"method":"notifications/initialized"}]"#,
            Outcome::Denied,
            "invalid bearer token: ExpiredSignature",
        );
        assert_eq!(r.len(), 1, "the notification is no operation");
        let e = &r[0].event;
        assert_eq!(
            (e.kind, e.operation.as_str(), e.outcome),
            (EventKind::ToolExecution, "echo", Outcome::Denied)
        );
        assert!(!r[0].before_forwarding);
        assert_eq!(
            e.payload.error_message.as_deref(),
            Some("invalid bearer token: ExpiredSignature")
        );
        // Nothing is left waiting: a later answer to that id is an anomaly, not an outcome.
        let late = feed(&mut i, S2C, r#"{"id":1,"result":{}}"#);
        assert_eq!(late[0].event.operation, "malformed_frame");
        let junk = i.refused(C2S, b"{nope", Outcome::Denied, "no bearer token");
        assert_eq!(junk[0].event.operation, "refused_frame");
        assert_eq!(junk[0].event.outcome, Outcome::Denied);
    }

    #[test]
    fn abandoned_requests_get_the_outcome_and_answered_ones_are_untouched() {
        let mut i = interpreter(false);
        let body = r#"[{"id":1,"method":"tools/call","params":{"name":"a"}},{"id":2,"method":"tools/call","params":{"name":"b"}}]"#;
        feed(&mut i, C2S, body);
        assert_eq!(feed(&mut i, S2C, r#"{"id":1,"result":{}}"#).len(), 1);
        let r = i.abandon(
            C2S,
            body.as_bytes(),
            Outcome::Incomplete,
            "the client disconnected",
            Instant::now(),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].event.operation.as_str(), r[0].event.outcome),
            ("b", Outcome::Incomplete)
        );
        assert!(r[0].event.duration_us.is_some());
    }

    #[test]
    fn an_exchange_interpreter_records_no_session_events_until_it_becomes_a_session() {
        let config = http_config();
        let mut i = Interpreter::exchange(config.clone());
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
        let first = feed(
            &mut i,
            C2S,
            &format!(r#"{{"id":1,"method":"tools/call","params":{{"name":"t",{meta}}}}}"#),
        );
        assert!(first.is_empty(), "no stateless session_start per exchange");
        let end = i.finish("the exchange ended", None, Instant::now());
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].event.outcome, Outcome::Incomplete);
        let mut j = Interpreter::exchange(config);
        assert!(!j.is_session());
        j.become_session();
        let end = j.finish(
            "the client ended the session (DELETE)",
            None,
            Instant::now(),
        );
        assert_eq!(end[0].event.operation, "session_end");
    }

    #[test]
    fn a_retry_in_another_exchange_is_linked_to_its_step_by_the_echoed_request_state() {
        let shared = Continuations::default();
        let config = http_config();
        let mut first = Interpreter::exchange(config.clone()).with_continuations(shared.clone());
        let step = answered(
            &mut first,
            r#"{"id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"id":1,"result":{"resultType":"input_required","requestState":"opaque-1"}}"#,
        );
        assert_eq!(shared.len(), 1);
        let mut second = Interpreter::exchange(config.clone()).with_continuations(shared.clone());
        let done = answered(
            &mut second,
            r#"{"id":1,"method":"tools/call","params":{"name":"t","inputResponses":{},"requestState":"opaque-1"}}"#,
            r#"{"id":1,"result":{"content":[]}}"#,
        );
        assert_eq!(done[0].event.completes, Some(step[0].event.id));
        assert_eq!(done[0].event.correlation_id, step[0].event.correlation_id);
        assert!(shared.is_empty(), "a step is linked once");
        // A state nobody gave links nothing.
        let mut third = Interpreter::exchange(config).with_continuations(shared);
        let alone = answered(
            &mut third,
            r#"{"id":1,"method":"tools/call","params":{"name":"t","inputResponses":{},"requestState":"forged"}}"#,
            r#"{"id":1,"result":{"content":[]}}"#,
        );
        assert_eq!(alone[0].event.completes, None);
    }
}
