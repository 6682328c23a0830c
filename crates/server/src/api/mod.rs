//! The `/api/v1` routes. Each handler first authenticates (401 without a valid token, 403
//! below its role), then reads its query string strictly, then does its store work on a
//! pooled reader in a blocking thread.
//!
//! Lists (events, sessions, the review queue) carry metadata only, for every role: the
//! arguments and results of an event are read one event at a time (`/events/{id}`, by an
//! auditor or admin) or by export, and each such read is recorded before it is answered.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcp_audit_core::{EventId, Payload};
use mcp_audit_store::StoredEvent;
use serde::Serialize;

use crate::error::ApiError;
use crate::tokens::{Grant, Role, TokenInfo, TokenTable};
use crate::{App, OpenError};

pub(crate) mod events;
pub mod ingest;
pub(crate) mod reports;
pub(crate) mod reviews;
mod sessions;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/api/v1/events",
            get(events::events)
                .post(ingest::ingest)
                .layer(DefaultBodyLimit::max(
                    app.ingest
                        .as_ref()
                        .map_or(ingest::DEFAULT_MAX_BODY, |i| i.max_body),
                )),
        )
        .route("/api/v1/events/{id}", get(events::event))
        .route("/api/v1/events/{id}/proof", get(events::proof))
        .route("/api/v1/events/{id}/review", post(reviews::review))
        .route("/api/v1/reviews/queue", get(reviews::queue))
        .route("/api/v1/sessions", get(sessions::sessions))
        .route("/api/v1/sessions/{id}", get(sessions::session))
        .route("/api/v1/summary", get(reports::summary))
        .route("/api/v1/stats", get(reports::stats))
        .route("/api/v1/export", get(reports::export))
        .route("/api/v1/integrity", get(reports::integrity_status))
        .route("/api/v1/integrity/verify", post(reports::start_verify))
        .route("/api/v1/tokens", get(reports::tokens))
        .route("/api/v1/openapi.json", get(reports::openapi))
        .route("/metrics", get(reports::metrics))
        .merge(crate::ui::router())
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
    authorize_for(app, headers, Grant::Read(need)).await
}

/// The caller's token, if it is valid and holds `need` (a reading role at least as high, or
/// the writer's grant).
pub(crate) async fn authorize_for(
    app: &Arc<App>,
    headers: &HeaderMap,
    need: Grant,
) -> Result<TokenInfo> {
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
    check_grant(app, secret, need).await
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message.to_string(),
    )
}

/// The token whose secret is `secret`, if it is valid and its role at least `need`: the one
/// check behind the API's bearer tokens and the web UI's sessions, so that a revoked token
/// ends both on the next request.
///
/// With JWT bearers configured, a secret without the console tokens' prefix is verified as a
/// JWT (each time: its expiry then ends a browser session too).
pub(crate) async fn check_secret(app: &Arc<App>, secret: String, need: Role) -> Result<TokenInfo> {
    check_grant(app, secret, Grant::Read(need)).await
}

/// As [`check_secret`], for any grant.
async fn check_grant(app: &Arc<App>, secret: String, need: Grant) -> Result<TokenInfo> {
    if let Some(jwt) = &app.jwt
        && !secret.starts_with(crate::tokens::TOKEN_PREFIX)
    {
        return holds(jwt.authenticate(&secret, need)?, need);
    }
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
    holds(caller, need)
}

/// `caller`, if its grant covers `need`; else a 403. A writer covers no read and a reader
/// no write.
fn holds(caller: TokenInfo, need: Grant) -> Result<TokenInfo> {
    let (covered, wanted) = match need {
        Grant::Read(role) => (
            caller.grant.reads_at_least(role),
            format!("the role {role} or higher"),
        ),
        Grant::Write => (caller.grant == Grant::Write, "the role writer".to_string()),
    };
    if !covered {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs {wanted}; {} `{}` has {}",
                match caller.credential {
                    crate::tokens::Credential::ConsoleToken => "token",
                    crate::tokens::Credential::Jwt { .. } => "JWT subject",
                },
                caller.name,
                caller.grant
            ),
        ));
    }
    Ok(caller)
}

pub(crate) fn event_id(text: &str) -> Result<EventId> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not an event id")))
}

/// An event as the API shows it: without its payload unless the caller may see payloads.
#[derive(Serialize)]
pub(crate) struct EventView {
    #[serde(flatten)]
    pub stored: StoredEvent,
    /// The event has arguments or results that this answer leaves out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub payload_withheld: bool,
}

/// `stored` as the API shows it. A page read with its payloads left out
/// ([`mcp_audit_store::Read::list`]) says so in `payload_left_out`: withheld as well.
pub(crate) fn view(mut stored: StoredEvent, with_payload: bool) -> EventView {
    let withheld = stored.payload_left_out || (!with_payload && !stored.event.payload.is_empty());
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
