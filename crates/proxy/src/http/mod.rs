//! The Streamable HTTP transport adapter: `mcp-audit` as the audit layer of an MCP gateway.
//!
//! Clients talk HTTP to us; we forward each request to the upstream MCP server and relay its
//! answer (a JSON body or an event stream) as it arrives, unchanged. The interpreter sees a
//! copy: each POST body (client → server), each JSON answer and each SSE event's data
//! (server → client), one interpreter per `Mcp-Session-Id`, and one per exchange for requests
//! outside a session (stateless protocol 2026-07-28). Records carry the caller's identity
//! (verified JWT or trusted header), client IP, user agent and the HTTP session id.
//!
//! - `server`: the route and the request checks (identity, limits, content type).
//! - `relay`: the answer, streamed through, interpreted from a copy.
//! - [`forward`]: headers and the upstream request.
//! - [`identity`]: JWT, trusted header, client IP behind trusted proxies.
//! - [`sessions`]: the session map and its expiry.
//! - `connection`: a client connection, and the session it carries for an upstream that
//!   gives no session ids.
//! - `listener`: accepting connections, up to a limit, with a timeout for request heads.
//! - [`sse`]: the event-stream parser.
//! - `exchange`: the records of one exchange, stamped with its HTTP context.

mod connection;
mod exchange;
pub mod forward;
pub mod identity;
mod listener;
mod relay;
mod server;
pub mod sessions;
pub mod sse;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, get};
use mcp_audit_store::Recorder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

pub use identity::{IdentityConfig, IdentityError, JwtKeys, Verdict, parse_trusted_proxy};
pub use listener::Limits;
/// The upstream URL type.
pub use reqwest::{Certificate, Url};

use exchange::{queue, stamp};
use server::App;
use sessions::{Sessions, lock};

/// How the HTTP proxy forwards and records.
pub struct HttpConfig {
    /// The upstream MCP endpoint (`http://` or `https://`); the proxy serves the same path.
    pub upstream: reqwest::Url,
    /// Roots to trust for an `https://` upstream besides the web PKI (a private CA).
    pub upstream_roots: Vec<Certificate>,
    pub identity: IdentityConfig,
    /// The server's name in the audit trail; else the one it reports.
    pub server_name: Option<String>,
    /// Payloads larger than this are stored as excerpt, size and hash.
    pub capture_limit: usize,
    /// `sync` durability: intents are durable before their request is forwarded.
    pub record_intents: bool,
    /// Request bodies larger than this are answered 413.
    pub body_limit: usize,
    /// How long a client may take to send its request body (then 408): a client that sends a
    /// head and stalls holds nothing for long.
    pub body_timeout: Duration,
    /// How long the upstream may take to answer, and to send the next chunk of a POST's answer.
    pub upstream_timeout: Duration,
    /// Sessions without traffic for this long are ended (their `session_end` recorded).
    pub session_idle: Duration,
    /// How many client connections, and how slow ones, are served.
    pub limits: Limits,
    /// Where the calls refused are counted, for `/metrics`.
    pub denials: crate::metrics::Denials,
    /// Whether `GET /metrics` on this listener answers with the proxy's metrics (else it goes
    /// where any path other than the upstream's goes). `run_http` refuses it when the upstream's
    /// own path is `/metrics`, which it would shadow.
    pub metrics_route: bool,
}

/// Why the HTTP proxy could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("the upstream `{0}` must be an http:// or https:// URL")]
    BadUpstream(String),
    #[error("cannot set up the upstream HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    /// The upstream's path is `/metrics`: the proxy's own metrics there would hide it.
    #[error(
        "the upstream's path is {METRICS_PATH}, where the proxy serves its metrics: give the metrics a listener of their own (--metrics-listen)"
    )]
    MetricsShadowUpstream,
}

/// How long a connection to the upstream stays open unused. Below the 5 s after which
/// Node.js's HTTP server (the reference MCP servers) and uvicorn (the Python SDK's) close an
/// idle keep-alive connection: a request sent on a connection the server is closing just then
/// fails, and a POST can not be sent again.
const UPSTREAM_IDLE: Duration = Duration::from_secs(4);

/// Where the proxy's metrics are served on its own listener (see [`HttpConfig::metrics_route`]).
pub const METRICS_PATH: &str = "/metrics";

/// How long open connections get to finish once the proxy is told to stop.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves the proxy on `listener` until `shutdown` completes; then ends the open streams,
/// records the end of every session it followed, and returns. The caller shuts the recorder.
pub async fn run_http(
    listener: TcpListener,
    config: HttpConfig,
    recorder: Recorder,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    if !matches!(config.upstream.scheme(), "http" | "https") {
        return Err(HttpError::BadUpstream(config.upstream.to_string()));
    }
    let mut client = reqwest::Client::builder();
    for root in &config.upstream_roots {
        client = client.add_root_certificate(root.clone());
    }
    let client = client
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(UPSTREAM_IDLE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(HttpError::Client)?;
    if let Some(warning) = config.identity.warning() {
        tracing::warn!("UNSAFE: {warning}");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let path = config.upstream.path().to_string();
    if config.metrics_route && path == METRICS_PATH {
        return Err(HttpError::MetricsShadowUpstream);
    }
    let metrics = config.metrics_route.then(|| {
        Arc::new(crate::metrics::ProxyMetrics::new(
            recorder.clone(),
            config.denials.clone(),
        ))
    });
    let session_idle = config.session_idle;
    let limits = config.limits;
    let tap = crate::tap::Tap::new(recorder.clone(), config.denials.clone());
    let app = Arc::new(App {
        config,
        client,
        sessions: Sessions::default(),
        tap,
        continuations: Default::default(),
        stopping: stop_rx.clone(),
        tasks: TaskTracker::new(),
    });
    let mut router = Router::new().route(&path, any(server::endpoint));
    if let Some(metrics) = metrics {
        // GET only: any other method on the path goes where every unknown path goes (a
        // legacy session's message endpoint), as it would without metrics.
        router = router.route(
            METRICS_PATH,
            get(move || async move { metrics.response() }).fallback(server::legacy_message),
        );
    }
    let router = router
        .fallback(server::legacy_message)
        .with_state(app.clone());

    let sweeper = tokio::spawn(sweep(app.clone(), session_idle));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut drained = stop_rx.clone();
    let serve = listener::serve(listener, router, app.clone(), limits, stop_rx);
    tokio::select! {
        () = serve => {}
        () = async {
            let _ = drained.wait_for(|s| *s).await;
            tokio::time::sleep(DRAIN).await;
        } => tracing::warn!("connections still open after the drain time; closing them"),
    }
    sweeper.abort();
    // Answers already sent may still be on their way to the recorder.
    app.tasks.close();
    if tokio::time::timeout(DRAIN, app.tasks.wait()).await.is_err() {
        tracing::warn!(
            left = app.tasks.len(),
            "answers were still being recorded after the drain time"
        );
    }
    for (id, interpreter) in app.sessions.take_all() {
        let records = lock(&interpreter).finish("the proxy was told to stop", None, Instant::now());
        end_records(&app, &id, records).await;
    }
    Ok(())
}

/// Ends the sessions idle for longer than `idle`, so that dead clients hold no memory.
async fn sweep(app: Arc<App>, idle: Duration) {
    let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        for (id, interpreter) in app.sessions.take_idle(idle) {
            let reason = format!("no traffic for {} s", idle.as_secs());
            let records = lock(&interpreter).finish(&reason, None, Instant::now());
            end_records(&app, &id, records).await;
        }
    }
}

async fn end_records(app: &App, id: &str, records: Vec<crate::interpreter::Record>) {
    // A connection's session (an upstream without session ids) has no `Mcp-Session-Id`.
    let mcp_session = (!connection::is_connection_key(id)).then_some(id);
    for mut r in records {
        let actor = r.event.actor.clone();
        stamp(&mut r, &actor, mcp_session);
        queue(&app.tap, r).await;
    }
}

/// Completes when the proxy starts stopping (the guard of the watch is not held).
pub(crate) async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await.map(|_| ());
}
