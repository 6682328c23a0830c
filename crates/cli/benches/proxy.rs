//! Proxy overhead, in one run: `tools/call` requests to a minimal echo MCP server, directly and
//! through `mcp-audit proxy` in `batch` and `sync` durability.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench proxy             # 20,000 calls per measurement
//! CALLS=5000 cargo bench -p mcp-audit --bench proxy
//! ```
//!
//! The echo server is this very executable run with `--echo-server`, so that a Node.js server's
//! own cost does not hide the proxy's. Prints added latency (p50, p99) with one call in flight,
//! and throughput with 32 calls in flight, each as a ratio to the direct connection.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

fn echo_server() {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let Ok(line) = line else { return };
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(id) = request.get("id") {
            let reply = serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": {"content": [{"type": "text", "text": "echo"}], "isError": false}
            });
            if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    }
}

fn request(i: u64) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"message\":\"hello {i}\",\"padding\":\"{}\"}}}}}}\n",
        "x".repeat(200)
    )
}

struct Peer {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

fn start(target: &Target, db: &std::path::Path) -> Peer {
    let me = std::env::current_exe().expect("the bench executable");
    let mut command = match target {
        Target::Direct => {
            let mut c = Command::new(&me);
            c.arg("--echo-server");
            c
        }
        Target::Proxy(durability) => {
            let mut c = Command::new(BIN);
            c.args(["proxy", "--durability", durability, "--db"])
                .arg(db)
                .arg("--")
                .arg(&me)
                .arg("--echo-server");
            c
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the peer");
    let input = child.stdin.take().expect("stdin");
    let output = BufReader::new(child.stdout.take().expect("stdout"));
    Peer {
        child,
        input,
        output,
    }
}

enum Target {
    Direct,
    Proxy(&'static str),
}

/// One call in flight: the latency of each.
fn latencies(peer: &mut Peer, calls: u64) -> Vec<Duration> {
    let mut line = String::new();
    let mut all: Vec<Duration> = (0..calls)
        .map(|i| {
            let t = Instant::now();
            peer.input.write_all(request(i).as_bytes()).expect("write");
            peer.input.flush().expect("flush");
            line.clear();
            peer.output.read_line(&mut line).expect("read");
            t.elapsed()
        })
        .collect();
    all.sort_unstable();
    all
}

/// `window` calls in flight: calls per second.
fn throughput(mut peer: Peer, calls: u64, window: usize) -> f64 {
    let (slots, free) = sync_channel::<()>(window);
    let mut output = peer.output;
    let t = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        for _ in 0..calls {
            line.clear();
            output.read_line(&mut line).expect("read");
            let _ = free.recv();
        }
    });
    for i in 0..calls {
        slots.send(()).expect("slot");
        peer.input.write_all(request(i).as_bytes()).expect("write");
        peer.input.flush().expect("flush");
    }
    reader.join().expect("reader");
    let rate = calls as f64 / t.elapsed().as_secs_f64();
    drop(peer.input);
    let _ = peer.child.wait();
    rate
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[((p * sorted.len()).div_ceil(100).max(1)) - 1]
}

fn main() {
    if std::env::args().any(|a| a == "--echo-server") {
        return echo_server();
    }
    let calls: u64 = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("proxy overhead: {calls} tools/call per measurement, echo server, 2 cores");

    let mut results = Vec::new();
    for (name, target) in [
        ("direct", Target::Direct),
        ("batch", Target::Proxy("batch")),
        ("sync", Target::Proxy("sync")),
    ] {
        let db = dir.path().join(format!("{name}.db"));
        let mut peer = start(&target, &db);
        let lat = latencies(&mut peer, calls);
        drop(peer.input);
        let _ = peer.child.wait();
        let rate = throughput(start(&target, &db), calls, 32);
        results.push((name, pct(&lat, 50), pct(&lat, 99), rate));
    }
    let (_, d50, d99, drate) = results[0];
    for (name, p50, p99, rate) in &results {
        println!(
            "{name:<6} 1 in flight: p50 {:>8.1} µs  p99 {:>8.1} µs  (added p50 {:>7.1} µs, p99 {:>7.1} µs) | 32 in flight: {:>8.0} calls/s ({:>5.1}% of direct)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            (p50.as_secs_f64() - d50.as_secs_f64()) * 1e6,
            (p99.as_secs_f64() - d99.as_secs_f64()) * 1e6,
            rate,
            100.0 * rate / drate
        );
    }
}
