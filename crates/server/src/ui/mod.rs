//! The console's web UI: HTML pages rendered on the server from askama templates (checked at
//! compile time, escaping HTML by default: every string of the log is untrusted), one small
//! stylesheet, no JavaScript.
//!
//! Every page reads through the same functions as the API (`api::events::list`,
//! `api::events::detail`, `api::reviews::open_reviews`, ...), after the same role check
//! (`api::check_secret`), so that a payload shown in a page is a read on record exactly as one
//! answered by `/api/v1/events/{id}`.
//!
//! - `session`: login sessions (cookie) and their CSRF tokens.
//! - `dashboard`: the dashboard's figures and its charts, drawn here as SVG.
//! - this module: the routes under `/ui/`, the pages' data, the error pages.

mod dashboard;
pub(crate) mod session;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mcp_audit_store::StoredEvent;
use serde_json::Value;

use crate::App;
use crate::api::{self, check_secret, event_id};
use crate::error::ApiError;
use crate::params::{Params, SEARCH_FIELD};
use crate::records;
use crate::records::Verdict;
use crate::tokens::{self, NewToken, Role, TokenInfo};

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(async || Redirect::to("/ui/events")))
        .route("/ui", get(async || Redirect::to("/ui/events")))
        .route("/ui/", get(async || Redirect::to("/ui/events")))
        .route("/ui/style.css", get(style))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/events", get(events))
        .route("/ui/events/{id}", get(event))
        .route("/ui/events/{id}/proof", get(proof))
        .route("/ui/events/{id}/review", post(review))
        .route("/ui/reviews", get(reviews))
        .route("/ui/integrity", get(integrity))
        .route("/ui/integrity/verify", post(verify))
        .route("/ui/dashboard", get(dashboard::dashboard))
        .route("/ui/tokens", get(tokens).post(create_token))
        .route("/ui/tokens/{id}/revoke", post(revoke_token))
}

const STYLE: &str = include_str!("../../templates/style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

/// What every page's header shows: who is logged in, the links their role may follow, and the
/// CSRF token of the logout form.
pub(crate) struct Nav {
    name: String,
    role: &'static str,
    csrf: String,
    reviewer: bool,
    auditor: bool,
    admin: bool,
}

/// A logged-in request: the token behind the session, and the page header.
struct Caller {
    token: TokenInfo,
    nav: Nav,
}

/// Why a page is not shown: a page saying so (never the audit data), or the login page.
enum UiError {
    /// No session or a dead one (the token revoked): log in again.
    Login,
    Page(StatusCode, String),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        if e.status == StatusCode::UNAUTHORIZED {
            UiError::Login
        } else {
            UiError::Page(e.status, e.message)
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: u16,
    reason: &'static str,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::Login => Redirect::to("/ui/login").into_response(),
            UiError::Page(status, message) => html(
                status,
                &ErrorPage {
                    nav: None,
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or(""),
                    message,
                },
            ),
        }
    }
}

type UiResult<T = Response> = Result<T, UiError>;

/// A rendered page with the headers every page carries: no scripts at all (CSP), no
/// framing, no sniffing, no referrer to other sites (URLs hold filters). Not `no-referrer`:
/// under it browsers send `Origin: null` with a form, which the origin check refuses.
fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!("a page failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// The session's caller, if the session is live and its token valid with role `need` or
/// higher; with the session's CSRF token.
async fn caller(app: &Arc<App>, headers: &HeaderMap, need: Role) -> UiResult<(Caller, String)> {
    let (id, session) = app.ui_sessions.of(headers).ok_or(UiError::Login)?;
    let token = match check_secret(app, session.secret.clone(), need).await {
        Ok(token) => token,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            app.ui_sessions.end(&id);
            return Err(UiError::Login);
        }
        Err(e) => return Err(e.into()),
    };
    let nav = Nav {
        name: token.name.clone(),
        role: token.grant.as_str(),
        csrf: session.csrf.clone(),
        reviewer: token.grant.reads_at_least(Role::Reviewer),
        auditor: token.grant.reads_at_least(Role::Auditor),
        admin: token.grant.reads_at_least(Role::Admin),
    };
    Ok((Caller { token, nav }, id))
}

/// A form's fields, each at most once.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn forbidden(message: &str) -> UiError {
    UiError::Page(StatusCode::FORBIDDEN, message.to_string())
}

/// The caller of a form post: a live session whose CSRF token the form carries, sent from a
/// page of this server (the `Origin` header, when the browser sends one, must be this host).
/// Anything else is a 403 and changes nothing.
async fn poster(
    app: &Arc<App>,
    headers: &HeaderMap,
    form: &Form,
    need: Role,
) -> UiResult<(Caller, String)> {
    check_origin(headers)?;
    let Some((_, session)) = app.ui_sessions.of(headers) else {
        return Err(forbidden(
            "no session: this form can only be sent from a page of the console after logging in",
        ));
    };
    if !session::csrf_matches(&session, form.get("csrf")) {
        return Err(forbidden(
            "the form's CSRF token is missing or not this session's: reload the page and try again",
        ));
    }
    caller(app, headers, need).await
}

/// Refuses a post whose `Origin` names another site than the `Host` it was sent to.
fn check_origin(headers: &HeaderMap) -> UiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(o), Some(h)) if o == h => Ok(()),
        _ => Err(forbidden(&format!(
            "this form was sent from another site ({}), not from {}",
            origin.to_str().unwrap_or("?"),
            host.unwrap_or("?")
        ))),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    error: Option<String>,
}

async fn login_page() -> Response {
    html(
        StatusCode::OK,
        &LoginPage {
            nav: None,
            error: None,
        },
    )
}

/// Trades a token for a session.
async fn login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> UiResult {
    check_origin(&headers)?;
    let form = Form::parse(&body);
    let secret = form.get("token").unwrap_or_default().trim().to_string();
    let refused = |message: &str| {
        html(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                nav: None,
                error: Some(message.to_string()),
            },
        )
    };
    if secret.is_empty() {
        return Ok(refused("Paste a console token (mcp-audit token create)."));
    }
    match check_secret(&app, secret.clone(), Role::Viewer).await {
        Ok(_) => {}
        Err(e) if e.status == StatusCode::UNAUTHORIZED && app.jwt.is_none() => {
            return Ok(refused("Unknown or revoked token."));
        }
        // A JWT's refusal says why (expired, wrong audience, no role claim).
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN => {
            return Ok(refused(&format!("The token was refused: {}.", e.message)));
        }
        Err(e) => return Err(e.into()),
    }
    let id = app.ui_sessions.start(secret);
    let mut response = Redirect::to("/ui/events").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&session::set_cookie(&id, app.secure_cookies))
            .map_err(|e| UiError::Page(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(response)
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> UiResult {
    let form = Form::parse(&body);
    let (_, id) = poster(&app, &headers, &form, Role::Viewer).await?;
    app.ui_sessions.end(&id);
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&session::clear_cookie(app.secure_cookies))
            .map_err(|e| UiError::Page(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(response)
}

/// An event as a row of a list.
struct Row {
    id: String,
    time: String,
    kind: &'static str,
    operation: String,
    server: String,
    user: String,
    outcome: &'static str,
    review: bool,
    failed: bool,
}

fn row(stored: &StoredEvent) -> Row {
    let event = &stored.event;
    Row {
        id: event.id.to_string(),
        time: short_time(&event.timestamp),
        kind: event.kind.as_str(),
        operation: event.operation.clone(),
        server: event.target.server_name.clone().unwrap_or_default(),
        user: event.actor.user_id.clone().unwrap_or_default(),
        outcome: event.outcome.as_str(),
        review: event.compliance.requires_review == Some(true),
        failed: !matches!(event.outcome.as_str(), "success" | "pending"),
    }
}

/// A time to the second, UTC (the full RFC 3339 form is on the event's page).
fn short_time(t: &jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The filter fields the events page's form shows, in its order, with their labels.
const FORM_FIELDS: [(&str, &str); 8] = [
    ("tool", "tool / operation"),
    ("user", "user"),
    ("server", "server"),
    ("session", "session"),
    ("outcome", "outcome"),
    ("kind", "kind"),
    ("since", "since (7d, 2026-03-01)"),
    ("until", "until"),
];

struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    nav: Option<Nav>,
    title: &'static str,
    fields: Vec<Field>,
    /// The full-text search box's text; `None`: the caller's role may not search (it reads
    /// payloads), and the page shows no box.
    search: Option<String>,
    rows: Vec<Row>,
    error: Option<String>,
    next: Option<String>,
    filtered: bool,
}

/// The query string without its empty fields (a form sends every field, filled or not), so
/// that the API's strict reading applies to what a person typed.
fn cleaned(query: Option<&str>, drop: &[&str]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !v.trim().is_empty() && !drop.contains(&k.as_ref()) {
            out.append_pair(&k, v.trim());
        }
    }
    out.finish()
}

/// The events that the URL's filters select, newest first, a page at a time: the same filters
/// as `/api/v1/events`, so a link to a filtered list can be shared.
async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Viewer).await?;
    let query = cleaned(query.as_deref(), &[]);
    let fields: Vec<Field> = FORM_FIELDS
        .iter()
        .map(|(name, label)| Field {
            name,
            label,
            value: form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        })
        .collect();
    let search = caller.token.grant.sees_payloads().then(|| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == SEARCH_FIELD)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let mut page = EventsPage {
        nav: Some(caller.nav),
        title: "Events",
        fields,
        search,
        rows: Vec::new(),
        error: None,
        next: None,
        filtered: !cleaned(Some(&query), &["cursor", "limit"]).is_empty(),
    };
    let listed = match Params::parse(Some(&query), true, &["limit", "cursor", SEARCH_FIELD]) {
        Ok(params) => api::events::list(&app, &params, &caller.token, "/ui/events").await,
        Err(e) => Err(e),
    };
    match listed {
        Ok((events, _)) => {
            page.rows = events.events.iter().map(row).collect();
            page.next = events.next.map(|cursor| {
                let mut next = form_urlencoded::Serializer::new(String::new());
                let rest = cleaned(Some(&query), &["cursor"]);
                for (k, v) in form_urlencoded::parse(rest.as_bytes()) {
                    next.append_pair(&k, &v);
                }
                next.append_pair("cursor", &cursor.0);
                format!("/ui/events?{}", next.finish())
            });
            Ok(html(StatusCode::OK, &page))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            page.error = Some(e.message);
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(forbidden(&e.message)),
        Err(e) => Err(e.into()),
    }
}

/// A linked event, a review, as the event page lists them.
struct Linked {
    id: String,
    relation: String,
    operation: String,
    outcome: String,
    time: String,
}

struct ReviewRow {
    by: String,
    at: String,
    verdict: String,
    comment: Option<String>,
}

/// A link to the events of the event's session (its timeline).
struct SessionLink {
    name: String,
    href: String,
}

/// What the page says about the payload.
enum Payload {
    /// Pretty JSON of the arguments and results.
    Shown(String),
    /// The event has no arguments or results.
    Empty,
    /// Erased (the personal half removed; the hashes stay).
    Erased,
    /// The caller's role does not see payloads.
    Hidden,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    nav: Option<Nav>,
    id: String,
    facts: Vec<(&'static str, String)>,
    session: Option<SessionLink>,
    payload: Payload,
    linked: Vec<Linked>,
    reviews: Vec<ReviewRow>,
    leaf_hash: String,
    checkpoint: Option<u64>,
    review_form: bool,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One event in full: its payload only for roles that see payloads, the read on record.
async fn event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Viewer).await?;
    let id = event_id(&id)?;
    let grant = caller.token.grant;
    let detail = api::events::detail(&app, caller.token, id, "/ui/events/{id}").await?;
    let event = &detail["event"];
    let facts: Vec<(&'static str, String)> = [
        ("time", &event["timestamp"]),
        ("kind", &event["kind"]),
        ("action", &event["action"]),
        ("operation", &event["operation"]),
        ("outcome", &event["outcome"]),
        ("duration (µs)", &event["duration_us"]),
        ("error code", &event["error_code"]),
        ("user", &event["actor"]["user_id"]),
        ("client", &event["actor"]["client_name"]),
        ("server", &event["target"]["server_name"]),
        ("correlation id", &event["correlation_id"]),
        ("classification", &event["compliance"]["classification"]),
        ("requires review", &event["compliance"]["requires_review"]),
        ("data subject", &event["compliance"]["data_subject_id"]),
        ("log", &event["log_id"]),
        ("sequence number", &event["seq"]),
    ]
    .into_iter()
    .map(|(k, v)| (k, text(v)))
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let payload = if event["redacted"] == Value::Bool(true) {
        Payload::Erased
    } else if event["payload_withheld"] == Value::Bool(true) {
        Payload::Hidden
    } else {
        match event.get("payload") {
            Some(Value::Object(o)) if !o.is_empty() => {
                Payload::Shown(serde_json::to_string_pretty(&event["payload"]).unwrap_or_default())
            }
            _ => Payload::Empty,
        }
    };
    let list = |key: &str| detail[key].as_array().cloned().unwrap_or_default();
    let linked = list("linked")
        .iter()
        .map(|l| Linked {
            id: text(&l["id"]),
            relation: text(&l["relation"]),
            operation: text(&l["operation"]),
            outcome: text(&l["outcome"]),
            time: text(&l["timestamp"]),
        })
        .collect();
    let reviews: Vec<ReviewRow> = list("reviews")
        .iter()
        .map(|r| ReviewRow {
            by: text(&r["by"]),
            at: text(&r["at"]),
            verdict: text(&r["verdict"]),
            comment: r.get("comment").map(text).filter(|c| !c.is_empty()),
        })
        .collect();
    let review_form = grant.reads_at_least(Role::Reviewer)
        && event["compliance"]["requires_review"] == Value::Bool(true)
        && reviews.is_empty();
    let page = EventPage {
        nav: Some(caller.nav),
        id: id.to_string(),
        facts,
        session: event["session_id"].as_str().map(|name| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("session", name);
            SessionLink {
                name: name.to_string(),
                href: format!("/ui/events?{}", q.finish()),
            }
        }),
        payload,
        linked,
        reviews,
        leaf_hash: text(&detail["integrity"]["leaf_hash"]),
        checkpoint: detail["integrity"]["checkpoint"]["size"].as_u64(),
        review_form,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The event's inclusion proof as a download (`mcp-audit verify-proof` takes it).
async fn proof(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Viewer).await?;
    let id = event_id(&id)?;
    Ok(api::events::proof_download(&app, caller.token, id, "/ui/events/{id}/proof").await?)
}

#[derive(Template)]
#[template(path = "reviews.html")]
struct ReviewsPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    next: Option<String>,
    done: Option<String>,
}

/// The review queue, with an approve/flag form per event.
async fn reviews(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Reviewer).await?;
    let query = cleaned(query.as_deref(), &[]);
    let done = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned());
    let query = cleaned(Some(&query), &["done"]);
    let params = Params::parse(Some(&query), true, &["limit", "cursor"])?;
    let (events, next, _) = api::reviews::open_reviews(&app, &params).await?;
    let page = ReviewsPage {
        nav: Some(caller.nav),
        rows: events.iter().map(row).collect(),
        next: next.map(|c| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("cursor", &c.0);
            format!("/ui/reviews?{}", q.finish())
        }),
        done,
    };
    Ok(html(StatusCode::OK, &page))
}

/// A verdict from a form: the review is an event of the log, then back to the queue.
async fn review(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = Form::parse(&body);
    let (caller, _) = poster(&app, &headers, &form, Role::Reviewer).await?;
    let id = event_id(&id)?;
    let verdict = match form.get("verdict") {
        Some("approved") => Verdict::Approved,
        Some("flagged") => Verdict::Flagged,
        _ => {
            return Err(UiError::Page(
                StatusCode::BAD_REQUEST,
                "the verdict is approved or flagged".into(),
            ));
        }
    };
    let comment = form.get("comment").unwrap_or_default().to_string();
    api::reviews::submit(&app, caller.token, id, verdict, comment).await?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("done", &format!("{id} {}", verdict.as_str()));
    Ok(Redirect::to(&format!("/ui/reviews?{}", q.finish())).into_response())
}

struct LogRow {
    log_id: String,
    size: String,
    checkpoint: String,
}

#[derive(Template)]
#[template(path = "integrity.html")]
struct IntegrityPage {
    nav: Option<Nav>,
    logs: Vec<LogRow>,
    verifier_key: Option<String>,
    running: Option<String>,
    last: Option<String>,
    last_ok: bool,
    may_verify: bool,
}

async fn integrity(State(app): State<Arc<App>>, headers: HeaderMap) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Viewer).await?;
    let body = api::reports::integrity(&app).await?;
    let logs = body["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| LogRow {
            log_id: match text(&l["log_id"]) {
                id if id.is_empty() => "(this file's log)".to_string(),
                id => id,
            },
            size: text(&l["size"]),
            checkpoint: match l["checkpoint"]["size"].as_u64() {
                Some(size) => format!("signed, covers {size} entries"),
                None => "none yet".to_string(),
            },
        })
        .collect();
    let verify = &body["verify"];
    let pretty =
        |v: &Value| (!v.is_null()).then(|| serde_json::to_string_pretty(v).unwrap_or_default());
    let page = IntegrityPage {
        may_verify: caller.nav.auditor,
        nav: Some(caller.nav),
        logs,
        verifier_key: body["verifier_key"].as_str().map(str::to_string),
        running: pretty(&verify["running"]),
        last_ok: verify["last"]["ok"] == Value::Bool(true),
        last: pretty(&verify["last"]),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn verify(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> UiResult {
    let form = Form::parse(&body);
    let (caller, _) = poster(&app, &headers, &form, Role::Auditor).await?;
    match api::reports::start_verify_as(&app, caller.token) {
        Ok(()) => {}
        // One is running already: the page shows it.
        Err(e) if e.status == StatusCode::CONFLICT => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to("/ui/integrity").into_response())
}

struct TokenRow {
    id: String,
    name: String,
    role: &'static str,
    created: String,
    created_by: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    rows: Vec<TokenRow>,
    /// A token just created: its name and secret, shown this once.
    created: Option<(String, String)>,
    error: Option<String>,
}

/// The tokens page: every token, valid or revoked (the table the last request's check loaded).
async fn tokens_page(
    app: &Arc<App>,
    caller: Caller,
    created: Option<(String, String)>,
    error: Option<String>,
) -> UiResult<TokensPage> {
    // Reload: a token created or revoked by this request is an event the table has not seen.
    let rows = app
        .read(|_, store| Ok(tokens::TokenTable::load(store)?))
        .await?
        .tokens
        .iter()
        .map(|t| TokenRow {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.grant.as_str(),
            created: short_time(&t.created),
            created_by: t.created_by.clone().unwrap_or_default(),
            revoked: t.revoked.as_ref().map(short_time),
        })
        .collect();
    Ok(TokensPage {
        nav: Some(caller.nav),
        rows,
        created,
        error,
    })
}

async fn tokens(State(app): State<Arc<App>>, headers: HeaderMap) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Admin).await?;
    Ok(html(
        StatusCode::OK,
        &tokens_page(&app, caller, None, None).await?,
    ))
}

/// The longest token name taken, in characters.
const MAX_TOKEN_NAME: usize = 200;

/// Creates a token: recorded as an event by the admin, its secret shown once in the answer.
async fn create_token(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> UiResult {
    let form = Form::parse(&body);
    let (caller, _) = poster(&app, &headers, &form, Role::Admin).await?;
    let name = form.get("name").unwrap_or_default().trim().to_string();
    let role = form
        .get("role")
        .unwrap_or_default()
        .parse::<tokens::Grant>();
    let refused = match (&role, name.chars().count()) {
        (_, 0) => Some("Name who the token is for.".to_string()),
        (_, n) if n > MAX_TOKEN_NAME => {
            Some(format!("A name has at most {MAX_TOKEN_NAME} characters."))
        }
        (Err(e), _) => Some(e.clone()),
        _ => None,
    };
    if let Some(error) = refused {
        let page = tokens_page(&app, caller, None, Some(error)).await?;
        return Ok(html(StatusCode::BAD_REQUEST, &page));
    }
    let role = role.map_err(|e| UiError::Page(StatusCode::BAD_REQUEST, e))?;
    let token = NewToken::generate();
    let event = token
        .create_event(&name, role, &caller.token.name)
        .map_err(|e| UiError::Page(StatusCode::BAD_REQUEST, e.to_string()))?;
    let recorder = app.recorder.clone();
    tokio::task::spawn_blocking(move || records::record(&recorder, event))
        .await
        .map_err(|e| UiError::Page(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let page = tokens_page(&app, caller, Some((name, token.secret)), None).await?;
    Ok(html(StatusCode::OK, &page))
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = Form::parse(&body);
    let (caller, _) = poster(&app, &headers, &form, Role::Admin).await?;
    let known = app
        .read({
            let id = id.clone();
            move |_, store| {
                Ok(tokens::TokenTable::load(store)?
                    .get(&id)
                    .map(|t| t.revoked.is_none()))
            }
        })
        .await?;
    match known {
        None => {
            return Err(UiError::Page(
                StatusCode::NOT_FOUND,
                format!("no token with id `{id}`"),
            ));
        }
        Some(false) => {
            return Err(UiError::Page(
                StatusCode::CONFLICT,
                format!("token `{id}` is already revoked"),
            ));
        }
        Some(true) => {}
    }
    let event = tokens::revoke_event(&id, &caller.token.name)
        .map_err(|e| UiError::Page(StatusCode::BAD_REQUEST, e.to_string()))?;
    let recorder = app.recorder.clone();
    tokio::task::spawn_blocking(move || records::record(&recorder, event))
        .await
        .map_err(|e| UiError::Page(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Redirect::to("/ui/tokens").into_response())
}
