//! The `/api/v1` routes. Each handler first authenticates (401 without a valid token, 403
//! below its role), then reads its query string strictly, then does its store work on a
//! pooled reader in a blocking thread.
//!
//! Lists (events, sessions, the review queue) carry metadata only, for every role: the
//! arguments and results of an event are read one event at a time (`/events/{id}`, by an
//! auditor or admin) or by export, and each such read is recorded before it is answered.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcp_audit_core::{EventId, EventKind, Payload};
use mcp_audit_store::{
    Filter, PageStart, Query, Store, StoreError, StoredEvent, SummaryScope, integrity,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::params::Params;
use crate::records::{self, REVIEW_OPERATION, Verdict};
use crate::tokens::{Role, TokenInfo, TokenTable};
use crate::{App, OpenError};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The API's OpenAPI 3.1 document, written by hand; the tests check real answers against it.
const OPENAPI: &str = include_str!("openapi.json");

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/events/{id}/proof", get(proof))
        .route("/api/v1/events/{id}/review", post(review))
        .route("/api/v1/reviews/queue", get(queue))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/sessions/{id}", get(session))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/export", get(export))
        .route("/api/v1/integrity", get(integrity_status))
        .route("/api/v1/integrity/verify", post(start_verify))
        .route("/api/v1/tokens", get(tokens))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(async || ApiError::not_found("no such endpoint (the API is under /api/v1/)"))
        .method_not_allowed_fallback(async || {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .with_state(app)
}

/// A JSON body with its content type.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(bytes),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn ok(body: &impl Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

fn open_failed(e: OpenError) -> ApiError {
    tracing::error!("cannot open the database: {e}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("cannot open the database: {e}"),
    )
}

/// The caller's token, if it is valid and its role at least `need`.
async fn authorize(app: &Arc<App>, headers: &HeaderMap, need: Role) -> Result<TokenInfo> {
    let unauthorized = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message.to_string(),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("no token: send `Authorization: Bearer <token>`"))?;
    let secret = value
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header is not `Bearer <token>`"))?
        .to_string();
    let caller = app
        .read(move |app, store| {
            let counts = TokenTable::counts(store)?;
            let mut table = app
                .tokens
                .lock()
                .map_err(|_| ApiError::internal("the token table is unusable"))?;
            if table.built_from != counts {
                *table = TokenTable::load(store)?;
            }
            Ok(table.authenticate(&secret).cloned())
        })
        .await?
        .ok_or_else(|| unauthorized("unknown or revoked token"))?;
    if caller.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the role {need} or higher; token `{}` has {}",
                caller.name, caller.role
            ),
        ));
    }
    Ok(caller)
}

fn event_id(text: &str) -> Result<EventId> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not an event id")))
}

/// An event as the API shows it: without its payload unless the caller may see payloads.
#[derive(Serialize)]
struct EventView {
    #[serde(flatten)]
    stored: StoredEvent,
    /// The event has arguments or results that this answer leaves out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    payload_withheld: bool,
}

fn view(mut stored: StoredEvent, with_payload: bool) -> EventView {
    let withheld = !with_payload && !stored.event.payload.is_empty();
    if withheld {
        stored.event.payload = Payload::default();
    }
    EventView {
        stored,
        payload_withheld: withheld,
    }
}

fn views(events: Vec<StoredEvent>) -> Vec<EventView> {
    events.into_iter().map(|e| view(e, false)).collect()
}

#[derive(Serialize)]
struct PageView {
    events: Vec<EventView>,
    next_cursor: Option<String>,
    /// The page size used: the `limit` asked for, or [`crate::MAX_LIMIT`] when it asked more.
    limit: u32,
}

async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(query.as_deref(), true, &["limit", "cursor"])?;
    let filter = params.filter()?;
    let (start, limit) = params.page()?;
    let page = app
        .read(move |_, store| {
            Ok(store.query(&Query {
                filter,
                start,
                limit,
            })?)
        })
        .await?;
    Ok(ok(&PageView {
        events: views(page.events),
        next_cursor: page.next.map(|c| c.0),
        limit,
    }))
}

/// Another event of the same call or correlation, in brief.
#[derive(Serialize)]
struct Linked {
    id: EventId,
    log_id: String,
    seq: u64,
    kind: EventKind,
    operation: String,
    outcome: String,
    timestamp: jiff::Timestamp,
    /// How it relates: `intent` (this event completes it), `outcome` (it completes this
    /// one) or `correlation` (same correlation id).
    relation: &'static str,
}

fn linked(stored: &StoredEvent, relation: &'static str) -> Linked {
    Linked {
        id: stored.event.id,
        log_id: stored.log_id.clone(),
        seq: stored.seq,
        kind: stored.event.kind,
        operation: stored.event.operation.clone(),
        outcome: stored.event.outcome.to_string(),
        timestamp: stored.event.timestamp,
        relation,
    }
}

/// A review of an event, as its detail lists it.
#[derive(Serialize)]
struct ReviewView {
    review_event: EventId,
    by: Option<String>,
    at: jiff::Timestamp,
    verdict: Option<Verdict>,
    /// Only for roles that see payloads: a comment is free text and may name people.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<Value>,
}

/// Every review event of `id`, oldest first.
fn reviews_of(store: &mut dyn Store, id: EventId, with_comments: bool) -> Result<Vec<ReviewView>> {
    let mut reviews = Vec::new();
    store.for_each(
        &Filter {
            operation: Some(REVIEW_OPERATION.into()),
            resource_type: Some(records::EVENT_RESOURCE.into()),
            resource_id: Some(id.to_string()),
            ..Filter::default()
        },
        &mut |r| {
            let comment = r
                .event
                .payload
                .new_values
                .as_ref()
                .and_then(|v| v.get("comment"))
                .cloned();
            reviews.push(ReviewView {
                review_event: r.event.id,
                by: r.event.actor.user_id.clone(),
                at: r.event.timestamp,
                verdict: Verdict::from_tags(&r.event.compliance.tags),
                comment: comment.filter(|_| with_comments),
            });
            Ok(())
        },
    )?;
    Ok(reviews)
}

/// The newest signed checkpoint of `log_id` that covers `seq`, as (size, note).
fn covering_checkpoint(app: &App, log_id: &str, seq: u64) -> Result<Option<Value>> {
    let mut store = app.databases.log_reader(log_id).map_err(open_failed)?;
    Ok(store
        .checkpoints()?
        .into_iter()
        .filter(|(size, _)| *size > seq)
        .max_by_key(|(size, _)| *size)
        .map(|(size, note)| json!({"size": size, "note": note})))
}

async fn event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let id = event_id(&id)?;
    let body = app
        .read(move |app, store| {
            let stored = store
                .get(id)?
                .ok_or_else(|| ApiError::not_found(format!("no event with id {id}")))?;
            let mut links = Vec::new();
            let mut seen: HashSet<EventId> = HashSet::from([id]);
            if let Some(intent) = stored.event.completes
                && let Some(intent) = store.get(intent)?
            {
                seen.insert(intent.event.id);
                links.push(linked(&intent, "intent"));
            }
            for outcome in store.outcomes_of(id)? {
                if seen.insert(outcome)
                    && let Some(outcome) = store.get(outcome)?
                {
                    links.push(linked(&outcome, "outcome"));
                }
            }
            if let Some(correlation) = stored.event.correlation_id.clone() {
                let page = store.query(&Query {
                    filter: Filter {
                        correlation_id: Some(correlation),
                        include_pending: true,
                        ..Filter::default()
                    },
                    start: PageStart::Newest,
                    limit: 100,
                })?;
                for other in page.events {
                    if seen.insert(other.event.id) {
                        links.push(linked(&other, "correlation"));
                    }
                }
            }
            let with_payload = caller.role.sees_payloads();
            let reviews = reviews_of(store, id, with_payload)?;
            let checkpoint = covering_checkpoint(app, &stored.log_id, stored.seq)?;
            let integrity = json!({
                "leaf_hash": stored.leaf_hash,
                "payload_commitment": stored.payload_commitment,
                "checkpoint": checkpoint,
                "proof": format!("/api/v1/events/{id}/proof"),
            });
            if with_payload && !stored.event.payload.is_empty() {
                // On record before it leaves the server.
                records::record(
                    &app.recorder,
                    records::read(&caller, id, "/api/v1/events/{id}")?,
                )?;
            }
            Ok(json!({
                "event": view(stored, with_payload),
                "linked": links,
                "reviews": reviews,
                "integrity": integrity,
            }))
        })
        .await?;
    Ok(ok(&body))
}

async fn proof(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let id = event_id(&id)?;
    let (proof, withheld) = app
        .read(move |app, reader| {
            let missing = || ApiError::not_found(format!("no event with id {id}"));
            reader.get(id)?.ok_or_else(missing)?;
            let mut store = app
                .databases
                .event_log(id)
                .map_err(open_failed)?
                .ok_or_else(missing)?;
            let mut proof = integrity::prove(store.as_mut(), id).map_err(|e| match e {
                StoreError::Database(message) => {
                    ApiError::new(StatusCode::CONFLICT, "no_checkpoint", message)
                }
                other => other.into(),
            })?;
            let withheld = proof.payload.is_some() && !caller.role.sees_payloads();
            if withheld {
                // Still a proof of the event's metadata and commitment: `verify-proof` checks
                // it as it checks the proof of an erased event.
                proof.payload = None;
            } else if proof.payload.is_some() {
                records::record(
                    &app.recorder,
                    records::read(&caller, id, "/api/v1/events/{id}/proof")?,
                )?;
            }
            Ok((proof, withheld))
        })
        .await?;
    let mut response = ok(&proof);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"proof-{id}.json\""))
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    if withheld {
        response
            .headers_mut()
            .insert("x-payload-withheld", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The body of a review.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    verdict: Verdict,
    #[serde(default)]
    comment: String,
}

/// The longest comment a review takes, in characters.
const MAX_COMMENT: usize = 4000;

async fn review(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Reviewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let id = event_id(&id)?;
    let body: ReviewBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not {{\"verdict\": \"approved\"|\"flagged\", \"comment\": \"...\"}}: {e}"
        ))
    })?;
    if body.comment.chars().count() > MAX_COMMENT {
        return Err(ApiError::bad_request(format!(
            "the comment is longer than {MAX_COMMENT} characters"
        )));
    }
    let answer = app
        .read(move |app, store| {
            let stored = store
                .get(id)?
                .ok_or_else(|| ApiError::not_found(format!("no event with id {id}")))?;
            if stored.event.compliance.requires_review != Some(true) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_for_review",
                    format!("event {id} does not require review"),
                ));
            }
            let record = records::review(&caller, id, body.verdict, &body.comment)?;
            let review_event = records::record(&app.recorder, record)?;
            Ok(json!({
                "review_event": review_event,
                "event": id,
                "verdict": body.verdict,
                "by": caller.name,
            }))
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// The ids of every reviewed event (one scan of the review events, by their operation's
/// index).
fn reviewed(store: &mut dyn Store) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    store.for_each(
        &Filter {
            operation: Some(REVIEW_OPERATION.into()),
            resource_type: Some(records::EVENT_RESOURCE.into()),
            ..Filter::default()
        },
        &mut |r| {
            if let Some(id) = r.event.target.resource_id {
                ids.insert(id);
            }
            Ok(())
        },
    )?;
    Ok(ids)
}

async fn queue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Reviewer).await?;
    let params = Params::parse(query.as_deref(), true, &["limit", "cursor"])?;
    if params.text("review").is_some() {
        return Err(ApiError::bad_request(
            "the queue holds the events that require review: `review` is not a filter here",
        ));
    }
    let mut filter = params.filter()?;
    filter.requires_review = Some(true);
    let (mut start, limit) = params.page()?;
    let (events, next) = app
        .read(move |_, store| {
            let reviewed = reviewed(store)?;
            // Pages of the events requiring review, less the reviewed: a page may come out
            // shorter than `limit`, but is empty only at the end.
            loop {
                let page = store.query(&Query {
                    filter: filter.clone(),
                    start,
                    limit,
                })?;
                let open: Vec<StoredEvent> = page
                    .events
                    .into_iter()
                    .filter(|e| !reviewed.contains(&e.event.id.to_string()))
                    .collect();
                match page.next {
                    Some(next) if open.is_empty() => start = PageStart::After(next),
                    next => return Ok((open, next)),
                }
            }
        })
        .await?;
    Ok(ok(&PageView {
        events: views(events),
        next_cursor: next.map(|c| c.0),
        limit,
    }))
}

/// One session in the list.
#[derive(Serialize)]
struct SessionView {
    session_id: String,
    user: Option<String>,
    client: Option<String>,
    client_version: Option<String>,
    server: Option<String>,
    start: jiff::Timestamp,
    /// `None` while the session is open (or its end was not recorded).
    end: Option<jiff::Timestamp>,
    /// Operations in the session, session start and end left out.
    calls: u64,
    /// Tool errors, protocol errors and denied calls.
    errors: u64,
}

fn session_view(store: &mut dyn Store, start: &StoredEvent) -> Result<Option<SessionView>> {
    let Some(session_id) = start.event.session_id.clone() else {
        return Ok(None);
    };
    let end = store
        .query(&Query {
            filter: Filter {
                kinds: vec![EventKind::Session],
                operation: Some("session_end".into()),
                session_id: Some(session_id.clone()),
                ..Filter::default()
            },
            start: PageStart::Newest,
            limit: 1,
        })?
        .events
        .first()
        .map(|e| e.event.timestamp);
    let summary = store.summary(&SummaryScope::Session(session_id.clone()))?;
    let sessions = summary
        .by_kind
        .get(&EventKind::Session)
        .copied()
        .unwrap_or(0);
    let errors = ["tool_error", "protocol_error", "denied"]
        .iter()
        .filter_map(|o| summary.by_outcome.get(*o))
        .sum();
    Ok(Some(SessionView {
        session_id,
        user: start.event.actor.user_id.clone(),
        client: start.event.actor.client_name.clone(),
        client_version: start.event.actor.client_version.clone(),
        server: start.event.target.server_name.clone(),
        start: start.event.timestamp,
        end,
        calls: summary.total_operations.saturating_sub(sessions),
        errors,
    }))
}

async fn sessions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(
        query.as_deref(),
        false,
        &["user", "server", "since", "until", "limit", "cursor"],
    )?;
    let filter = Filter {
        kinds: vec![EventKind::Session],
        operation: Some("session_start".into()),
        user_id: params.text("user").map(str::to_string),
        server_name: params.text("server").map(str::to_string),
        since: params.time("since")?,
        until: params.time("until")?,
        ..Filter::default()
    };
    let (start, limit) = params.page()?;
    // Sessions are listed 50 at most per page: each costs a summary and a lookup of its end.
    let limit = limit.min(50);
    let body = app
        .read(move |_, store| {
            let page = store.query(&Query {
                filter,
                start,
                limit,
            })?;
            let mut sessions = Vec::new();
            for start in &page.events {
                if let Some(view) = session_view(store, start)? {
                    sessions.push(view);
                }
            }
            Ok(json!({
                "sessions": sessions,
                "next_cursor": page.next.map(|c| c.0),
                "limit": limit,
            }))
        })
        .await?;
    Ok(ok(&body))
}

async fn session(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(query.as_deref(), false, &["limit", "cursor"])?;
    let (start, limit) = params.page()?;
    let body = app
        .read(move |_, store| {
            let summary = store.summary(&SummaryScope::Session(id.clone()))?;
            if summary.total_operations == 0 && start == PageStart::Newest {
                return Err(ApiError::not_found(format!("no session `{id}`")));
            }
            let page = store.query(&Query {
                filter: Filter {
                    session_id: Some(id.clone()),
                    include_pending: true,
                    ..Filter::default()
                },
                start,
                limit,
            })?;
            Ok(json!({
                "session_id": id,
                "summary": summary,
                "events": views(page.events),
                "next_cursor": page.next.map(|c| c.0),
                "limit": limit,
            }))
        })
        .await?;
    Ok(ok(&body))
}

async fn summary(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(
        query.as_deref(),
        false,
        &["session", "user", "since", "until"],
    )?;
    let window = params.text("since").is_some() || params.text("until").is_some();
    let scope = match (params.text("session"), params.text("user")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "`session` and `user` are two scopes: give one",
            ));
        }
        (Some(_), None) | (None, Some(_)) if window => {
            return Err(ApiError::bad_request(
                "`since` and `until` bound a window; a session or user summary takes neither",
            ));
        }
        (Some(session), None) => SummaryScope::Session(session.to_string()),
        (None, Some(user)) => SummaryScope::User(user.to_string()),
        (None, None) => SummaryScope::Window {
            since: params.time("since")?,
            until: params.time("until")?,
        },
    };
    let summary = app.read(move |_, store| Ok(store.summary(&scope)?)).await?;
    Ok(ok(&summary))
}

async fn stats(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let filter = Params::parse(query.as_deref(), true, &[])?.filter()?;
    let stats = app
        .read(move |_, store| Ok(store.tool_stats(&filter)?))
        .await?;
    Ok(ok(&json!({ "tools": stats })))
}

async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Auditor).await?;
    let params = Params::parse(query.as_deref(), true, &["format"])?;
    let format = match params.text("format").unwrap_or("jsonl") {
        "jsonl" => crate::export::Format::Jsonl,
        "csv" => crate::export::Format::Csv,
        other => {
            return Err(ApiError::bad_request(format!(
                "`format={other}`: the formats are jsonl and csv"
            )));
        }
    };
    let filter = params.filter()?;
    let described = query.unwrap_or_default();
    app.read(move |app, _| {
        records::record(
            &app.recorder,
            records::export(&caller, &described, format.name())?,
        )
    })
    .await?;
    let body = crate::export::stream(Arc::clone(&app.databases), filter, format);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

async fn integrity_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let body = app
        .read(move |app, _| {
            let mut logs = Vec::new();
            for log_id in app.databases.logs().map_err(open_failed)? {
                let mut store = app.databases.log_reader(&log_id).map_err(open_failed)?;
                let size = store.next_seq()?;
                let checkpoint = store
                    .checkpoints()?
                    .into_iter()
                    .max_by_key(|(size, _)| *size)
                    .map(|(size, note)| json!({"size": size, "note": note}));
                logs.push(json!({"log_id": log_id, "size": size, "checkpoint": checkpoint}));
            }
            Ok(json!({
                "logs": logs,
                "verifier_key": app.verifier_key,
                "verify": app.verifications.snapshot(),
            }))
        })
        .await?;
    Ok(ok(&body))
}

/// Starts `verify` of every log in the background; `/integrity` shows its progress and result.
async fn start_verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Auditor).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let started = app.verifications.start(
        Arc::clone(&app.databases),
        app.verifier.as_deref().cloned(),
        caller.name,
    );
    if !started {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "verify_running",
            "a verify is running already: watch it at /api/v1/integrity",
        ));
    }
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"verify": app.verifications.snapshot()}),
    ))
}

async fn tokens(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Admin).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let table = app
        .tokens
        .lock()
        .map_err(|_| ApiError::internal("the token table is unusable"))?
        .tokens
        .clone();
    Ok(ok(&json!({ "tokens": table })))
}

/// The OpenAPI document: public, as it describes the API and holds nothing of the log.
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_static(OPENAPI.as_bytes()),
    )
        .into_response()
}
