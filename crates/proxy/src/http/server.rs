//! The HTTP side facing the clients: one route, the upstream's MCP endpoint path, for POST,
//! GET and DELETE; every request is identified, checked against the limits, interpreted,
//! and forwarded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use mcp_audit_core::{Actor, EventId, Outcome};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use super::connection::Connection;
use super::exchange::{Exchange, Trace};
use super::forward;
use super::identity::Verdict;
use super::relay::{BodyKind, Chunk, Relayed, Upstream, answered, relay};
use super::sessions::{Sessions, Shared, lock};
use super::{HttpConfig, stopped};
use crate::interpreter::{Continuations, Direction, Interpreter, Record, SessionConfig};
use crate::tap::{MAX_FRAME, Refusal, Tap};

/// What every request handler shares.
pub struct App {
    pub config: HttpConfig,
    pub client: reqwest::Client,
    pub sessions: Sessions,
    pub tap: Tap,
    /// The `input_required` steps of stateless exchanges, waiting for their retries.
    pub continuations: Continuations,
    /// Becomes `true` when the proxy stops: open streams end.
    pub stopping: watch::Receiver<bool>,
    /// The work that goes on after an answer has gone out (interpreting and recording it,
    /// relaying a stream): the proxy waits for it before it stops, so that a call the client
    /// saw answered is never missing from the trail.
    pub tasks: TaskTracker,
}

impl App {
    fn session_config(&self) -> SessionConfig {
        SessionConfig {
            session_id: EventId::new().to_string(),
            server_name: self.config.server_name.clone(),
            actor: Default::default(),
            transport: "streamable_http",
            capture_limit: self.config.capture_limit,
            record_intents: self.config.record_intents,
        }
    }

    /// The interpreter for a request: its session's (by `Mcp-Session-Id`, or without one the
    /// session of its connection, see `connection`), or a fresh one for a request outside
    /// any session (the initialize that may open one, or a stateless exchange). A session id
    /// the proxy does not follow yet (it started before the proxy did, or it is made up) gets
    /// a fresh session interpreter that is followed only once the upstream accepts the request,
    /// so that unknown ids (from anyone, even unauthenticated) never fill the session map.
    fn interpreter(
        &self,
        mcp_session: Option<&str>,
        connection: Option<&Connection>,
        caller: &Actor,
    ) -> (Shared, bool) {
        let connection_session = connection.and_then(|c| c.session(caller));
        if let (None, Some(shared)) = (mcp_session, connection_session) {
            return (shared, false);
        }
        self.fresh_interpreter(mcp_session)
    }

    /// A new interpreter: of a session (`mcp_session` given) or of one exchange.
    fn fresh_interpreter(&self, mcp_session: Option<&str>) -> (Shared, bool) {
        match mcp_session {
            Some(id) => match self.sessions.get(id) {
                Some(shared) => (shared, false),
                None => (
                    Arc::new(Mutex::new(Interpreter::new(self.session_config()))),
                    true,
                ),
            },
            None => (
                Arc::new(Mutex::new(
                    Interpreter::exchange(self.session_config())
                        .with_continuations(self.continuations.clone()),
                )),
                false,
            ),
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session id of a legacy message URL: its `sessionId` parameter, else the whole URL.
pub fn legacy_session_id(url: &reqwest::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "sessionId" || k == "session_id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| url.to_string())
}

/// The upstream URL a request goes to: the configured one, with the client's query string
/// after any query of its own. A transparent gateway passes the query on: servers read API
/// keys, tenants or feature switches from it, and dropping it would change what they do.
fn with_client_query(upstream: &reqwest::Url, client_query: Option<&str>) -> reqwest::Url {
    let mut url = upstream.clone();
    match (upstream.query(), client_query) {
        (_, None | Some("")) => {}
        (None | Some(""), Some(client)) => url.set_query(Some(client)),
        (Some(own), Some(client)) => url.set_query(Some(&format!("{own}&{client}"))),
    }
    url
}

/// Whether a POST body is an `initialize` request (the one request that opens a session).
fn opens_session(body: &[u8]) -> bool {
    const METHOD: &[u8] = b"\"initialize\"";
    // Most bodies are not: they are not parsed again.
    if !body.windows(METHOD.len()).any(|w| w == METHOD) {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("method").and_then(serde_json::Value::as_str) == Some("initialize"))
}

/// A JSON-RPC error answer made by the proxy itself (not by the upstream).
fn own_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32000, "message": message},
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The MCP endpoint (Streamable HTTP; or the SSE stream of the legacy HTTP+SSE transport).
pub async fn endpoint(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    handle(app, peer, request, None).await
}

/// Any other path: the message endpoint of a legacy HTTP+SSE session that an SSE stream
/// through the proxy announced, else 404 (nothing unaudited passes).
pub async fn legacy_message(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string());
    let Some(target) = target else {
        return own_error(StatusCode::NOT_FOUND, "not an MCP endpoint of this proxy");
    };
    let key = legacy_key(&target);
    match (app.sessions.get(&key), app.config.upstream.join(&target)) {
        (Some(interpreter), Ok(url)) => {
            handle(app, peer, request, Some((key, interpreter, url))).await
        }
        _ => own_error(StatusCode::NOT_FOUND, "not an MCP endpoint of this proxy"),
    }
}

/// The session-map key of a legacy session's message endpoint (`path?query`).
pub fn legacy_key(path_and_query: &str) -> String {
    format!("sse:{path_and_query}")
}

/// One request: identified, checked, interpreted, forwarded. `legacy` is the session of a
/// legacy message endpoint (its key, interpreter and upstream URL).
async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    request: Request,
    legacy: Option<(String, Shared, reqwest::Url)>,
) -> Response {
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<Arc<Connection>>().cloned();
    let trace = Trace::of(&parts.headers);
    let (actor, denial) = match app.config.identity.identify(peer, &parts.headers) {
        Verdict::Allowed(actor) => (actor, None),
        Verdict::Denied { actor, reason } => (actor, Some(reason)),
    };
    let mut exchange = match legacy {
        Some((key, interpreter, url)) => Exchange {
            interpreter,
            unfollowed: false,
            app: app.clone(),
            actor,
            mcp_session: Some(legacy_session_id(&url)),
            url,
            session_key: Some(key),
            connection: connection.clone(),
            trace: trace.clone(),
        },
        None => {
            let mcp_session = header_str(&parts.headers, "mcp-session-id").map(str::to_string);
            let (interpreter, unfollowed) =
                app.interpreter(mcp_session.as_deref(), connection.as_deref(), &actor);
            Exchange {
                interpreter,
                unfollowed,
                app: app.clone(),
                actor,
                mcp_session,
                url: with_client_query(&app.config.upstream, parts.uri.query()),
                session_key: None,
                connection: connection.clone(),
                trace: trace.clone(),
            }
        }
    };
    let limit = app.config.body_limit;

    // The body, within the limit.
    let declared = header_str(&parts.headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(&exchange, declared).await;
    }
    let body_timeout = app.config.body_timeout;
    let read = tokio::time::timeout(body_timeout, Limited::new(body, limit).collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(&exchange, declared).await;
        }
        Ok(Err(e)) => {
            let problem = format!("the request body could not be read: {e}");
            return unread(&exchange, &parts.method, &problem, StatusCode::BAD_REQUEST).await;
        }
        Err(_) => {
            // A client that sends its head and then stalls holds nothing for long.
            let problem = format!(
                "the request body did not arrive within {} s",
                body_timeout.as_secs_f64()
            );
            return unread(
                &exchange,
                &parts.method,
                &problem,
                StatusCode::REQUEST_TIMEOUT,
            )
            .await;
        }
    };

    if let Some(reason) = denial {
        let stamp = |r: &mut Record| exchange.stamp_mut(r);
        // Answered 401, not with the refusal: the client is to authenticate, not to retry.
        let _ = (app.tap)
            .refuse(&exchange.interpreter, &body, &reason, &stamp)
            .await;
        let challenge = if header_str(&parts.headers, "authorization").is_some() {
            r#"Bearer error="invalid_token""#
        } else {
            "Bearer"
        };
        let mut response = own_error(StatusCode::UNAUTHORIZED, "unauthorized");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(challenge),
        );
        return response;
    }

    if exchange.mcp_session.is_none() && exchange.in_connection_session() && opens_session(&body) {
        // The client initializes again on a connection that carries a session: a new one.
        exchange.interpreter = app.fresh_interpreter(None).0;
    }

    if parts.method == Method::POST {
        let json = header_str(&parts.headers, "content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            let r = lock(&exchange.interpreter).transport_fault(
                "unsupported_media_type",
                "a POST to the MCP endpoint must be application/json",
                json!({
                    "content_type": header_str(&parts.headers, "content-type"),
                    "size": body.len(),
                }),
            );
            let _ = exchange.record(vec![r]).await;
            return own_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the MCP endpoint takes application/json",
            );
        }
        let stamp = |r: &mut Record| exchange.stamp_mut(r);
        let tap = &app.tap;
        let held = match tap.admit(&exchange.interpreter, &body, None, &stamp).await {
            crate::tap::Verdict::Forward(held) => held,
            // `sync`: what the proxy can not interpret does not reach the server.
            crate::tap::Verdict::Refuse(refusal) => {
                return refused(StatusCode::BAD_REQUEST, refusal);
            }
        };
        if let Err(error) = held.durable().await {
            // Fail closed: an operation whose intent is not durable does not run (nor one
            // while the store is down past the limit, in `batch`).
            let refusal = tap.deny(&exchange.interpreter, &body, &error, &stamp).await;
            return refused(StatusCode::SERVICE_UNAVAILABLE, refusal);
        }
    }
    forward_and_relay(exchange, parts.method, &parts.headers, body).await
}

/// The proxy's answer to a refused body: each request answered with its own id, as the stdio
/// proxy answers it.
fn refused(status: StatusCode, refusal: Refusal) -> Response {
    match refusal.answer {
        Some(answer) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            answer.trim_ascii_end().to_vec(),
        )
            .into_response(),
        None => own_error(status, &format!("mcp-audit: {}", refusal.reason)),
    }
}

/// A body that could not be read (the client went away, or stalled): nothing was forwarded.
async fn unread(
    exchange: &Exchange,
    method: &Method,
    problem: &str,
    status: StatusCode,
) -> Response {
    let r = lock(&exchange.interpreter).transport_fault(
        "client_body_error",
        problem,
        json!({"method": method.as_str()}),
    );
    let _ = exchange.record(vec![r]).await;
    own_error(status, problem)
}

/// 413, recorded.
async fn too_large(exchange: &Exchange, declared: Option<u64>) -> Response {
    let limit = exchange.app.config.body_limit;
    let mut r = lock(&exchange.interpreter).transport_fault(
        "oversized_body",
        &format!("the request body is larger than the limit of {limit} bytes"),
        json!({"declared_size": declared, "limit": limit}),
    );
    // Not forwarded: refused, as every request the proxy does not let through is.
    r.event.outcome = Outcome::Denied;
    exchange.app.tap.count_denied(
        std::slice::from_ref(&r),
        crate::metrics::DenialReason::BodyTooLarge,
    );
    let _ = exchange.record(vec![r]).await;
    own_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than the proxy accepts",
    )
}

/// Forwards the request and relays the answer; a client that leaves before the answer starts
/// still has its requests closed as `incomplete` (see `ClientLeaving`).
async fn forward_and_relay(
    exchange: Exchange,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let leaving = exchange.on_client_leaving(body.clone());
    let response = forward_and_answer(exchange, method, headers, body).await;
    leaving.disarm();
    response
}

async fn forward_and_answer(
    mut exchange: Exchange,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let app = exchange.app.clone();
    let upstream = &exchange.url;
    let mut stopping = app.stopping.clone();
    let sent = tokio::select! {
        sent = tokio::time::timeout(
            app.config.upstream_timeout,
            forward::send(&app.client, upstream, method.clone(), forward::request_headers(headers), body.clone()),
        ) => sent,
        () = stopped(&mut stopping) => {
            let records = lock(&exchange.interpreter).abandon(
                Direction::ClientToServer, &body, Outcome::Incomplete,
                "the proxy stopped before the upstream answered", Instant::now());
            let _ = exchange.record(records).await;
            return own_error(StatusCode::SERVICE_UNAVAILABLE, "the proxy is stopping");
        }
    };
    let response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let problem = format!("the upstream could not be reached: {error}");
            return upstream_failed(
                &exchange,
                &body,
                &problem,
                "upstream_unreachable",
                Outcome::ProtocolError,
                StatusCode::BAD_GATEWAY,
            )
            .await;
        }
        Err(_) => {
            let problem = format!(
                "the upstream did not answer within {} s",
                app.config.upstream_timeout.as_secs()
            );
            return upstream_failed(
                &exchange,
                &body,
                &problem,
                "upstream_timeout",
                Outcome::Incomplete,
                StatusCode::GATEWAY_TIMEOUT,
            )
            .await;
        }
    };

    let status = response.status();
    let had_session = exchange.mcp_session.clone();
    // The answer that opens a session names it: follow it from now on. One that opens a
    // session without naming it makes it the connection's.
    if had_session.is_none() {
        if let Some(id) = header_str(response.headers(), "mcp-session-id") {
            lock(&exchange.interpreter).become_session();
            app.sessions.insert(id, exchange.interpreter.clone());
            exchange.mcp_session = Some(id.to_string());
        } else if status.is_success()
            && exchange.session_key.is_none()
            && opens_session(&body)
            && let Some(connection) = &exchange.connection
        {
            connection.open_session(exchange.interpreter.clone(), &exchange.actor);
        }
    } else if exchange.unfollowed
        && status.is_success()
        && let Some(id) = &had_session
    {
        app.sessions.insert(id, exchange.interpreter.clone());
    }
    // The session ends when the client deletes it, or the server no longer knows it.
    let ended = match (&had_session, &method, status) {
        (Some(_), &Method::DELETE, s) if s.is_success() || s == StatusCode::NOT_FOUND => {
            Some("the client ended the session (DELETE)")
        }
        (Some(_), _, StatusCode::NOT_FOUND) => Some("the server no longer knows the session (404)"),
        _ => None,
    };

    let kind = BodyKind::of(response.headers());
    let mut builder = Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        *h = forward::response_headers(response.headers());
    }
    // A JSON answer of known, bounded length: read whole, answered, then interpreted off the
    // answer's path. Event streams and answers of unknown length are relayed as they arrive.
    let known = response.content_length().filter(|n| *n <= MAX_FRAME as u64);
    if let (BodyKind::Json | BodyKind::Opaque, Some(_)) = (&kind, known) {
        let read = tokio::time::timeout(app.config.upstream_timeout, response.bytes()).await;
        if let Ok(Ok(bytes)) = read {
            let json = matches!(kind, BodyKind::Json).then(|| bytes.clone());
            let tasks = exchange.app.tasks.clone();
            tasks.spawn(async move {
                let json = json.unwrap_or_default();
                answered(exchange, status, &json, None, &body, ended).await;
            });
            return builder.body(Body::from(bytes)).unwrap_or_else(|_| {
                own_error(
                    StatusCode::BAD_GATEWAY,
                    "the upstream's answer could not be relayed",
                )
            });
        }
        let problem = "the upstream's answer broke off or stalled";
        return upstream_failed(
            &exchange,
            &body,
            problem,
            "upstream_broken",
            Outcome::Incomplete,
            StatusCode::BAD_GATEWAY,
        )
        .await;
    }
    let post = method == Method::POST;
    let idle = post.then_some(app.config.upstream_timeout);
    let mut stream = response.bytes_stream().boxed();
    // A POST's answer (an event stream that ends with the answer to its request) usually
    // follows its head at once: what comes within a short grace goes out with the head, in
    // one write, and an answer complete by then goes whole, interpreted off its path. A GET
    // stream may rightly be silent.
    let (ready, gathered) = if post {
        gather(&mut stream, GATHER).await
    } else {
        (Vec::new(), Gathered::Open)
    };
    let tasks = exchange.app.tasks.clone();
    let spawn_relay = |stream: Upstream, relayed: Relayed| {
        tasks.spawn(relay(
            exchange, status, stream, kind, idle, body, relayed, ended,
        ));
    };
    let body = if let Gathered::Complete = gathered {
        let whole = whole(&ready);
        let relayed = Relayed {
            sent: ready,
            tx: None,
        };
        spawn_relay(futures_util::stream::empty().boxed(), relayed);
        Body::from(whole)
    } else {
        let (tx, rx) = mpsc::channel::<Chunk>(16);
        let first: Vec<Chunk> = ready.iter().cloned().map(Ok).collect();
        let stream = match gathered {
            // The relay records the fault and cuts the answer.
            Gathered::Failed(error) => futures_util::stream::once(async { Err(error) })
                .chain(stream)
                .boxed(),
            _ => stream,
        };
        spawn_relay(
            stream,
            Relayed {
                sent: ready,
                tx: Some(tx),
            },
        );
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Body::from_stream(futures_util::stream::iter(first).chain(rest))
    };
    builder.body(body).unwrap_or_else(|_| {
        own_error(
            StatusCode::BAD_GATEWAY,
            "the upstream's answer could not be relayed",
        )
    })
}

/// How long the head of a streamed POST answer may wait for the answer's first chunks.
const GATHER: Duration = Duration::from_millis(5);

/// How much of an answer may be gathered before its head goes (then the rest is relayed
/// through the bounded channel: a slow client slows the upstream read).
const GATHER_BYTES: usize = 64 * 1024;

/// How far an answer's body came within the grace.
enum Gathered {
    /// It ended: the client can have it whole.
    Complete,
    /// More is to come.
    Open,
    /// It broke off (after the chunks read).
    Failed(reqwest::Error),
}

/// The chunks of an answer's body that arrive `within` (up to about [`GATHER_BYTES`]), and how
/// far the body came.
async fn gather(stream: &mut Upstream, within: Duration) -> (Vec<Bytes>, Gathered) {
    let mut ready = Vec::new();
    let mut size = 0;
    let grace = tokio::time::sleep(within);
    tokio::pin!(grace);
    while size < GATHER_BYTES {
        tokio::select! {
            biased;
            item = stream.next() => match item {
                Some(Ok(chunk)) => {
                    size += chunk.len();
                    ready.push(chunk);
                }
                Some(Err(error)) => return (ready, Gathered::Failed(error)),
                None => return (ready, Gathered::Complete),
            },
            () = &mut grace => return (ready, Gathered::Open),
        }
    }
    (ready, Gathered::Open)
}

/// Chunks as one piece.
fn whole(ready: &[Bytes]) -> Bytes {
    match ready {
        [] => Bytes::new(),
        [one] => one.clone(),
        _ => {
            let mut all = bytes::BytesMut::with_capacity(ready.iter().map(Bytes::len).sum());
            for part in ready {
                all.extend_from_slice(part);
            }
            all.freeze()
        }
    }
}

/// 502 or 504, recorded: the request's operations get `outcome` and the fault its own event.
async fn upstream_failed(
    exchange: &Exchange,
    body: &[u8],
    problem: &str,
    operation: &str,
    outcome: Outcome,
    status: StatusCode,
) -> Response {
    let mut records = {
        let mut i = lock(&exchange.interpreter);
        let mut records = i.abandon(
            Direction::ClientToServer,
            body,
            outcome,
            problem,
            Instant::now(),
        );
        records.push(i.transport_fault(
            operation,
            problem,
            json!({"upstream": exchange.app.config.upstream.as_str()}),
        ));
        records
    };
    if !lock(&exchange.interpreter).is_session() {
        records.extend(lock(&exchange.interpreter).finish("exchange failed", None, Instant::now()));
    }
    let _ = exchange.record(records).await;
    own_error(status, problem)
}

#[cfg(test)]
mod tests {
    use super::with_client_query;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn the_client_query_follows_the_upstream_query() {
        let plain = url("http://127.0.0.1:3001/mcp");
        let keyed = url("http://127.0.0.1:3001/mcp?key=k");
        assert_eq!(with_client_query(&plain, None), plain);
        assert_eq!(with_client_query(&plain, Some("")), plain);
        assert_eq!(
            with_client_query(&plain, Some("tenant=a&x=%20")).as_str(),
            "http://127.0.0.1:3001/mcp?tenant=a&x=%20"
        );
        assert_eq!(with_client_query(&keyed, None), keyed);
        assert_eq!(
            with_client_query(&keyed, Some("tenant=a")).as_str(),
            "http://127.0.0.1:3001/mcp?key=k&tenant=a"
        );
    }
}
