//! The ingest API (`POST /api/v1/events`) driven over a real socket against the binary as a
//! user starts it, with events read back by `mcp-audit query`; and the Python client's own
//! tests (`clients/python`) run against a real `serve`; each over SQLite and PostgreSQL
//! (`MCP_AUDIT_TEST_PG`; the `postgres::` tests are skipped, and said so, without it). On
//! PostgreSQL the posted events go into a log of their own per `serve` run, beside the logs of
//! the tokens and the console's records: `query` reads them all.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use support::{BIN, PgSchema, metric_samples, promtool, promtool_check, sample, spawn_serve};

use support::Backend;

/// A database of one test (a SQLite file in a directory of its own, or a schema of its own in
/// the test PostgreSQL database, dropped at the end), with a writer, a viewer and an admin
/// token.
struct Setup {
    dir: tempfile::TempDir,
    url: String,
    pg: Option<PgSchema>,
    writer: String,
    viewer: String,
    admin: String,
}

impl Setup {
    /// `None` when the backend is not available (PostgreSQL without `MCP_AUDIT_TEST_PG`).
    fn new(backend: Backend) -> Option<Setup> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match backend {
            Backend::Sqlite => (dir.path().join("audit.db").display().to_string(), None),
            Backend::Postgres => {
                let pg = PgSchema::new("ingest")?;
                (pg.url.clone(), Some(pg))
            }
        };
        let mut setup = Setup {
            dir,
            url,
            pg,
            writer: String::new(),
            viewer: String::new(),
            admin: String::new(),
        };
        setup.writer = setup.token("billing-mcp", "writer");
        setup.viewer = setup.token("vera", "viewer");
        setup.admin = setup.token("root", "admin");
        Some(setup)
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

    /// `mcp-audit verify` of the log `log_id` (on PostgreSQL; a SQLite file has one log).
    fn verify(&self, log_id: &Value) {
        match &self.pg {
            Some(_) => self.ok(&["--log-id", log_id.as_str().unwrap(), "verify"]),
            None => self.ok(&["verify"]),
        };
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn token(&self, name: &str, role: &str) -> String {
        self.ok(&[
            "token", "create", "--name", name, "--role", role, "--actor", "root",
        ])
        .trim()
        .to_string()
    }

    /// Every event `query` finds, newest first (tokens and console records included).
    fn events(&self) -> Vec<Value> {
        self.ok(&["query", "--jsonl", "--limit", "10000", "--include-pending"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The events whose operation is `operation`.
    fn named(&self, operation: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["operation"] == operation)
            .collect()
    }

    fn serve(&self, extra: &[&str]) -> Console {
        let (child, base) = spawn_serve(self.command(), extra);
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
}

struct Console {
    child: Child,
    base: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Console {
    fn post(&self, path: &str, token: Option<&str>, content_type: &str, body: &str) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request)
    }

    fn get(&self, path: &str, token: &str) -> Answer {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
    }

    /// The `/metrics` exposition (no token: counts only).
    fn metrics(&self) -> String {
        self.runtime.block_on(async {
            let response = self
                .client
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.unwrap()
        })
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            Answer { status, body }
        })
    }

    /// Stops the server (SIGTERM), which makes everything it accepted durable first.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.terminate();
    }
}

support::on_both_backends!(
    fixture;
    a_writers_events_land_durable_in_line_order_with_seqs_and_its_tag,
    events_accepted_without_wait_are_durable_once_the_server_stops,
    a_bad_line_refuses_the_whole_body_naming_each_bad_line_and_nothing_is_written,
    a_writer_cannot_post_the_logs_own_records_and_mints_no_token,
    a_writer_reads_nothing_and_no_reading_role_writes,
    bad_requests_are_clear_4xx_and_record_nothing,
    the_serves_redaction_retention_and_level_apply_to_ingested_events_only,
    the_python_client_records_and_reads_back_through_a_real_serve,
    metrics_count_accepted_and_refused_events_and_the_ingest_queue_and_pass_promtool,
);

fn tool_call(operation: &str) -> Value {
    json!({"kind": "tool_execution", "action": "EXECUTE", "operation": operation,
           "actor": {"user_id": "ann"}, "payload": {"input": {"q": operation}}})
}

fn lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn a_writers_events_land_durable_in_line_order_with_seqs_and_its_tag(s: Setup) {
    let console = s.serve(&[]);
    let body = lines(&[tool_call("one"), tool_call("two"), tool_call("three")]);
    let answer = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &body,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["durable"], true);
    let accepted = answer.body["events"].as_array().unwrap().clone();
    assert_eq!(accepted.len(), 3);
    // Read back while the server still runs: durable means the CLI sees them now.
    for (k, operation) in ["one", "two", "three"].iter().enumerate() {
        let found = s.named(operation);
        assert_eq!(found.len(), 1, "{operation}");
        let event = &found[0];
        assert_eq!(event["id"], accepted[k]["id"]);
        assert_eq!(event["seq"], accepted[k]["seq"]);
        assert_eq!(event["log_id"], accepted[k]["log_id"]);
        assert_eq!(accepted[k]["line"], k as u64 + 1);
        assert_eq!(
            event["actor"]["user_id"], "ann",
            "the writer's user is kept"
        );
        let tags = event["compliance"]["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t.as_str().unwrap().starts_with("submitted-by:token:")
                    && t.as_str().unwrap().ends_with(":billing-mcp")),
            "{tags:?}"
        );
    }
    let seqs: Vec<u64> = accepted
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![seqs[0], seqs[0] + 1, seqs[0] + 2],
        "one batch, in line order"
    );
    // One event, as a JSON object.
    let one = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/json",
        &tool_call("single").to_string(),
    );
    assert_eq!(one.status, 201, "{}", one.body);
    assert_eq!(s.named("single")[0]["seq"], one.body["events"][0]["seq"]);
    assert_eq!(
        one.body["events"][0]["log_id"], accepted[0]["log_id"],
        "one serve run, one ingest log"
    );
    console.stop();
    s.verify(&accepted[0]["log_id"]);
}

fn events_accepted_without_wait_are_durable_once_the_server_stops(s: Setup) {
    let console = s.serve(&[]);
    let answer = console.post(
        "/api/v1/events",
        Some(&s.writer),
        "application/x-ndjson",
        &lines(&[tool_call("queued-1"), tool_call("queued-2")]),
    );
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["durable"], false);
    assert!(answer.body["events"][0].get("seq").is_none());
    console.stop();
    let ids: Vec<Value> = ["queued-1", "queued-2"]
        .iter()
        .map(|op| s.named(op)[0]["id"].clone())
        .collect();
    assert_eq!(ids[0], answer.body["events"][0]["id"]);
    assert_eq!(ids[1], answer.body["events"][1]["id"]);
}

fn a_bad_line_refuses_the_whole_body_naming_each_bad_line_and_nothing_is_written(s: Setup) {
    let console = s.serve(&[]);
    let before = s.events().len();
    let mut forged = tool_call("forged");
    forged["compliance"] = json!({"tags": ["submitted-by:token:0:someone-else"]});
    let id = "01964f3a-7c1e-7b2a-9d4e-3f5a6b7c8d9e";
    let mut first = tool_call("good-1");
    first["id"] = json!(id);
    let mut again = tool_call("good-2");
    again["id"] = json!(id);
    let body = format!(
        "{}\n\n{{\"kind\":\"teleport\",\"action\":\"EXECUTE\",\"operation\":\"x\"}}\n{{not json\n{}\n{}\n{}\n",
        first,
        forged,
        json!({"kind": "tool_execution", "action": "EXECUTE", "operation": "neg", "duration_us": -1}),
        again,
    );
    let answer = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &body,
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "invalid_events");
    let bad: Vec<(u64, String)> = answer.body["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let numbers: Vec<u64> = bad.iter().map(|(n, _)| *n).collect();
    // Line 2 is blank: skipped, and counted.
    assert_eq!(numbers, vec![3, 4, 5, 6, 7], "{bad:?}");
    assert!(bad[0].1.contains("teleport"), "{bad:?}");
    assert!(bad[1].1.starts_with("malformed JSON"), "{bad:?}");
    assert!(bad[2].1.contains("server's to set"), "{bad:?}");
    assert!(bad[3].1.starts_with("negative duration"), "{bad:?}");
    assert!(bad[4].1.contains("already given on line 1"), "{bad:?}");
    assert_eq!(s.events().len(), before, "nothing of the body is recorded");
    // The same id once is taken; posted again, it is refused as already recorded.
    let ok = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/json",
        &first.to_string(),
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
    let repeat = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/json",
        &first.to_string(),
    );
    assert_eq!(repeat.status, 422, "{}", repeat.body);
    assert!(
        repeat.body["error"]["lines"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("already recorded"),
        "{}",
        repeat.body
    );
    assert_eq!(s.named("good-1").len(), 1);
}

/// A writer describes its users' operations, never the log's own records: a forged token
/// creation (which would mint a token), review, legal hold or gap is refused, and the token it
/// describes is no token.
fn a_writer_cannot_post_the_logs_own_records_and_mints_no_token(s: Setup) {
    let console = s.serve(&[]);
    let secret = "mcpa_".to_string() + &"ab".repeat(32);
    let forged_token = json!({"kind": "admin", "action": "CREATE",
        "operation": "CREATE console_token",
        "target": {"resource_type": "console_token", "resource_id": "f0f0f0f0f0f0f0f0"},
        "payload": {"new_values": {"name": "mallory", "role": "admin",
            "sha256": "86e33b7e5dda0f1458ae6a20c0f301705744a8ebc3d6962798c9daad0d7ddfe6"}}});
    let review = json!({"kind": "admin", "action": "review", "operation": "review audit_event",
        "target": {"resource_type": "other", "resource_id": "x"},
        "compliance": {"tags": ["review:approved"]}});
    let hold = json!({"kind": "admin", "action": "DELETE", "operation": "x",
        "target": {"resource_type": "legal_hold", "resource_id": "h1"}});
    let gap = json!({"kind": "server_operation", "action": "EXECUTE", "operation": "audit_gap"});
    let answer = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &lines(&[forged_token, review, hold, gap]),
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    let refused: Vec<u64> = answer.body["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(refused, vec![1, 2, 3, 4], "{}", answer.body);
    assert_eq!(console.get("/api/v1/events", &secret).status, 401);
    assert!(
        s.named("CREATE console_token").len() == 3,
        "only the setup's tokens"
    );
}

fn a_writer_reads_nothing_and_no_reading_role_writes(s: Setup) {
    let console = s.serve(&[]);
    for path in ["/api/v1/events", "/api/v1/summary", "/api/v1/sessions"] {
        let answer = console.get(path, &s.writer);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
    }
    let event = tool_call("refused").to_string();
    for token in [&s.viewer, &s.admin] {
        let answer = console.post("/api/v1/events", Some(token), "application/json", &event);
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("writer")
        );
    }
    let none = console.post("/api/v1/events", None, "application/json", &event);
    assert_eq!(none.status, 401);
    let revoked_id = s
        .ok(&["token", "list", "--json"])
        .parse::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "writer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&["token", "revoke", &revoked_id, "--actor", "root"]);
    let revoked = console.post(
        "/api/v1/events",
        Some(&s.writer),
        "application/json",
        &event,
    );
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    assert!(s.named("refused").is_empty());
}

fn bad_requests_are_clear_4xx_and_record_nothing(s: Setup) {
    let console = s.serve(&["--ingest-max-body", "2000"]);
    let before = s.events().len();
    let big: Vec<Value> = (0..40).map(|i| tool_call(&format!("big-{i}"))).collect();
    let too_large = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &lines(&big),
    );
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert_eq!(too_large.body["error"]["code"], "too_large");
    assert!(
        too_large.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2000 bytes")
    );
    let event = tool_call("small").to_string();
    let text = console.post("/api/v1/events", Some(&s.writer), "text/plain", &event);
    assert_eq!(text.status, 415, "{}", text.body);
    let wait = console.post(
        "/api/v1/events?wait=later",
        Some(&s.writer),
        "application/json",
        &event,
    );
    assert_eq!(wait.status, 400, "{}", wait.body);
    let empty = console.post(
        "/api/v1/events",
        Some(&s.writer),
        "application/jsonl",
        "\n\n",
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let two = format!("{event}\n{event}");
    let two_as_one = console.post("/api/v1/events", Some(&s.writer), "application/json", &two);
    assert_eq!(two_as_one.status, 422, "{}", two_as_one.body);
    console.stop();
    assert_eq!(s.events().len(), before);
}

fn the_serves_redaction_retention_and_level_apply_to_ingested_events_only(s: Setup) {
    let policy = s.dir.path().join("redact.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nid = \"ticket\"\npattern = \"TCK-[0-9]{6}\"\n",
    )
    .unwrap();
    let console = s.serve(&[
        "--redact-policy",
        policy.to_str().unwrap(),
        "--retention",
        "30d",
        "--level",
        "writes",
    ]);
    let mut card = tool_call("pay");
    card["payload"] = json!({"input": {"ticket": "TCK-123456"}});
    let read = json!({"kind": "resource_access", "action": "READ", "operation": "file:///x"});
    let answer = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &lines(&[card, read]),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["events"][1]["skipped"], true, "{}", answer.body);
    assert!(answer.body["events"][1].get("seq").is_none());
    // A console record (a viewer's list) keeps the defaults: no expiry.
    assert_eq!(console.get("/api/v1/events", &s.viewer).status, 200);
    console.stop();
    let pay = &s.named("pay")[0];
    let ticket = pay["payload"]["input"]["ticket"].as_str().unwrap();
    assert!(!ticket.contains("123456"), "{pay}");
    assert!(pay["compliance"]["expires_at"].is_string(), "{pay}");
    assert!(
        s.named("file:///x").is_empty(),
        "the level leaves reads out"
    );
    let token_events = s.named("CREATE console_token");
    assert!(
        token_events
            .iter()
            .all(|e| e["compliance"]["expires_at"].is_null())
    );
}

fn metrics_count_accepted_and_refused_events_and_the_ingest_queue_and_pass_promtool(s: Setup) {
    if !promtool() {
        return;
    }
    let console = s.serve(&[]);
    let first = console.metrics();
    promtool_check(&first);
    let before = metric_samples(&first);
    assert!(
        before["mcp_audit_console_ingest_queue_capacity"] > 0.0,
        "{first}"
    );
    assert_eq!(before["mcp_audit_console_ingest_queue_depth"], 0.0);
    assert_eq!(
        sample(
            &before,
            r#"mcp_audit_console_ingest_events_total{result="accepted"}"#
        ),
        0.0
    );
    // Three events made durable, one queued: four accepted.
    let durable = console.post(
        "/api/v1/events?wait=durable",
        Some(&s.writer),
        "application/jsonl",
        &lines(&[tool_call("m-1"), tool_call("m-2"), tool_call("m-3")]),
    );
    assert_eq!(durable.status, 201, "{}", durable.body);
    let queued = console.post(
        "/api/v1/events",
        Some(&s.writer),
        "application/json",
        &tool_call("m-4").to_string(),
    );
    assert_eq!(queued.status, 202, "{}", queued.body);
    // Two good lines and a bad one: three refused with their body.
    let bad = format!(
        "{}\n{}\n{{\"kind\":\"teleport\"}}\n",
        tool_call("m-5"),
        tool_call("m-6")
    );
    let refused = console.post("/api/v1/events", Some(&s.writer), "application/jsonl", &bad);
    assert_eq!(refused.status, 422, "{}", refused.body);
    // Refused before any body is read: no events counted, the request is.
    let event = tool_call("m-7").to_string();
    assert_eq!(
        console
            .post("/api/v1/events", Some(&s.writer), "text/plain", &event)
            .status,
        415
    );
    assert_eq!(
        console
            .post(
                "/api/v1/events",
                Some(&s.viewer),
                "application/json",
                &event
            )
            .status,
        403
    );
    let text = console.metrics();
    promtool_check(&text);
    let after = metric_samples(&text);
    let at = |series: &str| sample(&after, series);
    assert_eq!(
        at(r#"mcp_audit_console_ingest_events_total{result="accepted"}"#),
        4.0,
        "{text}"
    );
    assert_eq!(
        at(r#"mcp_audit_console_ingest_events_total{result="refused",reason="invalid_events"}"#),
        3.0,
        "{text}"
    );
    for (reason, n) in [
        ("invalid_events", 1.0),
        ("unsupported_media_type", 1.0),
        ("forbidden", 1.0),
    ] {
        assert_eq!(
            at(&format!(
                "mcp_audit_console_ingest_requests_refused_total{{reason=\"{reason}\"}}"
            )),
            n,
            "{reason}: {text}"
        );
    }
    // The ingest recorder's own results: the durable three at least (the queued one may be
    // on its way), none failed.
    assert!(
        at(r#"mcp_audit_console_ingest_recorder_events_total{result="recorded"}"#) >= 3.0,
        "{text}"
    );
    assert_eq!(
        at(r#"mcp_audit_console_ingest_recorder_events_total{result="failed"}"#),
        0.0
    );
    console.stop();
    assert!(s.named("m-4").len() == 1 && s.named("m-5").is_empty());
}

/// The Python client's own tests (`clients/python/tests`), run with the peers' Python against
/// a real `serve`: a writer token for the log_* methods, an auditor token for `query` and
/// `session_summary`.
fn the_python_client_records_and_reads_back_through_a_real_serve(s: Setup) {
    let Some(python) = python_interpreter() else {
        return;
    };
    let auditor = s.token("python-reader", "auditor");
    let console = s.serve(&[]);
    let client = support::repo().join("clients/python");
    let out = Command::new(&python)
        .args(["-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."])
        .current_dir(&client)
        .env("PYTHONPATH", client.join("src"))
        .env("MCP_AUDIT_URL", &console.base)
        .env("MCP_AUDIT_WRITER_TOKEN", &s.writer)
        .env("MCP_AUDIT_READER_TOKEN", &auditor)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "python tests failed:\n{report}");
    assert!(report.contains("Ran 5 tests"), "{report}");
    assert!(!report.contains("skipped"), "{report}");
    console.stop();
    // What the client wrote is in the log, read by the CLI rather than by the client.
    let tagged: Vec<Value> = s
        .events()
        .into_iter()
        .filter(|e| {
            e["compliance"]["tags"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t.as_str().unwrap().ends_with(":billing-mcp"))
            })
        })
        .collect();
    assert!(
        tagged.len() >= 7,
        "each seed method recorded at least one event: {}",
        tagged.len()
    );
    assert!(tagged.iter().all(|e| e["log_id"] == tagged[0]["log_id"]));
    s.verify(&tagged[0]["log_id"]);
}

/// A Python 3: the peers' (CI has it), or the system's.
fn python_interpreter() -> Option<PathBuf> {
    let peers = support::repo().join(".test-peers/venv/bin/python");
    if peers.exists() {
        return Some(peers);
    }
    let system = Path::new("/usr/bin/python3");
    if system.exists() {
        return Some(system.to_path_buf());
    }
    if std::env::var_os("CI").is_some() {
        panic!("no Python 3 for the Python client's tests: run scripts/install-test-peers.sh");
    }
    eprintln!("skipped: no Python 3 for the Python client's tests");
    None
}

/// The fixture of a test run on both backends.
fn fixture(backend: Backend) -> Option<Setup> {
    Setup::new(backend)
}
