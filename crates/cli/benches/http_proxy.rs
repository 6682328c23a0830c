//! Streamable HTTP proxy overhead, in one run: `tools/call` POSTs to an MCP upstream, directly,
//! through a bare HTTP relay, and through `mcp-audit proxy --listen` in `batch` and `sync`
//! durability, with 1 and 64 clients in flight, against two upstreams:
//!
//! - `minimal`: a minimal Rust MCP upstream (axum) that answers every POST with a JSON result
//!   and does almost no work: the proxy's own cost, with nothing to hide it.
//! - `everything`: the official reference server `server-everything streamableHttp` (Node.js),
//!   a real, stateful MCP server: each client opens its own MCP session (`initialize`, then
//!   `notifications/initialized`, outside the timed part) and calls its `echo` tool; answers
//!   come as `text/event-stream`. It is installed by `scripts/install-test-peers.sh` (into
//!   `.test-peers/`); without it, the bench says so and measures the minimal upstream only.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench http_proxy            # both upstreams, 3 rounds
//! UPSTREAM=minimal cargo bench -p mcp-audit --bench http_proxy      # one of them
//! UPSTREAM=everything cargo bench -p mcp-audit --bench http_proxy
//! ROUNDS=5 CALLS=40000 EVERYTHING_CALLS=10000 cargo bench -p mcp-audit --bench http_proxy
//! ROUNDS=0 PAIRED_CALLS=32000 UPSTREAM=everything cargo bench -p mcp-audit --bench http_proxy
//! ```
//!
//! `CALLS` (default 20,000) and `EVERYTHING_CALLS` (default 8,000) are the calls at 64 clients
//! per setting and round for each upstream; at 1 client, a fifth of them. Last, 64 clients
//! each take turns calling directly, through the relay and through the `batch` proxy
//! (`PAIRED_CALLS` calls to each, default as many as a round), which times the paths under the
//! same load at the same moments: the added latency without the drift of the upstream from one
//! round to the next, with the relay's as the control.
//!
//! The minimal upstream is this very executable run with `--upstream PORT` (its own process,
//! so that the load generator and the proxy do not share its runtime). The load generator is a
//! hyper client with keep-alive connections, one per client. Prints, per upstream and setting,
//! the medians over the rounds of p50 and p99 latency, the added latency against the direct
//! connection of the same round, throughput as a ratio to direct, and the CPU time (user and
//! system, from `/proc`, in 10 ms ticks) per call of the upstream process and of the proxy
//! process during the timed part; the rounds interleave the settings (direct, relay, `batch`,
//! `sync`, direct, ...).
//!
//! The relay is this executable run with `--relay PORT UPSTREAM_PORT`: a reverse proxy (axum
//! serving, a hyper client forwarding, keep-alive both ways, bodies streamed through untouched)
//! that neither reads, interprets nor records anything. Its ratio to direct is the ceiling of
//! any HTTP proxy process on this machine, measured in the same run.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

/// The MCP protocol version the `everything` sessions negotiate.
const PROTOCOL: &str = "2025-06-18";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The minimal upstream: answers every POST on /mcp with a JSON-RPC result for its id.
fn upstream(port: u16) {
    use axum::routing::post;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/mcp",
            post(|body: Bytes| async move {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(serde_json::Value::Null);
                let reply = serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "result": {"content": [{"type": "text", "text": "echo"}], "isError": false}
                });
                ([("content-type", "application/json")], reply.to_string())
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}

/// The bare relay: every request on `port` is sent on to the upstream on `upstream_port` as it
/// came (method, path, headers, streamed body), and its answer back as it comes.
fn relay(port: u16, upstream_port: u16) {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    use axum::serve::ListenerExt;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, axum::body::Body> =
            Client::builder(TokioExecutor::new()).build(connector);
        let app = axum::Router::new().fallback(move |request: Request| {
            let client = client.clone();
            async move {
                let (mut parts, body) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("http://127.0.0.1:{upstream_port}{path}")
                    .parse()
                    .expect("an upstream URI");
                match client.request(Request::from_parts(parts, body)).await {
                    Ok(response) => response.map(axum::body::Body::new).into_response(),
                    Err(_) => hyper::StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind")
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, app).await.expect("serve");
    });
}

/// `server-everything`'s entry point in the installed test peers, if it is there.
fn everything_js() -> Option<PathBuf> {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../.test-peers/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    js.exists().then_some(js)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn request(i: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"message\":\"hello {i}\",\"padding\":\"{}\"}}}}}}",
        "x".repeat(200)
    ))
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"http-proxy-bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

struct Measured {
    p50_us: f64,
    p99_us: f64,
    per_s: f64,
    /// CPU time (user and system) per call of the upstream, and of the proxy (if any).
    upstream_cpu_us: f64,
    proxy_cpu_us: f64,
}

/// The CPU time (user and system, all threads) process `pid` has used so far, from
/// `/proc/PID/stat` in clock ticks of 10 ms (Linux; zero elsewhere).
fn cpu_time(pid: u32) -> Duration {
    let ticks = || -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's closing parenthesis: field 3 (state) on; utime and stime are
        // fields 14 and 15.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    };
    Duration::from_millis(ticks().unwrap_or(0) * 10)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The load generator's client: keep-alive, TCP_NODELAY, up to `connections` kept open.
fn load_client(connections: usize) -> Arc<HttpClient> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build(connector),
    )
}

/// Where a client sends its calls, and in which MCP session (`None`: the minimal upstream,
/// which has none).
struct Endpoint {
    url: hyper::Uri,
    session: Option<String>,
}

/// `calls` POSTs to `addr` from `clients` concurrent clients, each one call at a time; with
/// `sessions`, each client first opens its own MCP session (not timed) and ends it after.
/// `pids`: the upstream's process and the proxy's (if any), whose CPU time is measured.
async fn load(
    addr: SocketAddr,
    clients: usize,
    calls: usize,
    sessions: bool,
    pids: (u32, Option<u32>),
) -> Measured {
    let client = load_client(clients);
    let url: hyper::Uri = format!("http://{addr}/mcp").parse().expect("uri");
    let per_client = calls / clients;
    // Warm-up: open the connections (and the sessions), one call each.
    let mut warm = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        warm.push(tokio::spawn(async move {
            warm_endpoint(&client, url, sessions, c as u64).await
        }));
    }
    let mut endpoints = Vec::with_capacity(clients);
    for w in warm {
        endpoints.push(w.await.expect("warm-up"));
    }
    let cpu = |pid: Option<u32>| pid.map(cpu_time).unwrap_or_default();
    let (upstream_cpu, proxy_cpu) = (cpu(Some(pids.0)), cpu(pids.1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, endpoint) in endpoints.into_iter().enumerate() {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                call(&client, &endpoint, (c * per_client + i) as u64).await;
                latencies.push(t.elapsed());
            }
            (latencies, endpoint)
        }));
    }
    let mut all = Vec::with_capacity(calls);
    let mut endpoints = Vec::with_capacity(clients);
    for t in tasks {
        let (latencies, endpoint) = t.await.expect("client");
        all.extend(latencies);
        endpoints.push(endpoint);
    }
    let elapsed = started.elapsed();
    let upstream_cpu = cpu(Some(pids.0)) - upstream_cpu;
    let proxy_cpu = cpu(pids.1) - proxy_cpu;
    // The sessions end, so that the upstream (and the proxy) hold none across rounds.
    let mut ends = Vec::new();
    for endpoint in endpoints {
        let client = client.clone();
        ends.push(tokio::spawn(async move {
            end_session(&client, &endpoint).await;
        }));
    }
    for e in ends {
        e.await.expect("session end");
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e6;
    Measured {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        per_s: all.len() as f64 / elapsed.as_secs_f64(),
        upstream_cpu_us: upstream_cpu.as_secs_f64() * 1e6 / all.len() as f64,
        proxy_cpu_us: proxy_cpu.as_secs_f64() * 1e6 / all.len() as f64,
    }
}

/// A POST of `body` to the endpoint, in its session if it has one; the answer's head and body.
async fn post(
    client: &HttpClient,
    url: &hyper::Uri,
    session: Option<&str>,
    body: Bytes,
) -> (hyper::http::response::Parts, Bytes) {
    let mut req = hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(id) = session {
        req = req
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", PROTOCOL);
    }
    let req = req.body(Full::new(body)).expect("request");
    let response = client.request(req).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    assert!(
        parts.status.is_success(),
        "{}: {}",
        parts.status,
        String::from_utf8_lossy(&body)
    );
    (parts, body)
}

/// An endpoint at `url` whose connection is open and has carried one call `i`: with
/// `sessions`, in an MCP session of its own (opened outside the timed part).
async fn warm_endpoint(client: &HttpClient, url: hyper::Uri, sessions: bool, i: u64) -> Endpoint {
    let session = if sessions {
        Some(open_session(client, &url).await)
    } else {
        None
    };
    let endpoint = Endpoint { url, session };
    call(client, &endpoint, i).await;
    endpoint
}

/// `initialize` and `notifications/initialized`: the new session's id.
async fn open_session(client: &HttpClient, url: &hyper::Uri) -> String {
    let (head, body) = post(client, url, None, Bytes::from_static(INITIALIZE.as_bytes())).await;
    assert!(contains(&body, b"\"result\""), "an initialize result");
    let id = head
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_string();
    post(
        client,
        url,
        Some(&id),
        Bytes::from_static(INITIALIZED.as_bytes()),
    )
    .await;
    id
}

/// DELETE of the endpoint's session, if it has one.
async fn end_session(client: &HttpClient, endpoint: &Endpoint) {
    let Some(id) = &endpoint.session else { return };
    let req = hyper::Request::delete(endpoint.url.clone())
        .header("mcp-session-id", id.as_str())
        .header("mcp-protocol-version", PROTOCOL)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(req).await.expect("response");
    assert!(response.status().is_success(), "{}", response.status());
    let _ = response.into_body().collect().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn call(client: &HttpClient, endpoint: &Endpoint, i: u64) {
    let (_, body) = post(
        client,
        &endpoint.url,
        endpoint.session.as_deref(),
        request(i),
    )
    .await;
    if endpoint.session.is_some() {
        // An event stream whose one event is the result.
        assert!(
            contains(&body, b"Echo: hello"),
            "an echo: {}",
            String::from_utf8_lossy(&body)
        );
    } else {
        assert!(body.starts_with(b"{"), "a JSON answer");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Which upstream a measurement runs against.
#[derive(Clone, Copy, PartialEq)]
enum Upstream {
    Minimal,
    Everything,
}

/// Starts `which` on a free port; `None` when it is not installed.
fn start_upstream(which: Upstream) -> Option<(Running, u16)> {
    let port = free_port();
    let child = match which {
        Upstream::Minimal => {
            let me = std::env::current_exe().expect("the bench executable");
            Command::new(me)
                .args(["--upstream", &port.to_string()])
                .spawn()
                .expect("upstream")
        }
        Upstream::Everything => {
            let Some(js) = everything_js() else {
                println!(
                    "\nserver-everything is not installed: its part is skipped. Install the test peers \
                     with scripts/install-test-peers.sh (npm and python3 needed), then run again."
                );
                return None;
            };
            Command::new("node")
                .arg(js)
                .arg("streamableHttp")
                .env("PORT", port.to_string())
                // It logs every request on stdout; its errors (and a crash) show on stderr.
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("node (server-everything)")
        }
    };
    let running = Running(child);
    wait_listening(port);
    Some((running, port))
}

/// The whole measurement against one upstream: its own proxies, its own rounds.
fn measure(which: Upstream, rounds: usize, calls: usize, dir: &Path) {
    let Some((upstream, up_port)) = start_upstream(which) else {
        return;
    };
    let label = match which {
        Upstream::Minimal => "minimal",
        Upstream::Everything => "everything",
    };
    let mut proxies = Vec::new();
    let relay_port = free_port();
    let relay = Command::new(std::env::current_exe().expect("the bench executable"))
        .args(["--relay", &relay_port.to_string(), &up_port.to_string()])
        .stderr(Stdio::inherit())
        .spawn()
        .expect("relay");
    wait_listening(relay_port);
    proxies.push(("relay", relay_port, Running(relay)));
    for durability in ["batch", "sync"] {
        let port = free_port();
        let child = Command::new(BIN)
            .arg("proxy")
            .arg("--db")
            .arg(dir.join(format!("{label}-{durability}.db")))
            .args(["--durability", durability])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--upstream", &format!("http://127.0.0.1:{up_port}/mcp")])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("proxy");
        wait_listening(port);
        proxies.push((durability, port, Running(child)));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!();
    match which {
        Upstream::Minimal => println!(
            "minimal Rust upstream: tools/call POST with JSON answers, {rounds} rounds, medians (2 shared cores)"
        ),
        Upstream::Everything => println!(
            "server-everything streamableHttp (Node.js): tools/call echo, one MCP session per client, SSE answers, {rounds} rounds, medians (2 shared cores)"
        ),
    }
    println!(
        "{:>7} {:>8} {:>9} {:>9} {:>11} {:>11} {:>10} {:>9} {:>12} {:>12}",
        "clients",
        "target",
        "p50 µs",
        "p99 µs",
        "+p50 µs",
        "+p99 µs",
        "calls/s",
        "vs direct",
        "upstream CPU",
        "proxy CPU"
    );
    let sessions = which == Upstream::Everything;
    // ROUNDS=0: the paired measurement only.
    let settings: &[usize] = if rounds == 0 { &[] } else { &[1, 64] };
    for &clients in settings {
        let n = if clients == 1 { calls / 5 } else { calls };
        let targets: Vec<(&str, u16, Option<u32>)> = std::iter::once(("direct", up_port, None))
            .chain(proxies.iter().map(|(d, p, r)| (*d, *p, Some(r.0.id()))))
            .collect();
        let mut results: Vec<Vec<Measured>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (t, (_, port, proxy)) in targets.iter().enumerate() {
                let addr: SocketAddr = ([127, 0, 0, 1], *port).into();
                let pids = (upstream.0.id(), *proxy);
                results[t].push(runtime.block_on(load(addr, clients, n, sessions, pids)));
            }
        }
        let mut ratios = Vec::with_capacity(targets.len());
        for (t, (name, _, proxy)) in targets.iter().enumerate() {
            let p50 = median(results[t].iter().map(|m| m.p50_us).collect());
            let p99 = median(results[t].iter().map(|m| m.p99_us).collect());
            let per_s = median(results[t].iter().map(|m| m.per_s).collect());
            let added50 = median(
                (0..rounds)
                    .map(|r| results[t][r].p50_us - results[0][r].p50_us)
                    .collect(),
            );
            let added99 = median(
                (0..rounds)
                    .map(|r| results[t][r].p99_us - results[0][r].p99_us)
                    .collect(),
            );
            let ratio = median(
                (0..rounds)
                    .map(|r| results[t][r].per_s / results[0][r].per_s)
                    .collect(),
            );
            let up_cpu = median(results[t].iter().map(|m| m.upstream_cpu_us).collect());
            let proxy_cpu = match proxy {
                Some(_) => {
                    let us = median(results[t].iter().map(|m| m.proxy_cpu_us).collect());
                    format!("{us:.0} µs")
                }
                None => "-".to_string(),
            };
            println!(
                "{clients:>7} {name:>8} {p50:>9.0} {p99:>9.0} {added50:>11.0} {added99:>11.0} {per_s:>10.0} {:>8.0}% {:>9.0} µs {proxy_cpu:>12}",
                ratio * 100.0,
                up_cpu
            );
            ratios.push(ratio);
        }
        // targets: direct, relay, batch, sync.
        println!(
            "{clients:>7} clients: the bare relay's {:.0}% of direct is the ceiling of any HTTP proxy here; `batch` reaches {:.0}% of it",
            ratios[1] * 100.0,
            100.0 * ratios[2] / ratios[1]
        );
    }

    // Interleaved: each client takes turns calling directly, through the relay and through
    // the `batch` proxy, so that all three are timed under the same load at the same moments,
    // and the upstream's own slow moments (a garbage collection) fall on all alike rather than
    // on one round or another. The relay's figure is the control: what a process in the path
    // that does nothing is measured to add.
    let port_of = |name: &str| {
        proxies
            .iter()
            .find(|(d, _, _)| *d == name)
            .map(|(_, port, _)| *port)
            .expect("a proxy of that name")
    };
    let per_path = env_or("PAIRED_CALLS", calls);
    let paths = [
        ("direct", up_port),
        ("relay", port_of("relay")),
        ("batch", port_of("batch")),
    ];
    let addrs: Vec<SocketAddr> = paths
        .iter()
        .map(|(_, port)| ([127, 0, 0, 1], *port).into())
        .collect();
    let figures = runtime.block_on(interleaved(addrs, 64, per_path, sessions));
    let (d50, d99) = figures[0];
    for ((name, _), (p50, p99)) in paths.iter().zip(&figures).skip(1) {
        println!(
            "{:>7} interleaved, {per_path} calls each: direct p50 / p99 {d50:.0} / {d99:.0} µs, {name} {p50:.0} / {p99:.0} µs: added p50 {:.0} µs, p99 {:.0} µs",
            64,
            p50 - d50,
            p99 - d99
        );
    }
}

/// `calls` calls to each of `addrs` from `clients` concurrent clients, each client taking the
/// addresses in turn (in a rotating order), one call at a time: (p50, p99) in µs of each.
async fn interleaved(
    addrs: Vec<SocketAddr>,
    clients: usize,
    calls: usize,
    sessions: bool,
) -> Vec<(f64, f64)> {
    let client = load_client(clients * addrs.len());
    let per_client = calls / clients;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, addrs) = (client.clone(), addrs.clone());
        tasks.push(tokio::spawn(async move {
            let mut endpoints = Vec::new();
            for addr in &addrs {
                let url: hyper::Uri = format!("http://{addr}/mcp").parse().expect("uri");
                endpoints.push(warm_endpoint(&client, url, sessions, c as u64).await);
            }
            let k = endpoints.len();
            let mut times: Vec<Vec<Duration>> =
                (0..k).map(|_| Vec::with_capacity(per_client)).collect();
            for i in 0..per_client {
                // Which path goes first rotates too.
                for j in 0..k {
                    let path = (i + j) % k;
                    let t = Instant::now();
                    call(&client, &endpoints[path], (c * per_client + i) as u64).await;
                    times[path].push(t.elapsed());
                }
            }
            for endpoint in &endpoints {
                end_session(&client, endpoint).await;
            }
            times
        }));
    }
    let mut all: Vec<Vec<Duration>> = addrs.iter().map(|_| Vec::new()).collect();
    for t in tasks {
        for (path, times) in t.await.expect("client").into_iter().enumerate() {
            all[path].extend(times);
        }
    }
    all.into_iter()
        .map(|mut v| {
            v.sort();
            let at =
                |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6;
            (at(0.50), at(0.99))
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--relay") {
        let port = args[i + 1].parse().expect("a port");
        let upstream_port = args[i + 2].parse().expect("the upstream's port");
        return relay(port, upstream_port);
    }
    if let Some(i) = args.iter().position(|a| a == "--upstream") {
        let port = args[i + 1].parse().expect("a port");
        return upstream(port);
    }
    let rounds = env_or("ROUNDS", 3);
    let which = std::env::var("UPSTREAM").unwrap_or_else(|_| "both".into());
    let (minimal, everything) = match which.as_str() {
        "both" => (true, true),
        "minimal" => (true, false),
        "everything" => (false, true),
        other => panic!("UPSTREAM={other}: expected minimal, everything or both"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    println!("HTTP proxy overhead (direct vs mcp-audit proxy --listen, batch and sync)");
    if minimal {
        measure(
            Upstream::Minimal,
            rounds,
            env_or("CALLS", 20_000),
            dir.path(),
        );
    }
    if everything {
        measure(
            Upstream::Everything,
            rounds,
            env_or("EVERYTHING_CALLS", 8_000),
            dir.path(),
        );
    }
}
