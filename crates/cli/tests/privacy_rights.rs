//! A data subject's export, legal holds, retention classes and `cleanup --dry-run`, end to end
//! through the binary on a SQLite file (the store suite `hold.rs` runs the same on both
//! backends).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::{BIN, RawClient, everything, peers};

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

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An event of `user`, expired long ago when `old`.
fn event(operation: &str, user: &str, old: bool) -> String {
    let mut e = serde_json::json!({
        "kind": "tool_execution", "action": "EXECUTE", "operation": operation,
        "actor": {"user_id": user},
        "payload": {"input": {"note": format!("{user} wrote {operation}")}},
    });
    if old {
        e["timestamp"] = "2020-01-01T00:00:00Z".into();
        e["compliance"] = serde_json::json!({"retention": "30d"});
    }
    e.to_string()
}

/// Every event as JSON lines.
fn events(dir: &Path) -> Vec<Value> {
    ok(dir, &["query", "--jsonl", "--limit", "1000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count_of(dir: &Path, operation: &str) -> usize {
    events(dir)
        .iter()
        .filter(|e| e["operation"] == operation)
        .count()
}

#[test]
fn a_subjects_export_verifies_offline_and_fails_when_one_byte_is_edited() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (op, user) in [("a", "cust-42"), ("b", "bob"), ("c", "cust-42")] {
        ok(d, &["log", &event(op, user, false)]);
    }
    ok(d, &["keygen", "--name", "audit-test", "--out", "k.key"]);
    ok(d, &["checkpoint", "--key", "k.key"]);

    ok(
        d,
        &[
            "subject", "export", "cust-42", "--output", "e.json", "--actor", "dpo",
        ],
    );
    let export: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("e.json")).unwrap()).unwrap();
    let ops: Vec<&str> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["a", "c"]);
    let verified = ok(
        d,
        &["subject", "verify-export", "e.json", "--key", "k.key.pub"],
    );
    assert!(
        verified.contains("ok: 2 event(s) about cust-42"),
        "{verified}"
    );

    // The export is recorded: who asked, how many.
    let recorded: Vec<Value> = events(d)
        .into_iter()
        .filter(|e| e["operation"] == "EXPORT data_subject")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["actor"]["user_id"], "dpo");
    assert_eq!(recorded[0]["compliance_events"][0]["details"]["events"], 2);

    // One byte of the shown argument: `cust-42 wrote a` → `cust-42 wrote A`.
    let original = std::fs::read_to_string(d.join("e.json")).unwrap();
    let edited = original.replacen("cust-42 wrote a", "cust-42 wrote A", 1);
    assert_eq!(edited.len(), original.len());
    assert_ne!(edited, original);
    std::fs::write(d.join("edited.json"), edited).unwrap();
    let out = run(
        d,
        &[
            "subject",
            "verify-export",
            "edited.json",
            "--key",
            "k.key.pub",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the export does not hold"),
        "{}",
        text(&out)
    );

    // The hashed metadata names the subject by a pseudonym: the export shows the subject
    // and lists the one pseudonym it resolved; a list that says the pseudonym is somebody
    // else no longer matches the events shown.
    for e in export["events"].as_array().unwrap() {
        assert_eq!(e["event"]["actor"]["user_id"], "cust-42", "{e}");
    }
    let links = export["pseudonyms"].as_object().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let (pseudonym, identity) = links.iter().next().unwrap();
    assert!(pseudonym.starts_with("pn:"), "{pseudonym}");
    assert_eq!(identity, "cust-42");
    let mut relinked = export.clone();
    relinked["pseudonyms"][pseudonym] = Value::from("cust-99");
    std::fs::write(d.join("relinked.json"), relinked.to_string()).unwrap();
    let out = run(
        d,
        &[
            "subject",
            "verify-export",
            "relinked.json",
            "--key",
            "k.key.pub",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the export does not hold"),
        "{}",
        text(&out)
    );

    // A subject with no events: an empty export, not an error.
    let empty: Value = serde_json::from_str(&ok(d, &["subject", "export", "nobody"])).unwrap();
    assert_eq!(empty["events"], serde_json::json!([]));
}

#[test]
fn an_export_refuses_events_no_checkpoint_covers_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["log", &event("a", "cust-42", false)]);
    let out = run(d, &["subject", "export", "cust-42"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("mcp-audit checkpoint"),
        "{}",
        text(&out)
    );
    assert_eq!(
        count_of(d, "EXPORT data_subject"),
        0,
        "nothing served, nothing recorded"
    );
}

#[test]
fn a_hold_keeps_events_from_cleanup_and_erasure_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (op, user) in [("a", "alice"), ("b", "bob"), ("c", "alice")] {
        ok(d, &["log", &event(op, user, true)]);
    }
    let hold = ok(
        d,
        &[
            "hold",
            "add",
            "--user",
            "alice",
            "--reason",
            "litigation 17",
            "--actor",
            "counsel",
        ],
    );
    let hold = hold.trim();

    // The dry run reports what would go and what the hold keeps, and changes nothing.
    let before = events(d).len();
    let dry: Value = serde_json::from_str(&ok(d, &["cleanup", "--dry-run", "--json"])).unwrap();
    assert_eq!(
        (dry["events"].as_u64(), dry["held"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(dry["logs"][0]["held"][hold], 2);
    assert_eq!(dry["logs"][0]["by_retention"]["30d"], 1);
    assert_eq!(events(d).len(), before, "a dry run changes nothing");
    let text_dry = ok(d, &["cleanup", "--dry-run"]);
    assert!(
        text_dry.contains(&format!("legal hold {hold} keeps 2")),
        "{text_dry}"
    );

    // Erasing a held event is refused, naming the hold and why.
    let alices = events(d)
        .into_iter()
        .find(|e| e["operation"] == "a")
        .unwrap();
    let id = alices["id"].as_str().unwrap();
    let out = run(d, &["erase", id, "--reason", "request 9"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(hold) && text(&out).contains("litigation 17"),
        "{}",
        text(&out)
    );

    let cleaned: Value = serde_json::from_str(&ok(d, &["cleanup", "--json"])).unwrap();
    assert_eq!(cleaned["events"], 1, "only bob's event goes");
    assert_eq!(
        (count_of(d, "a"), count_of(d, "b"), count_of(d, "c")),
        (1, 0, 1)
    );

    let list: Value = serde_json::from_str(&ok(d, &["hold", "list", "--json"])).unwrap();
    assert_eq!(list[0]["id"], hold);
    assert_eq!(list[0]["scope"]["user"], "alice");
    ok(d, &["hold", "release", hold, "--reason", "settled"]);
    let again = run(d, &["hold", "release", hold, "--reason", "twice"]);
    assert!(
        text(&again).contains("already released"),
        "{}",
        text(&again)
    );

    ok(d, &["erase", id, "--reason", "request 9"]);
    let cleaned: Value = serde_json::from_str(&ok(d, &["cleanup", "--json"])).unwrap();
    assert_eq!(cleaned["events"], 2, "released: alice's events go");
    // Holds, releases, the erasure and both runs are events of the log, which verifies.
    ok(d, &["verify"]);
    assert_eq!(count_of(d, "CREATE legal_hold"), 1);
    assert_eq!(count_of(d, "DELETE legal_hold"), 1);
}

/// A subject's erasure is one request: a hold on any one of their events (here, through
/// another data subject's case) refuses all of it before anything is erased.
#[test]
fn a_hold_on_one_of_a_subjects_events_refuses_their_whole_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The free event first, the held one after: a request erased call by call would have
    // erased the first before it met the hold.
    ok(d, &["log", &event("a", "cust-42", false)]);
    let mut held: Value = serde_json::from_str(&event("b", "cust-42", false)).unwrap();
    held["compliance"] = serde_json::json!({"data_subject_id": "case-7"});
    ok(d, &["log", &held.to_string()]);
    let hold = ok(
        d,
        &["hold", "add", "--subject", "case-7", "--reason", "case 7"],
    );
    let out = run(d, &["subject", "erase", "cust-42", "--reason", "art. 17"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("under legal hold"), "{}", text(&out));
    // Nothing was erased, not even the event the hold does not keep.
    assert_eq!(count_of(d, "DELETE audit_event"), 0);
    let shown = ok(d, &["query", "--jsonl", "--user", "cust-42"]);
    assert!(shown.contains("cust-42 wrote a"), "{shown}");
    assert!(shown.contains("cust-42 wrote b"), "{shown}");

    ok(d, &["hold", "release", hold.trim(), "--reason", "closed"]);
    ok(d, &["subject", "erase", "cust-42", "--reason", "art. 17"]);
    assert_eq!(count_of(d, "DELETE audit_event"), 2);
}

#[test]
fn a_hold_needs_one_scope_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["log", &event("a", "alice", false)]);
    let both = run(
        d,
        &[
            "hold",
            "add",
            "--user",
            "a",
            "--subject",
            "s",
            "--reason",
            "r",
        ],
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    let none = run(d, &["hold", "add", "--reason", "r"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    let past = run(
        d,
        &[
            "hold",
            "add",
            "--user",
            "a",
            "--until",
            "2020-01-01",
            "--reason",
            "r",
        ],
    );
    assert!(text(&past).contains("not in the future"), "{}", text(&past));
    let blank = run(d, &["hold", "add", "--user", "a", "--reason", " "]);
    assert!(!blank.status.success());
    let unknown = run(d, &["hold", "release", "nope", "--reason", "r"]);
    assert!(text(&unknown).contains("no legal hold with id `nope`"));
}

#[test]
fn a_retention_policy_file_sets_expires_at_and_a_bad_one_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("retention.toml"),
        "[[class]]\nname = \"search-calls\"\nkind = \"tool_execution\"\ntool = \"search\"\nretention = \"30d\"\n",
    )
    .unwrap();
    let search = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"search","timestamp":"2026-01-01T00:00:00Z"}"#;
    let other = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"fetch"}"#;
    for e in [search, other] {
        ok(d, &["log", "--retention-policy", "retention.toml", e]);
    }
    let all = events(d);
    let search = all.iter().find(|e| e["operation"] == "search").unwrap();
    assert_eq!(search["compliance"]["retention"], "search-calls");
    assert_eq!(search["compliance"]["expires_at"], "2026-01-31T00:00:00Z");
    let other = all.iter().find(|e| e["operation"] == "fetch").unwrap();
    assert!(other["compliance"].get("expires_at").is_none(), "{other}");

    std::fs::write(
        d.join("bad.toml"),
        "[[class]]\nname = \"x\"\nretention = \"30d\"\nkeep = true\n",
    )
    .unwrap();
    let out = run(
        d,
        &[
            "log",
            "--retention-policy",
            "bad.toml",
            search.to_string().as_str(),
        ],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("bad.toml") && said.contains("line 4") && said.contains("keep"),
        "{said}"
    );
    assert_eq!(events(d).len(), 2, "nothing recorded");
}

#[test]
fn the_proxy_gives_real_tool_calls_their_retention_class() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let policy = dir.path().join("retention.toml");
    std::fs::write(
        &policy,
        "[[class]]\nname = \"echo-calls\"\nkind = \"tool_execution\"\ntool = \"echo\"\nretention = \"7d\"\n",
    )
    .unwrap();
    let mut client = RawClient::start(
        &db,
        &["--retention-policy", policy.to_str().unwrap()],
        &everything(&peers),
    );
    client.send(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
    );
    assert_eq!(client.answer()["id"], 1);
    client.close();
    let all = support::events(&db);
    let echo: Vec<_> = all.iter().filter(|e| e.event.operation == "echo").collect();
    assert!(!echo.is_empty());
    for e in echo {
        let c = &e.event.compliance;
        assert_eq!(c.retention.as_ref().map(|r| r.as_str()), Some("echo-calls"));
        let expires = c.expires_at.expect("an expiry from the class");
        let kept = expires.duration_since(e.event.timestamp);
        assert_eq!(
            kept.as_hours(),
            7 * 24,
            "{expires} after {}",
            e.event.timestamp
        );
    }
    let others = all.iter().filter(|e| e.event.operation != "echo");
    for e in others {
        assert_eq!(e.event.compliance.expires_at, None, "{}", e.event.operation);
    }
}
