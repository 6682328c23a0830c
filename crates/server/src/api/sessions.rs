//! Sessions: the list (from the `session_start` events) and one session's timeline.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use mcp_audit_core::EventKind;
use mcp_audit_store::{Filter, PageStart, Query, Store, StoredEvent, SummaryScope};
use serde::Serialize;
use serde_json::json;

use super::{Result, authorize, ok, views};
use crate::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::tokens::Role;

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

pub(super) async fn sessions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(
        query.as_deref(),
        false,
        &[
            "user", "server", "since", "until", "time", "limit", "cursor",
        ],
    )?;
    let filter = Filter {
        kinds: vec![EventKind::Session],
        operation: Some("session_start".into()),
        user_id: params.text("user").map(str::to_string),
        server_name: params.text("server").map(str::to_string),
        since: params.time("since")?,
        until: params.time("until")?,
        time: params.time_basis()?,
        ..Filter::default()
    };
    let (start, limit) = params.page()?;
    // Sessions are listed 50 at most per page: each costs a summary and a lookup of its end.
    let limit = limit.min(50);
    let body = app
        .read(move |_, store| {
            let page = store.list(&Query {
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

pub(super) async fn session(
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
            let page = store.list(&Query {
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
