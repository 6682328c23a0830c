//! `mcp-audit serve`: the audit console's HTTP API and web UI over any store.
//!
//! - [`tokens`]: console tokens and roles, kept as events of the log itself.
//! - [`jwt`]: OIDC/JWT bearers instead of console tokens (the HTTP proxy's verification, a
//!   claim mapped to a role).
//! - [`tls`]: HTTPS from a PEM certificate and key.
//! - `api`: the `/api/v1` routes (events, sessions, summary, stats, export, integrity,
//!   reviews, tokens, the OpenAPI document), each behind a role.
//! - `records`: the events the console writes about itself: every read of arguments and
//!   results, every export and every review goes into the same log, with the token's name as
//!   the actor, before the data leaves the server.
//! - `params`: query strings read strictly (unknown fields are errors), with `query`'s filter
//!   names.
//! - [`csv_rows`]: the CSV form of events, shared with `mcp-audit export`; [`time`]: times
//!   as people type them (`7d`, a date, RFC 3339), shared with the command line's flags.
//! - `api::ingest`: `POST /api/v1/events`, the way in for a `writer` (one event or JSON lines,
//!   checked as `mcp-audit log -` checks them, all or nothing), configured by [`Ingest`].
//! - `ui`: the web UI under `/ui/` (server-rendered HTML, cookie sessions with CSRF tokens),
//!   reading through the API's own functions and role checks.
//! - `metrics`: `/metrics` in the Prometheus text format (the console's recorder, what it
//!   served on record, the last verify).
//! - [`witness`]: `POST /add-checkpoint`, a C2SP tlog-witness that co-signs trusted logs'
//!   checkpoints (`serve --witness-key`).
//! - `export`: the streamed export; [`verify`]: a `verify` run started from the API, watched
//!   through `/integrity`, and the record of every finished run (the API's and
//!   `mcp-audit verify`'s) in the log, from which `/integrity` shows the last one.
//!
//! The store trait is synchronous; every store call runs in `spawn_blocking` on a reader
//! taken from a small pool, so that the async side never waits on a database.
//!
//! The server knows nothing of paths or URLs: it opens stores through [`Databases`], which the
//! command line implements with its `--db`. In-process, over a SQLite file:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//!
//! use mcp_audit_core::EventId;
//! use mcp_audit_server::{Config, Databases, NewToken, OpenError, Role};
//! use mcp_audit_store::{Recorder, RecorderConfig, SqliteOptions, SqliteStore, Store};
//!
//! struct File(std::path::PathBuf);
//!
//! impl Databases for File {
//!     fn reader(&self) -> Result<Box<dyn Store>, OpenError> {
//!         Ok(Box::new(SqliteStore::open_read_only(&self.0, SqliteOptions::default())?))
//!     }
//!     fn event_log(&self, _: EventId) -> Result<Option<Box<dyn Store>>, OpenError> {
//!         self.reader().map(Some)
//!     }
//!     fn logs(&self) -> Result<Vec<String>, OpenError> {
//!         Ok(vec![String::new()])
//!     }
//!     fn log_reader(&self, _: &str) -> Result<Box<dyn Store>, OpenError> {
//!         self.reader()
//!     }
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("audit.db");
//! let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
//! let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
//! // A token is an event of the log.
//! let token = NewToken::generate();
//! recorder.record(token.create_event("alice", Role::Viewer, "root").unwrap()).unwrap();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let answer = runtime.block_on(async {
//!     let listener = mcp_audit_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let config = Config {
//!         databases: Arc::new(File(path.clone())),
//!         recorder: recorder.clone(),
//!         verifier_key: None,
//!         tls: None,
//!         jwt: None,
//!         witness: None,
//!         collectors: Vec::new(),
//!         ingest: None,
//!     };
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let server = tokio::spawn(mcp_audit_server::serve(listener, config, async {
//!         let _ = stopped.await;
//!     }));
//!     let secret = token.secret.clone();
//!     let answer = tokio::task::spawn_blocking(move || {
//!         let mut http = std::net::TcpStream::connect(addr).unwrap();
//!         write!(http, "GET /api/v1/summary HTTP/1.1\r\nHost: x\r\n\
//!                       Authorization: Bearer {secret}\r\nConnection: close\r\n\r\n").unwrap();
//!         let mut answer = String::new();
//!         http.read_to_string(&mut answer).unwrap();
//!         answer
//!     })
//!     .await
//!     .unwrap();
//!     stop.send(()).unwrap();
//!     server.await.unwrap().unwrap();
//!     answer
//! });
//! assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
//! assert!(answer.contains("\"admin_actions\":1"), "{answer}");
//! recorder.shutdown().unwrap();
//! ```

mod api;
pub mod compliance;
pub mod csv_rows;
mod error;
mod export;
pub mod jwt;
mod metrics;
mod params;
mod records;
pub mod time;
pub mod tls;
pub mod tokens;
mod ui;
pub mod verify;
pub mod witness;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mcp_audit_core::EventId;
use mcp_audit_core::checkpoint::NoteVerifier;
use mcp_audit_store::{Recorder, Store};
use tokio::net::TcpListener;

/// The ingest endpoint's configuration (`POST /api/v1/events`).
pub use api::ingest::{DEFAULT_MAX_BODY, Ingest, SUBMITTED_BY};
pub use error::ApiError;
pub use jwt::JwtRoles;
pub use params::MAX_LIMIT;
pub use tls::TlsError;
pub use tokens::{NewToken, Role, TokenInfo, TokenTable};

/// Why a database could not be opened, as the opener says it.
pub type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// How the server reaches the database: the command line's knowledge of SQLite files and
/// PostgreSQL URLs stays in the command line.
pub trait Databases: Send + Sync + 'static {
    /// A reader of every log (a SQLite file has one).
    fn reader(&self) -> Result<Box<dyn Store>, OpenError>;
    /// A store on the log that holds event `id` (for its proof and checkpoint); `None` when
    /// no log holds it.
    fn event_log(&self, id: EventId) -> Result<Option<Box<dyn Store>>, OpenError>;
    /// The ids of the logs (a SQLite file's one log is `""`).
    fn logs(&self) -> Result<Vec<String>, OpenError>;
    /// A reader of one log of [`Databases::logs`].
    fn log_reader(&self, log_id: &str) -> Result<Box<dyn Store>, OpenError>;
}

/// What `serve` runs with.
pub struct Config {
    pub databases: Arc<dyn Databases>,
    /// Where the console's own records (reads, exports, reviews) go: the same log the proxies
    /// write (SQLite) or a log of its own (PostgreSQL).
    pub recorder: Recorder,
    /// The checkpoint verifier key's text: shown by `/integrity`, and used by the verify runs
    /// started from the API to check signatures.
    pub verifier_key: Option<String>,
    /// Serve HTTPS with this configuration ([`tls::server_config`]); the session cookie then
    /// carries `Secure`.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Take JWT bearers beside console tokens.
    pub jwt: Option<JwtRoles>,
    /// Act as a witness of these logs (`POST /add-checkpoint`).
    pub witness: Option<Arc<witness::Witness>>,
    /// More figures for `/metrics`, read at each scrape: the sinks `serve --sink` runs in the
    /// same process (`mcp_audit_sink_*`).
    pub collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
    /// Take events from writers (`POST /api/v1/events`); `None` answers that endpoint 404.
    pub ingest: Option<Ingest>,
}

/// The running server's shared state.
pub(crate) struct App {
    pub databases: Arc<dyn Databases>,
    pub recorder: Recorder,
    pub verifier_key: Option<String>,
    pub verifier: Option<Arc<NoteVerifier>>,
    /// Idle readers, reused: an open costs a connection (round trips, on PostgreSQL), a read
    /// of the schema and a cold page cache.
    readers: Mutex<Vec<Box<dyn Store>>>,
    /// One permit per reader in use, [`POOL_SIZE`] in all: a request beyond them waits for a
    /// reader to come back instead of opening one more that the full pool would then close
    /// again (with 16 concurrent clients, each request beyond the eighth opened and closed
    /// a reader of its own). More readers would not read faster on a few cores anyway.
    reader_slots: Arc<tokio::sync::Semaphore>,
    pub tokens: Mutex<TokenTable>,
    pub verifications: Arc<verify::Verifications>,
    /// The web UI's logged-in browsers.
    pub ui_sessions: ui::session::Sessions,
    pub metrics: metrics::Metrics,
    /// JWT bearers, when configured: a presented secret without the console tokens' prefix is
    /// verified as one.
    pub jwt: Option<JwtRoles>,
    /// Whether the browser reaches us over TLS, so that the session cookie is `Secure`.
    pub secure_cookies: bool,
    /// The ingest endpoint's recorder and policy, when it takes events.
    pub ingest: Option<Ingest>,
}

/// Readers kept open between requests (a PostgreSQL connection costs a round trip or more),
/// and the most that read at once.
const POOL_SIZE: usize = 8;

impl App {
    /// Runs `work` on a pooled reader in a blocking thread, once one of the [`POOL_SIZE`]
    /// readers is free. A reader whose work failed is dropped rather than returned, in case
    /// the failure was its connection's (its slot is then free for a fresh one).
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&App, &mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    {
        let app = Arc::clone(self);
        // Waited for here, on the async side, so that a waiting request holds no thread.
        let slot = Arc::clone(&self.reader_slots)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the pool of readers is closed"))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = app.readers.lock().map(|mut r| r.pop()).unwrap_or(None);
            let mut store = match pooled {
                Some(store) => store,
                None => app.databases.reader().map_err(|e| {
                    tracing::error!("cannot open a reader: {e}");
                    ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        format!("cannot open the database: {e}"),
                    )
                })?,
            };
            let result = work(&app, store.as_mut());
            if result.is_ok()
                && let Ok(mut readers) = app.readers.lock()
                && readers.len() < POOL_SIZE
            {
                readers.push(store);
            }
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
    }
}

/// Serves the API on `listener` until `shutdown` completes; then the console's recorder is
/// shut down, so that every record it took is durable before this returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let verifier = config
        .verifier_key
        .as_deref()
        .map(NoteVerifier::from_text)
        .transpose()
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the verifier key: {e}"),
            )
        })?
        .map(Arc::new);
    let metrics = metrics::Metrics::new(
        config.recorder.clone(),
        config.ingest.as_ref().map(|i| i.recorder.clone()),
        config.collectors,
    );
    let app = Arc::new(App {
        databases: config.databases,
        recorder: config.recorder,
        verifier_key: config.verifier_key,
        verifier,
        verifications: Arc::new(verify::Verifications::default()),
        readers: Mutex::new(Vec::new()),
        reader_slots: Arc::new(tokio::sync::Semaphore::new(POOL_SIZE)),
        ui_sessions: ui::session::Sessions::default(),
        metrics,
        jwt: config.jwt,
        secure_cookies: config.tls.is_some(),
        ingest: config.ingest,
        tokens: Mutex::new(TokenTable {
            tokens: Vec::new(),
            // Never a real count pair: the first request loads the table.
            built_from: (u64::MAX, u64::MAX),
        }),
    });
    let mut router = api::router(Arc::clone(&app));
    if let Some(witness) = config.witness {
        router = router.merge(witness::router(witness));
    }
    let served = match config.tls {
        Some(tls) => {
            axum::serve(tls::TlsListener::new(listener, tls)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    // Off the async threads: dropping a pooled PostgreSQL reader closes its connection, which
    // blocks (and a synchronous client must not block inside the runtime).
    let flushed = tokio::task::spawn_blocking(move || {
        let recorder = app.recorder.clone();
        let ingest = app.ingest.as_ref().map(|i| i.recorder.clone());
        drop(app);
        // The ingest recorder first: events accepted without `wait` become durable (or their
        // loss is reported) before this returns.
        let ingested = ingest.map_or(Ok(()), |r| r.flush());
        recorder.flush().and(ingested)
    })
    .await
    .map_err(std::io::Error::other)?;
    served?;
    flushed.map_err(std::io::Error::other)
}

/// Binds `addr` (a separate step, so that the caller can say where it listens and fail early
/// on a taken port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await
}
