//! Relaying the upstream's answer to the client as it arrives, interpreting a copy.
//!
//! One task per answer reads the upstream body chunk by chunk and hands each chunk to the
//! client through a small bounded channel (a slow client slows the upstream read, nothing
//! piles up). A JSON answer is interpreted once complete; an event stream event by event. The
//! task ends, and records why, when the upstream ends or breaks, when it stalls longer than the
//! idle limit (POST answers only: a GET stream may rightly be silent), when the client goes
//! away, or when the proxy stops; dropping the task frees the upstream connection. The head
//! of a POST's answer waits a few milliseconds for the first chunks (`server`): most answers
//! then go to the client in one write, whole when they are complete by then.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use super::exchange::{Exchange, queue, stamp};
use super::sessions::lock;
use super::sse::SseParser;
use super::stopped;
use crate::interpreter::{Direction, Record};
use crate::tap::{MAX_FRAME, Oversize};
use mcp_audit_core::Outcome;

/// How the answer's body is read for the interpreter.
pub enum BodyKind {
    Json,
    EventStream,
    /// Anything else (an empty 202, an HTML error page): passed through, not interpreted.
    Opaque,
}

impl BodyKind {
    pub fn of(headers: &HeaderMap) -> BodyKind {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("application/json") => BodyKind::Json,
            Some("text/event-stream") => BodyKind::EventStream,
            _ => BodyKind::Opaque,
        }
    }
}

/// The copy being read.
enum Copy {
    Json {
        buf: Vec<u8>,
        /// Past `MAX_FRAME`: hash, size and first bytes instead of the bytes.
        over: Option<Oversize>,
    },
    Sse(SseParser),
    None,
}

pub type Chunk = Result<Bytes, std::io::Error>;

/// The rest of an upstream answer's body, as it arrives.
pub type Upstream = futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>;

/// What the client already has of an answer, and how the rest goes to it.
pub struct Relayed {
    /// Chunks already on their way to the client: interpreted first.
    pub sent: Vec<Bytes>,
    /// Where the rest goes; `None` when the client already has the whole answer.
    pub tx: Option<mpsc::Sender<Chunk>>,
}

/// Relays the answer (`status`, the rest of its body in `stream`) to the client. `request` is
/// the request body, to close its operations when the answer never comes; `ended` is set when
/// this exchange ends the session.
#[allow(clippy::too_many_arguments)]
pub async fn relay(
    mut exchange: Exchange,
    status: StatusCode,
    mut stream: Upstream,
    kind: BodyKind,
    idle: Option<Duration>,
    request: Bytes,
    relayed: Relayed,
    ended: Option<&'static str>,
) {
    let Relayed { sent, tx } = relayed;
    let mut copy = match kind {
        BodyKind::Json => Copy::Json {
            buf: Vec::new(),
            over: None,
        },
        BodyKind::EventStream => Copy::Sse(SseParser::new(MAX_FRAME)),
        BodyKind::Opaque => Copy::None,
    };
    let legacy_before = exchange.session_key.is_some();
    for chunk in &sent {
        let records = observe(&mut exchange, &mut copy, chunk);
        exchange.record(records).await.ok();
    }
    let mut stopping = exchange.app.stopping.clone();
    let idle = idle.unwrap_or(Duration::MAX);
    // A client that has the whole answer already: nothing more to read.
    let stop = if tx.is_none() {
        None
    } else {
        loop {
            let next = tokio::select! {
                biased;
                () = client_gone(&tx) => break Some(("client_disconnected", "the client disconnected before the answer ended")),
                () = stopped(&mut stopping) => break Some(("proxy_stopped", "the proxy stopped before the answer ended")),
                next = tokio::time::timeout(idle, stream.next()) => next,
            };
            match next {
                Err(_) => {
                    break Some((
                        "upstream_stalled",
                        "the upstream stalled: no data within the idle limit",
                    ));
                }
                Ok(None) => break None,
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "the upstream's answer broke off");
                    break Some(("upstream_broken", "the upstream's answer broke off"));
                }
                Ok(Some(Ok(chunk))) => {
                    let sent = match &tx {
                        Some(tx) => tx.send(Ok(chunk.clone())).await.is_ok(),
                        None => true,
                    };
                    let records = observe(&mut exchange, &mut copy, &chunk);
                    exchange.record(records).await.ok();
                    if !sent {
                        break Some((
                            "client_disconnected",
                            "the client disconnected before the answer ended",
                        ));
                    }
                }
            }
        }
    };
    // A legacy HTTP+SSE session lives as long as its stream.
    let ended = if !legacy_before && exchange.session_key.is_some() {
        Some("the SSE stream ended")
    } else {
        ended
    };
    let mut records = Vec::new();
    match stop {
        None => {
            // Complete: the client has everything once the channel closes.
            drop(tx);
            let (buf, over) = match copy {
                Copy::Json { buf, over } => (buf, over),
                _ => (Vec::new(), None),
            };
            return answered(exchange, status, &buf, over, &request, ended).await;
        }
        Some((operation, problem)) => {
            if operation == "upstream_stalled" || operation == "upstream_broken" {
                // The client must not take a cut answer for a whole one.
                if let Some(tx) = &tx {
                    let _ = tx.try_send(Err(std::io::Error::other(problem)));
                }
            }
            drop(tx);
            let mut i = lock(&exchange.interpreter);
            records.extend(i.abandon(
                Direction::ClientToServer,
                &request,
                Outcome::Incomplete,
                problem,
                Instant::now(),
            ));
            // A client closing a stream that carried no request of its (a GET stream), or the
            // proxy ending it, loses nothing: only a fault of the upstream is recorded then.
            let upstream_fault = matches!(operation, "upstream_stalled" | "upstream_broken");
            if upstream_fault || !records.is_empty() {
                records.push(i.transport_fault(
                operation,
                problem,
                    json!({"status": status.as_u16(), "idle_limit_s": (idle != Duration::MAX).then_some(idle.as_secs())}),
                ));
            }
        }
    }
    close(&exchange, records, ended, status).await;
}

/// Completes when the client goes away (never without a channel to it).
async fn client_gone(tx: &Option<mpsc::Sender<Chunk>>) {
    match tx {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

/// Records a complete answer: a JSON body (`json`, or past the limit `over`) is interpreted;
/// an HTTP error fails the request's operations with the upstream's words.
pub async fn answered(
    exchange: Exchange,
    status: StatusCode,
    json: &[u8],
    over: Option<Oversize>,
    request: &[u8],
    ended: Option<&'static str>,
) {
    let mut records = Vec::new();
    if status.is_success() {
        records.extend(json_end(&exchange, json, over));
    } else {
        // An HTTP error answers the request as a whole (its JSON-RPC error, if any, has a
        // null id): its operations fail with the upstream's words.
        let said = String::from_utf8_lossy(&json[..json.len().min(256)]);
        let reason = format!("the upstream answered HTTP {}: {said}", status.as_u16());
        records.extend(lock(&exchange.interpreter).abandon(
            Direction::ClientToServer,
            request,
            Outcome::ProtocolError,
            &reason,
            Instant::now(),
        ));
    }
    close(&exchange, records, ended, status).await;
}

/// Writes the last records of an exchange; a stateless exchange's leftovers are incomplete.
async fn close(
    exchange: &Exchange,
    mut records: Vec<Record>,
    ended: Option<&'static str>,
    status: StatusCode,
) {
    {
        let mut i = lock(&exchange.interpreter);
        if !i.is_session() {
            records.extend(i.finish("the exchange ended", None, Instant::now()));
        }
    }
    exchange.record(records).await.ok();
    if let Some(reason) = ended {
        end_session(exchange, reason, status).await;
    }
}

/// Interprets what a chunk completes.
fn observe(exchange: &mut Exchange, copy: &mut Copy, chunk: &[u8]) -> Vec<Record> {
    match copy {
        Copy::None => Vec::new(),
        Copy::Json { buf, over } => {
            if let Some(frame) = over {
                frame.update(chunk);
            } else if buf.len() + chunk.len() > MAX_FRAME {
                let mut frame = Oversize::start(buf, true);
                frame.update(chunk);
                *buf = Vec::new();
                *over = Some(frame);
            } else {
                buf.extend_from_slice(chunk);
            }
            Vec::new()
        }
        Copy::Sse(parser) => {
            let fed = parser.feed(chunk);
            if let Some(key) = exchange.key() {
                exchange.app.sessions.touch(key);
            }
            let mut records = Vec::new();
            for event in fed.events {
                if event.event == "message" && !event.data.is_empty() {
                    records.extend(exchange.interpret(Direction::ServerToClient, &event.data));
                } else if event.event == "endpoint" && exchange.session_key.is_none() {
                    legacy_opened(exchange, &event.data);
                }
            }
            if let Some(seen) = fed.oversized {
                records.push(lock(&exchange.interpreter).oversize(
                    Direction::ServerToClient,
                    &seen.head,
                    seen.size,
                    seen.sha256,
                ));
            }
            records
        }
    }
}

fn json_end(exchange: &Exchange, buf: &[u8], over: Option<Oversize>) -> Vec<Record> {
    match over {
        Some(frame) => {
            let seen = frame.finish(&[]);
            vec![lock(&exchange.interpreter).oversize(
                Direction::ServerToClient,
                &seen.head,
                seen.size,
                seen.sha256,
            )]
        }
        None if buf.is_empty() => Vec::new(),
        None => exchange.interpret(Direction::ServerToClient, buf),
    }
}

/// Records the end of the exchange's session and stops following it.
async fn end_session(exchange: &Exchange, reason: &str, status: StatusCode) {
    let Some(key) = exchange.key() else {
        return;
    };
    let Some(interpreter) = exchange.app.sessions.remove(key) else {
        return;
    };
    let records = lock(&interpreter).finish(reason, None, Instant::now());
    tracing::debug!(session = %key, status = status.as_u16(), "session ended");
    for mut r in records {
        stamp(&mut r, &exchange.actor, exchange.mcp_session.as_deref());
        queue(&exchange.app.tap, r).await;
    }
}

/// The legacy HTTP+SSE transport (2024-11-05): the server's stream announces, in an `endpoint`
/// event, the URL the client must POST its messages to. The client resolves it against the
/// stream's URL, which is the proxy's, so the POSTs come to the proxy on the same path: this
/// stream's interpreter becomes that session's, keyed by the path. An endpoint on another
/// origin would take the client around the proxy: it is recorded as an anomaly.
fn legacy_opened(exchange: &mut Exchange, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let url = match exchange.app.config.upstream.join(text.trim()) {
        Ok(url) if url.origin() == exchange.app.config.upstream.origin() => url,
        _ => {
            let r = lock(&exchange.interpreter).transport_fault(
                "legacy_endpoint_elsewhere",
                "the SSE stream announced a message endpoint the proxy can not stand in front of",
                json!({"endpoint": text}),
            );
            let r = exchange.stamp(r);
            let tap = exchange.app.tap.clone();
            exchange
                .app
                .tasks
                .spawn(async move { queue(&tap, r).await });
            return;
        }
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let key = super::server::legacy_key(&target);
    {
        let mut i = lock(&exchange.interpreter);
        i.become_session();
        i.set_transport("sse");
    }
    exchange
        .app
        .sessions
        .insert(&key, exchange.interpreter.clone());
    exchange.mcp_session = Some(super::server::legacy_session_id(&url));
    exchange.session_key = Some(key);
}
