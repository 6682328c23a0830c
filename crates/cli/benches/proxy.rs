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
//! least that any process placed between a client and a server costs. It is no ceiling on
//! throughput: with 32 calls in flight its pipes batch the traffic, and it has run both slower
//! and faster than direct.
//!
//! What bounds a proxy here is CPU. The bench reads the CPU time per call of the client, the
//! server and whatever sits between them (from `/proc`), and prints how much CPU per call two
//! cores leave a proxy at 90% of direct's rate; then what recording alone costs: the events
//! the `batch` proxy recorded, read back and recorded again into a new SQLite store, with
//! nothing else done.

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
    /// CPU time per call with 32 in flight: this process's (the client), and its children's
    /// (the echo server, and the relay or proxy in front of it).
    client_cpu: Duration,
    peers_cpu: Duration,
}

/// The CPU time (user and system) used so far by this process, and by its children that have
/// been waited for (with their own waited-for children): `getrusage`, to the microsecond.
fn cpu_times() -> (Duration, Duration) {
    fn usage(who: libc::c_int) -> Duration {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the whole `rusage` it is pointed at, and only reads `who`.
        if unsafe { libc::getrusage(who, usage.as_mut_ptr()) } != 0 {
            return Duration::ZERO;
        }
        // SAFETY: zeroed, then filled by the call that just succeeded.
        let usage = unsafe { usage.assume_init() };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    }
    (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_CHILDREN))
}

fn measure(target: &Target, db: &std::path::Path, calls: u64) -> Figures {
    let mut peer = start(target, db);
    let lat = latencies(&mut peer, calls);
    drop(peer.input);
    let _ = peer.child.wait();
    let (own, children) = cpu_times();
    // `throughput` waits for the peer: its CPU time (and its server's) is then counted.
    let rate = throughput(start(target, db), calls, 32);
    let (own_after, children_after) = cpu_times();
    Figures {
        p50: pct(&lat, 50),
        p99: pct(&lat, 99),
        rate,
        client_cpu: (own_after - own) / calls as u32,
        peers_cpu: (children_after - children) / calls as u32,
    }
}

/// The CPU time per event that recording costs with nothing else done: the events the `batch`
/// proxy recorded in `db` are read back and recorded again, through a `batch` recorder, into a
/// new SQLite store at `into` (sealing and writing, durable at its shutdown). Any proxy that
/// records each call in SQLite spends at least this per call.
fn recording_cpu(db: &std::path::Path, into: &std::path::Path) -> (usize, Duration) {
    use mcp_audit_store::{
        Durability, PageStart, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
    };
    let mut reader =
        SqliteStore::open_read_only(db, SqliteOptions::default()).expect("the batch proxy's db");
    let mut events = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let page = reader
            .query(&Query {
                start,
                limit: 10_000,
                ..Query::default()
            })
            .expect("read back");
        events.extend(page.events.into_iter().map(|stored| stored.event));
        match page.next {
            Some(cursor) => start = PageStart::After(cursor),
            None => break,
        }
    }
    let n = events.len();
    let recorder = Recorder::start(
        SqliteStore::open(into, SqliteOptions::default()).expect("a new db"),
        RecorderConfig {
            durability: Durability::Batch,
            ..RecorderConfig::default()
        },
    )
    .expect("recorder");
    let (own, _) = cpu_times();
    for event in events {
        recorder.record(event).expect("record");
    }
    recorder.shutdown().expect("shutdown");
    let (own_after, _) = cpu_times();
    (n, (own_after - own) / n.max(1) as u32)
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
    // Per path: all CPU time per call (client, server, and what is between them), in µs.
    let mut cpu = vec![Vec::new(); paths.len()];
    let mut direct_rate = Vec::new();
    for round in 1..=rounds {
        let figures: Vec<Figures> = paths
            .iter()
            .map(|(name, target)| {
                let db = dir.path().join(format!("{name}-{round}.db"));
                measure(target, &db, calls)
            })
            .collect();
        let direct = &figures[0];
        direct_rate.push(direct.rate);
        println!("round {round}:");
        for (i, ((name, _), f)) in paths.iter().zip(&figures).enumerate() {
            let a50 = micros(f.p50) - micros(direct.p50);
            let a99 = micros(f.p99) - micros(direct.p99);
            let of_direct = 100.0 * f.rate / direct.rate;
            println!(
                "  {name:<6} 1 in flight: p50 {:>8.1} µs  p99 {:>8.1} µs  (added p50 {a50:>7.1} µs, p99 {a99:>7.1} µs) | 32 in flight: {:>8.0} calls/s ({of_direct:>5.1}% of direct), CPU per call: client {:.1} µs, server and proxy {:.1} µs",
                micros(f.p50),
                micros(f.p99),
                f.rate,
                micros(f.client_cpu),
                micros(f.peers_cpu),
            );
            cpu[i].push(micros(f.client_cpu) + micros(f.peers_cpu));
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
    // The CPU budget: at 90% of direct's rate, two cores leave each call 2 / (0.9 x rate) of
    // CPU time; the client and the server already take direct's share of it.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let rate = median(direct_rate);
    let direct_cpu = median(cpu[0].clone());
    println!(
        "  direct: {rate:.0} calls/s using {direct_cpu:.1} µs of CPU per call ({:.2} of {cores} cores busy)",
        direct_cpu * rate / 1e6
    );
    for (i, (name, _)) in paths.iter().enumerate().skip(1) {
        println!(
            "  {name:<6} adds {:.1} µs of CPU per call",
            median(cpu[i].clone()) - direct_cpu
        );
    }
    if paths.iter().any(|(name, _)| *name == "batch") {
        let (n, per_event) = recording_cpu(
            &dir.path().join(format!("batch-{rounds}.db")),
            &dir.path().join("recording-alone.db"),
        );
        let budget = |share: f64| cores * 1e6 / (share * rate) - direct_cpu;
        let per_event = micros(per_event);
        println!(
            "  recording alone (the {n} events `batch` recorded, sealed and written again into SQLite): {per_event:.1} µs of CPU per event\n\
             \x20   `batch` (one event per call) at 90% of direct: {per_event:.1} µs needed, {:.1} µs left by the cores\n\
             \x20   `sync` (two per call, the intent and its outcome) at 50% of direct: {:.1} µs needed, {:.1} µs left",
            budget(0.9),
            2.0 * per_event,
            budget(0.5),
        );
    }
}
