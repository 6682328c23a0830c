//! The syslog receiver the sink suites deliver to: Debian's rsyslogd, started by each test on
//! a port of its own and writing each message it receives as one JSON line (its RFC 5424
//! parse). It can be killed (a crash), frozen, and started again on its port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// An rsyslogd of the test's own, writing each message it receives as one JSON line
/// (`%jsonmesg%`: its RFC 5424 parse) to `received.jsonl` in its directory.
pub struct Rsyslog {
    dir: TempDir,
    child: Child,
    port: u16,
    tls: bool,
}

pub fn rsyslogd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("rsyslogd"))
        .find(|p| p.is_file())
}

/// Whether rsyslog's GnuTLS network stream driver (Debian's `rsyslog-gnutls`) is installed.
pub fn gtls_driver_installed() -> bool {
    let Ok(lib) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    lib.filter_map(Result::ok)
        .any(|d| d.path().join("rsyslog/lmnsd_gtls.so").is_file())
}

/// Says why a test is skipped, or fails it in CI, where the receiver must be there.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; CI must run the syslog tests");
    }
    eprintln!("skipped: {why}");
}

pub fn test_tls(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/tls")
        .join(name)
}

impl Rsyslog {
    /// A receiver on a port the system picks, or `None` (skipped, and said) without rsyslogd.
    pub fn start(tls: bool) -> Option<Rsyslog> {
        if rsyslogd_binary().is_none() {
            skip(
                "rsyslogd is not installed (scripts/install-test-peers.sh installs Debian's rsyslog)",
            );
            return None;
        }
        if tls && !gtls_driver_installed() {
            skip("rsyslog's TLS driver is not installed (Debian's rsyslog-gnutls)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (child, port) = Rsyslog::spawn(dir.path(), 0, tls);
        Some(Rsyslog {
            dir,
            child,
            port,
            tls,
        })
    }

    /// Starts rsyslogd writing into `dir`, listening on `port` (0: any); its port.
    pub fn spawn(dir: &Path, port: u16, tls: bool) -> (Child, u16) {
        let d = dir.display();
        let port_file = dir.join("port");
        let _ = std::fs::remove_file(&port_file);
        // A killed rsyslogd leaves its pid file, and a new one would refuse to start.
        let _ = std::fs::remove_file(dir.join("rsyslogd.pid"));
        let tls_global = if tls {
            format!(
                "DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                test_tls("ca.pem").display(),
                test_tls("server.pem").display(),
                test_tls("server.key").display()
            )
        } else {
            String::new()
        };
        let tls_module = if tls {
            "StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\""
        } else {
            ""
        };
        // Tabs kept as tabs (LEEF's delimiter; rsyslog writes `#011` by default), and room for
        // OCSF records with their payload.
        let config = format!(
            r#"global(workDirectory="{d}" maxMessageSize="256k" parser.escapeControlCharacterTab="off" {tls_global})
module(load="imtcp" {tls_module})
template(name="json" type="string" string="%jsonmesg%\n")
ruleset(name="out") {{ action(type="omfile" file="{d}/received.jsonl" template="json") }}
input(type="imtcp" port="{port}" listenPortFileName="{d}/port" ruleset="out")
"#
        );
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(rsyslogd_binary().unwrap())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed if it never listens, rather than left running after the test.
        let mut starting = Starting(Some(child));
        // rsyslogd writes the port it was given by the system once it listens; a port we
        // chose is there once it accepts.
        let port = wait_for("rsyslogd to listen", || {
            if port != 0 {
                return std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| port);
            }
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
        });
        (starting.0.take().unwrap(), port)
    }

    /// Whether it listens with TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the receiver (as a crash would), keeping its directory and what it wrote.
    pub fn stop(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the receiver: its kernel keeps the connection
    /// and buffers what arrives until the buffers are full, and then the sender blocks.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Starts it again, on the same port, appending to the same file.
    pub fn restart(&mut self) {
        let (child, _) = Rsyslog::spawn(self.dir.path(), self.port, self.tls);
        self.child = child;
    }

    /// Every message received so far, parsed by rsyslog.
    pub fn received(&self) -> Vec<Value> {
        received_in(self.dir.path())
    }

    /// Waits until a message with `seq` in its structured data arrived; all received then.
    pub fn received_through(&self, seq: u64) -> Vec<Value> {
        wait_for(&format!("seq {seq} at the receiver"), || {
            let all = self.received();
            all.iter()
                .any(|m| sd_param(m, "seq") == Some(seq.to_string()))
                .then_some(all)
        })
    }
}

/// An rsyslogd until it listens.
pub struct Starting(Option<Child>);

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages in `dir`'s `received.jsonl`: its complete lines only, since rsyslogd may be
/// in the middle of writing the last one (a long OCSF record is more than one write).
pub fn received_in(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("received.jsonl")).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `ready` until it yields, for a minute at most (a bound on a hang, not a speed check).
pub fn wait_for<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A structured-data parameter of the `mcp-audit@32473` element, unescaped (RFC 5424 §6.3.3).
pub fn sd_param(message: &Value, name: &str) -> Option<String> {
    let sd = message["structured-data"].as_str()?;
    let rest = sd.strip_prefix("[mcp-audit@32473 ")?;
    let start = rest.find(&format!("{name}=\""))? + name.len() + 2;
    let mut value = String::new();
    let mut chars = rest[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            '"' => return Some(value),
            c => value.push(c),
        }
    }
    None
}
