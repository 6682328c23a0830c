//! The audit console at scale (issue 17): `mcp-audit serve` over a log of 1,000,000 events, on
//! SQLite and on PostgreSQL, against a bare axum "hello" server measured in the same run.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench console                    # SQLite, 1,000,000 events
//! MCP_AUDIT_TEST_PG=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p mcp-audit --bench console                  # SQLite, then PostgreSQL
//! EVENTS=100000 BACKEND=postgres cargo bench -p mcp-audit --bench console   # a quick run
//! ```
//!
//! `EVENTS` (default 1,000,000) is the size of the log; `BACKEND` is `sqlite`, `postgres` or
//! `both` (the default: PostgreSQL when `MCP_AUDIT_TEST_PG` is set). `REQUESTS` (default 400)
//! is the number of timed requests per figure and client count.
//!
//! The log is built fast, through the store's own batch path (a `batch` recorder: group
//! commits of thousands of events), not the command line per event: the realistic events of
//! the store's benchmarks (`crates/store/benches/events`), with one in a thousand requiring
//! review and a customer id (`customer-N`, each shared by about ten events) in the
//! arguments for the full-text search to find; an admin token is recorded with them.
//!
//! Then, each against the release binary run as `mcp-audit serve` in a process of its own:
//!
//! - start-up: from spawning `serve` to its port answering, and to its first answered API
//!   request (a page of one event), three times (the issue's target: under a second);
//! - a page of 100 events (`/api/v1/events?limit=100`, newest first, by no filter, user, tool
//!   and session in turn) at 1 and 16 concurrent clients: p50 and p95 (target p95 < 20 ms);
//! - full-text search (`q=customer-N`): p95 (target < 50 ms), or "n/a (not supported)" when
//!   the server answers 400 to `q`;
//! - the review queue, a page of 100 (`/api/v1/reviews/queue`): p50 and p95;
//! - the UI's event list (`/ui/events`, logged in with a cookie): time to first byte (the
//!   response's head) and to the whole page, p50 and p95;
//! - requests/s at 16 clients of the page of 100, against the requests/s at 16 clients of a
//!   bare axum server answering "hello" (this very executable run with `--hello PORT`, its
//!   own process with two worker threads as `serve` has): the ceiling of any axum server on
//!   this machine with this load generator, in the same run (target ≥ 30% of it);
//! - and against the ceiling of the work itself, in the same run: the same pages read by the
//!   store and JSON-encoded as the API encodes them (payloads left out, as a list reads
//!   them), by 8 threads of this process, each with a warm reader of its own (as many as
//!   the console's pool), without HTTP, without the token check and without any record,
//!   with the console's requests/s as a percentage of it and of "hello"; then the same with a durable record of each page through a `sync` recorder
//!   (what an audited read adds: a search, an event in full). `serve` is stopped by then, so
//!   that the ceiling has the machine to itself, as the console had.
//!
//! The load generator is a hyper client with keep-alive connections, in this process, on the
//! same two cores as the server (as the hello server's is).

#[path = "../../store/benches/events/mod.rs"]
mod events;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcp_audit_core::{Action, AuditEvent, Classification, Payload};
use mcp_audit_server::{NewToken, Role};
use mcp_audit_store::{
    Durability, Filter, PageStart, Query, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
    Store, StoredEvent,
};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

/// One in this many events requires review.
const REVIEW_EVERY: u64 = 1_000;
/// Distinct customer ids in the arguments (about `EVENTS / CUSTOMERS` events each).
const CUSTOMERS: u64 = 100_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The bare axum server: "hello" to every GET of `/`, two worker threads as `serve` has.
fn hello(port: u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let app = axum::Router::new().route("/", axum::routing::get(async || "hello"));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}

/// The i-th event of the log: the benchmarks' realistic event, with a customer id in its
/// arguments and, one in [`REVIEW_EVERY`], the review flag.
fn event(i: u64) -> mcp_audit_core::AuditEvent {
    let mut event = events::event(i);
    if let Some(filters) = event
        .payload
        .input
        .as_mut()
        .and_then(|input| input.get_mut("filters"))
        .and_then(|f| f.as_object_mut())
    {
        filters.insert(
            "customer".into(),
            format!("customer-{}", events::mix(i ^ 0x5eed) % CUSTOMERS).into(),
        );
    }
    event.compliance.requires_review = Some(i % REVIEW_EVERY == REVIEW_EVERY - 1);
    event
}

/// Records `n` events and an admin token through `recorder`; returns the token's secret.
fn fill(recorder: Recorder, n: u64) -> String {
    let started = Instant::now();
    let token = NewToken::generate();
    recorder
        .record(
            token
                .create_event("bench", Role::Admin, "bench")
                .expect("token event"),
        )
        .expect("token");
    for i in 0..n {
        recorder.record(event(i)).expect("record");
        if i > 0 && i % 200_000 == 0 {
            eprintln!("  {i} events...");
        }
    }
    recorder.shutdown().expect("shutdown");
    let took = started.elapsed();
    println!(
        "built the log: {n} events in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    token.secret.clone()
}

fn batch_config() -> RecorderConfig {
    RecorderConfig {
        durability: Durability::Batch,
        ..RecorderConfig::default()
    }
}

/// A PostgreSQL schema of its own, dropped when this value is.
struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn new(base: &str) -> Schema {
        let name = format!("bench_console_{}", std::process::id());
        let mut c = postgres::Client::connect(base, postgres::NoTls).expect("connect");
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .expect("schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        Schema {
            base: base.to_string(),
            url: format!("{base}{sep}options=-csearch_path%3D{name}"),
            name,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// `mcp-audit serve` on `port` over `db`, in a process of its own.
fn spawn_serve(db: &str, port: u16) -> Child {
    Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MCP_AUDIT_DB", db)
        .env_remove("MCP_AUDIT_LOG_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve")
}

/// Stops a child with SIGTERM (as an operator would), and waits for it.
fn stop(mut child: Child) {
    // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

type Http = Client<HttpConnector, Full<Bytes>>;

fn client() -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

fn request(uri: &str, auth: &Auth) -> hyper::Request<Full<Bytes>> {
    let mut builder = hyper::Request::get(uri);
    match auth {
        Auth::Bearer(secret) => {
            builder = builder.header("authorization", format!("Bearer {secret}"));
        }
        Auth::Cookie(cookie) => builder = builder.header("cookie", cookie.as_str()),
        Auth::None => {}
    }
    builder.body(Full::new(Bytes::new())).expect("request")
}

#[derive(Clone)]
enum Auth {
    Bearer(String),
    Cookie(String),
    None,
}

/// One timed GET: (status, time to the response's head, time to its whole body).
async fn timed_get(http: &Http, uri: &str, auth: &Auth) -> (StatusCode, Duration, Duration) {
    let t = Instant::now();
    let response = http.request(request(uri, auth)).await.expect("response");
    let head = t.elapsed();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    std::hint::black_box(body.len());
    (status, head, t.elapsed())
}

/// What a run of requests measured.
struct Run {
    heads: Vec<Duration>,
    wholes: Vec<Duration>,
    per_second: f64,
    refused: Option<StatusCode>,
}

/// `total` GETs by `clients` concurrent clients, the i-th of `uri(i)`; every answer must be 200
/// (the first other status ends the run and is returned in `refused`).
async fn load(
    http: &Http,
    clients: usize,
    total: usize,
    auth: &Auth,
    uri: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Run {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, auth, uri) = (http.clone(), auth.clone(), Arc::clone(&uri));
            tokio::spawn(async move {
                let mut times = Vec::new();
                for i in (c..total).step_by(clients) {
                    let (status, head, whole) = timed_get(&http, &uri(i), &auth).await;
                    if status != StatusCode::OK {
                        return (times, Some(status));
                    }
                    times.push((head, whole));
                }
                (times, None)
            })
        })
        .collect();
    let mut heads = Vec::new();
    let mut wholes = Vec::new();
    let mut refused = None;
    for task in tasks {
        let (times, status) = task.await.expect("client");
        refused = refused.or(status);
        for (head, whole) in times {
            heads.push(head);
            wholes.push(whole);
        }
    }
    let elapsed = started.elapsed();
    heads.sort();
    wholes.sort();
    Run {
        per_second: wholes.len() as f64 / elapsed.as_secs_f64(),
        heads,
        wholes,
        refused,
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn p50_p95(sorted: &[Duration]) -> String {
    format!(
        "p50 {}, p95 {}",
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 95))
    )
}

/// The page of 100 events of the i-th request: by no filter, user, tool and session in turn.
fn page_uri(base: &str, i: usize) -> String {
    let k = events::mix(i as u64 + 11);
    let filter = match i % 4 {
        0 => String::new(),
        1 => format!("&user=user-{}", k % events::USERS),
        2 => format!("&tool=tool_{}", k % events::TOOLS),
        _ => format!("&session=session-{}", k % events::SESSIONS),
    };
    format!("{base}/api/v1/events?limit=100{filter}")
}

/// The filter of the i-th page, as [`page_uri`] asks for it.
fn page_filter(i: usize) -> Filter {
    let k = events::mix(i as u64 + 11);
    let mut filter = Filter::default();
    match i % 4 {
        0 => {}
        1 => filter.user_id = Some(format!("user-{}", k % events::USERS)),
        2 => filter.operation = Some(format!("tool_{}", k % events::TOOLS)),
        _ => filter.session_id = Some(format!("session-{}", k % events::SESSIONS)),
    }
    filter
}

/// An event as the API's list shows it: its payload withheld (a list never holds one).
#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    stored: StoredEvent,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    payload_withheld: bool,
}

/// A page as the API encodes it.
#[derive(serde::Serialize)]
struct PageBody {
    events: Vec<Shown>,
    next_cursor: Option<String>,
    limit: u32,
}

/// A reader of `db` (a SQLite file or a PostgreSQL URL), as `serve` opens one.
fn open_reader(db: &str) -> Box<dyn Store> {
    if db.starts_with("postgres") {
        Box::new(mcp_audit_store::PgStore::open_read_only(db).expect("reader"))
    } else {
        Box::new(SqliteStore::open_read_only(db, SqliteOptions::default()).expect("reader"))
    }
}

/// A recorder on `db` that answers once each record is durable, as the console's is.
fn sync_recorder(db: &str) -> Recorder {
    let config = RecorderConfig::default();
    assert_eq!(config.durability, Durability::Sync);
    if db.starts_with("postgres") {
        let store = mcp_audit_store::PgStore::open(
            db,
            mcp_audit_store::PgOptions {
                log_id: Some("bench-ceiling".into()),
                ..mcp_audit_store::PgOptions::default()
            },
        )
        .expect("writer");
        Recorder::start(store, config).expect("recorder")
    } else {
        let store = SqliteStore::open(db, SqliteOptions::default()).expect("writer");
        Recorder::start(store, config).expect("recorder")
    }
}

/// The record of one page read, like the console's record of an audited read.
fn read_record() -> AuditEvent {
    AuditEvent::admin(Action::Read, "audit_trail", "page")
        .user("bench")
        .classification(Classification::Internal)
        .requires_review(false)
        .build()
        .expect("record")
}

/// As many readers as the console's pool keeps (`POOL_SIZE` in `crates/server/src/lib.rs`):
/// the ceiling reads with as many at once as the console may.
const CONSOLE_READERS: usize = 8;

/// `n` readers of `db`, each warmed by a round of the measured pages (its connection, schema
/// and page cache as a pooled reader of the console has them after its first requests).
fn warm_readers(db: &str, n: usize) -> Vec<Box<dyn Store>> {
    let mut readers: Vec<Box<dyn Store>> = (0..n).map(|_| open_reader(db)).collect();
    for store in &mut readers {
        for i in 0..8 {
            std::hint::black_box(list_page(store.as_mut(), i));
        }
    }
    readers
}

/// Page `i` of the measured pages as the API reads and encodes it: payloads left out (a list
/// shows none, for any role), each event shown with `payload_withheld` where one is stored.
fn list_page(store: &mut dyn Store, i: usize) -> usize {
    let page = store
        .list(&Query {
            filter: page_filter(i),
            start: PageStart::Newest,
            limit: 100,
        })
        .expect("page");
    let body = PageBody {
        events: page
            .events
            .into_iter()
            .map(|mut stored| {
                let withheld = stored.payload_left_out || !stored.event.payload.is_empty();
                stored.event.payload = Payload::default();
                Shown {
                    stored,
                    payload_withheld: withheld,
                }
            })
            .collect(),
        next_cursor: page.next.map(|c| c.0),
        limit: 100,
    };
    serde_json::to_vec(&body).expect("encode").len()
}

/// Pages/s of the ceiling: `total` pages of 100 read and encoded by one thread per reader of
/// `readers` (warm: see [`warm_readers`]); each page recorded durably through `recorder`
/// when one is given.
fn ceiling(readers: &mut [Box<dyn Store>], total: usize, recorder: Option<&Recorder>) -> f64 {
    let threads = readers.len();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (t, store) in readers.iter_mut().enumerate() {
            scope.spawn(move || {
                for i in (t..total).step_by(threads) {
                    std::hint::black_box(list_page(store.as_mut(), i));
                    if let Some(recorder) = recorder {
                        let receipt = recorder.record(read_record()).expect("record");
                        assert!(
                            matches!(receipt, mcp_audit_store::Receipt::Durable { .. }),
                            "{receipt:?}"
                        );
                    }
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// The session cookie of a UI login with `secret`.
async fn login(http: &Http, base: &str, secret: &str) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", secret)
        .finish();
    let response = http
        .request(
            hyper::Request::post(format!("{base}/ui/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))
                .expect("login request"),
        )
        .await
        .expect("login");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let _ = response.into_body().collect().await;
    cookie
}

/// The hello server's requests/s at 16 clients.
async fn hello_rate(http: &Http, port: u16, total: usize) -> f64 {
    let base = format!("http://127.0.0.1:{port}/");
    let run = load(
        http,
        16,
        total,
        &Auth::None,
        Arc::new(move |_| base.clone()),
    )
    .await;
    assert!(run.refused.is_none(), "hello refused");
    run.per_second
}

/// Every figure of one backend, `db` being what `--db` takes.
fn measure(runtime: &tokio::runtime::Runtime, name: &str, db: &str, secret: &str, hello: u16) {
    let requests = env_or("REQUESTS", 400);
    const COLUMN: usize = 44;

    // Start-up, three times: port open, first answer.
    let mut listening = Vec::new();
    let mut answering = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let started = Instant::now();
        let child = spawn_serve(db, port);
        wait_for_port(port);
        listening.push(started.elapsed());
        let base = format!("http://127.0.0.1:{port}");
        let auth = Auth::Bearer(secret.to_string());
        let status = runtime.block_on(async {
            let http = client();
            timed_get(&http, &format!("{base}/api/v1/events?limit=1"), &auth)
                .await
                .0
        });
        answering.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "the first request");
        stop(child);
    }
    println!(
        "{:<COLUMN$}{}",
        format!("[{name}] start-up, port open:"),
        listening
            .iter()
            .map(|d| ms(*d))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "{:<COLUMN$}{} (target < 1 s)",
        format!("[{name}] start-up, first page answered:"),
        answering
            .iter()
            .map(|d| ms(*d))
            .collect::<Vec<_>>()
            .join(" / ")
    );

    let port = free_port();
    let child = spawn_serve(db, port);
    wait_for_port(port);
    let base = format!("http://127.0.0.1:{port}");
    let auth = Auth::Bearer(secret.to_string());
    let (rate_16, hello_16) = runtime.block_on(async {
        let http = client();
        // Warm: the token table, the pool of readers, the page cache.
        let warm = base.clone();
        load(&http, 4, 100, &auth, Arc::new(move |i| page_uri(&warm, i))).await;

        let mut rate_16 = 0.0;
        for clients in [1, 16] {
            let b = base.clone();
            let run = load(
                &http,
                clients,
                requests,
                &auth,
                Arc::new(move |i| page_uri(&b, i)),
            )
            .await;
            assert!(
                run.refused.is_none(),
                "a page was refused: {:?}",
                run.refused
            );
            println!(
                "{:<COLUMN$}{} ({:.0} requests/s) (target p95 < 20 ms)",
                format!("[{name}] page of 100, {clients} client(s):"),
                p50_p95(&run.wholes),
                run.per_second
            );
            if clients == 16 {
                rate_16 = run.per_second;
            }
        }
        let hello_per_second = hello_rate(&http, hello, requests * 20).await;
        println!(
            "{:<COLUMN$}{:.0} requests/s against hello's {:.0}: {:.1}% (target ≥ 30%)",
            format!("[{name}] requests/s at 16 clients:"),
            rate_16,
            hello_per_second,
            100.0 * rate_16 / hello_per_second
        );

        let b = base.clone();
        let search = load(
            &http,
            1,
            requests / 2,
            &auth,
            Arc::new(move |i| {
                let k = events::mix(i as u64 + 3) % CUSTOMERS;
                format!("{b}/api/v1/events?limit=100&q=customer-{k}")
            }),
        )
        .await;
        let figure = match search.refused {
            Some(StatusCode::BAD_REQUEST) => "n/a (not supported)".to_string(),
            Some(other) => panic!("the search answered {other}"),
            None => format!("{} (target p95 < 50 ms)", p50_p95(&search.wholes)),
        };
        println!("{:<COLUMN$}{figure}", format!("[{name}] full-text search:"));

        let b = base.clone();
        let queue = load(
            &http,
            1,
            requests / 2,
            &auth,
            Arc::new(move |_| format!("{b}/api/v1/reviews/queue?limit=100")),
        )
        .await;
        assert!(queue.refused.is_none(), "the queue: {:?}", queue.refused);
        println!(
            "{:<COLUMN$}{}",
            format!("[{name}] review queue, page of 100:"),
            p50_p95(&queue.wholes)
        );

        let cookie = Auth::Cookie(login(&http, &base, secret).await);
        let b = base.clone();
        let ui = load(
            &http,
            1,
            requests / 2,
            &cookie,
            Arc::new(move |_| format!("{b}/ui/events")),
        )
        .await;
        assert!(ui.refused.is_none(), "the UI: {:?}", ui.refused);
        println!(
            "{:<COLUMN$}first byte {}; whole page {}",
            format!("[{name}] UI event list:"),
            p50_p95(&ui.heads),
            p50_p95(&ui.wholes)
        );
        (rate_16, hello_per_second)
    });
    stop(child);

    // The ceiling of the work itself, `serve` stopped: as many readers as the console's
    // pool, warm, as the console's were.
    let mut readers = warm_readers(db, CONSOLE_READERS);
    ceiling(&mut readers, 100, None);
    let bare = ceiling(&mut readers, requests, None);
    println!(
        "{:<COLUMN$}{bare:.0} pages/s; the console's {rate_16:.0} requests/s are {:.0}% of it \
         ({:.1}% of hello's {hello_16:.0})",
        format!("[{name}] in-process, {CONSOLE_READERS} warm readers:"),
        100.0 * rate_16 / bare,
        100.0 * rate_16 / hello_16,
    );
    // Little's law: 16 requests always in flight at the ceiling's rate wait 16 / rate each on
    // average, so no console on this machine can answer 16 clients' pages faster than that:
    // the same run's floor under the 16-client latency target.
    println!(
        "{:<COLUMN$}{:.1} ms mean at 16 clients (16 / {bare:.0} pages/s; target p95 < 20 ms)",
        format!("[{name}] latency floor, in-process rate:"),
        16_000.0 / bare,
    );
    let recorder = sync_recorder(db);
    let recorded = ceiling(&mut readers, requests, Some(&recorder));
    recorder.shutdown().expect("shutdown");
    println!(
        "{:<COLUMN$}{recorded:.0} pages/s, each page recorded durably",
        format!("[{name}] the same, with a record each:"),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--hello") {
        let port = args
            .get(at + 1)
            .and_then(|p| p.parse().ok())
            .expect("--hello PORT");
        hello(port);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let n = env_or("EVENTS", 1_000_000) as u64;
    let pg = std::env::var("MCP_AUDIT_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty());
    let backend = std::env::var("BACKEND").unwrap_or_else(|_| "both".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hello_port = free_port();
    let hello_server = Command::new(std::env::current_exe().expect("this executable"))
        .args(["--hello", &hello_port.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn hello");
    wait_for_port(hello_port);
    println!("console at {n} events (load generator: hyper, keep-alive)");

    if backend == "sqlite" || backend == "both" {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("db");
        let secret = fill(Recorder::start(store, batch_config()).expect("recorder"), n);
        measure(
            &runtime,
            "sqlite",
            path.to_str().expect("a UTF-8 path"),
            &secret,
            hello_port,
        );
    }
    if backend == "postgres" || backend == "both" {
        match &pg {
            None => println!("[postgres] skipped: MCP_AUDIT_TEST_PG is not set"),
            Some(base) => {
                let schema = Schema::new(base);
                let store = mcp_audit_store::PgStore::open(
                    &schema.url,
                    mcp_audit_store::PgOptions {
                        log_id: Some("bench".into()),
                        ..mcp_audit_store::PgOptions::default()
                    },
                )
                .expect("writer");
                let secret = fill(Recorder::start(store, batch_config()).expect("recorder"), n);
                measure(&runtime, "postgres", &schema.url, &secret, hello_port);
            }
        }
    }
    stop(hello_server);
}
