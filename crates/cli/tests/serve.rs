//! `mcp-audit serve`: the console's API driven over a real socket, the binary started as a user
//! starts it, over SQLite and PostgreSQL (`MCP_AUDIT_TEST_PG`; the `postgres::` tests are
//! skipped, and said so, without it). Events are recorded by the real recorder (`mcp-audit
//! log`, and a real `server-everything` call through the proxy); tokens by `mcp-audit token`.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use support::{
    BIN, PgSchema, everything_js, json_output, metric_samples, peer_script, peers, promtool,
    promtool_check, python, spawn_serve, written_samples,
};

use support::Backend;

/// A database of one test: a SQLite file in a directory of its own, or a schema of its own in
/// the test PostgreSQL database (dropped at the end).
struct Db {
    url: String,
    dir: tempfile::TempDir,
    pg: Option<PgSchema>,
}

impl Db {
    fn new(backend: Backend) -> Option<Db> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Some(Db {
                url: dir.path().join("audit.db").display().to_string(),
                dir,
                pg: None,
            }),
            Backend::Postgres => {
                let pg = PgSchema::new("serve")?;
                Some(Db {
                    url: pg.url.clone(),
                    dir,
                    pg: Some(pg),
                })
            }
        }
    }

    /// The binary pointed at this database, with no database settings of the environment.
    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--db")
            .arg(&self.url)
            .arg("--spool-dir")
            .arg(self.dir.path().join("spool"))
            .env_remove("MCP_AUDIT_DB")
            .env_remove("MCP_AUDIT_LOG_ID")
            .env_remove("RUST_LOG");
        command
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin).unwrap();
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// `args` in the log `log` on PostgreSQL; a SQLite file has one log, and refuses a
    /// `--log-id` that does not name it.
    fn in_log<'a>(&self, log: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = Vec::new();
        if self.pg.is_some() {
            all.extend(["--log-id", log]);
        }
        all.extend(args);
        all
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, b"");
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    }

    /// Records `events` with the real recorder, in the log `seed` (PostgreSQL; a SQLite file
    /// has one log).
    fn log(&self, events: &[Value]) {
        let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
        let (code, _, err) = self.run(&self.in_log("seed", &["log", "-"]), lines.as_bytes());
        assert_eq!(code, 0, "{err}");
    }

    /// What `mcp-audit query` finds with `flags`: the ids, newest first.
    fn query_ids(&self, flags: &[&str]) -> Vec<String> {
        let mut args = vec!["query", "--jsonl", "--limit", "10000"];
        args.extend(flags);
        self.ok(&args)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Every event of the log as `query` gives it (console records included).
    fn all(&self) -> Vec<Value> {
        self.ok(&["query", "--jsonl", "--limit", "10000", "--include-pending"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A new token of `role` (the secret, as printed once).
    /// (PostgreSQL: in the log `tokens`; a SQLite file has one log.)
    fn token(&self, name: &str, role: &str) -> String {
        let out = self.ok(&self.in_log(
            "tokens",
            &[
                "token", "create", "--name", name, "--role", role, "--actor", "root",
            ],
        ));
        out.trim().to_string()
    }

    /// Signs a checkpoint of the seed log (and on PostgreSQL of the tokens' log); returns the
    /// verifier key file.
    fn checkpoint(&self) -> PathBuf {
        let key = self.dir.path().join("audit.key");
        if !key.exists() {
            self.ok(&[
                "keygen",
                "--name",
                "test.example",
                "--out",
                key.to_str().unwrap(),
            ]);
        }
        self.ok(&self.in_log("seed", &["checkpoint", "--key", key.to_str().unwrap()]));
        if self.pg.is_some() {
            self.ok(&[
                "--log-id",
                "tokens",
                "checkpoint",
                "--key",
                key.to_str().unwrap(),
            ]);
        }
        self.dir.path().join("audit.key.pub")
    }

    fn serve(&self) -> Console {
        Console::start(self.command(), &[])
    }

    fn serve_with(&self, extra: &[&str]) -> Console {
        Console::start(self.command(), extra)
    }
}

/// A running `mcp-audit serve` on a port of its choosing, stopped with SIGTERM at the end.
struct Console {
    child: Child,
    base: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An answer: status, headers and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The error code of a JSON error answer, after checking its shape.
    fn error(&self) -> String {
        let body = self.json();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body["error"]["code"].as_str().unwrap().to_string()
    }
}

impl Console {
    fn start(command: Command, extra: &[&str]) -> Console {
        let (child, base) = spawn_serve(command, extra);
        Console {
            child,
            base,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.text().await.unwrap();
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.base)), token)
    }

    fn post(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request, token)
    }

    /// A JSON answer that must be 200.
    fn ok(&self, path: &str, token: &str) -> Value {
        let answer = self.get(path, Some(token));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        answer.json()
    }

    /// The ids of an event list answer.
    fn ids(&self, path: &str, token: &str) -> Vec<String> {
        self.ok(path, token)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // SIGTERM: the server stops and its recorder makes every record durable.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Thirty tool calls and resource reads that differ in every filtered field, at known times.
fn seed_events() -> Vec<Value> {
    (0..30)
        .map(|i| {
            let operation = ["search", "fetch", "write", "list", "file:///notes"][i % 5];
            let user = ["alice", "bob", "carol"][i % 3];
            let session = ["s1", "s2"][i % 2];
            let server = ["github", "files", "db"][(i / 2) % 3];
            let mut event = json!({
                "kind": if i % 5 == 4 { "resource_access" } else { "tool_execution" },
                "action": if i % 5 == 4 { "READ" } else { "EXECUTE" },
                "operation": operation,
                "timestamp": format!("2026-03-01T00:00:{i:02}Z"),
                "actor": {"user_id": user},
                "session_id": session,
                "correlation_id": format!("c{}", i / 2),
                "target": {"server_name": server},
                "duration_us": 1000 + i * 10,
                "payload": {"input": {"q": format!("secret-{i}")}, "output": {"n": i}},
            });
            if i % 6 == 0 {
                event["outcome"] = json!("tool_error");
            }
            if i % 7 == 0 {
                event["compliance"] = json!({"classification": "restricted"});
            }
            if i % 4 == 0 {
                event["compliance"]["data_subject_id"] = json!("cust-1");
            }
            event
        })
        .collect()
}

/// A database with the seed events and one token of each role.
struct Seeded {
    db: Db,
    viewer: String,
    reviewer: String,
    auditor: String,
    admin: String,
}

fn seeded(db: Db) -> Seeded {
    db.log(&seed_events());
    Seeded {
        viewer: db.token("vera", "viewer"),
        reviewer: db.token("rita", "reviewer"),
        auditor: db.token("aude", "auditor"),
        admin: db.token("adam", "admin"),
        db,
    }
}

/// The id of the seed event whose input was `secret-<i>`.
fn seed_id(db: &Db, i: usize) -> String {
    db.all()
        .into_iter()
        .find(|e| e["payload"]["input"]["q"] == format!("secret-{i}"))
        .map(|e| e["id"].as_str().unwrap().to_string())
        .unwrap()
}

support::on_both_backends!(
    fixture;
    every_endpoint_refuses_without_a_token_and_below_its_role,
    each_filter_finds_what_query_finds,
    paging_reaches_the_end_with_no_duplicate_and_no_gap,
    a_viewer_gets_no_payload_and_an_auditors_reads_are_on_record,
    a_list_page_is_encoded_byte_for_byte_as_pinned_for_every_role,
    a_review_leaves_the_queue_is_in_the_log_and_verify_passes,
    the_proof_download_is_accepted_by_verify_proof,
    bad_input_is_a_clear_4xx_and_changes_nothing,
    export_streams_every_matching_event,
    a_revoked_token_is_refused_on_the_next_request,
    more_concurrent_requests_than_readers_are_all_answered_and_every_read_recorded,
    sessions_summary_stats_and_integrity_answer_as_the_cli_does,
    the_openapi_document_describes_every_real_answer,
    a_verify_started_from_the_api_reports_its_result,
    an_erased_event_reads_as_redacted_and_its_read_is_not_recorded,
    the_ui_logs_in_into_an_http_only_same_site_cookie_and_logs_out,
    the_ui_lists_events_by_the_urls_filters_and_refuses_a_bad_one_clearly,
    a_viewer_sees_no_arguments_in_the_ui_and_an_auditors_read_is_on_record,
    a_forged_cookie_or_csrf_token_is_refused_and_a_real_review_leaves_the_queue,
    audit_data_holding_html_renders_inert,
    an_admin_creates_a_token_in_the_ui_sees_it_once_and_revokes_it,
    the_dashboard_draws_calls_and_errors_over_time_per_tool_latency_and_top_users_as_stats_gives_them,
    metrics_count_what_was_served_on_record_and_the_last_verify_and_pass_promtool,
    a_search_finds_arguments_and_results_for_an_auditor_and_is_on_record,
    hostile_search_text_is_a_clear_400_or_a_correct_answer,
    a_verify_on_the_command_line_is_recorded_and_shown_as_the_last_verify,
);

/// The console's records of searches: (who, the words searched).
fn searches_on_record(db: &Db) -> Vec<(String, String)> {
    db.all()
        .into_iter()
        .filter(|e| e["target"]["resource_id"] == "search" && e["action"] == "READ")
        .map(|e| {
            (
                e["actor"]["user_id"].as_str().unwrap().to_string(),
                e["payload"]["details"]["search"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn a_search_finds_arguments_and_results_for_an_auditor_and_is_on_record(db: Db) {
    let s = seeded(db);
    s.db.log(&[json!({
        "kind": "tool_execution",
        "action": "EXECUTE",
        "operation": "invoice",
        "timestamp": "2026-03-02T00:00:00Z",
        "payload": {"input": {"id": 9}, "output": {"text": "billed Customer-123 at a@b.example"}},
    })]);
    // What the CLI's --search finds, asked before the console records any search (a record
    // of a search holds its words, and a later search finds it too).
    let cli_arguments = s.db.query_ids(&["--search", "secret-3"]);
    let cli_result = s.db.query_ids(&["--search", "CUSTOMER-123"]);
    let expected = s.db.query_ids(&["--search", "secret", "--user", "alice"]);
    assert_eq!(expected.len(), 10);
    let console = s.db.serve();
    // In the arguments (the seed's inputs) and in a result; the CLI's --search agrees.
    let in_arguments = console.ids("/api/v1/events?q=secret-3", &s.auditor);
    assert_eq!(in_arguments, [seed_id(&s.db, 3)]);
    assert_eq!(cli_arguments, in_arguments);
    let in_result = console.ids("/api/v1/events?q=customer-123", &s.auditor);
    assert_eq!(in_result.len(), 1);
    assert_eq!(cli_result, in_result);
    assert_eq!(
        console.ids("/api/v1/events?q=a%40b.example", &s.admin),
        in_result
    );
    // With other filters (the user keeps the console's records out), and paged to the end
    // with no duplicate and no gap.
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?q=secret&user=alice&limit=3".to_string();
    loop {
        let page = console.ok(&path, &s.auditor);
        for e in page["events"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/events?q=secret&user=alice&limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // A search reads payloads: not for a viewer or a reviewer, and nothing is recorded for them.
    let before = searches_on_record(&s.db);
    for token in [&s.viewer, &s.reviewer] {
        let refused = console.get("/api/v1/events?q=secret-3", Some(token));
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.error(), "forbidden");
        assert!(refused.body.contains("auditor"), "{}", refused.body);
    }
    assert_eq!(searches_on_record(&s.db), before);
    // Every search is on record, with who searched for what.
    assert!(
        before.contains(&("aude".to_string(), "secret 3".to_string())),
        "{before:?}"
    );
    assert!(
        before.contains(&("adam".to_string(), "a b example".to_string())),
        "{before:?}"
    );
    // The list still carries no payload; an export can search too, and records its query.
    let list = console.ok("/api/v1/events?q=secret-3", &s.auditor);
    assert!(list["events"][0].get("payload").is_none());
    let export = console.get(
        "/api/v1/export?q=customer-123&kind=tool_execution",
        Some(&s.auditor),
    );
    assert_eq!(export.status, 200);
    assert_eq!(export.body.lines().count(), 1, "{}", export.body);
    // Endpoints that do not read payloads take no search.
    let refused = console.get("/api/v1/stats?q=secret", Some(&s.auditor));
    assert_eq!(refused.status, 400);
}

fn hostile_search_text_is_a_clear_400_or_a_correct_answer(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let long = format!("/api/v1/events?q={}", "x".repeat(10_000));
    for path in [
        "/api/v1/events?q=%22",
        "/api/v1/events?q=*",
        "/api/v1/events?q=-",
        &long,
    ] {
        let answer = console.get(path, Some(&s.auditor));
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.error(), "bad_request", "{path}");
    }
    for (q, hits) in [
        ("%22secret-3", 1),
        ("NEAR(secret-3", 0),
        ("secret-3%22%20OR%20%22secret-4", 0),
        ("secret*", 30),
        ("-secret-3", 1),
        ("q%3Asecret-3", 1),
    ] {
        // The seed's kinds: the console's records of these searches are admin events.
        let path =
            format!("/api/v1/events?q={q}&limit=1000&kind=tool_execution&kind=resource_access");
        let answer = console.get(&path, Some(&s.auditor));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(
            answer.json()["events"].as_array().unwrap().len(),
            hits,
            "{q}"
        );
    }
    // The CLI refuses what the API refuses, by name.
    let (code, _, err) = s.db.run(&["query", "--search", "\"*\""], b"");
    assert_ne!(code, 0);
    assert!(err.contains("no letter or digit"), "{err}");
}

fn an_erased_event_reads_as_redacted_and_its_read_is_not_recorded(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 9);
    s.db.ok(&[
        "erase",
        &id,
        "--reason",
        "erasure request #1",
        "--actor",
        "dpo",
    ]);
    let console = s.db.serve();
    let detail = console.ok(&format!("/api/v1/events/{id}"), &s.auditor);
    assert_eq!(detail["event"]["redacted"], true, "{detail}");
    assert!(detail["event"].get("payload").is_none(), "{detail}");
    assert!(!detail.to_string().contains("secret-9"));
    // Nothing personal was read, so nothing is recorded as read.
    assert!(
        s.db.all()
            .iter()
            .all(|e| e["operation"] != "READ audit_event"),
        "a read of an erased event recorded"
    );
}

/// Waits for the verify run started from the API to finish; returns its result.
fn last_verify(console: &Console, token: &str) -> Value {
    // Waits for completion, not for a time: the bound only keeps a hung run from hanging the
    // suite.
    for _ in 0..6000 {
        let integrity = console.ok("/api/v1/integrity", token);
        if integrity["verify"]["running"].is_null() && !integrity["verify"]["last"].is_null() {
            return integrity["verify"]["last"].clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the verify run did not finish");
}

fn a_verify_started_from_the_api_reports_its_result(db: Db) {
    let s = seeded(db);
    let key = s.db.checkpoint();
    let console = s.db.serve_with(&["--verifier-key", key.to_str().unwrap()]);
    let before = console.ok("/api/v1/integrity", &s.viewer);
    assert!(before["verify"]["last"].is_null());
    assert!(
        before["verifier_key"]
            .as_str()
            .unwrap()
            .starts_with("test.example+")
    );
    assert_eq!(
        console
            .post("/api/v1/integrity/verify", Some(&s.reviewer), "")
            .status,
        403
    );
    let started = console.post("/api/v1/integrity/verify", Some(&s.auditor), "");
    assert_eq!(started.status, 202, "{}", started.body);
    let last = last_verify(&console, &s.viewer);
    assert_eq!(last["ok"], true, "{last}");
    assert_eq!(last["by"], "aude");
    assert_eq!(last["signatures_checked"], true);
    let logs = last["logs"].as_array().unwrap();
    let seed = logs
        .iter()
        .find(|l| l["entries"].as_u64().unwrap() >= 30)
        .unwrap_or_else(|| panic!("the seed log: {last}"));
    assert_eq!(seed["checkpoints_verified"], 1, "{last}");
}

/// `mcp-audit verify` records its result in the log, and the console shows the newest record
/// as the last verify: a pass as passed, a run with findings as failed; `--no-record` leaves
/// no record.
fn a_verify_on_the_command_line_is_recorded_and_shown_as_the_last_verify(db: Db) {
    let s = seeded(db);
    let key = s.db.checkpoint();
    // PostgreSQL records only into a log named for it.
    let record: &[&str] = if s.db.pg.is_some() {
        &["--record-log", "tokens"]
    } else {
        &[]
    };
    let verify = |args: &[&str]| {
        let args: Vec<&str> = ["verify"]
            .iter()
            .chain(args)
            .chain(record)
            .copied()
            .collect();
        s.db.run(&args, b"")
    };
    let (code, out, err) = verify(&["--key", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let console = s.db.serve();
    let integrity = |token: &str| console.ok("/api/v1/integrity", token)["verify"]["last"].clone();
    let passed = integrity(&s.viewer);
    assert_eq!(passed["ok"], true, "{passed}");
    assert_eq!(passed["signatures_checked"], true, "{passed}");
    assert!(passed["error"].is_null(), "{passed}");
    assert!(!passed["by"].as_str().unwrap().is_empty(), "{passed}");
    let seed = passed["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["entries"].as_u64().unwrap() >= 30)
        .unwrap_or_else(|| panic!("the seed log: {passed}"));
    assert_eq!(seed["size"], seed["entries"], "the range read: {passed}");
    assert_eq!(seed["checkpoints_verified"], 1, "{passed}");
    // The record is an event of the log, which every role sees.
    let recorded = passed["recorded_as"].as_str().unwrap().to_string();
    let record = console.ok(&format!("/api/v1/events/{recorded}"), &s.viewer);
    assert_eq!(record["event"]["operation"], "verify audit_log", "{record}");
    assert_eq!(record["event"]["outcome"], "success", "{record}");

    // Checked against another signer's key, the signatures fail: recorded, and shown, as
    // failed.
    let other = s.db.dir.path().join("other.key");
    s.db.ok(&[
        "keygen",
        "--name",
        "other.example",
        "--out",
        other.to_str().unwrap(),
    ]);
    let other_pub = format!("{}.pub", other.display());
    let (code, out, err) = verify(&["--key", &other_pub]);
    assert_eq!(code, 1, "{out}{err}");
    let failed = integrity(&s.viewer);
    assert_eq!(failed["ok"], false, "{failed}");
    assert_ne!(failed["recorded_as"], passed["recorded_as"], "{failed}");
    assert!(
        failed["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["ok"] == false && !l["findings"].as_object().unwrap().is_empty()),
        "{failed}"
    );
    let failed_id = failed["recorded_as"].as_str().unwrap();
    let record = console.ok(&format!("/api/v1/events/{failed_id}"), &s.viewer);
    assert_eq!(record["event"]["outcome"], "tool_error", "{record}");

    // Not recorded: the last verify stays the failed one. This run also holds the two
    // records to the log like any other entry: it passes.
    let (code, out, err) = verify(&["--no-record"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(integrity(&s.viewer)["recorded_as"], failed["recorded_as"]);
}

/// An edited row is found by the verify run started from the API, as `mcp-audit verify` finds
/// it.
#[test]
fn a_tampered_log_fails_the_verify_started_from_the_api() {
    let Some(db) = Db::new(Backend::Sqlite) else {
        return;
    };
    let s = seeded(db);
    rusqlite::Connection::open(&s.db.url)
        .unwrap()
        .execute("UPDATE events SET user_id = 'mallory' WHERE seq = 3", [])
        .unwrap();
    let console = s.db.serve();
    let started = console.post("/api/v1/integrity/verify", Some(&s.admin), "");
    assert_eq!(started.status, 202);
    let last = last_verify(&console, &s.viewer);
    assert_eq!(last["ok"], false, "{last}");
    assert_eq!(last["logs"][0]["findings"]["modified column"], 1, "{last}");
}

fn every_endpoint_refuses_without_a_token_and_below_its_role(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 0);
    let console = s.db.serve();
    let endpoints: Vec<(&str, String, Option<&str>)> = vec![
        ("viewer", "/api/v1/events".into(), None),
        ("viewer", format!("/api/v1/events/{id}"), None),
        ("viewer", format!("/api/v1/events/{id}/proof"), None),
        ("viewer", "/api/v1/sessions".into(), None),
        ("viewer", "/api/v1/sessions/s1".into(), None),
        ("viewer", "/api/v1/summary".into(), None),
        ("viewer", "/api/v1/stats".into(), None),
        ("viewer", "/api/v1/integrity".into(), None),
        ("reviewer", "/api/v1/reviews/queue".into(), None),
        (
            "reviewer",
            format!("/api/v1/events/{id}/review"),
            Some(r#"{"verdict": "approved"}"#),
        ),
        ("auditor", "/api/v1/export".into(), None),
        ("admin", "/api/v1/tokens".into(), None),
        ("auditor", "/api/v1/integrity/verify".into(), Some("")),
    ];
    let below = |role: &str| match role {
        "reviewer" => Some(&s.viewer),
        "auditor" => Some(&s.reviewer),
        "admin" => Some(&s.auditor),
        _ => None,
    };
    let call = |path: &str, body: Option<&str>, token: Option<&str>| match body {
        Some(body) => console.post(path, token, body),
        None => console.get(path, token),
    };
    let before = s.db.all().len();
    for (role, path, body) in &endpoints {
        let none = call(path, *body, None);
        assert_eq!(none.status, 401, "{path} without a token: {}", none.body);
        assert_eq!(none.error(), "unauthorized");
        let forged = call(path, *body, Some("mcpa_0000"));
        assert_eq!(forged.status, 401, "{path} with a forged token");
        if let Some(weak) = below(role) {
            let refused = call(path, *body, Some(weak));
            assert_eq!(refused.status, 403, "{path} below {role}: {}", refused.body);
            assert_eq!(refused.error(), "forbidden");
        }
    }
    // The scheme is read in any case; another scheme is no token.
    let lower = console.send(
        console
            .client
            .get(format!("{}/api/v1/events", console.base))
            .header("authorization", format!("bearer {}", s.viewer)),
        None,
    );
    assert_eq!(lower.status, 200, "{}", lower.body);
    let basic = console.send(
        console
            .client
            .get(format!("{}/api/v1/events", console.base))
            .header("authorization", format!("Basic {}", s.viewer)),
        None,
    );
    assert_eq!(basic.status, 401);
    // Nothing refused was done: no review, no read, no export on record.
    assert_eq!(s.db.all().len(), before);
    // And each opens to its role (proof: 409, no checkpoint yet; review: done).
    for (role, path, body) in &endpoints {
        let token = match *role {
            "viewer" => &s.viewer,
            "reviewer" => &s.reviewer,
            "auditor" => &s.auditor,
            _ => &s.admin,
        };
        let answer = call(path, *body, Some(token));
        assert!(
            [200, 201, 202, 409].contains(&answer.status),
            "{path} as {role}: {} {}",
            answer.status,
            answer.body
        );
    }
}

fn each_filter_finds_what_query_finds(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let cases: [(&str, &[&str]); 14] = [
        ("user=alice", &["--user", "alice"]),
        ("session=s2", &["--session", "s2"]),
        ("correlation=c3", &["--correlation", "c3"]),
        ("server=files", &["--server", "files"]),
        ("kind=resource_access", &["--kind", "resource_access"]),
        ("tool=search", &["--tool", "search"]),
        ("operation=fetch", &["--tool", "fetch"]),
        ("outcome=tool_error", &["--outcome", "tool_error"]),
        (
            "classification=restricted",
            &["--classification", "restricted"],
        ),
        ("review=true", &["--review"]),
        ("subject=cust-1", &["--subject", "cust-1"]),
        (
            "since=2026-03-01T00:00:10Z&until=2026-03-01T00:00:20Z",
            &[
                "--since",
                "2026-03-01T00:00:10Z",
                "--until",
                "2026-03-01T00:00:20Z",
            ],
        ),
        (
            "user=bob&session=s1&kind=tool_execution",
            &[
                "--user",
                "bob",
                "--session",
                "s1",
                "--kind",
                "tool_execution",
            ],
        ),
        (
            "kind=admin&resource_type=console_token",
            &["--kind", "admin", "--resource-type", "console_token"],
        ),
    ];
    for (query, flags) in cases {
        let expected = s.db.query_ids(flags);
        assert!(!expected.is_empty(), "{query} matches nothing: a weak case");
        let got = console.ids(&format!("/api/v1/events?limit=1000&{query}"), &s.viewer);
        assert_eq!(got, expected, "{query}");
    }
    // The time range really narrows: ten seconds hold ten of the thirty.
    let ten = console.ids(
        "/api/v1/events?since=2026-03-01T00:00:10Z&until=2026-03-01T00:00:20Z",
        &s.viewer,
    );
    assert_eq!(ten.len(), 10);
}

fn paging_reaches_the_end_with_no_duplicate_and_no_gap(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let expected = s.db.query_ids(&[]);
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=7".to_string();
    let mut pages = 0;
    loop {
        let page = console.ok(&path, &s.viewer);
        pages += 1;
        for e in page["events"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=7&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a duplicate");
    assert_eq!(seen, expected, "a gap or another order");
    assert!(pages >= 5);
}

/// More concurrent requests than the server keeps readers (eight): each waits for a reader
/// and is answered, pages as one client gets them, and every audited read among them is on
/// record before its answer.
fn more_concurrent_requests_than_readers_are_all_answered_and_every_read_recorded(db: Db) {
    const CONCURRENT: usize = 24;
    let s = seeded(db);
    let id = seed_id(&s.db, 5);
    let console = s.db.serve();
    let alone = console.ids("/api/v1/events?limit=100&kind=tool_execution", &s.viewer);
    assert!(!alone.is_empty());
    let answers: Vec<(String, u16, String)> = console.runtime.block_on(async {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..CONCURRENT {
            // Pages by a viewer, and reads of one event in full by an auditor, interleaved.
            let (path, token) = if i % 2 == 0 {
                (
                    "/api/v1/events?limit=100&kind=tool_execution".to_string(),
                    s.viewer.clone(),
                )
            } else {
                (format!("/api/v1/events/{id}"), s.auditor.clone())
            };
            let request = console
                .client
                .get(format!("{}{path}", console.base))
                .bearer_auth(token);
            requests.spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (path, status, response.text().await.unwrap())
            });
        }
        requests.join_all().await
    });
    assert_eq!(answers.len(), CONCURRENT);
    let mut reads_answered = 0;
    for (path, status, body) in &answers {
        assert_eq!(*status, 200, "{path}: {body}");
        let body: Value = serde_json::from_str(body).unwrap();
        if path.starts_with("/api/v1/events?") {
            let ids: Vec<&str> = body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, alone, "a page under load is the page one client gets");
        } else {
            assert_eq!(body["event"]["payload"]["input"]["q"], "secret-5");
            reads_answered += 1;
        }
    }
    // Each answered read of a payload was recorded before it was answered: all are in the
    // log now, while the server still runs.
    let recorded =
        s.db.all()
            .into_iter()
            .filter(|e| e["operation"] == "READ audit_event" && e["target"]["resource_id"] == id)
            .count();
    assert_eq!(recorded, reads_answered);
    assert_eq!(reads_answered, CONCURRENT / 2);
}

/// A page of the event list as its bytes, pinned: the key order, what is left out and the
/// `payload_withheld` mark, as the console wrote them before lists stopped decoding payloads.
/// Only the values that differ from run to run (ids, hashes, receive times) are put back as
/// placeholders.
fn a_list_page_is_encoded_byte_for_byte_as_pinned_for_every_role(db: Db) {
    let events: Vec<Value> = [
        r#"{"kind":"tool_execution","action":"EXECUTE","operation":"search","timestamp":"2026-03-01T00:00:01Z","actor":{"user_id":"alice","email":"alice@example.com","client_ip":"10.0.0.7","user_agent":"agent/1.0"},"session_id":"s1","correlation_id":"c1","target":{"server_name":"github"},"duration_us":1234,"outcome":"tool_error","compliance":{"classification":"restricted","data_subject_id":"cust-1","requires_review":true},"payload":{"input":{"q":"secret"},"output":{"n":1},"error_message":"boom"}}"#,
        r#"{"kind":"resource_access","action":"READ","operation":"file:///notes","timestamp":"2026-03-01T00:00:02Z","actor":{"user_id":"bob"},"correlation_id":"c2","target":{"server_name":"files"}}"#,
    ]
    .iter()
    .map(|line| serde_json::from_str(line).unwrap())
    .collect();
    db.log(&events);
    let viewer = db.token("vera", "viewer");
    let auditor = db.token("aude", "auditor");
    let console = db.serve();
    let pinned = r#"{"events":[{"log_id":"<log_id>","seq":1,"version":1,"id":"<id>","timestamp":"2026-03-01T00:00:02Z","received_at":"<received_at>","kind":"resource_access","action":"READ","operation":"file:///notes","correlation_id":"c2","actor":{"user_id":"bob"},"target":{"server_name":"files"},"outcome":"success","compliance":{"classification":"internal","requires_review":false},"payload_commitment":"<payload_commitment>","leaf_hash":"<leaf_hash>"},{"log_id":"<log_id>","seq":0,"version":1,"id":"<id>","timestamp":"2026-03-01T00:00:01Z","received_at":"<received_at>","kind":"tool_execution","action":"EXECUTE","operation":"search","correlation_id":"c1","session_id":"s1","actor":{"user_id":"alice","email":"alice@example.com","client_ip":"10.0.0.7","user_agent":"agent/1.0"},"target":{"server_name":"github"},"outcome":"tool_error","duration_us":1234,"compliance":{"classification":"restricted","requires_review":true,"data_subject_id":"cust-1"},"payload_commitment":"<payload_commitment>","leaf_hash":"<leaf_hash>","payload_withheld":true}],"next_cursor":null,"limit":5}"#;
    for token in [&viewer, &auditor] {
        let answer = console.get(
            "/api/v1/events?limit=5&kind=tool_execution&kind=resource_access",
            Some(token),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let parsed: Value = serde_json::from_str(&answer.body).unwrap();
        let mut body = answer.body.clone();
        for event in parsed["events"].as_array().unwrap() {
            for key in [
                "log_id",
                "id",
                "received_at",
                "payload_commitment",
                "leaf_hash",
            ] {
                let value = event[key].as_str().unwrap();
                body = body.replace(&format!("\"{value}\""), &format!("\"<{key}>\""));
            }
        }
        assert_eq!(body, pinned);
    }
}

fn a_viewer_gets_no_payload_and_an_auditors_reads_are_on_record(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 3);
    let console = s.db.serve();

    let list = console.ok("/api/v1/events?limit=1000", &s.auditor);
    assert!(
        list["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("payload").is_none()),
        "a list carries no payload, for any role"
    );
    let seen = console.ok(&format!("/api/v1/events/{id}"), &s.viewer);
    assert!(seen["event"].get("payload").is_none(), "{seen}");
    assert_eq!(seen["event"]["payload_withheld"], true);
    assert!(
        !console
            .get(&format!("/api/v1/events/{id}"), Some(&s.viewer))
            .body
            .contains("secret-3")
    );
    // A viewer's read of metadata is no read of personal data: nothing recorded.
    let reads = |db: &Db| {
        db.query_ids(&[
            "--kind",
            "admin",
            "--resource-type",
            "audit_event",
            "--action",
            "READ",
        ])
    };
    assert!(reads(&s.db).is_empty());

    let full = console.ok(&format!("/api/v1/events/{id}"), &s.auditor);
    assert_eq!(full["event"]["payload"]["input"]["q"], "secret-3");
    // The outcome and its correlation are linked; the intent/outcome pair is one correlation.
    let linked: Vec<&str> = full["linked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["relation"].as_str().unwrap())
        .collect();
    assert_eq!(linked, ["correlation"], "{full}");
    assert_eq!(full["integrity"]["leaf_hash"].as_str().unwrap().len(), 64);

    let all = s.db.all();
    let read: Vec<&Value> = all
        .iter()
        .filter(|e| e["operation"] == "READ audit_event")
        .collect();
    assert_eq!(read.len(), 1, "one read on record");
    assert_eq!(read[0]["actor"]["user_id"], "aude");
    assert_eq!(read[0]["actor"]["auth_method"], "console_token");
    assert_eq!(read[0]["target"]["resource_id"], id.as_str());
    assert_eq!(read[0]["compliance_events"][0]["event_type"], "data_access");

    // An export is on record with its filter.
    let export = console.get("/api/v1/export?user=alice&format=jsonl", Some(&s.auditor));
    assert_eq!(export.status, 200);
    let all = s.db.all();
    let exports: Vec<&Value> = all.iter().filter(|e| e["action"] == "EXPORT").collect();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["actor"]["user_id"], "aude");
    assert_eq!(
        exports[0]["payload"]["details"]["filter"],
        "user=alice&format=jsonl"
    );
}

fn a_review_leaves_the_queue_is_in_the_log_and_verify_passes(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let expected = s.db.query_ids(&["--review"]);
    assert!(expected.len() >= 2);
    let queue = console.ids("/api/v1/reviews/queue?limit=1000", &s.reviewer);
    assert_eq!(queue, expected, "the queue is every event requiring review");

    let target = &expected[0];
    let done = console.post(
        &format!("/api/v1/events/{target}/review"),
        Some(&s.reviewer),
        r#"{"verdict": "flagged", "comment": "asked for a customer's data"}"#,
    );
    assert_eq!(done.status, 201, "{}", done.body);
    let review_event = done.json()["review_event"].as_str().unwrap().to_string();

    let queue = console.ids("/api/v1/reviews/queue?limit=1000", &s.reviewer);
    assert_eq!(
        queue,
        expected[1..],
        "the reviewed event left the queue, only it"
    );

    // The review is an event of the log: who, the verdict, the comment, the reviewed event.
    let all = s.db.all();
    let review = all
        .iter()
        .find(|e| e["id"] == review_event.as_str())
        .unwrap();
    assert_eq!(review["kind"], "admin");
    assert_eq!(review["actor"]["user_id"], "rita");
    assert_eq!(review["target"]["resource_id"], target.as_str());
    assert_eq!(review["compliance"]["tags"], json!(["review:flagged"]));
    assert_eq!(
        review["payload"]["new_values"]["comment"],
        "asked for a customer's data"
    );
    // The reviewer sees the verdict on the event, not the comment (free text, a payload).
    let detail = console.ok(&format!("/api/v1/events/{target}"), &s.reviewer);
    assert_eq!(detail["reviews"][0]["verdict"], "flagged");
    assert!(detail["reviews"][0].get("comment").is_none());
    // An event that does not require review is refused, and nothing recorded.
    let plain = seed_id(&s.db, 1);
    let before = s.db.all().len();
    let refused = console.post(
        &format!("/api/v1/events/{plain}/review"),
        Some(&s.reviewer),
        r#"{"verdict": "approved"}"#,
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error(), "not_for_review");
    assert_eq!(s.db.all().len(), before);
    drop(console);

    let (code, out, err) = s.db.run(&["verify"], b"");
    assert_eq!(code, 0, "verify after a review: {out}{err}");
}

fn the_proof_download_is_accepted_by_verify_proof(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 5);
    let key = s.db.checkpoint();
    let console = s.db.serve();

    // The newest checkpoint that covers the event (SQLite: the tokens are in the one log too).
    let detail = console.ok(&format!("/api/v1/events/{id}"), &s.viewer);
    let seq = detail["event"]["seq"].as_u64().unwrap();
    let size = detail["integrity"]["checkpoint"]["size"].as_u64().unwrap();
    assert!(size > seq && size >= 30, "{detail}");
    assert!(
        detail["integrity"]["checkpoint"]["note"]
            .as_str()
            .unwrap()
            .contains("test.example")
    );
    let integrity = console.ok("/api/v1/integrity", &s.viewer);
    assert!(
        integrity["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["checkpoint"]["size"] == size),
        "{integrity}"
    );

    for (token, payload) in [(&s.auditor, true), (&s.viewer, false)] {
        let answer = console.get(&format!("/api/v1/events/{id}/proof"), Some(token));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.headers.get("x-payload-withheld").is_some(),
            !payload,
            "{}",
            answer.body
        );
        let file = s.db.dir.path().join("proof.json");
        std::fs::write(&file, &answer.body).unwrap();
        let out = s.db.ok(&[
            "verify-proof",
            file.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert!(out.contains(&id), "{out}");
        assert_eq!(out.contains("payload included"), payload, "{out}");
    }
    let missing = console.get(
        "/api/v1/events/01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e/proof",
        Some(&s.viewer),
    );
    assert_eq!(missing.status, 404);
}

fn bad_input_is_a_clear_4xx_and_changes_nothing(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 7);
    let console = s.db.serve();
    let before = s.db.all().len();
    let cases: [(&str, u16, &str); 11] = [
        ("/api/v1/events?outcome=great", 400, "bad_request"),
        ("/api/v1/events?since=last-tuesday", 400, "bad_request"),
        ("/api/v1/events?usr=alice", 400, "bad_request"),
        ("/api/v1/events?user=a&user=b", 400, "bad_request"),
        ("/api/v1/events?cursor=not-a-cursor!", 400, "bad_cursor"),
        ("/api/v1/events?limit=0", 400, "bad_request"),
        ("/api/v1/events/not-an-id", 400, "bad_request"),
        (
            "/api/v1/events/01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e",
            404,
            "not_found",
        ),
        ("/api/v1/export?format=xml", 400, "bad_request"),
        ("/api/v1/summary?session=s1&user=alice", 400, "bad_request"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let answer = console.get(path, Some(&s.admin));
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(answer.error(), code, "{path}");
    }
    let huge = console.ok("/api/v1/events?limit=99999999", &s.viewer);
    assert_eq!(
        huge["limit"], 1000,
        "a huge limit is capped, and the answer says so"
    );
    for body in [
        "not json",
        r#"{"verdict": "maybe"}"#,
        r#"{"verdict": "approved", "rating": 5}"#,
        r#"{"comment": "no verdict"}"#,
    ] {
        let answer = console.post(&format!("/api/v1/events/{id}/review"), Some(&s.admin), body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.error(), "bad_request");
    }
    let long = json!({"verdict": "approved", "comment": "x".repeat(5000)}).to_string();
    let answer = console.post(
        &format!("/api/v1/events/{id}/review"),
        Some(&s.admin),
        &long,
    );
    assert_eq!(answer.status, 400);
    let answer = console.post(
        "/api/v1/events/01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e/review",
        Some(&s.admin),
        r#"{"verdict": "approved"}"#,
    );
    assert_eq!(answer.status, 404);
    assert_eq!(s.db.all().len(), before, "bad input changed the log");
}

fn export_streams_every_matching_event(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let expected: Vec<Value> =
        s.db.ok(&["export", "--format", "jsonl", "--server", "github"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let answer = console.get("/api/v1/export?server=github", Some(&s.auditor));
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"].to_str().unwrap(),
        "application/jsonl"
    );
    let got: Vec<Value> = answer
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got, expected, "the export is the CLI's, payloads and all");

    let csv = console.get("/api/v1/export?server=github&format=csv", Some(&s.auditor));
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), expected.len());
    assert!(csv.body.contains("secret-"), "the payload is in the CSV");
    let cli =
        s.db.ok(&["export", "--format", "csv", "--server", "github"]);
    assert_eq!(
        csv.body, cli,
        "the console's CSV is the CLI's, a column for every field"
    );
}

fn a_revoked_token_is_refused_on_the_next_request(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let extra = s.db.token("temp", "viewer");
    assert_eq!(console.get("/api/v1/events", Some(&extra)).status, 200);
    let tokens = console.ok("/api/v1/tokens", &s.admin);
    let temp = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "temp")
        .unwrap()
        .clone();
    assert!(temp["revoked"].is_null());
    assert!(
        !tokens.to_string().contains(&extra),
        "the API never shows a token"
    );
    let id = temp["id"].as_str().unwrap();
    s.db.ok(&["token", "revoke", id, "--actor", "root"]);
    let refused = console.get("/api/v1/events", Some(&extra));
    assert_eq!(refused.status, 401, "{}", refused.body);
    let listed = s.db.ok(&["token", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let temp = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert!(temp["revoked"].is_string(), "{temp}");
    // The others still work.
    assert_eq!(console.get("/api/v1/events", Some(&s.viewer)).status, 200);
    // Revoking twice, or an unknown id, is an error.
    let (code, _, err) = s.db.run(&["token", "revoke", id], b"");
    assert_eq!(code, 1);
    assert!(err.contains("already revoked"), "{err}");
}

fn sessions_summary_stats_and_integrity_answer_as_the_cli_does(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let summary = console.ok("/api/v1/summary?session=s1", &s.viewer);
    let cli: Value =
        serde_json::from_str(&s.db.ok(&["summary", "--session", "s1", "--json"])).unwrap();
    assert_eq!(summary, cli);
    let stats = console.ok("/api/v1/stats?user=alice", &s.viewer);
    let cli: Value =
        serde_json::from_str(&s.db.ok(&["stats", "--user", "alice", "--json"])).unwrap();
    assert_eq!(stats["tools"], cli);
    let timeline = console.ok("/api/v1/sessions/s2?limit=1000", &s.viewer);
    assert_eq!(
        timeline["events"].as_array().unwrap().len(),
        15,
        "{timeline}"
    );
    assert_eq!(timeline["summary"]["total_operations"], 15);
    assert_eq!(
        console.get("/api/v1/sessions/nope", Some(&s.viewer)).status,
        404
    );
    let integrity = console.ok("/api/v1/integrity", &s.viewer);
    assert!(
        integrity["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["size"].as_u64().unwrap() >= 30)
    );
}

/// A real client calls `server-everything` through the proxy; the console shows the session
/// and the call, with its arguments to an auditor.
#[test]
fn a_proxied_server_everything_call_is_read_through_the_console() {
    let Some(peers) = peers() else { return };
    let Some(db) = Db::new(Backend::Sqlite) else {
        return;
    };
    let js = everything_js(&peers).display().to_string();
    let output = Command::new(python(&peers))
        .arg(peer_script("legacy_client.py"))
        .arg(BIN)
        .arg("proxy")
        .arg("--db")
        .arg(&db.url)
        .args(["--user", "tester", "--", "node", &js, "stdio"])
        .output()
        .unwrap();
    json_output("client", output);
    let auditor = db.token("aude", "auditor");
    let console = db.serve();

    let sessions = console.ok("/api/v1/sessions", &auditor);
    let session = &sessions["sessions"][0];
    assert_eq!(session["user"], "tester");
    assert_eq!(session["server"], "mcp-servers/everything");
    assert!(session["calls"].as_u64().unwrap() >= 2, "{session}");
    assert!(
        session["errors"].as_u64().unwrap() >= 1,
        "the failing get-sum: {session}"
    );
    assert!(session["end"].is_string(), "{session}");

    let echo = console.ok("/api/v1/events?tool=echo&outcome=success", &auditor);
    let id = echo["events"][0]["id"].as_str().unwrap();
    let detail = console.ok(&format!("/api/v1/events/{id}"), &auditor);
    assert_eq!(
        detail["event"]["payload"]["input"]["message"],
        "hello through the proxy"
    );
    let intent = detail["linked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "intent")
        .unwrap_or_else(|| panic!("the intent is linked: {detail}"));
    assert_eq!(intent["outcome"], "pending");
    drop(console);
    let (code, out, err) = db.run(&["verify"], b"");
    assert_eq!(code, 0, "{out}{err}");
}

/// Checks `value` against `schema` (the subset of JSON Schema the API's OpenAPI document uses:
/// `$ref`, `type`, `enum`, `oneOf`, `required`, `properties`, `additionalProperties: false`,
/// `items`); returns what does not match, with where.
fn schema_errors(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return schema_errors(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|o| schema_errors(doc, o, value, at).is_empty())
            .count();
        return if matching == 1 {
            Vec::new()
        } else {
            vec![format!("{at}: {matching} of oneOf match {value}")]
        };
    }
    let mut errors = Vec::new();
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return errors;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                errors.push(format!("{at}: `{key}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (key, field) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => {
                    errors.extend(schema_errors(doc, property, field, &format!("{at}.{key}")))
                }
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: `{key}` is not in the document"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (k, item) in array.iter().enumerate() {
            errors.extend(schema_errors(doc, items, item, &format!("{at}[{k}]")));
        }
    }
    errors
}

fn the_openapi_document_describes_every_real_answer(db: Db) {
    let s = seeded(db);
    s.db.log(&[
        json!({"kind": "session", "action": "CREATE", "operation": "session_start",
               "session_id": "s3", "actor": {"user_id": "dora", "client_name": "cli"},
               "target": {"server_name": "github"}}),
        json!({"kind": "tool_execution", "action": "EXECUTE", "operation": "search",
               "session_id": "s3", "actor": {"user_id": "dora"}}),
        json!({"kind": "session", "action": "DELETE", "operation": "session_end",
               "session_id": "s3", "actor": {"user_id": "dora"}}),
    ]);
    s.db.checkpoint();
    let review_id = s.db.query_ids(&["--review"])[0].clone();
    let plain = seed_id(&s.db, 1);
    let console = s.db.serve();
    let doc_answer = console.get("/api/v1/openapi.json", None);
    assert_eq!(doc_answer.status, 200, "the document is public");
    let doc = doc_answer.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let review_body = r#"{"verdict": "approved", "comment": "fine"}"#;
    let calls: Vec<(&str, &str, String, Option<&str>, u16)> = vec![
        (
            "get",
            "/api/v1/events",
            "/api/v1/events?limit=5".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/events",
            "/api/v1/events?outcome=nope".into(),
            Some(&s.viewer),
            400,
        ),
        (
            "get",
            "/api/v1/events",
            "/api/v1/events?q=secret-3".into(),
            Some(&s.auditor),
            200,
        ),
        (
            "get",
            "/api/v1/events",
            "/api/v1/events?q=secret-3".into(),
            Some(&s.viewer),
            403,
        ),
        (
            "get",
            "/api/v1/events",
            "/api/v1/events?q=%22*%22".into(),
            Some(&s.auditor),
            400,
        ),
        ("get", "/api/v1/events", "/api/v1/events".into(), None, 401),
        (
            "post",
            "/api/v1/events/{id}/review",
            format!("/api/v1/events/{review_id}/review"),
            Some(&s.reviewer),
            201,
        ),
        (
            "post",
            "/api/v1/events/{id}/review",
            format!("/api/v1/events/{plain}/review"),
            Some(&s.reviewer),
            409,
        ),
        (
            "post",
            "/api/v1/events/{id}/review",
            format!("/api/v1/events/{plain}/review"),
            Some(&s.viewer),
            403,
        ),
        (
            "get",
            "/api/v1/events/{id}",
            format!("/api/v1/events/{review_id}"),
            Some(&s.auditor),
            200,
        ),
        (
            "get",
            "/api/v1/events/{id}",
            format!("/api/v1/events/{plain}"),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/events/{id}",
            "/api/v1/events/01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e".into(),
            Some(&s.viewer),
            404,
        ),
        (
            "get",
            "/api/v1/events/{id}/proof",
            format!("/api/v1/events/{plain}/proof"),
            Some(&s.auditor),
            200,
        ),
        (
            "get",
            "/api/v1/events/{id}/proof",
            format!("/api/v1/events/{plain}/proof"),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/reviews/queue",
            "/api/v1/reviews/queue".into(),
            Some(&s.reviewer),
            200,
        ),
        (
            "get",
            "/api/v1/sessions",
            "/api/v1/sessions".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/sessions/{id}",
            "/api/v1/sessions/s3".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/sessions/{id}",
            "/api/v1/sessions/none".into(),
            Some(&s.viewer),
            404,
        ),
        (
            "get",
            "/api/v1/summary",
            "/api/v1/summary?user=alice".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/stats",
            "/api/v1/stats".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/export",
            "/api/v1/export?user=bob".into(),
            Some(&s.auditor),
            200,
        ),
        (
            "get",
            "/api/v1/integrity",
            "/api/v1/integrity".into(),
            Some(&s.viewer),
            200,
        ),
        (
            "get",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(&s.admin),
            200,
        ),
        (
            "get",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(&s.auditor),
            403,
        ),
        (
            "get",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json".into(),
            None,
            200,
        ),
        (
            "post",
            "/api/v1/integrity/verify",
            "/api/v1/integrity/verify".into(),
            Some(&s.reviewer),
            403,
        ),
        (
            "post",
            "/api/v1/integrity/verify",
            "/api/v1/integrity/verify".into(),
            Some(&s.auditor),
            202,
        ),
    ];
    // Every query field the events list and the export take is documented, search included.
    for template in ["/api/v1/events", "/api/v1/export"] {
        let names: Vec<&str> = doc["paths"][template]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"q"), "{template}: {names:?}");
    }
    // The ingest API: a writer's events, and a batch refused for one bad line.
    let writer = s.db.token("ingest", "writer");
    let event = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"ingested"}"#;
    let bad_lines = format!("{event}\n{{\"kind\":\"nope\"}}\n");
    let ingest_calls: Vec<(&str, Option<&str>, &str, &str, u16)> = vec![
        (
            "/api/v1/events?wait=durable",
            Some(&writer),
            "application/json",
            event,
            201,
        ),
        (
            "/api/v1/events",
            Some(&writer),
            "application/jsonl",
            event,
            202,
        ),
        (
            "/api/v1/events",
            Some(&writer),
            "application/jsonl",
            &bad_lines,
            422,
        ),
        (
            "/api/v1/events?wait=soon",
            Some(&writer),
            "application/json",
            event,
            400,
        ),
        (
            "/api/v1/events",
            Some(&s.admin),
            "application/json",
            event,
            403,
        ),
        ("/api/v1/events", None, "application/json", event, 401),
    ];
    let mut answers = Vec::new();
    for (method, template, path, token, status) in &calls {
        let answer = match *method {
            "post" => console.post(path, *token, review_body),
            _ => console.get(path, *token),
        };
        answers.push((*method, *template, path.clone(), *status, answer));
    }
    for (path, token, content_type, body, status) in &ingest_calls {
        let request = console
            .client
            .post(format!("{}{path}", console.base))
            .header("content-type", *content_type)
            .body(body.to_string());
        let answer = console.send(request, *token);
        answers.push(("post", "/api/v1/events", path.to_string(), *status, answer));
    }
    let mut covered = BTreeSet::new();
    for (method, template, path, status, answer) in &answers {
        assert_eq!(answer.status, *status, "{method} {path}: {}", answer.body);
        let response = &doc["paths"][*template][*method]["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} {status} is not in the document"
        );
        let content_type = answer.headers["content-type"].to_str().unwrap().to_string();
        let media = content_type.split(';').next().unwrap();
        let schema = &response["content"][media]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status}: {media} is not documented"
        );
        if media == "application/json" {
            let errors = schema_errors(&doc, schema, &answer.json(), "$");
            assert!(errors.is_empty(), "{method} {path}: {errors:#?}");
        }
        covered.insert((method.to_string(), template.to_string()));
    }
    for (template, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            assert!(
                covered.contains(&(method.clone(), template.clone())),
                "{method} {template} is documented but not checked"
            );
        }
    }
}

/// A read of arguments and results that cannot be put on record is refused, and nothing of
/// the payload leaves the server: here a trigger makes the database refuse the read's record.
#[test]
fn a_read_that_cannot_be_recorded_is_refused() {
    let Some(db) = Db::new(Backend::Sqlite) else {
        return;
    };
    let s = seeded(db);
    let id = seed_id(&s.db, 2);
    rusqlite::Connection::open(&s.db.url)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_reads BEFORE INSERT ON events
             WHEN NEW.operation IN ('READ audit_event', 'EXPORT audit_trail')
             BEGIN SELECT RAISE(ABORT, 'reads refused'); END;",
        )
        .unwrap();
    let console = s.db.serve();
    let answer = console.get(&format!("/api/v1/events/{id}"), Some(&s.auditor));
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.error(), "not_recorded");
    assert!(!answer.body.contains("secret-2"), "{}", answer.body);
    let export = console.get("/api/v1/export", Some(&s.auditor));
    assert_eq!(export.status, 503);
    assert!(!export.body.contains("secret-"));
    // A viewer's read of metadata needs no record and still works.
    assert_eq!(
        console
            .get(&format!("/api/v1/events/{id}"), Some(&s.viewer))
            .status,
        200
    );
}

/// The commands' own bad input: a clear one-line error, nothing created or recorded.
#[test]
fn serve_and_token_refuse_bad_arguments_clearly() {
    let Some(db) = Db::new(Backend::Sqlite) else {
        return;
    };
    // No database yet: serve refuses rather than creating one.
    let (code, _, err) = db.run(&["serve", "--listen", "127.0.0.1:0"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!std::path::Path::new(&db.url).exists());

    let s = seeded(db);
    let before = s.db.all().len();
    let (code, _, err) =
        s.db.run(&["token", "create", "--name", "x", "--role", "root"], b"");
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("viewer"), "{err}");
    let (code, _, err) =
        s.db.run(&["token", "create", "--name", " ", "--role", "viewer"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("--name"), "{err}");
    let (code, _, err) = s.db.run(&["token", "revoke", "0123456789abcdef"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("no token with id"), "{err}");
    assert_eq!(
        s.db.all().len(),
        before,
        "a refused command recorded something"
    );

    let (code, _, err) = s.db.run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--verifier-key",
            "not a key",
        ],
        b"",
    );
    assert_eq!(code, 1);
    assert!(err.contains("verifier key"), "{err}");

    // A taken port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = s.db.run(&["serve", "--listen", &addr], b"");
    assert_eq!(code, 1);
    assert!(err.contains("cannot listen"), "{err}");
}

/// A browser's side of the web UI without a browser: a cookie jar of one session and no
/// following of redirects, so that each answer is seen as sent.
struct Ui<'a> {
    console: &'a Console,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Ui<'a> {
    fn new(console: &'a Console) -> Ui<'a> {
        Ui {
            console,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", format!("mcp_audit_session={c}")),
            None => request,
        };
        self.console.send(request, None)
    }

    fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.console.base)))
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            self.client
                .post(format!("{}{path}", self.console.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
    }

    /// Logs in with `token`; returns the `Set-Cookie` header.
    fn login(&mut self, token: &str) -> String {
        let answer = self.post("/ui/login", &[("token", token)]);
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(answer.headers["location"], "/ui/events");
        let set = answer.headers["set-cookie"].to_str().unwrap().to_string();
        let value = set
            .strip_prefix("mcp_audit_session=")
            .and_then(|v| v.split(';').next())
            .unwrap();
        self.cookie = Some(value.to_string());
        set
    }

    /// A page that must be 200 HTML.
    fn page(&self, path: &str) -> String {
        let answer = self.get(path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert!(
            answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        answer.body
    }
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("the page has a form with a CSRF token")
        + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().unwrap().to_string()
}

fn the_ui_logs_in_into_an_http_only_same_site_cookie_and_logs_out(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let mut ui = Ui::new(&console);

    let away = ui.get("/ui/events");
    assert_eq!(away.status, 303, "no session: to the login page");
    assert_eq!(away.headers["location"], "/ui/login");
    assert!(ui.get("/").headers["location"] == "/ui/events");
    let refused = ui.post("/ui/login", &[("token", "mcpa_not-a-token")]);
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("Unknown or revoked token"));
    assert!(refused.headers.get("set-cookie").is_none());

    let cookie = ui.login(&s.viewer);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "no TLS yet, so no Secure: {cookie}"
    );
    let page = ui.page("/ui/events");
    assert!(page.contains("vera"), "the page names who is logged in");
    assert!(page.contains(r#"name="viewport""#));
    assert!(page.contains("file:///notes"), "the events are listed");
    assert!(
        !page.contains("/ui/reviews"),
        "a viewer has no review queue link"
    );
    assert_eq!(ui.get("/ui/reviews").status, 403, "nor the queue");

    // Logging out needs the session's CSRF token too.
    let csrf = csrf_of(&page);
    assert_eq!(ui.post("/ui/logout", &[]).status, 403);
    let out = ui.post("/ui/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        ui.get("/ui/events").status,
        303,
        "the old cookie is no session any more"
    );
}

fn the_ui_lists_events_by_the_urls_filters_and_refuses_a_bad_one_clearly(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let mut ui = Ui::new(&console);
    ui.login(&s.auditor);
    // A form sends its empty fields: they filter nothing.
    let page = ui.page("/ui/events?user=alice&tool=&server=&limit=5");
    let links = page.matches("class=\"event-link\"").count();
    assert_eq!(links, 5, "a page of five");
    let expected = s.db.query_ids(&["--user", "alice"]);
    for id in &expected[..5] {
        assert!(page.contains(id.as_str()), "{id} is on the first page");
    }
    assert!(!page.contains(expected[5].as_str()));
    // The next page's link keeps the filter.
    let next = page
        .split("id=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(next.contains("user=alice"), "{next}");
    let second = ui.page(&next);
    assert!(second.contains(expected[5].as_str()));

    let bad = ui.get("/ui/events?since=last-tuesday");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("RFC 3339"), "{}", bad.body);
    let bad = ui.get("/ui/events?usr=alice");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown query field"), "{}", bad.body);
}

fn a_viewer_sees_no_arguments_in_the_ui_and_an_auditors_read_is_on_record(db: Db) {
    let s = seeded(db);
    let id = seed_id(&s.db, 3);
    let console = s.db.serve();
    let mut viewer = Ui::new(&console);
    viewer.login(&s.viewer);
    let page = viewer.page(&format!("/ui/events/{id}"));
    assert!(page.contains("payload-hidden"), "{page}");
    assert!(!page.contains("secret-3"));

    let mut auditor = Ui::new(&console);
    auditor.login(&s.auditor);
    let page = auditor.page(&format!("/ui/events/{id}"));
    assert!(page.contains("secret-3"), "{page}");
    assert!(page.contains(&format!("/ui/events/{id}/proof")));
    let reads: Vec<Value> =
        s.db.all()
            .into_iter()
            .filter(|e| e["operation"] == "READ audit_event")
            .collect();
    assert_eq!(reads.len(), 1, "the read in the UI is on record");
    assert_eq!(reads[0]["actor"]["user_id"], "aude");
    assert_eq!(reads[0]["target"]["resource_id"], id.as_str());
    assert_eq!(
        reads[0]["payload"]["details"]["endpoint"],
        "/ui/events/{id}"
    );

    // The search box reads payloads: shown to the auditor, who finds by an argument (and whose
    // search is on record); not shown to the viewer, whose hand-made search URL is a 403 page.
    let events = viewer.page("/ui/events");
    assert!(!events.contains("id=\"q\""), "{events}");
    let refused = viewer.get("/ui/events?q=secret-3");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains(&id));
    assert!(auditor.page("/ui/events").contains("id=\"q\""));
    let found = auditor.page("/ui/events?q=secret-3&tool=&user=");
    assert!(found.contains(&format!("/ui/events/{id}")), "{found}");
    assert_eq!(found.matches("class=\"event-link\"").count(), 1, "{found}");
    let searches = searches_on_record(&s.db);
    assert_eq!(searches, [("aude".to_string(), "secret 3".to_string())]);
}

fn a_forged_cookie_or_csrf_token_is_refused_and_a_real_review_leaves_the_queue(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let target = s.db.query_ids(&["--review"])[0].clone();
    let mut ui = Ui::new(&console);
    ui.login(&s.reviewer);
    let queue = ui.page("/ui/reviews");
    assert!(queue.contains(&format!("q-{target}")));
    let csrf = csrf_of(&queue);
    let path = format!("/ui/events/{target}/review");
    let before = s.db.all().len();

    let forged_csrf = ui.post(&path, &[("csrf", "0000"), ("verdict", "approved")]);
    assert_eq!(forged_csrf.status, 403);
    assert!(forged_csrf.body.contains("CSRF"));
    let no_csrf = ui.post(&path, &[("verdict", "approved")]);
    assert_eq!(no_csrf.status, 403);
    let mut forger = Ui::new(&console);
    forger.cookie = Some("f".repeat(64));
    assert_eq!(
        forger
            .post(&path, &[("csrf", &csrf), ("verdict", "approved")])
            .status,
        403,
        "a forged cookie with a stolen CSRF token"
    );
    assert_eq!(
        forger.get("/ui/events").status,
        303,
        "a forged cookie is no session"
    );
    let other_site = ui.send(
        ui.client
            .post(format!("{}{path}", console.base))
            .header("origin", "http://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&verdict=approved")),
    );
    assert_eq!(other_site.status, 403);
    assert_eq!(s.db.all().len(), before, "nothing was recorded");
    assert!(ui.page("/ui/reviews").contains(&format!("q-{target}")));

    let done = ui.post(
        &path,
        &[
            ("csrf", &csrf),
            ("verdict", "approved"),
            ("comment", "fine"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let queue = ui.page(done.headers["location"].to_str().unwrap());
    assert!(!queue.contains(&format!("q-{target}")), "it left the queue");
    assert!(queue.contains("Recorded"));
    let review =
        s.db.all()
            .into_iter()
            .find(|e| e["target"]["resource_id"] == target.as_str())
            .unwrap();
    assert_eq!(review["actor"]["user_id"], "rita");
    assert_eq!(review["compliance"]["tags"], json!(["review:approved"]));
}

fn audit_data_holding_html_renders_inert(db: Db) {
    let hostile_op = "<script>alert('op')</script>";
    let hostile_arg = "\"><img src=x onerror=alert(1)>";
    db.log(&[json!({
        "kind": "tool_execution", "action": "EXECUTE", "operation": hostile_op,
        "actor": {"user_id": "<b>mallory</b>"},
        "target": {"server_name": "'\"><svg onload=alert(2)>"},
        "session_id": "\"><script>alert(3)</script>",
        "payload": {"input": {"q": hostile_arg}},
    })]);
    let auditor = db.token("aude", "auditor");
    let console = db.serve();
    let mut ui = Ui::new(&console);
    ui.login(&auditor);
    let list = ui.get("/ui/events");
    assert_eq!(list.status, 200);
    let csp = list.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let id = db.query_ids(&["--kind", "tool_execution"])[0].clone();
    let detail = ui.page(&format!("/ui/events/{id}"));
    for page in [&list.body, &detail] {
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("<svg onload"), "{page}");
        assert!(!page.contains("<b>mallory"), "{page}");
        // Shown, as text (askama writes `<` as `&#60;`).
        assert!(
            page.contains("&#60;script&#62;alert("),
            "shown, as text: {page}"
        );
    }
    assert!(
        detail.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{detail}"
    );
}

/// The console in a real browser: Debian's headless Chromium driven through chromedriver by
/// WebDriver (fantoccini). Each page visited is kept as a screenshot under
/// `target/console-screenshots/` for a person to look at.
mod browser {
    use std::process::Command;

    use fantoccini::{Client, Locator};
    use serde_json::{Value, json};

    use super::support::browser::{driver, screenshots, session};
    use super::support::{BIN, everything_js, json_output, peer_script, peers, python};
    use super::{Backend, Db};

    async fn shot(client: &Client, name: &str) {
        let png = client.screenshot().await.unwrap();
        std::fs::write(
            screenshots("console-screenshots").join(format!("{name}.png")),
            png,
        )
        .unwrap();
    }

    /// Clicks `element` and waits for the page it leads to: the old page's root goes stale
    /// once the next page replaces it (a click's return does not promise the navigation is
    /// done). Bounded, so a click that navigates nowhere fails rather than hangs.
    async fn click_and_load(client: &Client, element: fantoccini::elements::Element) {
        let old = client.find(Locator::Css("html")).await.unwrap();
        element.click().await.unwrap();
        let mut replaced = false;
        for _ in 0..1200 {
            if old.tag_name().await.is_err() {
                replaced = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(replaced, "the click led to no new page");
        client
            .wait()
            .for_element(Locator::Css("main"))
            .await
            .unwrap();
    }

    async fn login(client: &Client, base: &str, token: &str) {
        client.goto(&format!("{base}/ui/login")).await.unwrap();
        client
            .find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(token)
            .await
            .unwrap();
        click_and_load(client, client.find(Locator::Id("login")).await.unwrap()).await;
        let url = client.current_url().await.unwrap();
        if url.path() != "/ui/events" {
            shot(client, "login-failed").await;
            panic!(
                "login ended at {url}: {}",
                client.source().await.unwrap_or_default()
            );
        }
    }

    async fn text_of(client: &Client, css: &str) -> String {
        client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// An event that requires review, as `mcp-audit log` records it.
    fn flagged(operation: &str) -> Value {
        json!({"kind": "tool_execution", "action": "EXECUTE", "operation": operation,
               "actor": {"user_id": "mallory"}, "target": {"server_name": "payments"},
               "compliance": {"requires_review": true, "classification": "restricted"},
               "payload": {"input": {"amount": 9000}}})
    }

    #[test]
    fn a_browser_finds_the_proxied_call_sees_its_arguments_and_approves_a_flagged_event() {
        let Some(peers) = peers() else { return };
        let Some(driver) = driver() else { return };
        let db = Db::new(Backend::Sqlite).unwrap();
        let js = everything_js(&peers).display().to_string();
        let output = Command::new(python(&peers))
            .arg(peer_script("legacy_client.py"))
            .arg(BIN)
            .arg("proxy")
            .arg("--db")
            .arg(&db.url)
            .args(["--user", "tester", "--", "node", &js, "stdio"])
            .output()
            .unwrap();
        json_output("client", output);
        db.log(&[flagged("transfer_funds")]);
        let target = db.query_ids(&["--review"])[0].clone();
        let auditor = db.token("aude", "auditor");
        let console = db.serve();
        let base = console.base.clone();

        runtime().block_on(async {
            let client = session(&driver, 1280, 900).await;
            client.goto(&format!("{base}/ui/login")).await.unwrap();
            shot(&client, "login").await;
            login(&client, &base, &auditor).await;
            shot(&client, "events").await;

            // Search by what the proxied call carried; the filter lands in the URL.
            for (field, value) in [("tool", "echo"), ("user", "tester")] {
                client
                    .find(Locator::Css(&format!("input[name={field}]")))
                    .await
                    .unwrap()
                    .send_keys(value)
                    .await
                    .unwrap();
            }
            click_and_load(&client, client.find(Locator::Id("search")).await.unwrap()).await;
            let url = client.current_url().await.unwrap();
            assert!(
                url.query().unwrap_or_default().contains("tool=echo"),
                "{url}"
            );
            shot(&client, "events-filtered").await;
            let rows = client.find_all(Locator::Css("a.event-link")).await.unwrap();
            assert!(!rows.is_empty(), "the echo call is found");
            for row in &rows {
                assert_eq!(row.text().await.unwrap(), "echo");
            }

            // The full-text search box: the words the call carried in its arguments find it,
            // and the search lands in the URL too.
            client.goto(&format!("{base}/ui/events")).await.unwrap();
            client
                .find(Locator::Id("q"))
                .await
                .unwrap()
                .send_keys("Hello through the PROXY")
                .await
                .unwrap();
            click_and_load(&client, client.find(Locator::Id("search")).await.unwrap()).await;
            let url = client.current_url().await.unwrap();
            assert!(url.query().unwrap_or_default().contains("q=Hello"), "{url}");
            shot(&client, "events-search").await;
            let rows = client.find_all(Locator::Css("a.event-link")).await.unwrap();
            assert!(!rows.is_empty(), "the search finds the echo call");
            for row in &rows {
                assert_eq!(row.text().await.unwrap(), "echo");
            }
            click_and_load(&client, rows[0].clone()).await;
            let payload = text_of(&client, "#payload").await;
            assert!(payload.contains("hello through the proxy"), "{payload}");
            shot(&client, "event").await;

            // The flagged event: approved from the queue, it leaves it.
            client.goto(&format!("{base}/ui/reviews")).await.unwrap();
            shot(&client, "reviews").await;
            let item = client
                .find(Locator::Id(&format!("q-{target}")))
                .await
                .unwrap();
            item.find(Locator::Css("input[name=comment]"))
                .await
                .unwrap()
                .send_keys("expected transfer")
                .await
                .unwrap();
            click_and_load(
                &client,
                item.find(Locator::Css("button.approve")).await.unwrap(),
            )
            .await;
            assert!(text_of(&client, "#done").await.contains("approved"));
            assert!(
                client
                    .find(Locator::Id(&format!("q-{target}")))
                    .await
                    .is_err(),
                "the approved event left the queue"
            );
            shot(&client, "reviews-after").await;

            client.goto(&format!("{base}/ui/dashboard")).await.unwrap();
            for chart in [
                "timeline-chart",
                "calls-chart",
                "latency-chart",
                "users-chart",
            ] {
                assert!(client.find(Locator::Id(chart)).await.is_ok(), "{chart}");
            }
            shot(&client, "dashboard").await;

            client.goto(&format!("{base}/ui/integrity")).await.unwrap();
            click_and_load(&client, client.find(Locator::Id("verify")).await.unwrap()).await;
            shot(&client, "integrity").await;

            // A phone: nothing wider than the screen.
            client.set_window_size(390, 844).await.unwrap();
            client.goto(&format!("{base}/ui/events")).await.unwrap();
            let fits = client
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                    vec![],
                )
                .await
                .unwrap();
            shot(&client, "events-phone").await;
            assert_eq!(fits, Value::Bool(true), "the events page fits a phone");
            client.goto(&format!("{base}/ui/dashboard")).await.unwrap();
            let fits = client
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                    vec![],
                )
                .await
                .unwrap();
            shot(&client, "dashboard-phone").await;
            assert_eq!(fits, Value::Bool(true), "the dashboard fits a phone");
            client.close().await.unwrap();
        });
        drop(console);
        let review = db
            .all()
            .into_iter()
            .find(|e| e["target"]["resource_id"] == target.as_str())
            .expect("the review is an event of the log");
        assert_eq!(review["actor"]["user_id"], "aude");
        assert_eq!(review["compliance"]["tags"], json!(["review:approved"]));
    }

    #[test]
    fn a_browser_hides_arguments_from_a_viewer_and_refuses_a_forged_cookie_or_csrf_token() {
        let Some(driver) = driver() else { return };
        let db = Db::new(Backend::Sqlite).unwrap();
        db.log(&[flagged("refund")]);
        let target = db.query_ids(&["--review"])[0].clone();
        let viewer = db.token("vera", "viewer");
        let reviewer = db.token("rita", "reviewer");
        let admin = db.token("adam", "admin");
        let console = db.serve();
        let base = console.base.clone();

        runtime().block_on(async {
            let client = session(&driver, 1280, 900).await;
            login(&client, &base, &viewer).await;
            client
                .goto(&format!("{base}/ui/events/{target}"))
                .await
                .unwrap();
            assert!(text_of(&client, "#payload-hidden").await.contains("hidden"));
            assert!(!client.source().await.unwrap().contains("9000"));
            shot(&client, "event-viewer").await;

            // A forged session cookie is no session: back to the login page.
            client.delete_all_cookies().await.unwrap();
            let forged = fantoccini::cookies::Cookie::parse(format!(
                "mcp_audit_session={}; Domain=127.0.0.1; Path=/; SameSite=Strict",
                "f".repeat(64)
            ))
            .unwrap();
            client.add_cookie(forged).await.unwrap();
            client.goto(&format!("{base}/ui/events")).await.unwrap();
            assert_eq!(client.current_url().await.unwrap().path(), "/ui/login");

            // A form whose CSRF token was taken out is refused, and the event stays queued.
            login(&client, &base, &reviewer).await;
            client.goto(&format!("{base}/ui/reviews")).await.unwrap();
            client
                .execute(
                    "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())",
                    vec![],
                )
                .await
                .unwrap();
            click_and_load(
                &client,
                client
                    .find(Locator::Css(&format!("#q-{target} button.approve")))
                    .await
                    .unwrap(),
            )
            .await;
            assert!(text_of(&client, "#error").await.contains("CSRF"));
            shot(&client, "csrf-refused").await;
            client.goto(&format!("{base}/ui/reviews")).await.unwrap();
            assert!(
                client
                    .find(Locator::Id(&format!("q-{target}")))
                    .await
                    .is_ok(),
                "nothing changed"
            );

            // An admin's tokens page lists every token.
            client.delete_all_cookies().await.unwrap();
            login(&client, &base, &admin).await;
            client.goto(&format!("{base}/ui/tokens")).await.unwrap();
            let table = text_of(&client, "#tokens").await;
            assert!(table.contains("rita") && table.contains("vera"), "{table}");
            shot(&client, "tokens").await;
            client.close().await.unwrap();
        });
        drop(console);
        assert!(
            db.all()
                .iter()
                .all(|e| e["operation"] != "review audit_event"),
            "no review was recorded"
        );
    }
}

fn an_admin_creates_a_token_in_the_ui_sees_it_once_and_revokes_it(db: Db) {
    let s = seeded(db);
    let console = s.db.serve();
    let mut reviewer = Ui::new(&console);
    reviewer.login(&s.reviewer);
    assert_eq!(reviewer.get("/ui/tokens").status, 403, "admins only");
    let mut ui = Ui::new(&console);
    ui.login(&s.admin);
    let page = ui.page("/ui/tokens");
    assert!(
        page.contains("vera") && page.contains("adam"),
        "every token is listed"
    );
    let csrf = csrf_of(&page);

    let before = s.db.all().len();
    assert_eq!(
        ui.post("/ui/tokens", &[("name", "nina"), ("role", "viewer")])
            .status,
        403,
        "no CSRF token"
    );
    let bad = ui.post(
        "/ui/tokens",
        &[("csrf", &csrf), ("name", "nina"), ("role", "root")],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown role"), "{}", bad.body);
    assert_eq!(s.db.all().len(), before, "nothing recorded");

    let created = ui.post(
        "/ui/tokens",
        &[("csrf", &csrf), ("name", "nina"), ("role", "viewer")],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let at = created.body.find("mcpa_").expect("the secret is shown");
    let secret: String = created.body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(console.get("/api/v1/events", Some(&secret)).status, 200);
    assert!(
        !ui.page("/ui/tokens").contains(&secret),
        "the secret is shown once"
    );
    let tokens = console.ok("/api/v1/tokens", &s.admin);
    let nina = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "nina")
        .unwrap();
    assert_eq!(nina["created_by"], "adam", "the admin is on record");
    let id = nina["id"].as_str().unwrap();

    let revoked = ui.post(&format!("/ui/tokens/{id}/revoke"), &[("csrf", &csrf)]);
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(console.get("/api/v1/events", Some(&secret)).status, 401);
    let again = ui.post(&format!("/ui/tokens/{id}/revoke"), &[("csrf", &csrf)]);
    assert_eq!(again.status, 409);
}

fn the_dashboard_draws_calls_and_errors_over_time_per_tool_latency_and_top_users_as_stats_gives_them(
    db: Db,
) {
    let s = seeded(db);
    let console = s.db.serve();
    let mut ui = Ui::new(&console);
    ui.login(&s.viewer);
    let page = ui.page("/ui/dashboard?since=2026-01-01");
    assert!(page.contains(r#"id="calls-chart""#), "{page}");
    assert!(page.contains(r#"id="latency-chart""#));
    assert!(page.contains(r#"id="timeline-chart""#), "{page}");
    assert!(page.contains(r#"id="users-chart""#), "{page}");
    let stats = console.ok("/api/v1/stats?since=2026-01-01", &s.viewer);
    let mut all_calls = 0;
    for tool in stats["tools"].as_array().unwrap() {
        let name = tool["tool"].as_str().unwrap();
        let calls = tool["calls"].as_u64().unwrap();
        all_calls += calls;
        assert!(
            page.contains(&format!("<title>{name}: {calls} calls</title>")),
            "{name}: {calls} calls drawn: {page}"
        );
    }
    // The columns over time add up to the calls per tool, errors included.
    let (calls, errors) = timeline(&page);
    assert_eq!(calls, all_calls, "{page}");
    let all_errors: u64 = stats["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["errors"].as_u64().unwrap())
        .sum();
    assert_eq!(errors, all_errors, "{page}");
    // For one tool, its own calls only.
    let busiest = &stats["tools"][0];
    let name = busiest["tool"].as_str().unwrap();
    let one = ui.page(&format!("/ui/dashboard?since=2026-01-01&tool={name}"));
    assert_eq!(
        timeline(&one).0,
        busiest["calls"].as_u64().unwrap(),
        "{one}"
    );
    // Every user's operations, as many as the events list finds for them.
    let summary = console.ok("/api/v1/summary?since=2026-01-01", &s.viewer);
    let drawn: u64 = page
        .split("<title>")
        .filter_map(|t| t.split_once(" operations</title>"))
        .map(|(head, _)| head.rsplit(": ").next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(drawn > 0 && drawn <= summary["total_operations"].as_u64().unwrap());
    assert!(
        ui.page("/ui/dashboard")
            .contains("No tool calls in this window"),
        "the seed is older than the default week"
    );
    let bad = ui.get("/ui/dashboard?since=someday");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("RFC 3339"));
    assert_eq!(ui.get("/ui/dashboard?nonsense=x").status, 400);
}

/// The calls and errors the dashboard's columns over time say, added up.
fn timeline(page: &str) -> (u64, u64) {
    page.split("<title>")
        .filter_map(|t| t.split_once(" errors</title>"))
        .filter_map(|(head, _)| head.rsplit_once(": "))
        .filter_map(|(_, counts)| counts.split_once(" calls, "))
        .map(|(calls, errors)| {
            (
                calls.parse::<u64>().unwrap(),
                errors.parse::<u64>().unwrap(),
            )
        })
        .fold((0, 0), |(c, e), (calls, errors)| (c + calls, e + errors))
}

fn metrics_count_what_was_served_on_record_and_the_last_verify_and_pass_promtool(db: Db) {
    if !promtool() {
        return;
    }
    let s = seeded(db);
    let console = s.db.serve();
    let first = console.get("/metrics", None);
    assert_eq!(first.status, 200, "no token needed: counts only");
    assert_eq!(
        first.headers["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    promtool_check(&first.body);
    let before = metric_samples(&first.body);
    assert_eq!(before["mcp_audit_console_last_verify_ok"], -1.0);

    let id = seed_id(&s.db, 3);
    console.ok(&format!("/api/v1/events/{id}"), &s.auditor);
    let target = s.db.query_ids(&["--review"])[0].clone();
    let review = console.post(
        &format!("/api/v1/events/{target}/review"),
        Some(&s.reviewer),
        r#"{"verdict": "approved"}"#,
    );
    assert_eq!(review.status, 201);
    assert_eq!(
        console
            .post("/api/v1/integrity/verify", Some(&s.auditor), "")
            .status,
        202
    );
    assert_eq!(last_verify(&console, &s.viewer)["ok"], true);

    let text = console.get("/metrics", None).body;
    promtool_check(&text);
    let after = metric_samples(&text);
    assert_eq!(
        after[r#"mcp_audit_console_served_total{what="payload_read"}"#],
        1.0
    );
    assert_eq!(
        after[r#"mcp_audit_console_served_total{what="review"}"#],
        1.0
    );
    let recorded = after[r#"mcp_audit_recorder_events_total{result="recorded"}"#];
    assert!(
        recorded >= 2.0,
        "the read and the review were recorded: {after:?}"
    );
    // Every event written is counted once by its kind and outcome, and its commit timed.
    let by_kind: f64 = written_samples(&after).values().sum();
    assert_eq!(by_kind, recorded, "{after:?}");
    assert!(after["mcp_audit_recorder_commit_duration_seconds_count"] >= 1.0);
    assert_eq!(
        after[r#"mcp_audit_recorder_commit_duration_seconds_bucket{le="+Inf"}"#],
        after["mcp_audit_recorder_commit_duration_seconds_count"]
    );
    assert_eq!(after["mcp_audit_recorder_queue_depth"], 0.0);
    assert_eq!(after["mcp_audit_console_last_verify_ok"], 1.0);
    assert!(after["mcp_audit_console_last_verify_finished_seconds"] > 0.0);
}

/// The fixture of a test run on both backends.
fn fixture(backend: Backend) -> Option<Db> {
    Db::new(backend)
}
