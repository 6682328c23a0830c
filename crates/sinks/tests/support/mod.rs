//! What the sink suites share: a real HTTP receiver that checks each batch's signature and
//! injects failures, and a test database of either backend; the OTLP receivers ([`otlp`]) and
//! the rsyslogd ([`rsyslog`]) that both a destination's own suite and the runner's use.

#![allow(dead_code)]

pub mod otlp;
pub mod rsyslog;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use mcp_audit_core::AuditEvent;
#[cfg(feature = "postgres")]
use mcp_audit_store::{PgOptions, PgStore};
use mcp_audit_store::{Recorder, RecorderConfig, SinkState, SqliteOptions, SqliteStore, Store};
use serde_json::Value;
use sha2::Sha256;

pub const SECRET: &str = "shared-secret-of-the-tests";

/// How the receiver answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Takes every batch (2xx).
    Up,
    /// Answers 503 and keeps nothing.
    Down,
    /// Keeps the batch, then answers too late for the client's timeout: the records arrived
    /// but were not acknowledged.
    Slow(Duration),
}

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every record kept, in arrival order: (key, the record's JSON).
    pub records: Vec<(String, Value)>,
    /// Keys of records kept by a request that was not acknowledged.
    pub unacknowledged: BTreeSet<String>,
    /// Requests answered, by status.
    pub answers: BTreeMap<u16, u64>,
    /// Requests whose signature did not check out.
    pub bad_signatures: u64,
}

struct Inner {
    mode: Mode,
    /// Keys refused forever: a batch holding one is answered 422 with the index.
    refuse: BTreeSet<String>,
    seen: Seen,
}

/// A real HTTP server in the test (axum on 127.0.0.1:0) that can be stopped (its port closed:
/// connections refused, as a receiver that is down) and started again on the same port.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    /// The server while it runs: a clone stops it as well as the original.
    server: Arc<Mutex<Server>>,
    pub url: String,
}

/// The running server: where it listens, and how to stop it.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            mode: Mode::Up,
            refuse: BTreeSet::new(),
            seen: Seen::default(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver {
            inner,
            server: Arc::new(Mutex::new(Server {
                addr,
                stop: None,
                task: None,
            })),
            url: format!("http://{addr}/hook"),
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(self.inner.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let mut server = self.server.lock().unwrap();
        server.stop = Some(stop);
        server.task = Some(task);
    }

    /// Stops listening (a request under way is answered first): from now on a connection is
    /// refused.
    pub async fn stop(&self) {
        let (stop, task) = {
            let mut server = self.server.lock().unwrap();
            (server.stop.take(), server.task.take())
        };
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = task {
            task.await.unwrap();
        }
    }

    /// Starts again on the same port, keeping what it saw.
    pub async fn restart(&self) {
        let addr = self.server.lock().unwrap().addr;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        self.serve(listener);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn refuse(&self, key: &str) {
        self.inner.lock().unwrap().refuse.insert(key.to_string());
    }

    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.inner.lock().unwrap().seen)
    }

    /// The distinct keys received.
    pub fn keys(&self) -> BTreeSet<String> {
        self.with(|s| s.records.iter().map(|(k, _)| k.clone()).collect())
    }

    /// Waits (polling) until `done` holds, failing after a minute so that a broken sink fails
    /// the test instead of hanging it.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        for _ in 0..1_200 {
            if self.with(&done) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the receiver never saw {what}: {:?}",
            self.with(|s| (s.records.len(), s.answers.clone()))
        );
    }
}

/// Checks `X-Mcp-Audit-Signature: t=<unix>,v1=<hex>` as a receiver should: the HMAC over
/// `t.body`, compared in constant time, and `t` within five minutes.
pub fn signature_ok(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(value) = headers
        .get("x-mcp-audit-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (jiff::Timestamp::now().as_second() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let (status, answer, slow) = {
        let mut inner = inner.lock().unwrap();
        let inner = &mut *inner;
        if !signature_ok(&headers, &body) {
            inner.seen.bad_signatures += 1;
            (StatusCode::UNAUTHORIZED, String::new(), None)
        } else {
            let batch: Value = serde_json::from_slice(&body).unwrap();
            let records = batch["records"].as_array().unwrap().clone();
            match inner.mode.clone() {
                Mode::Down => (StatusCode::SERVICE_UNAVAILABLE, "down".into(), None),
                mode => {
                    let refused = records
                        .iter()
                        .position(|r| inner.refuse.contains(r["key"].as_str().unwrap()));
                    let kept = &records[..refused.unwrap_or(records.len())];
                    let slow = match mode {
                        Mode::Slow(d) => Some(d),
                        _ => None,
                    };
                    for r in kept {
                        let key = r["key"].as_str().unwrap().to_string();
                        if slow.is_some() {
                            inner.seen.unacknowledged.insert(key.clone());
                        }
                        inner.seen.records.push((key, r.clone()));
                    }
                    match refused {
                        Some(i) => (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!(r#"{{"accepted": {i}}}"#),
                            None,
                        ),
                        None => (StatusCode::OK, String::new(), slow),
                    }
                }
            }
        }
    };
    *inner
        .lock()
        .unwrap()
        .seen
        .answers
        .entry(status.as_u16())
        .or_default() += 1;
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    (status, answer)
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A test database: a SQLite file in a temporary directory, or a PostgreSQL schema of its own
/// (dropped at the end) in `MCP_AUDIT_TEST_PG`.
pub struct Db {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub pg: Option<(String, String, String)>,
}

impl Db {
    /// `None` when the backend's tests are skipped (PostgreSQL without `MCP_AUDIT_TEST_PG`).
    pub fn new(backend: Backend) -> Option<Db> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let pg = match backend {
            Backend::Sqlite => None,
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let Ok(base) = std::env::var("MCP_AUDIT_TEST_PG") else {
                    eprintln!("skipped: MCP_AUDIT_TEST_PG is not set");
                    return None;
                };
                let name = format!(
                    "t_{}",
                    mcp_audit_core::EventId::new().to_string().replace('-', "")
                );
                blocking(|| {
                    let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
                    admin
                        .batch_execute(&format!("CREATE SCHEMA {name}"))
                        .unwrap();
                });
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-csearch_path%3D{name}");
                Some((base, name, url))
            }
        };
        Some(Db {
            backend,
            dir,
            path,
            pg,
        })
    }

    /// The `--db` value of this database.
    pub fn spec(&self) -> String {
        match &self.pg {
            Some((_, _, url)) => url.clone(),
            None => self.path.display().to_string(),
        }
    }

    /// A writer of the log `log_id` (SQLite: the file's one log).
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub fn writer(&self, log_id: &str) -> Box<dyn Store> {
        blocking(|| -> Box<dyn Store> {
            match self.backend {
                Backend::Sqlite => {
                    Box::new(SqliteStore::open(&self.path, SqliteOptions::default()).unwrap())
                }
                #[cfg(feature = "postgres")]
                Backend::Postgres => Box::new(
                    PgStore::open(
                        &self.spec(),
                        PgOptions {
                            log_id: Some(log_id.to_string()),
                            ..PgOptions::default()
                        },
                    )
                    .unwrap(),
                ),
            }
        })
    }

    /// What a sink opens.
    pub fn follower(&self) -> Box<dyn SinkState> {
        blocking(|| -> Box<dyn SinkState> {
            match self.backend {
                Backend::Sqlite => {
                    Box::new(SqliteStore::open(&self.path, SqliteOptions::default()).unwrap())
                }
                #[cfg(feature = "postgres")]
                Backend::Postgres => Box::new(PgStore::open_follower(&self.spec()).unwrap()),
            }
        })
    }

    /// Records `events` in the log `log_id` (on a blocking thread: the recorder waits).
    pub async fn record(
        &self,
        log_id: &str,
        events: Vec<AuditEvent>,
    ) -> Vec<mcp_audit_core::EventId> {
        let writer = self.writer(log_id);
        tokio::task::spawn_blocking(move || {
            let r = Recorder::start(writer, RecorderConfig::default()).unwrap();
            let ids = events
                .into_iter()
                .map(|e| {
                    let id = e.id;
                    r.record(e).unwrap();
                    id
                })
                .collect();
            r.shutdown().unwrap();
            ids
        })
        .await
        .unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((base, name, _)) = &self.pg {
            blocking(|| {
                if let Ok(mut admin) = postgres::Client::connect(base, postgres::NoTls) {
                    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
                }
            });
        }
    }
}

/// Generates, for each `async fn name(db: Db)`, a `sqlite::name` and a `postgres::name` test.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::support::Db::new($crate::support::Backend::Sqlite) {
                        super::$name(db).await;
                    }
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::support::Db::new($crate::support::Backend::Postgres) {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// Runs blocking database work from a test's async body (the PostgreSQL client runs a
/// runtime of its own, which may not start inside another's worker without this).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}
