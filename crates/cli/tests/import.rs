//! `mcp-audit import`: databases written by the seed loggers themselves (MockLoop's
//! `MCPAuditLogger` and ContextForge's `AuditTrailService`, run by the scripts in
//! `tests/peers/` from their PyPI packages) read into the log, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mcp_audit_core::{EventKind, FlowDirection, HashCheck, Outcome, RiskLevel, SeedSystem};
use mcp_audit_store::StoredEvent;
use serde_json::{Value, json};

mod support;

use support::{BIN, PgSchema, events, peer_script, repo};

/// The Python of a seed's virtual environment, or `None` (with a note) when the seeds are not
/// installed outside CI.
fn seed_python(venv: &str) -> Option<PathBuf> {
    let python = repo().join(".test-peers").join(venv).join("bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the seed loggers are not installed: run scripts/install-test-peers.sh");
    }
    eprintln!("skipped: the seed loggers are not installed (run scripts/install-test-peers.sh)");
    None
}

/// Runs a seed script that writes `db` with the seed's own logger; the ids it logged.
fn seed(venv: &str, script: &str, db: &Path) -> Option<Value> {
    let python = seed_python(venv)?;
    let output = Command::new(python)
        .arg(peer_script(script))
        .arg(db)
        .current_dir(db.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    Some(serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}")))
}

fn mockloop_db(dir: &Path) -> Option<(PathBuf, Value)> {
    let db = dir.join("mcp_audit.db");
    let ids = seed("mockloop-venv", "mockloop_seed.py", &db)?;
    Some((db, ids))
}

fn contextforge_db(dir: &Path) -> Option<(PathBuf, Value)> {
    let db = dir.join("mcp.db");
    let ids = seed("contextforge-venv", "contextforge_seed.py", &db)?;
    Some((db, ids))
}

fn mcp_audit(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("MCP_AUDIT_DB")
        .env_remove("MCP_AUDIT_LOG_ID")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn import(db: &Path, seed: &str, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", seed, file.to_str().unwrap()];
    args.extend_from_slice(extra);
    mcp_audit(db, &args)
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The imported event of the row `original_id`.
fn by_original<'a>(all: &'a [StoredEvent], original_id: &str) -> &'a StoredEvent {
    all.iter()
        .find(|e| {
            e.event
                .origin
                .as_ref()
                .is_some_and(|o| o.original_id == original_id)
        })
        .unwrap_or_else(|| panic!("no event imported from row {original_id}"))
}

/// A column of one row of the seed's database, as text.
fn seed_column(db: &Path, sql: &str, id: &str) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [id], |r| r.get(0))
        .unwrap()
}

fn assert_verifies(db: &Path) {
    let out = mcp_audit(db, &["verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mockloop_rows_keep_their_ids_times_lineage_and_compliance_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = mockloop_db(dir.path()) else {
        return;
    };
    let db = dir.path().join("audit.db");
    let out = ok(import(&db, "mockloop", &seed_db, &[]));
    assert!(
        out.contains("imported 6 event(s) from mcp_audit.db"),
        "{out}"
    );
    let all = events(&db);
    assert_eq!(all.len(), 6);

    let search_id = ids["search"].as_str().unwrap();
    let search = &by_original(&all, search_id).event;
    assert_eq!(search.kind, EventKind::ToolExecution);
    assert_eq!(search.operation, "search_customers");
    assert_eq!(search.correlation_id.as_deref(), Some(search_id));
    assert_eq!(search.session_id.as_deref(), Some("sess-mockloop-1"));
    // The stated time is the row's own, to the microsecond.
    let logged = seed_column(
        &seed_db,
        "SELECT timestamp FROM mcp_audit_logs WHERE entry_id = ?1",
        search_id,
    );
    assert_eq!(
        search.timestamp,
        logged.parse::<jiff::Timestamp>().unwrap(),
        "{logged}"
    );
    assert_eq!(search.duration_us, Some(12_500));
    assert_eq!(
        search.payload.input,
        Some(json!({"query": "acme", "limit": 5, "ratio": 0.25, "name": "Zoë"}))
    );
    assert!(search.compliance.gdpr);
    assert_eq!(search.compliance.tags, ["pii", "gdpr"]);
    assert_eq!(
        search.compliance.data_subject_id.as_deref(),
        Some("subject-42")
    );
    // The lineage rows, in their order.
    let uris: Vec<&str> = search.data_sources.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["postgres://crm/customers", "s3://exports/customers.csv"]
    );
    assert_eq!(
        search.data_sources[0].source_type.as_deref(),
        Some("external_api")
    );
    assert_eq!(search.data_sources[0].direction, FlowDirection::Input);
    // The mark: which logger, file, table and row, and the row's own hash, which held.
    let origin = search.origin.as_ref().unwrap();
    assert_eq!(origin.system, SeedSystem::Mockloop);
    assert_eq!(origin.file, "mcp_audit.db");
    assert_eq!(origin.table, "mcp_audit_logs");
    let hash = origin.content_hash.as_ref().unwrap();
    assert_eq!(
        hash.value,
        seed_column(
            &seed_db,
            "SELECT content_hash FROM mcp_audit_logs WHERE entry_id = ?1",
            search_id
        )
    );
    assert_eq!(hash.check, HashCheck::Matched);

    // Every hashed row held, whatever its kind (`{}` stored as NULL, a resource's preview).
    for name in ["bare_tool", "resource", "prompt"] {
        let e = &by_original(&all, ids[name].as_str().unwrap()).event;
        let check = e
            .origin
            .as_ref()
            .unwrap()
            .content_hash
            .as_ref()
            .map(|h| h.check);
        assert_eq!(check, Some(HashCheck::Matched), "{name}");
    }
    let resource = &by_original(&all, ids["resource"].as_str().unwrap()).event;
    assert_eq!(resource.kind, EventKind::ResourceAccess);
    assert_eq!(resource.operation, "file:///docs/handbook.md");
    assert_eq!(resource.actor.user_id.as_deref(), Some("bob"));
    assert_eq!(
        resource.payload.content_preview.as_deref(),
        Some("# Handbook\nWelcome")
    );
    let context = &by_original(&all, ids["context"].as_str().unwrap()).event;
    assert_eq!(context.kind, EventKind::ContextOperation);
    assert_eq!(context.operation, "cart");
    assert_eq!(context.payload.state_after, Some(json!({"items": 2})));
    assert!(context.origin.as_ref().unwrap().content_hash.is_none());

    // The compliance row: an event of its own carrying it.
    let finding = by_original(&all, &ids["compliance"].to_string());
    let origin = finding.event.origin.as_ref().unwrap();
    assert_eq!(origin.table, "mcp_compliance_events");
    let [row] = finding.event.compliance_events.as_slice() else {
        panic!("{:?}", finding.event.compliance_events);
    };
    assert_eq!(row.framework, "GDPR");
    assert_eq!(row.risk_level, RiskLevel::High);
    assert_eq!(row.mitigation, ["notify_dpo", "review_access"]);

    // Query finds them as any event, by the original correlation id.
    let shown: Value = serde_json::from_str(&ok(mcp_audit(
        &db,
        &["query", "--json", "--correlation", search_id],
    )))
    .unwrap();
    assert_eq!(shown["events"][0]["origin"]["original_id"], search_id);
    assert_verifies(&db);
}

#[test]
fn contextforge_trails_become_admin_events_with_their_change_sets_and_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = contextforge_db(dir.path()) else {
        return;
    };
    let db = dir.path().join("audit.db");
    let out = ok(import(&db, "contextforge", &seed_db, &[]));
    assert!(out.contains("imported 5 event(s) from mcp.db"), "{out}");
    let all = events(&db);
    assert_eq!(all.len(), 5);

    let created = &by_original(&all, ids["create"].as_str().unwrap()).event;
    assert_eq!(created.kind, EventKind::Admin);
    assert_eq!(created.operation, "CREATE tool");
    assert_eq!(created.actor.email.as_deref(), Some("alice@example.com"));
    assert_eq!(created.actor.client_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(created.target.request_path.as_deref(), Some("/tools"));
    assert_eq!(
        created.payload.new_values,
        Some(json!({"name": "search", "enabled": true}))
    );
    // The row's time (stored without a zone, in UTC) is the stated time.
    let logged = seed_column(
        &seed_db,
        "SELECT timestamp FROM audit_trails WHERE id = ?1",
        ids["create"].as_str().unwrap(),
    );
    assert_eq!(
        created
            .timestamp
            .to_string()
            .replace('T', " ")
            .trim_end_matches('Z'),
        logged
    );
    let origin = created.origin.as_ref().unwrap();
    assert_eq!(origin.system, SeedSystem::Contextforge);
    assert_eq!(
        (origin.file.as_str(), origin.table.as_str()),
        ("mcp.db", "audit_trails")
    );
    assert!(origin.content_hash.is_none());
    // The gateway's correlation id is kept as the correlation id.
    let correlation = seed_column(
        &seed_db,
        "SELECT correlation_id FROM audit_trails WHERE id = ?1",
        ids["create"].as_str().unwrap(),
    );
    assert_eq!(
        created.correlation_id.as_deref(),
        Some(correlation.as_str())
    );

    let updated = &by_original(&all, ids["update"].as_str().unwrap()).event;
    assert_eq!(
        updated.payload.changes,
        Some(json!({"role": {"old": "viewer", "new": "admin"}}))
    );
    assert_eq!(updated.compliance.requires_review, Some(true));

    let deleted = &by_original(&all, ids["delete"].as_str().unwrap()).event;
    assert_eq!(deleted.outcome, Outcome::ToolError);
    assert_eq!(
        deleted.payload.error_message.as_deref(),
        Some("server is in use")
    );
    let executed = &by_original(&all, ids["execute"].as_str().unwrap()).event;
    assert_eq!(
        executed.payload.context,
        Some(json!({"description": "health check"}))
    );
    assert_verifies(&db);
}

#[test]
fn importing_twice_imports_nothing_new_and_then_only_the_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, _)) = contextforge_db(dir.path()) else {
        return;
    };
    let db = dir.path().join("audit.db");
    ok(import(&db, "contextforge", &seed_db, &[]));
    let out = ok(import(&db, "contextforge", &seed_db, &[]));
    assert!(
        out.contains("imported 0 event(s)") && out.contains("5 already imported"),
        "{out}"
    );
    assert_eq!(events(&db).len(), 5);
    // The gateway logs more into the same file: only those come in.
    seed("contextforge-venv", "contextforge_seed.py", &seed_db).unwrap();
    let out = ok(import(&db, "contextforge", &seed_db, &[]));
    assert!(
        out.contains("imported 5 event(s)") && out.contains("5 already imported"),
        "{out}"
    );
    assert_eq!(events(&db).len(), 10);
    assert_verifies(&db);
}

#[test]
fn a_row_changed_after_it_was_logged_is_refused_or_imported_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = mockloop_db(dir.path()) else {
        return;
    };
    let search_id = ids["search"].as_str().unwrap();
    rusqlite::Connection::open(&seed_db)
        .unwrap()
        .execute(
            "UPDATE mcp_audit_logs SET output_data = '{\"rows\": [], \"total\": 0}' WHERE entry_id = ?1",
            [search_id],
        )
        .unwrap();
    let db = dir.path().join("audit.db");

    let refused = import(&db, "mockloop", &seed_db, &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("mcp_audit_logs row {search_id}: content_hash"))
            && stderr.contains("nothing imported"),
        "{stderr}"
    );
    // No other row named, none recorded.
    assert_eq!(stderr.matches("row ").count(), 1, "{stderr}");
    assert!(events(&db).is_empty());

    let out = ok(import(
        &db,
        "mockloop",
        &seed_db,
        &["--on-mismatch", "flag"],
    ));
    assert!(
        out.contains("imported 6 event(s)") && out.contains("1 with a content_hash"),
        "{out}"
    );
    let all = events(&db);
    let search = &by_original(&all, search_id).event;
    let hash = search
        .origin
        .as_ref()
        .unwrap()
        .content_hash
        .as_ref()
        .unwrap();
    assert_eq!(hash.check, HashCheck::Mismatched);
    assert_eq!(search.compliance.requires_review, Some(true));
    assert_eq!(search.payload.output, Some(json!({"rows": [], "total": 0})));
    let untouched = &by_original(&all, ids["prompt"].as_str().unwrap()).event;
    assert_eq!(
        untouched
            .origin
            .as_ref()
            .unwrap()
            .content_hash
            .as_ref()
            .unwrap()
            .check,
        HashCheck::Matched
    );
    assert_verifies(&db);
}

#[test]
fn a_file_that_is_not_a_seed_database_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database, just text\n".repeat(200)).unwrap();
    let empty = dir.path().join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let broken = dir.path().join("broken.db");
    rusqlite::Connection::open(&broken)
        .unwrap()
        .execute_batch(
            "CREATE TABLE audit_trails (id TEXT);
             INSERT INTO audit_trails VALUES ('a');",
        )
        .unwrap();
    let cases = [
        ("mockloop", &garbage, "is not a SQLite database"),
        ("contextforge", &garbage, "is not a SQLite database"),
        (
            "mockloop",
            &empty,
            "is not a MockLoop audit database: it has no table mcp_audit_logs",
        ),
        (
            "contextforge",
            &empty,
            "is not a ContextForge audit database: it has no table audit_trails",
        ),
        ("contextforge", &broken, "cannot read table audit_trails"),
        ("mockloop", &dir.path().join("missing.db"), "no such file"),
    ];
    for (seed, file, expected) in cases {
        let out = import(&db, seed, file, &[]);
        assert_eq!(out.status.code(), Some(1), "{seed} {}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{seed} {}: {stderr}",
            file.display()
        );
    }
    // The seed's file is read, never written.
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        b"this is not a database, just text\n".repeat(200)
    );
    if db.exists() {
        assert!(events(&db).is_empty());
    }
}

#[test]
fn a_row_that_is_no_event_is_named_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = mockloop_db(dir.path()) else {
        return;
    };
    let prompt = ids["prompt"].as_str().unwrap();
    rusqlite::Connection::open(&seed_db)
        .unwrap()
        .execute(
            "UPDATE mcp_audit_logs SET input_parameters = '{not json' WHERE entry_id = ?1",
            [prompt],
        )
        .unwrap();
    let db = dir.path().join("audit.db");
    let out = import(&db, "mockloop", &seed_db, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "mcp_audit_logs row {prompt}: column input_parameters: not JSON"
        )) && stderr.contains("1 of 6 rows of mcp_audit.db cannot be imported; nothing imported"),
        "{stderr}"
    );
    assert!(events(&db).is_empty());
}

#[test]
fn imported_events_go_through_the_recorders_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = contextforge_db(dir.path()) else {
        return;
    };
    let policy = dir.path().join("redact.toml");
    std::fs::write(&policy, "[[rule]]\nid = \"role\"\nkeys = \"^role$\"\n").unwrap();
    let db = dir.path().join("audit.db");
    ok(import(
        &db,
        "contextforge",
        &seed_db,
        &["--redact-policy", policy.to_str().unwrap()],
    ));
    let all = events(&db);
    let updated = &by_original(&all, ids["update"].as_str().unwrap()).event;
    let old = updated.payload.old_values.as_ref().unwrap();
    assert_ne!(old["role"], "viewer", "{old}");
    assert_eq!(old["name"], "Bob");
    assert!(!updated.compliance.redactions.is_empty());
    assert_verifies(&db);
}

#[test]
fn postgres_import_is_idempotent_and_queryable() {
    let Some(pg) = PgSchema::new("import") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((seed_db, ids)) = mockloop_db(dir.path()) else {
        return;
    };
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--db")
            .arg(&pg.url)
            .args(args)
            .env_remove("MCP_AUDIT_DB")
            .env_remove("MCP_AUDIT_LOG_ID")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let file = seed_db.to_str().unwrap();
    let out = ok(run(&["import", "mockloop", file]));
    assert!(out.contains("imported 6 event(s)"), "{out}");
    let out = ok(run(&["import", "mockloop", file]));
    assert!(
        out.contains("imported 0 event(s)") && out.contains("6 already imported"),
        "{out}"
    );
    let search_id = ids["search"].as_str().unwrap();
    let shown: Value =
        serde_json::from_str(&ok(run(&["query", "--json", "--correlation", search_id]))).unwrap();
    let event = &shown["events"][0];
    assert_eq!(event["origin"]["original_id"], search_id);
    assert_eq!(event["origin"]["content_hash"]["check"], "matched");
    assert_eq!(event["data_sources"].as_array().unwrap().len(), 2);
    let all: Value =
        serde_json::from_str(&ok(run(&["query", "--json", "--limit", "100"]))).unwrap();
    assert_eq!(all["events"].as_array().unwrap().len(), 6);
    // Each run wrote its own log; verify each.
    let logs: std::collections::BTreeSet<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["log_id"].as_str().unwrap())
        .collect();
    for log in logs {
        let out = run(&["--log-id", log, "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
