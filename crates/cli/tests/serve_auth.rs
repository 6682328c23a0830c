//! `mcp-audit serve` over HTTPS, and with OIDC/JWT bearers mapped to roles: a real `serve`
//! process, a real HTTP client, and tokens signed here with the keys under the proxy's
//! `tests/keys` (HS256 secret, RS256 PEM, ES256 JWKS).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use support::{BIN, spawn_serve};

const HS_SECRET: &str = "a console test secret, long enough for HS256";

/// The test TLS material (a CA, and a certificate for 127.0.0.1 signed by it).
fn tls(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// The JWT keys of the proxy's identity tests.
fn jwt_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proxy/tests/keys")
        .join(name)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT with `claims`, signed by `key` with `algorithm` (and `kid` in its header).
fn jwt(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn hs256(claims: Value) -> String {
    jwt(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        claims,
    )
}

/// A SQLite database of one test, with a few events, some of them for review.
struct Db {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let db = Db { dir, path };
        let events: String = (0..6)
            .map(|i| {
                let mut event = json!({
                    "kind": "tool_execution",
                    "action": "EXECUTE",
                    "operation": "search",
                    "timestamp": format!("2026-03-01T00:00:0{i}Z"),
                    "actor": {"user_id": "alice"},
                    "target": {"server_name": "github"},
                    "payload": {"input": {"q": format!("secret-{i}")}},
                });
                if i % 2 == 0 {
                    event["compliance"] = json!({"classification": "restricted"});
                }
                format!("{event}\n")
            })
            .collect();
        let (code, _, err) = db.run(&["log", "-"], events.as_bytes());
        assert_eq!(code, 0, "{err}");
        db
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--db")
            .arg(&self.path)
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

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, b"");
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    }

    fn token(&self, name: &str, role: &str) -> String {
        self.ok(&["token", "create", "--name", name, "--role", role])
            .trim()
            .to_string()
    }

    /// Every event of the log.
    fn all(&self) -> Vec<Value> {
        self.ok(&["query", "--jsonl", "--limit", "10000", "--include-pending"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The ids of the events that require review.
    fn for_review(&self) -> Vec<String> {
        self.ok(&["query", "--jsonl", "--review"])
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// `serve` with `extra` flags, run to its end (for flags it must refuse).
    fn serve_refused(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(extra);
        let (code, _, err) = self.run(&args, b"");
        (code, err)
    }
}

/// A running `mcp-audit serve`, stopped with SIGTERM at the end.
struct Console {
    child: Child,
    base: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn error(&self) -> (String, String) {
        let body = self.json();
        (
            body["error"]["code"].as_str().unwrap().to_string(),
            body["error"]["message"].as_str().unwrap().to_string(),
        )
    }
}

impl Console {
    /// Starts `serve` with `extra` flags; `https` trusts the test CA.
    fn start(db: &Db, extra: &[&str], https: bool) -> Console {
        let (child, base) = spawn_serve(db.command(), extra);
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if https {
            let ca = std::fs::read(tls("ca.pem")).unwrap();
            client = client
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        }
        Console {
            child,
            base,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: client.build().unwrap(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            Answer {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.text().await.unwrap(),
            }
        })
    }

    fn get(&self, path: &str, token: &str) -> Answer {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
    }

    fn post(&self, path: &str, token: &str, body: &str) -> Answer {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    }

    /// Posts the login form with `token`.
    fn login(&self, token: &str) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        self.send(
            self.client
                .post(format!("{}/ui/login", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn tls_flags() -> Vec<String> {
    vec![
        "--tls-cert".into(),
        tls("server.pem").display().to_string(),
        "--tls-key".into(),
        tls("server.key").display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn https_serves_the_console_and_its_session_cookie_is_secure_only_under_tls() {
    let db = Db::new();
    let viewer = db.token("vera", "viewer");
    let console = Console::start(&db, &strs(&tls_flags()), true);
    assert!(
        console.base.starts_with("https://127.0.0.1:"),
        "{}",
        console.base
    );
    let summary = console.get("/api/v1/summary", &viewer);
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(summary.json().is_object(), "{}", summary.body);
    let login = console.login(&viewer);
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        cookie.contains("; Secure"),
        "under TLS the cookie is Secure: {cookie}"
    );
    // Plain HTTP to the TLS port gets no answer.
    let plain = console.base.replace("https://", "http://");
    let refused = console.runtime.block_on(
        reqwest::Client::new()
            .get(format!("{plain}/api/v1/summary"))
            .bearer_auth(&viewer)
            .send(),
    );
    assert!(refused.is_err() || refused.is_ok_and(|r| r.status().as_u16() != 200));
    drop(console);

    let console = Console::start(&db, &[], false);
    assert!(console.base.starts_with("http://"), "{}", console.base);
    let login = console.login(&viewer);
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "without TLS no Secure: {cookie}"
    );
}

#[test]
fn unusable_tls_or_jwt_files_and_bad_flags_are_clear_errors_at_start_up() {
    let db = Db::new();
    let missing = db.dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let server_pem = tls("server.pem");
    let server_key = tls("server.key");
    let other_key = jwt_key("rsa_private.pem");
    let text = db.dir.path().join("text.pem");
    std::fs::write(&text, "not a key\n").unwrap();
    let not_a_key = text.to_str().unwrap();
    let jwks_path = jwt_key("jwks.json");
    let jwks = jwks_path.to_str().unwrap();
    let (cert, key, other_key) = (
        server_pem.to_str().unwrap(),
        server_key.to_str().unwrap(),
        other_key.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-cert", missing, "--tls-key", key],
            "cannot read the TLS certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", missing],
            "cannot read the TLS key",
        ),
        (
            vec!["--tls-cert", key, "--tls-key", key],
            "holds no PEM certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", cert],
            "holds no PEM private key",
        ),
        // A key that is not the certificate's.
        (
            vec!["--tls-cert", cert, "--tls-key", other_key],
            "the private key is not the certificate's",
        ),
        (vec!["--tls-cert", cert], "--tls-key"),
        (vec!["--jwt-jwks", missing], "missing.pem"),
        (vec!["--jwt-public-key", not_a_key], "public key"),
        (vec!["--jwt-role-claim", "groups"], "--jwt-"),
        (
            vec!["--jwt-jwks", jwks, "--jwt-role-map", "admins"],
            "CLAIMVALUE=ROLE",
        ),
        (
            vec!["--jwt-jwks", jwks, "--jwt-role-map", "admins=root"],
            "unknown role `root`",
        ),
    ];
    for (flags, expected) in cases {
        let (code, err) = db.serve_refused(&flags);
        assert_ne!(code, 0, "{flags:?} was accepted");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!err.contains("listening"), "{flags:?}: {err}");
    }
    // Nothing was recorded by a refused start.
    assert_eq!(db.all().len(), 6);
}

#[test]
fn hs256_jwts_map_their_role_claim_to_roles_and_reads_are_on_record_as_their_subject() {
    let db = Db::new();
    let console_token = db.token("adam", "admin");
    let secret = db.dir.path().join("hs256.secret");
    std::fs::write(&secret, format!("{HS_SECRET}\n")).unwrap();
    let console = Console::start(
        &db,
        &[
            "--jwt-hs256-secret-file",
            secret.to_str().unwrap(),
            "--jwt-issuer",
            "https://idp.example",
            "--jwt-audience",
            "mcp-audit",
            "--jwt-role-claim",
            "groups",
            "--jwt-role-map",
            "sec-team=auditor",
            "--jwt-role-map",
            "staff=viewer",
        ],
        false,
    );
    let exp = now() + 600;
    let claims = |sub: &str, groups: Value| json!({"sub": sub, "iss": "https://idp.example", "aud": "mcp-audit", "exp": exp, "groups": groups});
    let viewer = hs256(claims("u-viewer", json!(["staff"])));
    let auditor = hs256(claims("u-auditor", json!(["staff", "sec-team"])));
    let id = db
        .all()
        .into_iter()
        .find(|e| e["payload"]["input"]["q"] == "secret-1")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .unwrap();

    // A viewer: metadata, no payload, no export.
    let list = console.get("/api/v1/events", &viewer);
    assert_eq!(list.status, 200, "{}", list.body);
    let detail = console.get(&format!("/api/v1/events/{id}"), &viewer);
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(!detail.body.contains("secret-"), "{}", detail.body);
    let export = console.get("/api/v1/export", &viewer);
    assert_eq!(export.status, 403, "{}", export.body);
    let (code, message) = export.error();
    assert_eq!(code, "forbidden");
    assert!(
        message.contains("u-viewer") && message.contains("viewer"),
        "{message}"
    );
    assert_eq!(
        db.all().len(),
        6 + 1,
        "the viewer's reads put nothing on record"
    );

    // An auditor (through the group map) reads a payload; the read is on record as its subject.
    let detail = console.get(&format!("/api/v1/events/{id}"), &auditor);
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(detail.body.contains("secret-"), "{}", detail.body);
    let export = console.get("/api/v1/export", &auditor);
    assert_eq!(export.status, 200, "{}", export.body);
    let all = db.all();
    let records: Vec<&Value> = all
        .iter()
        .filter(|e| e["target"]["server_name"] == "mcp-audit serve")
        .collect();
    assert_eq!(records.len(), 2, "one read and one export: {records:#?}");
    for record in records {
        assert_eq!(record["actor"]["user_id"], "u-auditor", "{record}");
        assert_eq!(record["actor"]["auth_method"], "jwt", "{record}");
        assert_eq!(
            record["payload"]["details"]["issuer"], "https://idp.example",
            "{record}"
        );
    }
    // The console token still works beside the JWTs.
    assert_eq!(console.get("/api/v1/tokens", &console_token).status, 200);

    // Refused: 401 for what does not verify or names nobody, 403 for no usable role.
    let before = db.all().len();
    let forged = jwt(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another secret altogether"),
        claims("mallory", json!("admin")),
    );
    let mut expired = claims("u-auditor", json!("auditor"));
    expired["exp"] = json!(now() - 3600);
    let mut wrong_audience = claims("u-auditor", json!("auditor"));
    wrong_audience["aud"] = json!("another-service");
    let mut no_issuer = claims("u-auditor", json!("auditor"));
    no_issuer.as_object_mut().unwrap().remove("iss");
    let mut no_subject = claims("x", json!("auditor"));
    no_subject.as_object_mut().unwrap().remove("sub");
    let mut no_role = claims("u-nobody", json!("x"));
    no_role.as_object_mut().unwrap().remove("groups");
    let cases: Vec<(String, u16, &str)> = vec![
        (forged, 401, "InvalidSignature"),
        (hs256(expired), 401, "ExpiredSignature"),
        (hs256(wrong_audience), 401, "InvalidAudience"),
        (hs256(no_issuer), 401, "iss"),
        (hs256(no_subject), 401, "sub"),
        ("eyJ.not.a-jwt".into(), 401, "invalid bearer token"),
        (hs256(no_role), 403, "no `groups` claim"),
        (
            hs256(claims("u-x", json!(["root", "everyone"]))),
            403,
            "root, everyone",
        ),
    ];
    for (token, status, why) in &cases {
        let answer = console.get(&format!("/api/v1/events/{id}"), token);
        assert_eq!(answer.status, *status, "{why}: {}", answer.body);
        let (code, message) = answer.error();
        assert_eq!(
            code,
            if *status == 401 {
                "unauthorized"
            } else {
                "forbidden"
            }
        );
        assert!(message.contains(why), "{why}: {message}");
        assert!(!answer.body.contains("secret-"));
    }
    assert_eq!(
        db.all().len(),
        before,
        "nothing refused was done or recorded"
    );

    // The web UI takes a JWT at its login, and says clearly why it refuses one.
    let login = console.login(&auditor);
    assert_eq!(login.status, 303, "{}", login.body);
    for (token, _, why) in &cases {
        let refused = console.login(token);
        assert_eq!(refused.status, 401, "{why}: {}", refused.body);
        assert!(
            refused.body.contains("The token was refused"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
        assert!(refused.headers.get("set-cookie").is_none());
    }
}

/// `writer` in a JWT's role claim (directly or mapped) posts events, tagged with its subject,
/// and reads nothing; a subject whose groups name a reading role and `writer` does both.
#[test]
fn a_jwt_writer_posts_events_as_its_subject_and_reads_nothing() {
    let db = Db::new();
    let secret = db.dir.path().join("hs256.secret");
    std::fs::write(&secret, format!("{HS_SECRET}\n")).unwrap();
    let console = Console::start(
        &db,
        &[
            "--jwt-hs256-secret-file",
            secret.to_str().unwrap(),
            "--jwt-role-claim",
            "groups",
            "--jwt-role-map",
            "ingesters=writer",
        ],
        false,
    );
    let exp = now() + 600;
    let claims = |sub: &str, groups: Value| json!({"sub": sub, "exp": exp, "groups": groups});
    let writer = hs256(claims("svc-billing", json!(["ingesters"])));
    let both = hs256(claims("svc-both", json!(["viewer", "writer"])));
    let event = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"jwt-posted"}"#;
    let posted = console.post("/api/v1/events?wait=durable", &writer, event);
    assert_eq!(posted.status, 201, "{}", posted.body);
    let list = console.get("/api/v1/events", &writer);
    assert_eq!(list.status, 403, "{}", list.body);
    assert!(list.error().1.contains("svc-billing"));
    let posted = console.post("/api/v1/events?wait=durable", &both, event);
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(console.get("/api/v1/events", &both).status, 200);
    let tags: Vec<Value> = db
        .all()
        .into_iter()
        .filter(|e| e["operation"] == "jwt-posted")
        .map(|e| e["compliance"]["tags"].clone())
        .collect();
    assert_eq!(tags.len(), 2);
    assert!(
        tags.contains(&json!(["submitted-by:jwt:svc-billing"])),
        "{tags:?}"
    );
    assert!(
        tags.contains(&json!(["submitted-by:jwt:svc-both"])),
        "{tags:?}"
    );
}

#[test]
fn rs256_and_jwks_es256_jwts_review_as_their_subject_and_verify_passes() {
    let db = Db::new();
    let rsa =
        EncodingKey::from_rsa_pem(&std::fs::read(jwt_key("rsa_private.pem")).unwrap()).unwrap();
    let ec = EncodingKey::from_ec_pem(&std::fs::read(jwt_key("ec_private.pem")).unwrap()).unwrap();
    let exp = now() + 600;
    let claims = |sub: &str, role: &str| json!({"sub": sub, "exp": exp, "mcp_audit_role": role});

    // RS256 with a PEM public key, on the default role claim.
    let console = Console::start(
        &db,
        &[
            "--jwt-public-key",
            jwt_key("rsa_public.pem").to_str().unwrap(),
        ],
        false,
    );
    let queue = db.for_review();
    assert_eq!(queue.len(), 3, "{queue:?}");
    let viewer = jwt(Algorithm::RS256, None, &rsa, claims("rs-viewer", "viewer"));
    let reviewer = jwt(
        Algorithm::RS256,
        None,
        &rsa,
        claims("rs-reviewer", "reviewer"),
    );
    let refused = console.get("/api/v1/reviews/queue", &viewer);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let listed = console.get("/api/v1/reviews/queue", &reviewer);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["events"].as_array().unwrap().len(), 3);
    let done = console.post(
        &format!("/api/v1/events/{}/review", queue[0]),
        &reviewer,
        r#"{"verdict": "approved", "comment": "fine"}"#,
    );
    assert_eq!(done.status, 201, "{}", done.body);
    let rs_review = done.json()["review_event"].as_str().unwrap().to_string();
    // A token signed with the EC key is not one this console takes.
    let stranger = jwt(Algorithm::ES256, Some("ec-1"), &ec, claims("ec-x", "admin"));
    assert_eq!(console.get("/api/v1/events", &stranger).status, 401);
    drop(console);

    // ES256 through a JWKS file (the key chosen by `kid`).
    let console = Console::start(
        &db,
        &["--jwt-jwks", jwt_key("jwks.json").to_str().unwrap()],
        false,
    );
    let reviewer = jwt(
        Algorithm::ES256,
        Some("ec-1"),
        &ec,
        claims("es-reviewer", "reviewer"),
    );
    let done = console.post(
        &format!("/api/v1/events/{}/review", queue[1]),
        &reviewer,
        r#"{"verdict": "flagged", "comment": "look again"}"#,
    );
    assert_eq!(done.status, 201, "{}", done.body);
    let es_review = done.json()["review_event"].as_str().unwrap().to_string();
    let unknown_kid = jwt(
        Algorithm::ES256,
        Some("ec-2"),
        &ec,
        claims("es-reviewer", "reviewer"),
    );
    assert_eq!(console.get("/api/v1/events", &unknown_kid).status, 401);
    let rs_token = jwt(
        Algorithm::RS256,
        None,
        &rsa,
        claims("rs-reviewer", "reviewer"),
    );
    assert_eq!(console.get("/api/v1/events", &rs_token).status, 401);
    let left = console.get("/api/v1/reviews/queue", &reviewer).json();
    assert_eq!(left["events"].as_array().unwrap().len(), 1, "{left}");
    drop(console);

    let all = db.all();
    for (id, subject, verdict) in [
        (&rs_review, "rs-reviewer", "approved"),
        (&es_review, "es-reviewer", "flagged"),
    ] {
        let review = all.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(review["actor"]["user_id"], subject, "{review}");
        assert_eq!(review["actor"]["auth_method"], "jwt", "{review}");
        assert_eq!(review["payload"]["new_values"]["verdict"], verdict);
        assert!(review["payload"]["new_values"].get("token_id").is_none());
    }
    let (code, out, err) = db.run(&["verify"], b"");
    assert_eq!(code, 0, "verify after the JWT reviews: {out}{err}");
}
