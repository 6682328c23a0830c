//! The review queue and reviews: each review an event of the log, the queue the events
//! requiring review less those with a review event.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_audit_core::EventId;
use mcp_audit_store::{Filter, PageStart, Query, Store, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PageView, Result, authorize, event_id, json_response, ok, views};
use crate::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::records::{self, REVIEW_OPERATION, Verdict};
use crate::tokens::Role;

/// A review of an event, as its detail lists it.
#[derive(Serialize)]
pub(super) struct ReviewView {
    review_event: EventId,
    by: Option<String>,
    at: jiff::Timestamp,
    verdict: Option<Verdict>,
    /// Only for roles that see payloads: a comment is free text and may name people.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<Value>,
}

/// Every review event of `id`, oldest first.
pub(super) fn reviews_of(
    store: &mut dyn Store,
    id: EventId,
    with_comments: bool,
) -> Result<Vec<ReviewView>> {
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

pub(super) async fn review(
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
    let answer = submit(&app, caller, id, body.verdict, body.comment).await?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// Records `caller`'s review of event `id` (which must require review) as an event of the log.
pub(crate) async fn submit(
    app: &Arc<App>,
    caller: crate::tokens::TokenInfo,
    id: EventId,
    verdict: Verdict,
    comment: String,
) -> Result<Value> {
    if comment.chars().count() > MAX_COMMENT {
        return Err(ApiError::bad_request(format!(
            "the comment is longer than {MAX_COMMENT} characters"
        )));
    }
    app.read(move |app, store| {
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
        let record = records::review(&caller, id, verdict, &comment)?;
        let review_event = records::record(&app.recorder, record)?;
        app.metrics.served(crate::metrics::Served::Review);
        Ok(json!({
            "review_event": review_event,
            "event": id,
            "verdict": verdict,
            "by": caller.name,
        }))
    })
    .await
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

pub(super) async fn queue(
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
    let (events, next, limit) = open_reviews(&app, &params).await?;
    Ok(ok(&PageView {
        events: views(events),
        next_cursor: next.map(|c| c.0),
        limit,
    }))
}

/// One page of the review queue: the events requiring review that `params` filter, less the
/// reviewed ones; the cursor of the next page and the page size used.
pub(crate) async fn open_reviews(
    app: &Arc<App>,
    params: &Params,
) -> Result<(Vec<StoredEvent>, Option<mcp_audit_store::Cursor>, u32)> {
    let mut filter = params.filter()?;
    filter.requires_review = Some(true);
    let (mut start, limit) = params.page()?;
    let (events, next) = app
        .read(move |_, store| {
            let reviewed = reviewed(store)?;
            // Pages of the events requiring review, less the reviewed: a page may come out
            // shorter than `limit`, but is empty only at the end.
            loop {
                let page = store.list(&Query {
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
    Ok((events, next, limit))
}
