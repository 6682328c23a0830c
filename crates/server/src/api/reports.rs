//! Summary, statistics, export, integrity (and verify runs), tokens, the OpenAPI document.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_audit_store::{PageStart, Query, Store, SummaryScope};
use serde_json::{Value, json};

use super::{Result, authorize, json_response, ok, open_failed};
use crate::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::records;
use crate::tokens::Role;
use crate::verify::{self, VerifyState};

pub(super) async fn summary(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(
        query.as_deref(),
        false,
        &["session", "user", "since", "until", "time", "log"],
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
            time: params.time_basis()?,
        },
    };
    let log = params.text("log").map(str::to_string);
    let summary = app
        .read(move |_, store| Ok(store.summary_of_log(&scope, log.as_deref())?))
        .await?;
    Ok(ok(&summary))
}

pub(super) async fn stats(
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

pub(super) async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Auditor).await?;
    // An export already needs a role that sees payloads, and is recorded with its query
    // string, search included.
    let params = Params::parse(
        query.as_deref(),
        true,
        &["format", crate::params::SEARCH_FIELD],
    )?;
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
    app.metrics.served(crate::metrics::Served::Export);
    let body = crate::export::stream(Arc::clone(&app.databases), filter, format);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

pub(super) async fn integrity_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    Ok(ok(&integrity(&app).await?))
}

/// Each log's size and newest checkpoint, the verifier key, and the last or running verify.
pub(crate) async fn integrity(app: &Arc<App>) -> Result<Value> {
    app.read(move |app, store| {
        let verify = verify_state(app, store)?;
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
            "verify": verify,
        }))
    })
    .await
}

/// The verify state, with as its `last` the newest finished run: the one this server ran, or
/// a newer one recorded in the log (by `mcp-audit verify`, or another console), so that a
/// verify run from the command line or before a restart counts.
fn verify_state(app: &App, store: &mut dyn Store) -> Result<VerifyState> {
    let mut state = app.verifications.snapshot();
    let newest = store.query(&Query {
        filter: verify::record_filter(),
        start: PageStart::Newest,
        limit: 1,
    })?;
    if let Some(recorded) = newest.events.first().and_then(verify::from_record)
        && state
            .last
            .as_ref()
            .is_none_or(|last| recorded.finished > last.finished)
    {
        state.last = Some(recorded);
    }
    Ok(state)
}

/// Starts `verify` of every log in the background; `/integrity` shows its progress and result.
pub(super) async fn start_verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Auditor).await?;
    Params::parse(query.as_deref(), false, &[])?;
    start_verify_as(&app, caller)?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"verify": app.verifications.snapshot()}),
    ))
}

/// Starts a verify of every log on behalf of `caller`; 409 when one is running.
pub(crate) fn start_verify_as(app: &Arc<App>, caller: crate::tokens::TokenInfo) -> Result<()> {
    let started = app.verifications.start(
        Arc::clone(&app.databases),
        app.recorder.clone(),
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
    Ok(())
}

pub(super) async fn tokens(
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

/// The API's OpenAPI 3.1 document, written by hand; the tests check real answers against it.
const OPENAPI: &str = include_str!("../openapi.json");

/// The OpenAPI document: public, as it describes the API and holds nothing of the log.
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_static(OPENAPI.as_bytes()),
    )
        .into_response()
}

/// `/metrics`: counts only (see `crate::metrics`), so no token.
pub(super) async fn metrics(State(app): State<Arc<App>>) -> Result<Response> {
    // The metrics are served while the database is away: then with this server's own run.
    let last = match app.read(verify_state).await {
        Ok(state) => state.last,
        Err(_) => app.verifications.snapshot().last,
    }
    .map(|f| (f.ok, f.finished));
    let text = app
        .metrics
        .render(last)
        .map_err(|e| ApiError::internal(format!("the metrics could not be written: {e}")))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mcp_audit_proxy::metrics::CONTENT_TYPE),
    );
    Ok(response)
}
