//! Events: the list, one event in full with what links to it, its proof.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use mcp_audit_core::{EventId, EventKind};
use mcp_audit_store::{Filter, PageStart, Query, StoreError, StoredEvent, integrity};
use serde::Serialize;
use serde_json::{Value, json};

use super::reviews::reviews_of;
use super::{PageView, Result, authorize, event_id, ok, open_failed, view, views};
use crate::App;
use crate::error::ApiError;
use crate::params::{Params, SEARCH_FIELD};
use crate::records;
use crate::tokens::{Role, TokenInfo};

pub(super) async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Viewer).await?;
    let params = Params::parse(query.as_deref(), true, &["limit", "cursor", SEARCH_FIELD])?;
    let (page, limit) = list(&app, &params, &caller, "/api/v1/events").await?;
    Ok(ok(&PageView {
        events: views(page.events),
        next_cursor: page.next.map(|c| c.0),
        limit,
    }))
}

/// One page of the events `params` filter, newest first, and the page size used.
///
/// A full-text search (`q`) reads payloads: it is for a role that sees them (else 403, before
/// anything is read), and it is recorded, as made through `endpoint`, before the page is
/// returned (a search that cannot be recorded is refused, like any read of payloads).
pub(crate) async fn list(
    app: &Arc<App>,
    params: &Params,
    caller: &TokenInfo,
    endpoint: &'static str,
) -> Result<(mcp_audit_store::Page, u32)> {
    let filter = params.filter()?;
    let (start, limit) = params.page()?;
    let search = match &filter.search {
        Some(search) if !caller.grant.sees_payloads() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "a search reads arguments and results: it needs the role auditor or higher; \
                     token `{}` has {}",
                    caller.name, caller.grant
                ),
            ));
        }
        Some(search) => Some((
            caller.clone(),
            search.words().to_string(),
            params.described(),
        )),
        None => None,
    };
    let page = app
        .read(move |app, store| {
            // A list shows no payload, for any role: they are left out, not decoded.
            let page = store.list(&Query {
                filter,
                start,
                limit,
            })?;
            if let Some((caller, words, query)) = search {
                // On record before the page leaves the server.
                records::record(
                    &app.recorder,
                    records::search(&caller, endpoint, &words, &query)?,
                )?;
                app.metrics.served(crate::metrics::Served::PayloadRead);
            }
            Ok(page)
        })
        .await?;
    Ok((page, limit))
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

pub(super) async fn event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let id = event_id(&id)?;
    let body = detail(&app, caller, id, "/api/v1/events/{id}").await?;
    Ok(ok(&body))
}

/// Event `id` in full as `caller` may see it, with its linked events, reviews and integrity;
/// a read of its payload is recorded as made through `endpoint` before it is returned.
pub(crate) async fn detail(
    app: &Arc<App>,
    caller: crate::tokens::TokenInfo,
    id: EventId,
    endpoint: &'static str,
) -> Result<Value> {
    app.read(move |app, store| {
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
        let with_payload = caller.grant.sees_payloads();
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
            records::record(&app.recorder, records::read(&caller, id, endpoint)?)?;
            app.metrics.served(crate::metrics::Served::PayloadRead);
        }
        Ok(json!({
            "event": view(stored, with_payload),
            "linked": links,
            "reviews": reviews,
            "integrity": integrity,
        }))
    })
    .await
}

pub(super) async fn proof(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = authorize(&app, &headers, Role::Viewer).await?;
    Params::parse(query.as_deref(), false, &[])?;
    let id = event_id(&id)?;
    proof_download(&app, caller, id, "/api/v1/events/{id}/proof").await
}

/// The inclusion proof of event `id` as a download, its payload only for a role that sees
/// payloads (and then the read is recorded as made through `endpoint`).
pub(crate) async fn proof_download(
    app: &Arc<App>,
    caller: crate::tokens::TokenInfo,
    id: EventId,
    endpoint: &'static str,
) -> Result<Response> {
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
            let withheld = proof.payload.is_some() && !caller.grant.sees_payloads();
            if withheld {
                // Still a proof of the event's metadata and commitment: `verify-proof` checks
                // it as it checks the proof of an erased event.
                proof.payload = None;
            } else if proof.payload.is_some() {
                records::record(&app.recorder, records::read(&caller, id, endpoint)?)?;
                app.metrics.served(crate::metrics::Served::PayloadRead);
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
