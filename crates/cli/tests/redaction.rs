//! Redaction in the recording path, end to end: real traffic through the stdio proxy to the
//! MCP reference server, `log`, `redact --test`, and the bad policy files a user will write.
//! The proof that a secret was not stored is the raw bytes of the database file and its
//! write-ahead log.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use mcp_audit_core::Outcome;
use mcp_audit_store::StoredEvent;
use serde_json::{Value, json};

mod support;

use support::{BIN, RawClient, events, everything, peers};

const BEARER: &str = "zq8SecretBearerValue42xy";
const CARD: &str = "4111 1111 1111 1111";
const CARD_DIGITS: &str = "4111111111111111";
const HMAC_KEY: &str = "a test key of at least sixteen bytes";

/// The built-in secrets, and card numbers (Luhn-checked) replaced by keyed pseudonyms.
fn card_policy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        format!(
            "# secrets stay on (the default)\n[hash]\nkey = \"{HMAC_KEY}\"\n\n\
             [[rule]]\nid = \"card\"\ndetector = \"card\"\naction = \"hash\"\n"
        ),
    )
    .unwrap();
    path
}

/// `tools/call echo` of `message` through `client`: what the server echoed.
fn echo(client: &mut RawClient, id: u32, message: &str) -> String {
    let frame = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":"echo","arguments":{"message":message}}});
    client.send(frame.to_string().as_bytes());
    let answer = client.answer();
    assert_eq!(answer["id"], frame["id"], "{answer}");
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The raw bytes of the database file and of its write-ahead log (empty when there is none).
fn raw_files(db: &Path) -> (Vec<u8>, Vec<u8>) {
    let wal = db.with_file_name(format!("{}-wal", db.file_name().unwrap().to_string_lossy()));
    (
        std::fs::read(db).unwrap(),
        std::fs::read(wal).unwrap_or_default(),
    )
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

fn redactions(event: &StoredEvent) -> Vec<(String, u64)> {
    event
        .event
        .compliance
        .redactions
        .iter()
        .map(|r| (r.rule.clone(), r.count))
        .collect()
}

fn message_of(event: &StoredEvent) -> String {
    event.event.payload.input.as_ref().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_bearer_token_and_a_card_number_through_the_proxy_never_reach_the_database_or_its_wal() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let policy = card_policy(dir.path());
    let mut client = RawClient::start(
        &db,
        &["--redact-policy", policy.to_str().unwrap()],
        &everything(&peers),
    );
    let secret_message = format!("Authorization: Bearer {BEARER}; pay with {CARD}");
    let echoed = echo(&mut client, 1, &secret_message);
    assert!(
        echoed.contains(BEARER) && echoed.contains(CARD),
        "the client and the server see the traffic as it is: {echoed}"
    );
    echo(&mut client, 2, &format!("again {CARD}"));
    // The third call's intent is committed with the second's outcome (and so on): once it is
    // answered, both redacted calls are wholly in the write-ahead log of the running proxy.
    echo(&mut client, 3, "plain");
    let (main, wal) = raw_files(&db);
    assert!(!wal.is_empty(), "the running proxy writes through its WAL");
    for (file, bytes) in [("database", &main), ("WAL", &wal)] {
        for secret in [BEARER, CARD, CARD_DIGITS] {
            assert!(!holds(bytes, secret), "{secret} is in the {file} file");
        }
    }
    assert!(
        holds(&wal, "[REDACTED:bearer]"),
        "the WAL holds the redacted records (so the check above looked at them)"
    );
    client.close();
    let (main, wal) = raw_files(&db);
    for secret in [BEARER, CARD, CARD_DIGITS] {
        assert!(!holds(&main, secret) && !holds(&wal, secret), "{secret}");
    }

    let all = events(&db);
    let echoes: Vec<&StoredEvent> = all
        .iter()
        .filter(|e| e.event.operation == "echo" && e.event.outcome == Outcome::Success)
        .collect();
    assert_eq!(echoes.len(), 3);
    let first = all
        .iter()
        .find(|e| e.event.request_id.as_deref() == Some("1") && e.event.completes.is_none())
        .expect("the first call's intent");
    assert_eq!(
        redactions(first),
        vec![("bearer".to_string(), 1), ("card".to_string(), 1)],
        "rule ids and counts, in the hashed metadata"
    );
    let first_message = message_of(first);
    assert!(
        first_message.starts_with("Authorization: [REDACTED:bearer]; pay with hmac:"),
        "{first_message}"
    );
    let first_done = all
        .iter()
        .find(|e| e.event.request_id.as_deref() == Some("1") && e.event.completes.is_some())
        .expect("the first call's outcome");
    assert_eq!(
        redactions(first_done),
        vec![("bearer".to_string(), 2), ("card".to_string(), 2)],
        "the arguments again, and the echo in the result"
    );
    let second = all
        .iter()
        .find(|e| e.event.request_id.as_deref() == Some("2") && e.event.completes.is_none())
        .expect("the second call's intent");
    let pseudonym = |m: &str| m.rsplit(' ').next().unwrap_or_default().to_string();
    assert_eq!(
        pseudonym(&message_of(second)),
        pseudonym(&first_message),
        "equal card numbers, equal pseudonyms"
    );
    let third = all
        .iter()
        .find(|e| e.event.request_id.as_deref() == Some("3") && e.event.completes.is_none())
        .expect("the third call's intent");
    assert!(
        redactions(third).is_empty(),
        "nothing redacted, nothing said"
    );

    let verify = Command::new(BIN)
        .args(["verify", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let show = Command::new(BIN)
        .args(["show", &first.seq.to_string(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        shown["compliance"]["redactions"],
        json!([{"rule": "bearer", "count": 1}, {"rule": "card", "count": 1}])
    );
}

/// Runs `mcp-audit <args>` with `stdin`; returns (success, stdout, stderr).
fn run(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const EVENT_WITH_SECRETS: &str = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"deploy","payload":{"input":{"password":"hunter2-secret","note":"key sk-ant-api03-abcdefghijklmnopqrstuvwx"}}}"#;

#[test]
fn log_redacts_secrets_by_default_and_none_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let (ok, _, err) = run(&["log", "--db", db_arg, "-"], EVENT_WITH_SECRETS);
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &["log", "--db", db_arg, "--redact-policy", "none", "-"],
        EVENT_WITH_SECRETS,
    );
    assert!(ok, "{err}");
    let all = events(&db);
    assert_eq!(all.len(), 2);
    let input = |e: &StoredEvent| e.event.payload.input.clone().unwrap();
    assert_eq!(
        input(&all[0]),
        json!({"password": "[REDACTED:secret-keys]", "note": "key [REDACTED:llm-api-key]"})
    );
    assert_eq!(
        redactions(&all[0]),
        vec![
            ("llm-api-key".to_string(), 1),
            ("secret-keys".to_string(), 1)
        ]
    );
    assert_eq!(input(&all[1])["password"], "hunter2-secret");
    assert!(redactions(&all[1]).is_empty());

    // The CSV export has a column for them: the rules and counts, or blank.
    let (ok, csv, err) = run(&["export", "--db", db_arg, "--format", "csv"], "");
    assert!(ok, "{err}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "redactions")
        .expect("a redactions column");
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[column].to_string())
        .collect();
    assert!(cells.contains(&String::new()), "{cells:?}");
    let listed = cells.iter().find(|c| !c.is_empty()).expect("one listed");
    let listed: Value = serde_json::from_str(listed).unwrap();
    assert_eq!(
        listed,
        json!([{"rule": "llm-api-key", "count": 1}, {"rule": "secret-keys", "count": 1}])
    );
}

#[test]
fn a_bad_policy_file_stops_log_and_proxy_with_its_line_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let cases = [
        ("secrets = true\n[[rule]\nid = \"x\"\n", "line 2: "),
        (
            "[[rule]]\nid = \"bad-regex\"\npattern = \"(unclosed\"\n",
            "line 3: rule `bad-regex`: invalid pattern",
        ),
        (
            "[[rule]]\nid = \"x\"\ndetector = \"card\"\naction = \"shred\"\n",
            "unknown action `shred` (valid: redact, drop, mask, hash, truncate)",
        ),
    ];
    for (text, expected) in cases {
        let policy = dir.path().join("bad.toml");
        std::fs::write(&policy, text).unwrap();
        let policy = policy.to_str().unwrap();
        let (ok, _, err) = run(
            &["log", "--db", db_arg, "--redact-policy", policy, "-"],
            EVENT_WITH_SECRETS,
        );
        assert!(!ok && err.contains(expected), "log: {err}");
        let (ok, _, err) = run(
            &[
                "proxy",
                "--db",
                db_arg,
                "--redact-policy",
                policy,
                "--",
                "cat",
            ],
            "",
        );
        assert!(!ok && err.contains(expected), "proxy: {err}");
    }
    let (ok, _, err) = run(
        &[
            "log",
            "--db",
            db_arg,
            "--redact-policy",
            "missing.toml",
            "-",
        ],
        EVENT_WITH_SECRETS,
    );
    assert!(
        !ok && err.contains("cannot read the redaction policy missing.toml"),
        "{err}"
    );
    assert!(
        !db.exists() || events(&db).is_empty(),
        "nothing recorded after a refused policy"
    );
}

#[test]
fn redact_test_prints_what_a_policy_does_to_a_sample_and_which_rules_fired() {
    let dir = tempfile::tempdir().unwrap();
    let policy = card_policy(dir.path());
    let policy = policy.to_str().unwrap();
    let sample = format!(r#"{{"card":"{CARD}","auth":"Bearer {BEARER}","n":1}}"#);
    let (ok, out, err) = run(&["redact", "--test", policy], &sample);
    assert!(ok, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert!(printed["card"].as_str().unwrap().starts_with("hmac:"));
    assert_eq!(printed["auth"], "[REDACTED:bearer]");
    assert_eq!(printed["n"], 1);
    assert!(err.contains("redacted by bearer: 1") && err.contains("redacted by card: 1"));

    // Without --test, the built-in secrets policy; an event is printed as it would be recorded.
    let (ok, out, err) = run(&["redact"], EVENT_WITH_SECRETS);
    assert!(ok, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed["compliance"]["redactions"],
        json!([{"rule": "llm-api-key", "count": 1}, {"rule": "secret-keys", "count": 1}])
    );
    let (ok, _, err) = run(&["redact"], "not json");
    assert!(!ok && err.contains("not JSON"), "{err}");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn under_umask_000_the_database_its_wal_shm_and_lock_are_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    // The proxy, started by a shell whose umask lets every bit through, in front of `cat`: the
    // store is open (and written: the `tools/call` is recorded before it is forwarded) once
    // the frame comes back.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" proxy --db \"$1\" -- cat")
        .arg(BIN)
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    writeln!(
        input,
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{}}}}}}"#
    )
    .unwrap();
    input.flush().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("tools/call"), "{line}");
    let name = |suffix: &str| dir.path().join(format!("audit.db{suffix}"));
    for suffix in ["", "-wal", "-shm", "-writers"] {
        assert_eq!(mode(&name(suffix)), 0o600, "audit.db{suffix}");
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // `log` creates its database so too.
    let logged = dir.path().join("logged.db");
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" log --db \"$1\" '{\"kind\":\"tool_execution\",\"action\":\"EXECUTE\",\"operation\":\"x\"}'")
        .arg(BIN)
        .arg(&logged)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&logged), 0o600);
}

#[test]
fn the_proxy_warns_at_start_when_the_database_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let (ok, _, err) = run(
        &[
            "log",
            "--db",
            db_arg,
            r#"{"kind":"tool_execution","action":"EXECUTE","operation":"x"}"#,
        ],
        "",
    );
    assert!(ok, "{err}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = run(&["proxy", "--db", db_arg, "--", "cat"], "");
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: ") && err.contains("open to other users (mode 644)"),
        "{err}"
    );
    assert_eq!(
        mode(&db),
        0o644,
        "an existing file's mode is the owner's to change"
    );
}

#[test]
fn a_redaction_key_file_open_to_others_is_warned_about_and_still_used() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("redact.key"), format!("{HMAC_KEY}\n")).unwrap();
    let key = dir.path().join("redact.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[hash]\nkey_file = \"redact.key\"\n[[rule]]\nid = \"card\"\ndetector = \"card\"\naction = \"hash\"\n",
    )
    .unwrap();
    let sample = format!(r#"{{"card":"{CARD}"}}"#);
    let (ok, from_file, err) = run(&["redact", "--test", policy.to_str().unwrap()], &sample);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: the redaction key") && err.contains("(mode 644)"),
        "{err}"
    );
    // The same key given inline (the file's newline is not part of it): the same pseudonym.
    let (ok, inline, err) = run(
        &[
            "redact",
            "--test",
            card_policy(dir.path()).to_str().unwrap(),
        ],
        &sample,
    );
    assert!(ok && !err.contains("warning"), "{err}");
    assert_eq!(from_file, inline);
}

#[test]
fn the_proxy_warns_about_each_file_open_to_others_the_writers_lock_and_the_signing_key() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let (ok, _, err) = run(
        &[
            "log",
            "--db",
            db_arg,
            r#"{"kind":"tool_execution","action":"EXECUTE","operation":"x"}"#,
        ],
        "",
    );
    assert!(ok, "{err}");
    let lock = dir.path().join("audit.db-writers");
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o640)).unwrap();
    let key = dir.path().join("audit.key");
    let (ok, _, err) = run(
        &["keygen", "--name", "t", "--out", key.to_str().unwrap()],
        "",
    );
    assert!(ok, "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (ok, _, err) = run(
        &[
            "proxy",
            "--db",
            db_arg,
            "--checkpoint-key",
            key.to_str().unwrap(),
            "--",
            "cat",
        ],
        "",
    );
    assert!(ok, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        vec![
            format!(
                "warning: {} is open to other users (mode 640); the audit trail belongs to its owner alone: chmod 600 {}",
                lock.display(),
                lock.display()
            ),
            format!(
                "warning: {} is open to other users (mode 644); the audit trail belongs to its owner alone: chmod 600 {}",
                key.display(),
                key.display()
            ),
        ],
        "the database itself is 0600: no warning for it\n{err}"
    );
}

#[test]
fn serve_warns_at_start_when_the_database_is_readable_by_others() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db_arg = db.to_str().unwrap();
    let (ok, _, err) = run(
        &[
            "log",
            "--db",
            db_arg,
            r#"{"kind":"tool_execution","action":"EXECUTE","operation":"x"}"#,
        ],
        "",
    );
    assert!(ok, "{err}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o604)).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--db", db_arg, "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut before_listening = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "serve stopped before listening: {before_listening}");
        if line.contains("listening on ") {
            break;
        }
        before_listening.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        before_listening.contains(&format!(
            "warning: {db_arg} is open to other users (mode 604); the audit trail belongs to its owner alone: chmod 600 {db_arg}"
        )),
        "{before_listening}"
    );
}
