//! The stdio proxy's cost as a user's client feels it, in one run: the official Python SDK
//! client calling `server-everything`'s `echo` tool N times in a row (one call in flight),
//! directly, through a bare relay, and through `mcp-audit proxy` in `batch` and `sync`; then the
//! same four paths with the minimal pair of the `proxy` bench (a Rust client, a Rust echo
//! server), so that the real peers' own cost and the proxy's are told apart.
//!
//! ```sh
//! cargo bench -p mcp-audit --bench proxy_real                 # 400 calls per path, 3 rounds
//! CALLS=1000 ROUNDS=5 cargo bench -p mcp-audit --bench proxy_real
//! PAIRS=real cargo bench -p mcp-audit --bench proxy_real      # or `minimal`; both by default
//! VARIANTS=before=<another mcp-audit> cargo bench -p mcp-audit --bench proxy_real
//! THREADS=1 cargo bench -p mcp-audit --bench proxy_real       # and per thread: wake-ups, CPU
//! ```
//!
//! The paths take turns within a round (direct, relay, `batch`, `sync`), so that the machine's
//! other load falls on all of them alike; the medians over the rounds are compared. The relay
//! (this executable with `--relay <server...>`) starts the server and only copies bytes between
//! it and its own standard streams: what any process placed between client and server costs.
//! CPU per call is each process's time on the CPU during the timed calls only
//! (`/proc/<pid>/task/*/schedstat`), read by the Python client (`tests/peers/echo_latency.py`)
//! for the real pair and by this bench for the minimal one.
//!
//! The disk's fsync is measured in the same run, where the databases are (a 4 KiB append and
//! `fdatasync`, as a commit's WAL write is): `sync` makes each call's intent durable before the
//! call goes on, so one fsync per call is the floor of what it adds. The targets (issue 20):
//! `batch` adds at p50 at most 1.5x what the relay adds and at most 100 µs (real peers); `sync`
//! adds at most the fsync p50 + 150 µs. They are printed as ratios of the same run's figures.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

/// Other `mcp-audit` builds to measure beside this one, `VARIANTS=<label>=<executable>,...`
/// (e.g. `before=<the build before a change>`): their `batch` and `sync` take turns with this
/// build's, so that a change is measured before and after, alternated in one run.
fn variants() -> Vec<(String, String)> {
    std::env::var("VARIANTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.split_once('='))
        .map(|(label, bin)| (label.trim().to_string(), bin.trim().to_string()))
        .collect()
}

/// The paths, in the order they take turns: direct, relay, this build's `batch` and `sync`,
/// then each variant's (`batch@<label>`, `sync@<label>`).
fn paths() -> Vec<String> {
    let mut paths: Vec<String> = ["direct", "relay", "batch", "sync"]
        .map(String::from)
        .into();
    for (label, _) in variants() {
        paths.push(format!("batch@{label}"));
        paths.push(format!("sync@{label}"));
    }
    paths
}

/// The minimal pair's server: answers each request line with a small result.
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

/// Starts `command` and copies bytes both ways between it and this process's standard streams,
/// with no framing, parsing or recording (`std::io::copy` splices pipe to pipe on Linux).
fn relay(command: &[String]) {
    let Some((program, args)) = command.split_first() else {
        eprintln!("relay: no server command");
        std::process::exit(2);
    };
    let mut server = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut to_server = server.stdin.take().expect("stdin");
    let mut from_server = server.stdout.take().expect("stdout");
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_server);
    });
    let _ = std::io::copy(&mut from_server, &mut std::io::stdout().lock());
    let _ = up.join();
    let _ = server.wait();
}

/// The command a client runs for `path` in front of `server`.
fn command_for(path: &str, server: &[String], db: &Path) -> Vec<String> {
    let me = std::env::current_exe()
        .expect("the bench executable")
        .display()
        .to_string();
    let mut command = match path {
        "direct" => Vec::new(),
        "relay" => vec![me, "--relay".into()],
        proxy => {
            let (durability, label) = proxy.split_once('@').unwrap_or((proxy, ""));
            let bin = variants()
                .into_iter()
                .find(|(l, _)| l == label)
                .map_or_else(|| BIN.to_string(), |(_, bin)| bin);
            vec![
                bin,
                "proxy".into(),
                "--durability".into(),
                durability.into(),
                "--db".into(),
                db.display().to_string(),
                "--".into(),
            ]
        }
    };
    command.extend(server.iter().cloned());
    command
}

/// One path's figures in one round.
#[derive(Clone, Copy)]
struct Figures {
    p50: Duration,
    p99: Duration,
    /// CPU time per call: the client, what sits between (zero for direct), the server.
    client: Duration,
    between: Duration,
    server: Duration,
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[((p * sorted.len()).div_ceil(100).max(1)) - 1]
}

fn figures(mut latencies: Vec<Duration>, cpu: [Duration; 3], direct: bool, calls: u64) -> Figures {
    latencies.sort_unstable();
    let per_call = |d: Duration| d / calls.max(1) as u32;
    let [client, child, grandchildren] = cpu;
    Figures {
        p50: pct(&latencies, 50),
        p99: pct(&latencies, 99),
        client: per_call(client),
        between: if direct {
            Duration::ZERO
        } else {
            per_call(child)
        },
        server: per_call(if direct { child } else { grandchildren }),
    }
}

/// The real pair: the Python SDK client runs `path` in front of `server-everything`.
fn real(peers: &Path, path: &str, db: &Path, calls: u64) -> Figures {
    let server = vec![
        "node".to_string(),
        peers
            .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
            .display()
            .to_string(),
        "stdio".to_string(),
    ];
    let script = repo().join("tests/peers/echo_latency.py");
    let output = Command::new(peers.join("venv/bin/python"))
        .arg(script)
        .arg(calls.to_string())
        .args(command_for(path, &server, db))
        .stderr(Stdio::null())
        .output()
        .expect("run the Python client");
    assert!(
        output.status.success(),
        "the Python client failed on {path}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the client's report");
    let latencies = report["latencies_ns"]
        .as_array()
        .expect("latencies")
        .iter()
        .map(|n| Duration::from_nanos(n.as_u64().unwrap_or_default()))
        .collect();
    let cpu = ["client", "child", "grandchildren"]
        .map(|k| Duration::from_nanos(report["cpu_ns"][k].as_u64().unwrap_or_default()));
    if std::env::var_os("THREADS").is_some() {
        print_threads(path, &report["threads"], calls);
    }
    figures(latencies, cpu, path == "direct", calls)
}

/// The profile of a call's path: per thread name of the process in front of the server (and
/// of the server), how many threads, how often they were put on a CPU per call (wake-ups), and
/// their CPU time per call.
fn print_threads(path: &str, threads: &serde_json::Value, calls: u64) {
    let mut groups: std::collections::BTreeMap<(String, String), (u64, u64, u64)> =
        Default::default();
    for t in threads.as_array().into_iter().flatten() {
        let role = match (path, t["role"].as_str()) {
            ("direct", _) | (_, Some("grandchild")) => "server",
            _ => "between",
        };
        let group = groups
            .entry((
                role.to_string(),
                t["name"].as_str().unwrap_or("?").to_string(),
            ))
            .or_default();
        let runs = t["runs"].as_u64().unwrap_or_default();
        group.0 += u64::from(runs > 0);
        group.1 += runs;
        group.2 += t["ns"].as_u64().unwrap_or_default();
    }
    for ((role, name), (busy, runs, ns)) in groups {
        if runs == 0 {
            continue;
        }
        println!(
            "      {path:<12} {role:<7} {name:<22} {busy} thread(s) ran: {:>5.2} wake-ups, {:>6.1} µs of CPU per call",
            runs as f64 / calls as f64,
            ns as f64 / 1e3 / calls as f64,
        );
    }
}

fn request(i: u64) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"message\":\"hello {i}\"}}}}}}\n"
    )
}

/// The minimal pair: a Rust client (this process) and the Rust echo server.
fn minimal(path: &str, db: &Path, calls: u64) -> Figures {
    let me = std::env::current_exe()
        .expect("the bench executable")
        .display()
        .to_string();
    let command = command_for(path, &[me, "--echo-server".into()], db);
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the peer");
    let mut input = child.stdin.take().expect("stdin");
    let mut output = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut call = |i: u64| {
        let t = Instant::now();
        input.write_all(request(i).as_bytes()).expect("write");
        input.flush().expect("flush");
        line.clear();
        output.read_line(&mut line).expect("read");
        t.elapsed()
    };
    for i in 0..200 {
        call(i);
    }
    let pid = child.id() as i32;
    let before = (cpu(std::process::id() as i32), tree_cpu(pid));
    let latencies: Vec<Duration> = (0..calls).map(|i| call(1_000 + i)).collect();
    let after = (cpu(std::process::id() as i32), tree_cpu(pid));
    drop(input);
    let _ = child.wait();
    let cpu = [
        after.0 - before.0,
        after.1.0 - before.1.0,
        after.1.1 - before.1.1,
    ];
    figures(latencies, cpu, path == "direct", calls)
}

/// Time on the CPU of every living thread of `pid`.
fn cpu(pid: i32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// `pid`'s CPU time, and its children's.
fn tree_cpu(pid: i32) -> (Duration, Duration) {
    let children: Duration = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| parent(*p) == Some(pid))
        .map(cpu)
        .sum();
    (cpu(pid), children)
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The p50 and p99 of a 4 KiB append made durable with `fdatasync`, in `dir`.
fn fsync(dir: &Path, times: usize) -> (Duration, Duration) {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).expect("a probe file");
    let block = [7u8; 4096];
    let mut all: Vec<Duration> = (0..times)
        .map(|_| {
            let t = Instant::now();
            file.write_all(&block).expect("write");
            file.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect();
    all.sort_unstable();
    (pct(&all, 50), pct(&all, 99))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--echo-server") {
        return echo_server();
    }
    if let Some(at) = args.iter().position(|a| a == "--relay") {
        return relay(&args[at + 1..]);
    }
    let calls = env_number("CALLS", 400).max(1);
    let rounds = env_number("ROUNDS", 3).max(1);
    let pairs = std::env::var("PAIRS").unwrap_or_else(|_| "real,minimal".into());
    let peers = repo().join(".test-peers");
    let have_peers = peers.join("venv/bin/python").exists()
        && peers.join("npm/node_modules").exists()
        && Command::new("node").arg("--version").output().is_ok();
    let mut chosen: Vec<&str> = Vec::new();
    if pairs.contains("real") {
        if have_peers {
            chosen.push("real");
        } else {
            println!("real peers not installed (scripts/install-test-peers.sh): minimal pair only");
        }
    }
    if pairs.contains("minimal") {
        chosen.push("minimal");
    }
    // Where the databases are: the fsync measured is that disk's.
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "stdio proxy with one call in flight: {calls} echo calls per path, {rounds} round(s), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Per pair, per path: the figures of each round.
    let paths = paths();
    let mut all: Vec<Vec<Vec<Figures>>> = vec![vec![Vec::new(); paths.len()]; chosen.len()];
    let mut fsyncs = Vec::new();
    for round in 1..=rounds {
        let (f50, f99) = fsync(dir.path(), 200);
        fsyncs.push(micros(f50));
        println!(
            "round {round}: fsync of a 4 KiB append p50 {:.1} µs, p99 {:.1} µs",
            micros(f50),
            micros(f99)
        );
        for (p, pair) in chosen.iter().enumerate() {
            for (i, path) in paths.iter().enumerate() {
                let db = dir
                    .path()
                    .join(format!("{pair}-{}-{round}.db", path.replace('@', "-")));
                let f = match *pair {
                    "real" => real(&peers, path, &db, calls),
                    _ => minimal(path, &db, calls),
                };
                let direct = if i == 0 {
                    f
                } else {
                    all[p][0][round as usize - 1]
                };
                println!(
                    "  {pair:<7} {path:<12} p50 {:>7.1} µs  p99 {:>8.1} µs  (added p50 {:>6.1} µs) | CPU per call: client {:>6.1} µs, between {:>5.1} µs, server {:>6.1} µs",
                    micros(f.p50),
                    micros(f.p99),
                    micros(f.p50) - micros(direct.p50),
                    micros(f.client),
                    micros(f.between),
                    micros(f.server),
                );
                all[p][i].push(f);
            }
        }
    }
    let fsync50 = median(fsyncs);
    println!("medians over {rounds} round(s); fsync p50 {fsync50:.1} µs:");
    for (p, pair) in chosen.iter().enumerate() {
        let of = |i: usize, get: fn(&Figures) -> Duration| {
            median(all[p][i].iter().map(|f| micros(get(f))).collect())
        };
        // Added latency per round (each path against the same round's direct), then the median.
        let added = |i: usize, get: fn(&Figures) -> Duration| {
            median(
                all[p][i]
                    .iter()
                    .zip(&all[p][0])
                    .map(|(f, d)| micros(get(f)) - micros(get(d)))
                    .collect(),
            )
        };
        for (i, path) in paths.iter().enumerate() {
            println!(
                "  {pair:<7} {path:<12} p50 {:>7.1} µs (added {:>6.1}), p99 {:>8.1} µs (added {:>7.1}) | CPU per call: client {:>6.1} µs, between {:>5.1} µs, server {:>6.1} µs",
                of(i, |f| f.p50),
                added(i, |f| f.p50),
                of(i, |f| f.p99),
                added(i, |f| f.p99),
                of(i, |f| f.client),
                of(i, |f| f.between),
                of(i, |f| f.server),
            );
        }
        let relay = added(1, |f| f.p50);
        let batch = added(2, |f| f.p50);
        let sync = added(3, |f| f.p50);
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        println!(
            "  {pair:<7} targets: batch added p50 / relay added p50 = {:.2} (≤ 1.5: {}); batch added p50 {batch:.1} µs (≤ 100 µs: {}); sync added p50 / (fsync p50 + 150 µs) = {:.2} (≤ 1: {})",
            batch / relay.max(1.0),
            verdict(batch <= 1.5 * relay.max(0.0)),
            verdict(batch <= 100.0),
            sync / (fsync50 + 150.0),
            verdict(sync <= fsync50 + 150.0),
        );
        for (v, (label, _)) in variants().iter().enumerate() {
            let (b, s) = (4 + 2 * v, 5 + 2 * v);
            let cpu = |i: usize| median(all[p][i].iter().map(|f| micros(f.between)).collect());
            println!(
                "  {pair:<7} this build / {label}: added p50 batch {:.2}, sync {:.2}; CPU between per call batch {:.2}, sync {:.2}",
                batch / added(b, |f| f.p50).max(1.0),
                sync / added(s, |f| f.p50).max(1.0),
                cpu(2) / cpu(b).max(0.1),
                cpu(3) / cpu(s).max(0.1),
            );
        }
    }
}
