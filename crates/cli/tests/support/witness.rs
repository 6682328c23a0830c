//! A witness as the suites run one: `mcp-audit serve --witness-key` on a port of its own, with
//! its own key and database, trusting the logs it is told of. It can be killed (a crash) and
//! started again on its port, where the sinks' files point.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{BIN, spawn_serve};

/// A running witness and its directory's files (`w.key`, `w.key.pub`, `witness.db`).
pub struct Witness {
    dir: PathBuf,
    /// `ORIGIN=KEY` of every log it co-signs (`--witness-trust`).
    trust: Vec<String>,
    child: Option<Child>,
    /// Its console's base URL (`http://127.0.0.1:PORT`), kept across restarts.
    pub base: String,
}

impl Witness {
    /// Generates the witness key `name` in `dir` and starts a witness that trusts each
    /// `ORIGIN=KEY` of `trust` (a key's text or file).
    pub fn start(dir: &Path, name: &str, trust: &[String]) -> Witness {
        let path = |file: &str| dir.join(file).display().to_string();
        run_ok(&["witness", "keygen", "--name", name, "--out", &path("w.key")]);
        // The witness's own database, with one event so that serve opens it.
        run_ok(&[
            "--db",
            &path("witness.db"),
            "log",
            r#"{"kind":"tool_execution","action":"EXECUTE","operation":"w"}"#,
        ]);
        let mut serve = Command::new(BIN);
        serve.args(["--db", &path("witness.db")]);
        let flags = Witness::flags(dir, trust);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (child, base) = spawn_serve(serve, &flags);
        Witness {
            dir: dir.to_path_buf(),
            trust: trust.to_vec(),
            child: Some(child),
            base,
        }
    }

    fn flags(dir: &Path, trust: &[String]) -> Vec<String> {
        let mut flags = vec![
            "--witness-key".to_string(),
            dir.join("w.key").display().to_string(),
        ];
        for t in trust {
            flags.extend(["--witness-trust".to_string(), t.clone()]);
        }
        flags
    }

    /// The file holding its verifier key (for a sink's `key` and `verify --witness`).
    pub fn key_pub(&self) -> PathBuf {
        self.dir.join("w.key.pub")
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Kills the witness, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again at the address it had, once it listens.
    pub fn restart(&mut self) {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(self.dir.join("witness.db"))
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port()))
            .args(Witness::flags(&self.dir, &self.trust))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the witness stopped before listening"
            );
            if line.contains("listening on ") {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// Its stored state: (origin, size) of the newest checkpoint it co-signed, per origin.
    pub fn witnessed(&self) -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(self.dir.join("witness.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT origin, size FROM witnessed ORDER BY origin")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_ok(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
