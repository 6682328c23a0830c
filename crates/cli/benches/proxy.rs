//! Proxy overhead, in one run: `tools/call` requests to a minimal echo MCP server, directly,
//! through a bare byte relay, and through `mcp-audit proxy` in `batch` and `sync` durability.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench proxy             # 20,000 calls per measurement, 3 rounds
//! CALLS=5000 ROUNDS=1 cargo bench -p mcp-audit --bench proxy
//! PATHS=batch cargo bench -p mcp-audit --bench proxy   # direct and `batch` only (also: relay, sync)
//! ```
//!
//! The echo server is this very executable run with `--echo-server`, so that a Node.js server's
//! own cost does not hide the proxy's. Prints added latency (p50, p99) with one call in flight,
//! and throughput with 32 calls in flight, each as a ratio to the direct connection of the same
//! round, then the median of each over the rounds (the paths take turns within a round, so that
//! the machine's other load falls on all of them alike).
//!
//! The relay (this executable with `--relay`) starts the echo server and only copies bytes
//! between it and its own standard input and output, with no framing, parsing or recording: the
//! least that any process placed between a client and a server costs. Its ratio to direct is
//! the ceiling of every stdio proxy on this machine, measured in the same run.

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

/// Copies bytes both ways between this process's standard streams and an echo server it starts.
/// `std::io::copy` moves pipe to pipe with `splice` on Linux where it can: no relay does less.
fn relay() {
    let me = std::env::current_exe().expect("the bench executable");
    let mut server = Command::new(me)
        .arg("--echo-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo server");
    let mut to_server = server.stdin.take().expect("stdin");
    let mut from_server = server.stdout.take().expect("stdout");
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_server);
        // Dropping `to_server` closes the server's input, as a proxy does at the end.
    });
    let _ = std::io::copy(&mut from_server, &mut std::io::stdout().lock());
    let _ = up.join();
    let _ = server.wait();
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
        Target::Relay => {
            let mut c = Command::new(&me);
            c.arg("--relay");
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
    Relay,
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One path's figures in one round.
struct Figures {
    p50: Duration,
    p99: Duration,
    rate: f64,
}

fn measure(target: &Target, db: &std::path::Path, calls: u64) -> Figures {
    let mut peer = start(target, db);
    let lat = latencies(&mut peer, calls);
    drop(peer.input);
    let _ = peer.child.wait();
    let rate = throughput(start(target, db), calls, 32);
    Figures {
        p50: pct(&lat, 50),
        p99: pct(&lat, 99),
        rate,
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    if std::env::args().any(|a| a == "--echo-server") {
        return echo_server();
    }
    if std::env::args().any(|a| a == "--relay") {
        return relay();
    }
    let calls = env_number("CALLS", 20_000);
    let rounds = env_number("ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "proxy overhead: {calls} tools/call per measurement, {rounds} round(s), echo server, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let chosen = std::env::var("PATHS").unwrap_or_else(|_| "relay,batch,sync".into());
    let paths: Vec<(&str, Target)> = [
        ("direct", Target::Direct),
        ("relay", Target::Relay),
        ("batch", Target::Proxy("batch")),
        ("sync", Target::Proxy("sync")),
    ]
    .into_iter()
    .filter(|(name, _)| *name == "direct" || chosen.split(',').any(|c| c.trim() == *name))
    .collect();
    // Per path: added p50, added p99 (µs) and share of direct, one of each per round.
    let mut added50 = vec![Vec::new(); paths.len()];
    let mut added99 = vec![Vec::new(); paths.len()];
    let mut share = vec![Vec::new(); paths.len()];
    for round in 1..=rounds {
        let figures: Vec<Figures> = paths
            .iter()
            .map(|(name, target)| {
                let db = dir.path().join(format!("{name}-{round}.db"));
                measure(target, &db, calls)
            })
            .collect();
        let direct = &figures[0];
        println!("round {round}:");
        for (i, ((name, _), f)) in paths.iter().zip(&figures).enumerate() {
            let a50 = micros(f.p50) - micros(direct.p50);
            let a99 = micros(f.p99) - micros(direct.p99);
            let of_direct = 100.0 * f.rate / direct.rate;
            println!(
                "  {name:<6} 1 in flight: p50 {:>8.1} µs  p99 {:>8.1} µs  (added p50 {a50:>7.1} µs, p99 {a99:>7.1} µs) | 32 in flight: {:>8.0} calls/s ({of_direct:>5.1}% of direct)",
                micros(f.p50),
                micros(f.p99),
                f.rate,
            );
            added50[i].push(a50);
            added99[i].push(a99);
            share[i].push(of_direct);
        }
    }
    println!("medians over {rounds} round(s):");
    for (i, (name, _)) in paths.iter().enumerate().skip(1) {
        println!(
            "  {name:<6} added p50 {:>7.1} µs, p99 {:>7.1} µs | 32 in flight: {:>5.1}% of direct",
            median(added50[i].clone()),
            median(added99[i].clone()),
            median(share[i].clone()),
        );
    }
    let share_of = |name: &str| {
        let i = paths.iter().position(|(n, _)| *n == name)?;
        Some(median(share[i].clone()))
    };
    if let Some(relay) = share_of("relay") {
        println!("  the bare relay's {relay:.1}% of direct is the ceiling of any stdio proxy here");
        if let Some(batch) = share_of("batch") {
            println!(
                "  `batch` reaches {:.0}% of that ceiling",
                100.0 * batch / relay
            );
        }
    }
}
