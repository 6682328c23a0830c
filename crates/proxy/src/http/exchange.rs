//! One HTTP exchange through the proxy: who sent it, which interpreter sees it, and how its
//! records are made (stamped with the HTTP context) and written.

use std::sync::Arc;
use std::time::Instant;

use mcp_audit_core::Actor;
use mcp_audit_store::RecordError;

use super::connection::Connection;
use super::server::App;
use super::sessions::{Shared, lock};
use crate::interpreter::{Direction, Record};
use crate::tap::Tap;

/// The context of one request: the caller, the MCP session, the interpreter.
pub struct Exchange {
    pub app: Arc<App>,
    /// The caller as identified from the request (user, team, e-mail, IP, user agent).
    pub actor: Actor,
    /// The `Mcp-Session-Id`, from the request or from the answer that opened the session.
    pub mcp_session: Option<String>,
    pub interpreter: Shared,
    /// The request names a session the proxy does not follow (yet).
    pub unfollowed: bool,
    /// Where the request goes: the upstream endpoint, or a legacy SSE session's message URL.
    pub url: reqwest::Url,
    /// The session map's key when it is not the `Mcp-Session-Id` (legacy HTTP+SSE sessions,
    /// keyed by their message endpoint).
    pub session_key: Option<String>,
    /// The client connection the request came on: held until the exchange is recorded, so that
    /// the session it carries (see `connection`) ends only after it.
    pub connection: Option<Arc<Connection>>,
    /// The caller's correlation and trace ids.
    pub trace: Trace,
}

/// What the caller says links this request to its own records: `X-Correlation-ID`, and the
/// trace id of a W3C `traceparent`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
}

/// The longest `X-Correlation-ID` taken as is; a longer one is not recorded (a header is no
/// place to store data in the trail).
const MAX_CORRELATION_ID: usize = 256;

impl Trace {
    pub fn of(headers: &axum::http::HeaderMap) -> Trace {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        Trace {
            correlation_id: text("x-correlation-id")
                .filter(|id| !id.is_empty() && id.len() <= MAX_CORRELATION_ID)
                .map(str::to_string),
            trace_id: text("traceparent").and_then(trace_id),
        }
    }

    fn apply(&self, event: &mut mcp_audit_core::AuditEvent) {
        if let Some(id) = &self.correlation_id {
            event.correlation_id = Some(id.clone());
        }
        if let Some(id) = &self.trace_id {
            event.trace_id = Some(id.clone());
        }
    }
}

/// The trace id of a `traceparent` (W3C Trace Context, version 00:
/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), lowercase; `None` when it is
/// malformed or the all-zero invalid id. A later version may append fields after the flags.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut fields = traceparent.split('-');
    let (version, trace, parent, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && (version != "00" || fields.next().is_none())
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_string())
}

impl Exchange {
    /// This exchange's key in the session map, if it belongs to a session.
    pub fn key(&self) -> Option<&str> {
        self.session_key.as_deref().or(self.mcp_session.as_deref())
    }

    /// Interprets one frame (a POST body, a JSON answer, one SSE event's data).
    pub fn interpret(&self, direction: Direction, frame: &[u8]) -> Vec<Record> {
        lock(&self.interpreter).frame(direction, frame, Instant::now())
    }

    /// Puts the HTTP context into a record: the caller (the interpreter keeps the MCP client's
    /// name and version) and the HTTP session id.
    pub fn stamp(&self, mut r: Record) -> Record {
        self.stamp_mut(&mut r);
        r
    }

    /// Whether this exchange's interpreter is the session of its connection.
    pub fn in_connection_session(&self) -> bool {
        let session = self
            .connection
            .as_ref()
            .and_then(|c| c.session(&self.actor));
        session.is_some_and(|s| Arc::ptr_eq(&s, &self.interpreter))
    }

    /// Stamps a record with the HTTP context in place (see [`Exchange::stamp`]).
    pub fn stamp_mut(&self, r: &mut Record) {
        stamp(r, &self.actor, self.mcp_session.as_deref());
        self.trace.apply(&mut r.event);
    }

    /// Writes records, stamped: those that must be durable before their frame moves on,
    /// durably (all at once, so they share one group commit), the others queued. Errors of
    /// queued records are counted by the recorder; only a failed intent is returned.
    pub async fn record(&self, records: Vec<Record>) -> Result<(), RecordError> {
        let stamp = |r: &mut Record| self.stamp_mut(r);
        self.app.tap.submit(records, &stamp).await.durable().await
    }
}

/// Closes an exchange's open requests as `incomplete` if it is dropped before
/// [`ClientLeaving::disarm`]: hyper drops the handler of a client that closed its connection,
/// and no code after the handler's pending `await` runs then, so without this the requests of a
/// client that gave up waiting would leave no outcome at all.
pub struct ClientLeaving {
    interpreter: Shared,
    tap: Tap,
    actor: Actor,
    mcp_session: Option<String>,
    trace: Trace,
    body: bytes::Bytes,
    armed: bool,
}

impl ClientLeaving {
    /// The exchange ran to its end: its own paths recorded what became of its requests.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ClientLeaving {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut records = {
            let mut i = lock(&self.interpreter);
            let mut records = i.abandon(
                Direction::ClientToServer,
                &self.body,
                mcp_audit_core::Outcome::Incomplete,
                "the client left before the upstream answered",
                Instant::now(),
            );
            if !i.is_session() {
                records.extend(i.finish("the client left", None, Instant::now()));
            }
            records
        };
        for r in &mut records {
            stamp(r, &self.actor, self.mcp_session.as_deref());
            self.trace.apply(&mut r.event);
        }
        if records.is_empty() {
            return;
        }
        // Dropped inside the runtime (a handler future): queue from a task of its own.
        let tap = self.tap.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for r in records {
                    queue(&tap, r).await;
                }
            });
        }
    }
}

impl Exchange {
    /// A guard that records this exchange's requests in `body` as `incomplete` if the client
    /// leaves (the handler is dropped) before it is disarmed.
    pub fn on_client_leaving(&self, body: bytes::Bytes) -> ClientLeaving {
        ClientLeaving {
            interpreter: self.interpreter.clone(),
            tap: self.app.tap.clone(),
            actor: self.actor.clone(),
            mcp_session: self.mcp_session.clone(),
            trace: self.trace.clone(),
            body,
            armed: true,
        }
    }
}

/// Sets the HTTP context of a record.
pub fn stamp(r: &mut Record, actor: &Actor, mcp_session: Option<&str>) {
    let a = &mut r.event.actor;
    a.user_id = actor.user_id.clone();
    a.team = actor.team.clone();
    a.auth_method = actor.auth_method.clone();
    a.email = actor.email.clone();
    a.client_ip = actor.client_ip.clone();
    a.user_agent = actor.user_agent.clone();
    if mcp_session.is_some() {
        r.event.mcp_session_id = mcp_session.map(str::to_string);
    }
}

/// Queues a record without holding the traffic (a full queue still blocks: backpressure).
pub async fn queue(tap: &Tap, r: Record) {
    tap.queue_one(r).await;
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn the_trace_id_of_a_valid_traceparent_and_none_of_a_bad_one() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Some(id)
        );
        // A later version may add fields.
        assert_eq!(
            trace_id(&format!("01-{id}-00f067aa0ba902b7-01-more")).as_deref(),
            Some(id)
        );
        for bad in [
            String::new(),
            format!("00-{id}-00f067aa0ba902b7"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{id}-0000000000000000-01"),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{id}-00f067aa0ba902b7-01-extra"),
            format!("00-{id}x-00f067aa0ba902b7-01"),
        ] {
            assert_eq!(trace_id(&bad), None, "{bad}");
        }
    }
}
