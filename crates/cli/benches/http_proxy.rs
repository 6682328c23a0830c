//! Streamable HTTP proxy overhead, in one run: `tools/call` POSTs (JSON answers) to a minimal
//! Rust MCP upstream, directly and through `mcp-audit proxy --listen` in `batch` and `sync`
//! durability, with 1 and 64 clients in flight.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench http_proxy            # 3 rounds, 20,000 calls at 64 clients
//! ROUNDS=5 CALLS=40000 cargo bench -p mcp-audit --bench http_proxy
//! ```
//!
//! The upstream is this very executable run with `--upstream PORT` (its own process, so that
//! the load generator and the proxy do not share its runtime), answering every POST with a JSON
//! result. The load generator is a hyper client with keep-alive connections, one per client.
//! Prints, per setting, the medians over the rounds of p50 and p99 latency, the added latency
//! against the direct connection of the same round, and throughput as a ratio to direct.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The upstream: answers every POST on /mcp with a JSON-RPC result for its id.
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

struct Measured {
    p50_us: f64,
    p99_us: f64,
    per_s: f64,
}

/// `calls` POSTs to `addr` from `clients` concurrent clients, each one call at a time.
async fn load(addr: SocketAddr, clients: usize, calls: usize) -> Measured {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build(connector);
    let client = Arc::new(client);
    let url: hyper::Uri = format!("http://{addr}/mcp").parse().expect("uri");
    let per_client = calls / clients;
    // Warm-up: open the connections.
    let mut warm = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        warm.push(tokio::spawn(async move {
            call(&client, &url, c as u64).await;
        }));
    }
    for w in warm {
        w.await.expect("warm-up");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                call(&client, &url, (c * per_client + i) as u64).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e6;
    Measured {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        per_s: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

async fn call(client: &Client<HttpConnector, Full<Bytes>>, url: &hyper::Uri, i: u64) {
    let req = hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(request(i)))
        .expect("request");
    let response = client.request(req).await.expect("response");
    assert!(response.status().is_success(), "{}", response.status());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(body.starts_with(b"{"), "a JSON answer");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--upstream") {
        let port = args[i + 1].parse().expect("a port");
        return upstream(port);
    }
    let rounds = env_or("ROUNDS", 3);
    let calls = env_or("CALLS", 20_000);
    let dir = tempfile::tempdir().expect("tempdir");

    let up_port = free_port();
    let me = std::env::current_exe().expect("the bench executable");
    let _upstream = Running(
        Command::new(me)
            .args(["--upstream", &up_port.to_string()])
            .spawn()
            .expect("upstream"),
    );
    wait_listening(up_port);
    let mut proxies = Vec::new();
    for durability in ["batch", "sync"] {
        let port = free_port();
        let child = Command::new(BIN)
            .arg("proxy")
            .arg("--db")
            .arg(dir.path().join(format!("{durability}.db")))
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
    println!(
        "HTTP proxy overhead: tools/call POST with JSON answers, {rounds} rounds, medians (2 shared cores)"
    );
    println!(
        "{:>7} {:>8} {:>9} {:>9} {:>11} {:>11} {:>10} {:>8}",
        "clients", "target", "p50 µs", "p99 µs", "+p50 µs", "+p99 µs", "calls/s", "vs direct"
    );
    for clients in [1usize, 64] {
        let n = if clients == 1 { calls / 5 } else { calls };
        let targets: Vec<(&str, u16)> = std::iter::once(("direct", up_port))
            .chain(proxies.iter().map(|(d, p, _)| (*d, *p)))
            .collect();
        let mut results: Vec<Vec<Measured>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (t, (_, port)) in targets.iter().enumerate() {
                let addr: SocketAddr = ([127, 0, 0, 1], *port).into();
                results[t].push(runtime.block_on(load(addr, clients, n)));
            }
        }
        for (t, (name, _)) in targets.iter().enumerate() {
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
            println!(
                "{clients:>7} {name:>8} {p50:>9.0} {p99:>9.0} {added50:>11.0} {added99:>11.0} {per_s:>10.0} {:>7.0}%",
                ratio * 100.0
            );
        }
    }
}
