//! A real browser for the suites that test pages (`serve.rs`, `report.rs`): Debian's headless
//! Chromium driven through chromedriver by WebDriver (fantoccini), and a folder under the
//! build's target directory for the screenshots a person looks at.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// A chromedriver of this test, stopped at the end.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver started on a free port, or `None` (the test is skipped, and says so) when
/// Chromium or chromedriver is not installed, or `MCP_AUDIT_TEST_NO_BROWSER=1` says to act as
/// if (to check, on a machine that has them, that `scripts/test` counts these tests as skipped
/// without them); in CI (`CI=true`) their absence fails. `scripts/test` looks for them the
/// same way and leaves the `browser::` tests out when they are absent.
pub fn driver() -> Option<Driver> {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
    };
    let hidden = std::env::var("MCP_AUDIT_TEST_NO_BROWSER").is_ok_and(|v| v == "1");
    if hidden || !found("chromium") || !found("chromedriver") {
        let why = if hidden {
            "MCP_AUDIT_TEST_NO_BROWSER=1 hides chromium and chromedriver"
        } else {
            "chromium and chromedriver are not installed (scripts/install-test-peers.sh installs Debian's chromium and chromium-driver)"
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}; CI must run the browser tests");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It says when it listens; read that line rather than wait an arbitrary time.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "chromedriver stopped before it started"
        );
        if line.contains("started successfully") {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A headless Chromium session on `driver` in a window of `width` × `height` pixels.
pub async fn session(driver: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", format!("--window-size={width},{height}")]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// `folder` of the build's target directory (created), where screenshots go.
pub fn screenshots(folder: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
