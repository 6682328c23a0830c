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
    let reports: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(reports[0]["findings"][0]["finding"], "modified_payload");
    assert_eq!(reports[0]["ok"], false);
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
    let out = run(dir.path(), &["erase", id, "--reason", "request 1"]);
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
    let again = run(dir.path(), &["erase", id, "--reason", "request 1"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already erased"), "{}", text(&again));
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
    for (from, to) in [
        ("\\\"i\\\":2", "\\\"i\\\":7"),
        (
            // The user is in the hashed metadata as its pseudonym.
            "\\\"user_id\\\":\\\"pn:",
            "\\\"user_id\\\":\\\"pn:f",
        ),
    ] {
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
    // stdout is the proof alone (`| jq` reads it); the verdict is on stderr.
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out)));
    assert_eq!(proof["new_size"], 7, "{proof}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("ok: the log of 7 entries extends the log of 3"),
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
    let out = run(dir.path(), &["verify", "--no-record", "--key", "k.key.pub"]);
    assert!(text(&out).contains("covering 3 entries"), "{}", text(&out));
}

/// Issue 15, item 1, as reported: short and long retentions interleaved, a signed checkpoint,
/// then `cleanup`. Before, `verify` found every removed entry missing, `prove` and `checkpoint`
/// failed on the gaps, and a signing proxy refused to start. Now the removed entries are
/// expired, each under the cleanup run recorded in the log, and everything else works.
#[test]
fn after_cleanup_verify_reports_expired_and_prove_checkpoint_consistency_and_the_proxy_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, retention) in ["1s", "forever", "1s", "forever"].iter().enumerate() {
        // Recorded long ago, so that a one-second retention has run out without a wait.
        let event = format!(
            r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"t{i}","timestamp":"2020-01-10T00:00:00Z","actor":{{"user_id":"alice"}},"payload":{{"output":"s{i}"}}}}"#
        );
        let out = run(d, &["log", "--retention", retention, &event]);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(
        run(d, &["keygen", "--name", "expiry", "--out", "k.key"])
            .status
            .success()
    );
    let before = run(
        d,
        &[
            "checkpoint",
            "--key",
            "k.key",
            "--checkpoint-out",
            "cp.jsonl",
        ],
    );
    assert!(before.status.success(), "{}", text(&before));
    std::fs::write(d.join("old.txt"), &before.stdout).unwrap();

    let cleanup = run(d, &["cleanup"]);
    assert!(cleanup.status.success(), "{}", text(&cleanup));
    assert!(
        text(&cleanup)
            .contains("removed seqs 0..1, 2..3 (retention 1s), recorded as the event at seq 4"),
        "{}",
        text(&cleanup)
    );

    let verify = run(
        d,
        &[
            "verify",
            "--no-record",
            "--key",
            "k.key.pub",
            "--checkpoints",
            "cp.jsonl",
        ],
    );
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains(
            "2 entries expired: removed by the cleanup run recorded at seq 4 (seqs 0..1, 2..3)"
        ),
        "{}",
        text(&verify)
    );
    let json = run(
        d,
        &["verify", "--no-record", "--key", "k.key.pub", "--json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report[0]["expired"], 2);
    assert_eq!(report[0]["expiries"][0]["cleanup_seq"], 4);

    // A survivor is proven, and the proof checks out with the public key alone.
    let q = run(d, &["query", "--tool", "t3", "--jsonl"]);
    let event: serde_json::Value =
        serde_json::from_slice(q.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let proof = run(d, &["prove", event["id"].as_str().unwrap()]);
    assert!(proof.status.success(), "{}", text(&proof));
    std::fs::write(d.join("proof.json"), &proof.stdout).unwrap();
    let check = run(d, &["verify-proof", "proof.json", "--key", "k.key.pub"]);
    assert!(check.status.success(), "{}", text(&check));

    // A checkpoint signs, and the log after the cleanup extends the log before it.
    let after = run(d, &["checkpoint", "--key", "k.key"]);
    assert!(after.status.success(), "{}", text(&after));
    std::fs::write(d.join("new.txt"), &after.stdout).unwrap();
    let consistent = run(
        d,
        &["consistency", "old.txt", "new.txt", "--key", "k.key.pub"],
    );
    assert!(consistent.status.success(), "{}", text(&consistent));
    assert!(
        text(&consistent).contains("ok: the log of 5 entries extends the log of 4"),
        "{}",
        text(&consistent)
    );

    // A signing proxy starts on the cleaned log, and its server runs.
    let proxy = Command::new(BIN)
        .current_dir(d)
        .args(["proxy", "--db", "a.db", "--checkpoint-key", "k.key"])
        .args(["--checkpoint-out", "cp.jsonl", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = proxy.stdin.as_ref().unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","method":"notifications/x"}}"#).unwrap();
    }
    let mut proxy = proxy;
    drop(proxy.stdin.take());
    let out = proxy.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("notifications/x"),
        "the server behind the proxy ran: {}",
        text(&out)
    );
    let verify = run(
        d,
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(verify.status.success(), "{}", text(&verify));
}

/// The ids of the events `query` finds with `args`, newest first.
fn ids(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["query", "--jsonl", "--include-pending"];
    all.extend(args);
    let out = run(dir, &all);
    assert!(out.status.success(), "{}", text(&out));
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn erase_erases_the_whole_call_and_records_who_why_and_which() {
    let dir = setup();
    // A call as `sync` records it: the intent with the arguments, the outcome completing it.
    let intent = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"pay","outcome":"pending","payload":{"input":{"iban":"DE00-secret"}}}"#;
    assert!(run(dir.path(), &["log", intent]).status.success());
    let intent_id = ids(dir.path(), &["--tool", "pay"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let outcome = format!(
        r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"pay","completes":"{intent_id}","payload":{{"output":{{"ok":true}}}}}}"#
    );
    assert!(run(dir.path(), &["log", &outcome]).status.success());
    let outcome_id = ids(dir.path(), &["--tool", "pay", "--outcome", "success"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = run(
        dir.path(),
        &[
            "erase",
            &outcome_id,
            "--reason",
            "ticket 42",
            "--actor",
            "dpo",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("erased the personal data of record {outcome_id}"))
            && said.contains(&format!("erased the personal data of intent {intent_id}")),
        "{said}"
    );
    for id in [&intent_id, &outcome_id] {
        let shown = run(dir.path(), &["show", id]);
        let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(shown["redacted"], true, "{id}");
    }
    let erasures = ids(dir.path(), &["--kind", "admin"]);
    assert_eq!(erasures.len(), 2);
    let mut erased: Vec<&str> = erasures
        .iter()
        .map(|e| {
            assert_eq!(e["actor"]["user_id"], "dpo");
            assert_eq!(e["compliance"]["purpose"], "ticket 42");
            assert_eq!(e["action"], "DELETE");
            e["target"]["resource_id"].as_str().unwrap()
        })
        .collect();
    erased.sort_unstable();
    let mut expected = [intent_id.as_str(), outcome_id.as_str()];
    expected.sort_unstable();
    assert_eq!(erased, expected);
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 redacted"), "{}", text(&out));
}

#[test]
fn erase_without_a_reason_is_refused_and_erases_nothing() {
    let dir = setup();
    let id = ids(dir.path(), &["--tool", "t1"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(dir.path(), &["erase", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--reason"), "{}", text(&out));
    let out = run(dir.path(), &["erase", &id, "--reason", "  "]);
    assert!(!out.status.success());
    let shown = run(dir.path(), &["show", &id]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["payload"]["input"]["i"], 1, "{shown}");
}

#[test]
fn a_payload_deleted_behind_the_logs_back_fails_verify_as_tampering() {
    let dir = setup();
    rusqlite::Connection::open(dir.path().join("a.db"))
        .unwrap()
        .execute("DELETE FROM payloads WHERE seq = 1", [])
        .unwrap();
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(r#"FOUND {"finding":"missing_payload","seq":1}"#)
            && text(&out).contains("0 redacted"),
        "{}",
        text(&out)
    );
}

#[test]
fn verify_with_a_key_fails_when_no_checkpoint_is_left() {
    let dir = setup();
    rusqlite::Connection::open(dir.path().join("a.db"))
        .unwrap()
        .execute("DELETE FROM checkpoints", [])
        .unwrap();
    let out = run(dir.path(), &["verify", "--key", "k.key.pub"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no_signed_checkpoint")
            && text(&out).contains("nothing was checked against a signature"),
        "{}",
        text(&out)
    );
    // The outside copy still checks the log.
    let out = run(
        dir.path(),
        &["verify", "--key", "k.key.pub", "--checkpoints", "cp.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_same_checkpoints_given_twice_count_once() {
    let dir = setup();
    let out = run(
        dir.path(),
        &[
            "verify",
            "--key",
            "k.key.pub",
            "--checkpoints",
            "cp.jsonl",
            "--checkpoints",
            "cp.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 checkpoint(s) verified"),
        "{}",
        text(&out)
    );
}

#[test]
fn verify_exits_2_when_it_cannot_run_and_says_so_in_its_help() {
    let dir = setup();
    let code = |args: &[&str]| run(dir.path(), args).status.code();
    assert_eq!(code(&["verify", "--key", "k.key.pub"]), Some(0));
    assert_eq!(
        code(&["--db", "missing.db", "verify", "--key", "k.key.pub"]),
        Some(2),
        "no database"
    );
    assert_eq!(code(&["verify", "--key", "not a key"]), Some(2), "bad key");
    assert_eq!(
        code(&[
            "verify",
            "--key",
            "k.key.pub",
            "--checkpoints",
            "none.jsonl"
        ]),
        Some(2),
        "no checkpoint file"
    );
    std::fs::write(dir.path().join("bad.jsonl"), "{not json\n").unwrap();
    assert_eq!(
        code(&["verify", "--checkpoints", "bad.jsonl"]),
        Some(2),
        "a checkpoint file that does not parse"
    );
    assert_eq!(code(&["verify", "--no-such-flag"]), Some(2), "usage");
    assert_eq!(
        code(&[
            "--db",
            "postgres://postgres@127.0.0.1:1/none",
            "--reconnect-timeout",
            "1s",
            "verify"
        ]),
        Some(2),
        "a database that can not be reached"
    );
    let help = run(dir.path(), &["verify", "--help"]);
    let help = text(&help);
    assert!(
        help.contains("0  the log is what was signed")
            && help.contains("1  the log is not what was signed")
            && help.contains("2  verify could not run"),
        "{help}"
    );
}

#[test]
fn verify_warns_of_a_missing_key_on_stderr_and_keeps_stdout_for_the_report() {
    let dir = setup();
    let out = run(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    assert!(
        stderr.contains("warning: no --key given: signatures were not checked"),
        "{stderr}"
    );

    let json = run(dir.path(), &["verify", "--json"]);
    assert!(json.status.success(), "{}", text(&json));
    let reports: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&json)));
    assert_eq!(reports[0]["ok"], true, "{reports}");
    assert!(
        String::from_utf8_lossy(&json.stderr).contains("warning: no --key given"),
        "{}",
        text(&json)
    );
}
