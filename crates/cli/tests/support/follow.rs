//! `mcp-audit follow` and `mcp-audit sink status` as the sink suites drive them.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;

/// Stops `child` as Ctrl-C would (SIGTERM) and checks that it ended cleanly.
pub fn terminate(mut child: Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "follow did not stop cleanly: {status}");
}

/// `sink status --json` of the database `db` (a `--db` value), of the sinks in `config`:
/// `{"sinks": [...], "dead_letters": [...]}`.
pub fn sink_status(db: &str, config: &std::path::Path) -> Value {
    let out = Command::new(BIN)
        .args(["--db", db, "sink", "status", "--json", "--sink"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `ready` every 100 ms until it yields, for `bound` at most: a bound on a hang, not a
/// speed check. `state` says where things stood, in the failure's message.
pub fn wait_until<T>(
    what: &str,
    bound: Duration,
    mut ready: impl FnMut() -> Option<T>,
    state: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            start.elapsed() < bound,
            "gave up waiting for {what}: {}",
            state()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
