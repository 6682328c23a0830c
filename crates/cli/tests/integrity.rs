//! The tamper-evidence commands end to end: keygen, checkpoint, verify, erase.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-audit");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .arg("--db")
        .arg(dir.join("a.db"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An event logged after the checkpoint of [`setup`].
const LATE: &str = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"late"}"#;

/// Logs [`LATE`] into the database in `dir`.
fn log_late(dir: &Path) {
    let out = run(dir, &["log", LATE]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A database with three events, a key, and one checkpoint kept outside.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let event = format!(
            r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"t{i}","actor":{{"user_id":"alice"}},"payload":{{"input":{{"i":{i}}}}}}}"#
        );
        assert!(run(dir.path(), &["log", &event]).status.success());
    }
    assert!(
        run(
            dir.path(),
            &["keygen", "--name", "audit-test", "--out", "k.key"]
        )
        .status
        .success()
    );
    let out = run(
        dir.path(),
        &[
            "checkpoint",
            "--key",
            "k.key",
            "--checkpoint-out",
            "cp.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    dir
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["keygen", "--name", "audit-test", "--out", "k.key"],
    );
    assert!(out.status.success());
    let public = String::from_utf8_lossy(&out.stdout);
    assert!(public.starts_with("audit-test+"), "{public}");
    let mode = std::fs::metadata(dir.path().join("k.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(dir.path().join("k.key")).unwrap();
    let again = run(dir.path(), &["keygen", "--name", "other", "--out", "k.key"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("never overwritten"));
    assert_eq!(std::fs::read(dir.path().join("k.key")).unwrap(), before);
}

#[test]
fn an_untouched_log_verifies_and_exits_zero() {
    let dir = setup();
    let out = run(
        dir.path(),
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 entries checked") && text(&out).contains("\nok\n"));
}

#[test]
fn a_tampered_log_fails_verification_and_names_the_entry() {
    let dir = setup();
    rusqlite::Connection::open(dir.path().join("a.db"))
        .unwrap()
        .execute(
            "UPDATE payloads SET body = replace(body, '\"i\":1', '\"i\":9') WHERE seq = 1",
            [],
        )
        .unwrap();
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(r#"FOUND {"finding":"modified_payload","seq":1}"#),
        "{}",
        text(&out)
    );
    let json = run(dir.path(), &["verify", "--key", "k.key.pub", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["findings"][0]["finding"], "modified_payload");
}

#[test]
fn the_wrong_key_is_a_bad_signature() {
    let dir = setup();
    assert!(
        run(
            dir.path(),
            &["keygen", "--name", "audit-test", "--out", "other.key"]
        )
        .status
        .success()
    );
    let out = run(dir.path(), &["verify", "--key", "other.key.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("bad_signature"), "{}", text(&out));
}

#[test]
fn an_erased_event_is_redacted_and_the_log_still_verifies() {
    let dir = setup();
    let q = run(dir.path(), &["query", "--tool", "t1", "--jsonl"]);
    let event: serde_json::Value =
        serde_json::from_slice(q.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let id = event["id"].as_str().unwrap();
    let out = run(dir.path(), &["erase", id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        dir.path(),
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 redacted"));
    let shown = run(dir.path(), &["show", id]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["redacted"], true);
    assert!(shown.get("payload").is_none());
    // Erasing twice says so.
    assert!(!run(dir.path(), &["erase", id]).status.success());
}

#[test]
fn a_proof_verifies_offline_with_only_the_public_key_and_a_changed_proof_does_not() {
    let dir = setup();
    let q = run(dir.path(), &["query", "--tool", "t2", "--jsonl"]);
    let event: serde_json::Value =
        serde_json::from_slice(q.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let id = event["id"].as_str().unwrap();
    let out = run(dir.path(), &["prove", id]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.path().join("proof.json"), &out.stdout).unwrap();
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (proof["seq"].as_u64(), proof["tree_size"].as_u64()),
        (Some(2), Some(3))
    );

    // Checked elsewhere: no database, only the proof and the public key.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("proof.json"),
        elsewhere.path().join("proof.json"),
    )
    .unwrap();
    std::fs::copy(dir.path().join("k.key.pub"), elsewhere.path().join("k.pub")).unwrap();
    let check = Command::new(BIN)
        .current_dir(elsewhere.path())
        .args(["verify-proof", "proof.json", "--key", "k.pub"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("is entry 2 of the signed log of 3 entries, payload included"));

    // Any change to what is proven fails.
    for (from, to) in [("\\\"i\\\":2", "\\\"i\\\":7"), ("alice", "mallory")] {
        let raw = std::fs::read_to_string(elsewhere.path().join("proof.json")).unwrap();
        assert!(raw.contains(from), "{from} in {raw}");
        std::fs::write(
            elsewhere.path().join("forged.json"),
            raw.replacen(from, to, 1),
        )
        .unwrap();
        let forged = Command::new(BIN)
            .current_dir(elsewhere.path())
            .args(["verify-proof", "forged.json", "--key", "k.pub"])
            .output()
            .unwrap();
        assert!(!forged.status.success(), "{from} -> {to} must fail");
        assert!(
            text(&forged).contains("the proof does not hold"),
            "{}",
            text(&forged)
        );
    }
}

#[test]
fn an_event_after_the_last_checkpoint_can_not_be_proven_yet() {
    let dir = setup();
    let out = run(dir.path(), &["log", LATE]);
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let proof = run(dir.path(), &["prove", &id]);
    assert!(!proof.status.success());
    assert!(
        text(&proof).contains("no checkpoint covers"),
        "{}",
        text(&proof)
    );
}

#[test]
fn the_proxy_signs_checkpoints_while_it_records_and_posts_them() {
    let dir = tempfile::tempdir().unwrap();
    let collector = NoteCollector::start();
    assert!(
        run(
            dir.path(),
            &["keygen", "--name", "proxy-test", "--out", "k.key"]
        )
        .status
        .success()
    );
    let out = proxy_signing_and_posting(dir.path(), &collector.url);
    assert!(out.status.success(), "{}", text(&out));
    let lines = std::fs::read_to_string(dir.path().join("cp.jsonl")).unwrap();
    // How many depends on how the writer grouped the commits (every-N is tested in the store);
    // at least the one at shutdown, covering everything.
    assert!(lines.lines().count() >= 1, "{lines}");
    // Every checkpoint was posted too, in order, as signed.
    let kept: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["note"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(collector.notes(), kept);
    let out = run(
        dir.path(),
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Every entry, the session end included, is covered by a signed checkpoint.
    let entries: u64 = text(&out)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        text(&out).contains(&format!("covering {entries} entries")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_later_checkpoint_is_proven_to_extend_an_earlier_one_and_a_rewritten_log_is_not() {
    let dir = setup();
    let first = run(dir.path(), &["checkpoint", "--key", "k.key"]);
    std::fs::write(dir.path().join("old.txt"), &first.stdout).unwrap();
    for i in 0..4 {
        let event =
            format!(r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"later{i}"}}"#);
        assert!(run(dir.path(), &["log", &event]).status.success());
    }
    let second = run(dir.path(), &["checkpoint", "--key", "k.key"]);
    std::fs::write(dir.path().join("new.txt"), &second.stdout).unwrap();
    let out = run(
        dir.path(),
        &["consistency", "old.txt", "new.txt", "--key", "k.key.pub"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ok: the log of 7 entries extends the log of 3"),
        "{}",
        text(&out)
    );

    // Rewrite history under the old checkpoint: the new tree no longer extends the old one.
    rusqlite::Connection::open(dir.path().join("a.db"))
        .unwrap()
        .execute(
            "UPDATE events SET leaf_hash = randomblob(32) WHERE seq = 1",
            [],
        )
        .unwrap();
    let out = run(
        dir.path(),
        &["consistency", "old.txt", "new.txt", "--key", "k.key.pub"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("does not extend"), "{}", text(&out));
}

/// Runs the proxy in front of `cat` with three notifications, signing a checkpoint every two
/// entries (kept in `cp.jsonl`) and posting each to `url`.
fn proxy_signing_and_posting(dir: &Path, url: &str) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["proxy", "--db", "a.db", "--durability", "batch"])
        .args(["--checkpoint-key", "k.key", "--checkpoint-every", "2"])
        .args(["--checkpoint-out", "cp.jsonl", "--checkpoint-post", url])
        .args(["--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..3 {
            writeln!(
                stdin,
                r#"{{"jsonrpc":"2.0","method":"notifications/x{i}"}}"#
            )
            .unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_proxy_whose_checkpoints_cannot_be_posted_exits_with_an_error_but_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(
            dir.path(),
            &["keygen", "--name", "proxy-test", "--out", "k.key"]
        )
        .status
        .success()
    );
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = proxy_signing_and_posting(dir.path(), &format!("http://127.0.0.1:{port}/cp"));
    assert!(!out.status.success());
    assert!(text(&out).contains("could not be posted"), "{}", text(&out));
    // The trail and its checkpoints are whole all the same.
    let out = run(
        dir.path(),
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// A real HTTP endpoint that keeps the bodies posted to it (a stand-in for a witness).
struct NoteCollector {
    url: String,
    notes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NoteCollector {
    fn start() -> NoteCollector {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
        let notes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = notes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            reader.read_line(&mut line).unwrap();
                            if line.trim().is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        kept.lock().unwrap().push(String::from_utf8(body).unwrap());
                        stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                    }
                });
            }
        });
        NoteCollector { url, notes }
    }

    fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
}

#[test]
fn a_checkpoint_is_posted_to_a_url_as_the_signed_note() {
    let dir = setup();
    let collector = NoteCollector::start();
    log_late(dir.path());
    let out = run(
        dir.path(),
        &["checkpoint", "--key", "k.key", "--post", &collector.url],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The body is exactly the note printed (and stored), and it carries the new size.
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(collector.notes(), vec![printed.clone()]);
    assert_eq!(printed.lines().nth(1), Some("4"));
}

#[test]
fn a_checkpoint_that_cannot_be_posted_fails_the_command_but_is_stored() {
    let dir = setup();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    log_late(dir.path());
    let url = format!("http://127.0.0.1:{port}/checkpoints");
    let out = run(
        dir.path(),
        &["checkpoint", "--key", "k.key", "--post", &url],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("could not be posted"), "{}", text(&out));
    // Stored all the same: the log verifies and is covered up to its new size.
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("covering 4 entries"), "{}", text(&out));
}

#[test]
fn a_checkpoint_url_that_is_not_http_is_refused_before_signing() {
    let dir = setup();
    log_late(dir.path());
    let out = run(
        dir.path(),
        &[
            "checkpoint",
            "--key",
            "k.key",
            "--post",
            "ftp://example.com/x",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("only http:// and https://"),
        "{}",
        text(&out)
    );
    // Nothing was signed: the latest checkpoint still covers the first three entries.
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert!(text(&out).contains("covering 3 entries"), "{}", text(&out));
}
