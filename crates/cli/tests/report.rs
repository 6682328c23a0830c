//! `mcp-audit report`: the figures of each report checked against the events that made them,
//! on SQLite and on PostgreSQL (`MCP_AUDIT_TEST_PG`); JSON and CSV parsed; the HTML report
//! opened in headless Chromium (`browser::`, skipped as the console's browser tests are) with a
//! screenshot under `target/report-screenshots/`; bad input refused with a clear error.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};
use support::{BIN, PgSchema};

/// The events the report tests record, with fixed ids, in November 2026 (but one in October,
/// outside the window, and one expiring ten days from now).
const E1: &str = "0192f0a0-0000-7000-8000-000000000001";
const E2: &str = "0192f0a0-0000-7000-8000-000000000002";
const E3: &str = "0192f0a0-0000-7000-8000-000000000003";
const WINDOW: [&str; 4] = ["--since", "2026-11-01", "--until", "2026-12-01"];

fn events() -> Vec<Value> {
    let in_ten_days = Timestamp::now().checked_add(240.hours()).unwrap();
    vec![
        // Consent, support, a subject, a data source, restricted, for review, a bearer token.
        json!({"id": E1, "timestamp": "2026-11-02T10:00:00Z", "kind": "tool_execution",
            "action": "EXECUTE", "operation": "search", "actor": {"user_id": "alice"},
            "compliance": {"gdpr": true, "legal_basis": "consent", "purpose": "support",
                "data_subject_id": "subj-1", "classification": "restricted",
                "requires_review": true},
            "data_sources": [{"uri": "db://crm/customers", "source_type": "database",
                "direction": "input", "transformation": "filter"}],
            "payload": {"input": {"q": "Bearer abcdefghijklmnop"}}}),
        // GDPR with no legal basis (a finding), expired a month ago.
        json!({"id": E2, "timestamp": "2026-11-03T10:00:00Z", "kind": "tool_execution",
            "action": "EXECUTE", "operation": "search", "actor": {"user_id": "alice"},
            "compliance": {"gdpr": true, "purpose": "support", "data_subject_id": "subj-1",
                "classification": "confidential", "requires_review": true,
                "expires_at": "2026-11-10T00:00:00Z"},
            "data_sources": [{"uri": "db://crm/customers", "source_type": "database",
                "direction": "input"}]}),
        // CCPA with no purpose (a finding); erased later.
        json!({"id": E3, "timestamp": "2026-11-04T10:00:00Z", "kind": "resource_access",
            "action": "READ", "operation": "file:///notes.txt", "actor": {"user_id": "bob"},
            "compliance": {"ccpa": true, "data_subject_id": "subj-2",
                "classification": "public", "requires_review": false},
            "payload": {"output": "the notes"}}),
        // Kept ten years (a GDPR finding); a password member.
        json!({"timestamp": "2026-11-05T10:00:00Z", "kind": "tool_execution",
            "action": "EXECUTE", "operation": "charge", "actor": {"user_id": "carol"},
            "compliance": {"gdpr": true, "legal_basis": "contract", "purpose": "billing",
                "classification": "internal", "requires_review": false,
                "expires_at": "2036-11-05T10:00:00Z"},
            "payload": {"input": {"password": "hunter2"}}}),
        // Due within 30 days.
        json!({"timestamp": "2026-11-06T10:00:00Z", "kind": "tool_execution",
            "action": "EXECUTE", "operation": "search", "actor": {"user_id": "alice"},
            "compliance": {"gdpr": true, "legal_basis": "consent", "purpose": "support",
                "classification": "internal", "requires_review": false,
                "expires_at": in_ten_days.to_string()}}),
        // Outside the window: its missing legal basis is not a finding of November.
        json!({"timestamp": "2026-10-01T10:00:00Z", "kind": "tool_execution",
            "action": "EXECUTE", "operation": "search",
            "compliance": {"gdpr": true, "classification": "internal",
                "requires_review": false}}),
        // A reviewer's verdict on E1, after the window.
        json!({"timestamp": "2026-12-02T10:00:00Z", "kind": "admin", "action": "review",
            "operation": "review audit_event", "actor": {"user_id": "reviewer"},
            "target": {"resource_type": "audit_event", "resource_id": E1},
            "compliance": {"tags": ["review:approved"], "classification": "internal",
                "requires_review": false}}),
    ]
}

/// A database for one test: a SQLite file, or a PostgreSQL schema.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgSchema>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            url: dir.path().join("audit.db").to_str().unwrap().into(),
            _dir: dir,
            _pg: None,
        }
    }

    fn postgres() -> Option<Db> {
        let pg = PgSchema::new("report")?;
        Some(Db {
            url: pg.url.clone(),
            _dir: tempfile::tempdir().unwrap(),
            _pg: Some(pg),
        })
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Runs the binary on this database: (exit code, stdout, stderr).
    fn run(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut child = Command::new(BIN)
            .env_remove("MCP_AUDIT_DB")
            .args(args)
            .args(["--db", &self.url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, b"");
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    }

    /// Records the test's events, then erases E3.
    fn seed(&self) {
        let lines: String = events().iter().map(|e| format!("{e}\n")).collect();
        let (code, _, err) = self.run(&["log", "-"], lines.as_bytes());
        assert_eq!(code, 0, "{err}");
        self.ok(&["erase", E3, "--reason", "art. 17 request"]);
    }

    fn report(&self, args: &[&str]) -> Value {
        let mut all = vec!["report"];
        all.extend(args);
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("the JSON report")
    }
}

/// Every figure of the November GDPR report, as the events above make them.
fn check_gdpr(db: &Db) {
    let mut args = vec!["gdpr"];
    args.extend(WINDOW);
    let r = db.report(&args);
    assert_eq!(r["report"], "gdpr");
    let t = &r["totals"];
    assert_eq!(t["events"], 5, "{r:#}");
    assert_eq!(t["gdpr_events"], 4);
    assert_eq!(t["ccpa_events"], 1);
    assert_eq!(t["distinct_users"], 3);
    assert_eq!(
        r["legal_bases"],
        json!({"consent": 2, "contract": 1, "none": 2})
    );
    assert_eq!(
        r["purposes"],
        json!({"support": 3, "billing": 1, "none": 1})
    );
    let processing: Vec<(String, String, u64)> = r["processing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["legal_basis"].as_str().unwrap().into(),
                p["purpose"].as_str().unwrap().into(),
                p["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        processing,
        vec![
            ("consent".into(), "support".into(), 2),
            ("contract".into(), "billing".into(), 1),
            ("none".into(), "none".into(), 1),
            ("none".into(), "support".into(), 1),
        ]
    );
    assert_eq!(r["data_subjects"], json!({"distinct": 2, "events": 3}));
    let sources = r["data_sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["uri"], "db://crm/customers");
    assert_eq!(sources[0]["uses"], 2);
    assert_eq!(sources[0]["operations"], 1);
    assert_eq!(sources[0]["directions"], json!(["input"]));
    assert_eq!(sources[0]["transformations"], json!(["filter"]));
    assert_eq!(
        r["classifications"],
        json!({"restricted": 1, "confidential": 1, "public": 1, "internal": 2})
    );
    assert_eq!(
        r["review"],
        json!({"requiring_review": 2, "reviewed": 1, "pending": 1,
            "verdicts": {"approved": 1}})
    );
    let ret = &r["retention"];
    assert_eq!(ret["expired"], 1);
    assert_eq!(ret["oldest_expired"], "2026-11-10T00:00:00Z");
    assert_eq!(ret["due"], 1);
    assert_eq!(ret["status"], "cleanup due");
    assert_eq!(ret["holds_in_force"], 0);
    assert_eq!(
        r["redactions"],
        json!({"events": 2, "by_rule": {"bearer": 1, "secret-keys": 1}})
    );
    let findings: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap(),
                f["regulation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        vec![
            ("missing_legal_basis", "GDPR Article 6"),
            ("excessive_retention", "GDPR Article 5(1)(e)"),
        ]
    );
    assert_eq!(r["findings"][0]["event_id"], E2);
    assert_eq!(r["findings_total"], 2);
    assert!(r.get("risk").is_none(), "a PIA section only in the PIA");
}

/// The CCPA report's finding, and the unwindowed figures: the erasure, the log's size.
fn check_ccpa_and_everything(db: &Db) {
    let mut args = vec!["ccpa"];
    args.extend(WINDOW);
    let r = db.report(&args);
    assert_eq!(r["findings_total"], 1);
    assert_eq!(r["findings"][0]["kind"], "missing_processing_purpose");
    assert_eq!(r["findings"][0]["event_id"], E3);

    let all = db.report(&["activity", "--verify"]);
    // Seven recorded, one erasure event.
    assert_eq!(all["totals"]["events"], 8, "{all:#}");
    assert_eq!(all["rights"]["erasures"], 1);
    assert_eq!(all["rights"]["erasure_requests"], 1);
    assert_eq!(all["rights"]["exports"], 0);
    assert_eq!(
        all["findings_total"], 0,
        "no regulation checks in `activity`"
    );
    let logged: u64 = all["integrity"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert_eq!(logged, 8, "the logs hold every event counted");
    let verify = &all["integrity"]["last_verify"];
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["entries"], 8);
    assert_eq!(verify["signatures_checked"], false);

    let pia = db.report(&["pia"]);
    assert_eq!(pia["risk"]["factors"]["sensitive_data"], true);
    assert_eq!(pia["risk"]["score"], 1);
    assert_eq!(pia["risk"]["level"], "low");
}

#[test]
fn report_figures_match_the_events_that_made_them_on_sqlite() {
    let db = Db::sqlite();
    db.seed();
    check_gdpr(&db);
    check_ccpa_and_everything(&db);
}

#[test]
fn postgres_report_figures_match_the_events_that_made_them() {
    let Some(db) = Db::postgres() else {
        return;
    };
    db.seed();
    check_gdpr(&db);
    check_ccpa_and_everything(&db);
}

/// What other commands record reaches the report: the events a legal hold keeps, a data
/// subject's erasure request, and the newest `verify` run on record (the report runs none of
/// its own here).
#[test]
fn holds_subject_erasures_and_a_recorded_verify_reach_the_report() {
    let db = Db::sqlite();
    db.seed();
    db.ok(&[
        "hold",
        "add",
        "--user",
        "alice",
        "--reason",
        "litigation 2026-17",
    ]);
    db.ok(&["subject", "erase", "subj-2", "--reason", "art. 17 request"]);
    let before = db.report(&["activity"]);
    assert_eq!(
        before["integrity"]["last_verify"],
        Value::Null,
        "{before:#}"
    );
    assert_eq!(before["rights"]["subject_erasures"], 1);
    db.ok(&["verify"]);
    let r = db.report(&["activity"]);
    // alice's three calls, whatever their window.
    assert_eq!(r["retention"]["held"], 3, "{r:#}");
    assert_eq!(r["retention"]["holds_in_force"], 1);
    assert_eq!(r["rights"]["subject_erasures"], 1);
    let verify = &r["integrity"]["last_verify"];
    assert_eq!(verify["ok"], true, "{verify}");
    let logged: u64 = r["integrity"]["logs"][0]["size"].as_u64().unwrap();
    // The verify read every entry before its own record.
    assert_eq!(verify["entries"].as_u64(), Some(logged - 1), "{r:#}");
}

#[test]
fn a_signed_checkpoint_and_a_verify_with_the_key_are_in_the_integrity_section() {
    let db = Db::sqlite();
    db.seed();
    let key = db.dir().join("audit.key");
    let key_arg = key.to_str().unwrap();
    let (code, _, err) = {
        let out = Command::new(BIN)
            .args(["keygen", "--name", "report-test", "--out", key_arg])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            (),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(code, 0, "{err}");
    db.ok(&["checkpoint", "--key", key_arg]);
    let public = format!("{key_arg}.pub");
    let r = db.report(&["activity", "--verify", "--key", &public]);
    let log = &r["integrity"]["logs"][0];
    assert_eq!(log["newest_checkpoint"]["size"], 8, "{r:#}");
    assert!(
        log["newest_checkpoint"]["origin"]
            .as_str()
            .unwrap()
            .starts_with("mcp-audit/"),
        "{log}"
    );
    let verify = &r["integrity"]["last_verify"];
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["checkpoints_verified"], 1);
    assert_eq!(verify["signatures_checked"], true);
}

#[test]
fn the_csv_report_has_one_row_per_figure_with_the_json_reports_values() {
    let db = Db::sqlite();
    db.seed();
    let mut args = vec!["report", "gdpr", "--format", "csv"];
    args.extend(WINDOW);
    let text = db.ok(&args);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["section", "item", "figure", "value"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let value = |section: &str, item: &str, figure: &str| {
        rows.iter()
            .find(|r| r[0] == *section && r[1] == *item && r[2] == *figure)
            .map(|r| r[3].to_string())
            .unwrap_or_else(|| panic!("no {section}/{item}/{figure} in\n{text}"))
    };
    assert_eq!(value("Summary", "events", "value"), "5");
    assert_eq!(value("Legal bases", "consent", "events"), "2");
    assert_eq!(value("Review", "pending", "events"), "1");
    assert_eq!(value("Redactions", "rule: bearer", "count"), "1");
    assert_eq!(value("Retention", "expired, still stored", "value"), "1");
    assert_eq!(
        value("Findings", "missing_legal_basis", "event"),
        E2.to_string()
    );
    assert!(
        !text.contains("subj-1") && !text.contains("alice"),
        "a report counts subjects and users, never names them"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_writes_no_report() {
    let db = Db::sqlite();
    db.seed();
    let output = db.dir().join("r.html");
    let output_arg = output.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["report", "hipaa"],
            "unknown report `hipaa` (valid: gdpr, ccpa, activity, pia)",
        ),
        (&["report", "gdpr", "--since", "last tuesday"], "--since"),
        (
            &["report", "gdpr", "--format", "pdf"],
            "unknown format `pdf` (valid: html, json, csv)",
        ),
        (&["report", "gdpr", "--key", "k.pub"], "--verify"),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["--output", output_arg]);
        let (code, out, err) = db.run(&all, b"");
        assert_eq!(code, 2, "{args:?}: a usage error: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(out.is_empty());
    }
    let (code, _, err) = db.run(
        &[
            "report",
            "gdpr",
            "--since",
            "2026-12-01",
            "--until",
            "2026-11-01",
            "--output",
            output_arg,
        ],
        b"",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "error: the window ends (2026-11-01T00:00:00Z) before it starts (2026-12-01T00:00:00Z)"
        ),
        "{err}"
    );
    assert!(!output.exists(), "no report file for a refused report");
}

/// The HTML report in headless Chromium, as the console's pages are tested (`serve.rs`
/// `browser::`: the same skip rules, and `scripts/test` leaves `browser::` tests out the same
/// way when Chromium is absent).
mod browser {
    use fantoccini::Locator;

    use super::support::browser::{driver, screenshots, session};
    use super::{Db, WINDOW};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_html_report_is_one_file_that_renders_every_section_in_chromium() {
        let Some(driver) = driver() else {
            return;
        };
        let db = Db::sqlite();
        db.seed();
        let page = db.dir().join("gdpr.html");
        let mut args = vec!["report", "gdpr", "--output", page.to_str().unwrap()];
        args.extend(WINDOW);
        db.ok(&args);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("<link") && !html.contains("<script") && !html.contains("src="),
            "one file: nothing loaded from elsewhere"
        );
        assert!(html.contains("@media print"));

        let client = session(&driver, 1280, 2400).await;
        client
            .goto(&format!("file://{}", page.display()))
            .await
            .unwrap();
        let title = client.find(Locator::Css("h1")).await.unwrap();
        assert_eq!(title.text().await.unwrap(), "GDPR compliance report");
        let mut headings = Vec::new();
        for h in client.find_all(Locator::Css("h2")).await.unwrap() {
            headings.push(h.text().await.unwrap());
        }
        for expected in [
            "Summary",
            "Processing activities",
            "Data sources and lineage",
            "Classification",
            "Review",
            "Retention",
            "Data-subject requests",
            "Redactions",
            "Integrity",
            "Findings",
            "Recommendations",
        ] {
            assert!(
                headings.iter().any(|h| h == expected),
                "{expected} in {headings:?}"
            );
        }
        let summary = client
            .find(Locator::Css("section table"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(summary.contains("events 5"), "{summary}");
        let png = client.screenshot().await.unwrap();
        std::fs::write(screenshots("report-screenshots").join("gdpr.png"), png).unwrap();
        client.close().await.unwrap();
    }
}
