//! A data subject's erasure, end to end: real traffic through the stdio proxy to the MCP
//! reference server under a user id, an event naming the same person by e-mail and by
//! data-subject id, then `subject erase` of each identifier. The proof that nothing points at
//! the person is the raw bytes of the SQLite file and its write-ahead log (PostgreSQL: every
//! row of every table of the schema, as text); `verify` still passes, queries by the person
//! find nothing, and another user's events are untouched.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mcp_audit_store::{Durability, Recorder, RecorderConfig, SqliteOptions, SqliteStore};
use serde_json::{Value, json};

mod support;

use support::{BIN, PgSchema, RawClient, everything, peers};

const USER: &str = "alice-smith-7781";
const EMAIL: &str = "alice.smith@example.com";
const SUBJECT: &str = "subject-alice-4711";
/// The person's name, in a tool's arguments and a content preview.
const NAME: &str = "Alice Smithfield";
const OTHER: &str = "bob-jones-1234";

/// Runs `mcp-audit --db <db> <args>` with `stdin`; returns (success, stdout, stderr).
fn run(db: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(db)
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

/// The events `query --json <args>` lists (every page).
fn query(db: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["query", "--json", "--limit", "1000"];
    all.extend_from_slice(args);
    let (ok, out, err) = run(db, &all, "");
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out).unwrap()["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// `tools/call echo` of `message` through `client`.
fn echo(client: &mut RawClient, id: u32, message: &str) {
    let frame = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":"echo","arguments":{"message":message}}});
    client.send(frame.to_string().as_bytes());
    let answer = client.answer();
    assert_eq!(answer["id"], frame["id"], "{answer}");
}

/// The person's traffic through the proxy, another user's, and one event of the person's
/// recorded by `log` with their e-mail and data-subject id. `db` is a path or a URL.
fn record_traffic(db: &str, peers: &Path) {
    let mut alice = RawClient::start(
        Path::new(db),
        &["--user", USER, "--server-name", "everything"],
        &everything(peers),
    );
    echo(&mut alice, 1, &format!("hello from {NAME} <{EMAIL}>"));
    alice.close();
    let mut bob = RawClient::start(
        Path::new(db),
        &["--user", OTHER, "--server-name", "everything"],
        &everything(peers),
    );
    echo(&mut bob, 1, "hello from bob");
    bob.close();
    let event = json!({
        "kind": "resource_access", "action": "READ",
        "operation": "crm://contacts/42",
        "actor": {"user_id": USER, "email": EMAIL},
        "compliance": {"data_subject_id": SUBJECT},
        "payload": {"content_preview": format!("{NAME}, {EMAIL}")}
    });
    let (ok, _, err) = run(db, &["log", &event.to_string()], "");
    assert!(ok, "{err}");
}

/// Queries by each identifier find the person's events through the mapping, and the other
/// user's stay theirs.
fn check_before(db: &str) {
    let by_user = query(db, &["--user", USER]);
    assert!(by_user.len() >= 3, "{by_user:?}");
    assert!(by_user.iter().all(|e| e["actor"]["user_id"] == USER));
    let by_subject = query(db, &["--subject", SUBJECT]);
    assert_eq!(by_subject.len(), 1, "{by_subject:?}");
    assert_eq!(by_subject[0]["compliance"]["data_subject_id"], SUBJECT);
    assert!(!query(db, &["--user", OTHER]).is_empty());
}

/// Erases each of the person's identifiers, then checks what readers show.
fn erase_and_check(db: &str) {
    for (subject, reason) in [
        (USER, "erasure request #1 (user)"),
        (SUBJECT, "erasure request #1 (data subject)"),
        (EMAIL, "erasure request #1 (e-mail)"),
    ] {
        let (ok, out, err) = run(
            db,
            &[
                "subject", "erase", subject, "--reason", reason, "--actor", "dpo",
            ],
            "",
        );
        assert!(ok, "{err}");
        assert!(out.contains("erased"), "{out}");
        assert!(
            !out.contains(subject),
            "the answer names the subject: {out}"
        );
    }
    let (ok, out, err) = run(db, &["verify"], "");
    assert!(ok, "verify after a subject erasure: {out}{err}");
    assert!(query(db, &["--user", USER]).is_empty());
    assert!(query(db, &["--subject", SUBJECT]).is_empty());
    let others = query(db, &["--user", OTHER]);
    assert!(!others.is_empty());
    assert!(others.iter().all(|e| e["actor"]["user_id"] == OTHER));
    // One recorded request each, naming the subject by a pseudonym, with its count.
    let requests = query(db, &["--operation", "DELETE data_subject"]);
    assert_eq!(requests.len(), 3, "{requests:?}");
    for request in &requests {
        let subject = request["compliance"]["data_subject_id"].as_str().unwrap();
        assert!(subject.starts_with("pn:"), "{request}");
        assert_eq!(request["actor"]["user_id"], "dpo");
        assert_eq!(
            request["compliance_events"][0]["event_type"],
            "subject_erasure"
        );
    }
    let by_user = requests
        .iter()
        .find(|r| r["compliance"]["purpose"] == "erasure request #1 (user)")
        .unwrap();
    assert!(by_user["compliance_events"][0]["details"]["events"].as_u64() >= Some(3));
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// The raw bytes of the database file and of its write-ahead log (empty when there is none).
fn raw_files(db: &Path) -> Vec<u8> {
    let wal = db.with_file_name(format!("{}-wal", db.file_name().unwrap().to_string_lossy()));
    let mut bytes = std::fs::read(db).unwrap();
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    bytes
}

#[test]
fn after_a_subject_erasure_the_sqlite_file_and_its_wal_hold_nothing_that_points_at_the_person() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = path.to_str().unwrap();
    record_traffic(db, &peers);
    check_before(db);
    let before = raw_files(&path);
    // The mapping holds each identifier once, and the payloads the rest.
    for text in [USER, SUBJECT, EMAIL, NAME, OTHER] {
        assert!(
            holds(&before, text),
            "{text} is recorded before the erasure"
        );
    }
    erase_and_check(db);
    let after = raw_files(&path);
    for text in [USER, SUBJECT, EMAIL, NAME] {
        assert!(
            !holds(&after, text),
            "{text} is still in the file or its WAL"
        );
    }
    assert!(holds(&after, OTHER), "another user's mapping is kept");
}

#[test]
fn events_hashed_with_clear_identifiers_still_verify_and_are_found_with_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = path.to_str().unwrap();
    // An event recorded as before pseudonyms: the user id in clear in the hashed metadata.
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let old = Recorder::start(
        store,
        RecorderConfig {
            durability: Durability::Sync,
            pseudonyms: false,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    old.record(
        mcp_audit_core::AuditEvent::tool_execution("search")
            .user(USER)
            .input(json!({"q": "old"}))
            .build()
            .unwrap(),
    )
    .unwrap();
    old.shutdown().unwrap();
    let event = json!({"kind": "tool_execution", "action": "EXECUTE", "operation": "search",
        "actor": {"user_id": USER}, "payload": {"input": {"q": "new"}}});
    let (ok, _, err) = run(db, &["log", &event.to_string()], "");
    assert!(ok, "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT user_id FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored[0], USER, "the old event holds the identifier");
    assert!(
        stored[1].starts_with("pn:"),
        "the new one a pseudonym: {stored:?}"
    );
    drop(conn);
    let found = query(db, &["--user", USER]);
    assert_eq!(found.len(), 2, "{found:?}");
    let (ok, out, err) = run(db, &["verify"], "");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(
        db,
        &[
            "subject", "erase", USER, "--reason", "request", "--actor", "dpo",
        ],
        "",
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run(db, &["verify"], "");
    assert!(ok, "{out}{err}");
    // Both payloads are gone; the old event's metadata can not change, and still names them.
    let found = query(db, &["--user", USER]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].get("payload").is_none(), "{}", found[0]);
}

#[test]
fn a_subject_erasure_with_a_blank_reason_or_subject_is_refused_and_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = path.to_str().unwrap();
    let event = json!({"kind": "tool_execution", "action": "EXECUTE", "operation": "search",
        "actor": {"user_id": USER}, "payload": {"input": {"q": "x"}}});
    assert!(run(db, &["log", &event.to_string()], "").0);
    for args in [
        vec!["subject", "erase", USER, "--reason", " "],
        vec!["subject", "erase", "", "--reason", "request"],
    ] {
        let (ok, _, err) = run(db, &args, "");
        assert!(!ok);
        assert!(err.starts_with("error: "), "{err}");
    }
    let found = query(db, &["--user", USER]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["payload"]["input"]["q"], "x");
}

/// Every row of every table of the schema, as text, that holds `text`.
fn pg_rows_holding(url: &str, text: &str) -> Vec<String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut found = Vec::new();
    for table in tables {
        let sql = format!("SELECT t::text FROM {table} t WHERE strpos(t::text, $1) > 0");
        for row in client.query(&sql, &[&text]).unwrap() {
            found.push(format!("{table}: {}", row.get::<_, String>(0)));
        }
    }
    found
}

#[test]
fn postgres_after_a_subject_erasure_no_row_points_at_the_person() {
    let Some(peers) = peers() else { return };
    let Some(schema) = PgSchema::new("subject_erase") else {
        return;
    };
    let db = schema.url.as_str();
    record_traffic(db, &peers);
    check_before(db);
    assert!(!pg_rows_holding(db, USER).is_empty());
    erase_and_check(db);
    for text in [USER, SUBJECT, EMAIL, NAME] {
        let rows = pg_rows_holding(db, text);
        assert!(rows.is_empty(), "{text} remains: {rows:?}");
    }
    assert!(!pg_rows_holding(db, OTHER).is_empty());
}

/// Regression: a hold's scope was kept in its event's hashed metadata as given, so after the
/// hold's release and the subject's erasure the log still named them. Now the hold names its
/// scope by the pseudonym (through the erasable mapping), `hold list` shows the identity while
/// the mapping has it, and the subject's erasure unlinks the hold with their events.
#[test]
fn a_released_hold_on_an_erased_subject_or_user_leaves_nothing_that_names_them() {
    const HELD_SUBJECT: &str = "subject-held-5150";
    const HELD_USER: &str = "carol-held-8642";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = path.to_str().unwrap();
    let event = json!({"kind": "tool_execution", "action": "EXECUTE", "operation": "search",
        "actor": {"user_id": HELD_USER}, "compliance": {"data_subject_id": HELD_SUBJECT},
        "payload": {"input": {"q": "x"}}});
    let (ok, _, err) = run(db, &["log", &event.to_string()], "");
    assert!(ok, "{err}");
    let mut holds_placed = Vec::new();
    for scope in ["--subject", "--user"] {
        let value = if scope == "--subject" {
            HELD_SUBJECT
        } else {
            HELD_USER
        };
        let (ok, out, err) = run(
            db,
            &[
                "hold",
                "add",
                scope,
                value,
                "--reason",
                "matter 17",
                "--actor",
                "counsel",
            ],
            "",
        );
        assert!(ok, "{err}");
        holds_placed.push(out.trim().to_string());
    }
    // Readers show the identities while the mapping has them.
    let list = |db: &str| -> Vec<Value> {
        let (ok, out, err) = run(db, &["hold", "list", "--json"], "");
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let listed = list(db);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        listed[0]["scope"],
        json!({"subject": HELD_SUBJECT}),
        "{listed:?}"
    );
    assert_eq!(listed[1]["scope"], json!({"user": HELD_USER}), "{listed:?}");
    let (ok, out, _) = run(db, &["hold", "list"], "");
    assert!(
        ok && out.contains(HELD_SUBJECT) && out.contains(HELD_USER),
        "{out}"
    );
    // The hold's event itself names neither in clear.
    let conn = rusqlite::Connection::open(&path).unwrap();
    mcp_audit_store::SqliteStore::register_functions(&conn).unwrap();
    let metas: Vec<String> = conn
        .prepare("SELECT mcp_audit_text(meta) FROM events WHERE resource_type = 'legal_hold'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    assert_eq!(metas.len(), 2);
    for meta in &metas {
        assert!(
            !meta.contains(HELD_SUBJECT) && !meta.contains(HELD_USER),
            "{meta}"
        );
        assert!(meta.contains("pn:"), "{meta}");
    }
    // Held: the erasure is refused, and says by which hold.
    let (ok, _, err) = run(
        db,
        &["subject", "erase", HELD_SUBJECT, "--reason", "request 9"],
        "",
    );
    assert!(!ok, "a held subject was erased");
    assert!(err.contains(&holds_placed[0]), "{err}");
    for id in &holds_placed {
        let (ok, _, err) = run(db, &["hold", "release", id, "--reason", "case closed"], "");
        assert!(ok, "{err}");
    }
    for subject in [HELD_SUBJECT, HELD_USER] {
        let (ok, _, err) = run(
            db,
            &[
                "subject",
                "erase",
                subject,
                "--reason",
                "request 9",
                "--actor",
                "dpo",
            ],
            "",
        );
        assert!(ok, "{err}");
    }
    let (ok, out, err) = run(db, &["verify"], "");
    assert!(ok, "{out}{err}");
    let after = raw_files(&path);
    for text in [HELD_SUBJECT, HELD_USER] {
        assert!(
            !holds(&after, text),
            "{text} is still in the file or its WAL"
        );
    }
    // The holds are still listed, released, under the pseudonyms nothing resolves.
    let listed = list(db);
    assert_eq!(listed.len(), 2);
    for hold in &listed {
        assert!(!hold["released"].is_null(), "{hold}");
        let scope = hold["scope"].as_object().unwrap();
        let named = scope.values().next().unwrap().as_str().unwrap();
        assert!(named.starts_with("pn:"), "{hold}");
    }
}
