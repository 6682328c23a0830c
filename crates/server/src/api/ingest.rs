//! `POST /api/v1/events`: the way in for programs that are not Rust (a Python MCP server, a
//! gateway), with a token whose grant is `writer`.
//!
//! The body is one event (`application/json`) or JSON lines (`application/jsonl`,
//! `application/x-ndjson`), in exactly the forms `mcp-audit log` takes: every line is checked
//! by the same code (`mcp_audit_store::intake`), with the same policy and redaction, before
//! anything is recorded. A batch is all or nothing: any bad line refuses the whole body with
//! every bad line's number and reason (422), and the good ones are then written in one
//! transaction.
//!
//! Who sent an event is the server's to say, not the body's: each event gets the compliance
//! tag `submitted-by:token:<token id>:<name>` or `submitted-by:jwt:<sub>`, inside the sealed
//! leaf, and a body that carries a `submitted-by:` tag of its own is refused. The event's
//! `actor` is what the writer says of its own user (a service records on behalf of the people
//! it serves), so it is kept as given; the tag says which writer vouches for it.
//!
//! Nor may a writer post the log's own records (tokens, reviews, holds, erasures, verify and
//! expiry runs, gaps), which other parts read back as facts: a forged `CREATE console_token`
//! would mint a token. Such an event is one more bad line.
//!
//! `?wait=durable` answers (201) once the events are durable, with each one's seq; without
//! it, the answer (202) comes once the events are checked and handed to the writer, with their
//! ids and no seq: a failure to write them then shows in the server's log and metrics only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mcp_audit_core::{AuditEvent, EventId, Policy};
use mcp_audit_store::intake::{self, Batch, IdGuard, LineProblem};
use mcp_audit_store::{Receipt, RecordError, Recorder};
use serde::Serialize;
use serde_json::json;

use super::{Result, authorize_for, json_response};
use crate::App;
use crate::error::ApiError;
use crate::tokens::{Credential, Grant, TokenInfo};

/// The tag prefix that names an event's submitter; reserved to the server.
pub const SUBMITTED_BY: &str = "submitted-by:";

/// The resource types of the log's own records, which other parts of the system read back as
/// facts: tokens (a forged `CREATE console_token` would mint a token), reviews and reads of
/// the console, verify runs, legal holds, data-subject exports and erasures, expiry runs. A
/// writer describes its own users' operations, never these.
const RESERVED_RESOURCE_TYPES: [&str; 7] = [
    crate::tokens::TOKEN_RESOURCE,
    crate::records::EVENT_RESOURCE,
    crate::records::EXPORT_RESOURCE,
    crate::verify::VERIFY_RESOURCE,
    mcp_audit_store::hold::HOLD_RESOURCE,
    "data_subject",
    "expired_events",
];

/// The operations of the log's own records (as [`RESERVED_RESOURCE_TYPES`]), whatever
/// resource type an event gives beside them.
const RESERVED_OPERATIONS: [&str; 9] = [
    crate::tokens::CREATE_OPERATION,
    crate::tokens::REVOKE_OPERATION,
    crate::records::REVIEW_OPERATION,
    crate::verify::VERIFY_OPERATION,
    mcp_audit_store::hold::PLACE_OPERATION,
    mcp_audit_store::hold::RELEASE_OPERATION,
    mcp_audit_store::GAP_OPERATION,
    mcp_audit_store::expiry::CLEANUP_OPERATION,
    "EXPORT data_subject",
];

/// Why a writer may not post `event`, if it is one of the log's own records.
fn reserved(event: &AuditEvent) -> Option<String> {
    if let Some(kind) = event
        .target
        .resource_type
        .as_deref()
        .filter(|t| RESERVED_RESOURCE_TYPES.contains(t))
    {
        return Some(format!(
            "the resource type `{kind}` is the log's own record (tokens, reviews, holds, \
             erasures, verify and expiry runs); a writer may not post it"
        ));
    }
    RESERVED_OPERATIONS
        .contains(&event.operation.as_str())
        .then(|| {
            format!(
                "the operation `{}` is the log's own record; a writer may not post it",
                event.operation
            )
        })
}

/// The body size taken unless configured otherwise (16 MiB: some ten thousand events with
/// their arguments and results).
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// At most this many bodies accepted without `wait` may be on their way to the writer; the
/// next such request waits for one of them before it is answered, so that no queue between
/// the request path and the writer grows without bound.
const MAX_UNWAITED: usize = 64;

/// What the ingest endpoint records with.
pub struct Ingest {
    /// Its own recorder, with the policy and redaction given to `serve`, so that the console's
    /// own records (reads, reviews, tokens) keep theirs.
    pub recorder: Recorder,
    /// The recorder's policy, used again to check each line before anything is recorded.
    pub policy: Policy,
    /// The largest body taken, in bytes; a larger one is a 413.
    pub max_body: usize,
    /// Bodies answered `202` and not yet written (at most [`MAX_UNWAITED`]).
    unwaited: Arc<tokio::sync::Semaphore>,
}

impl Ingest {
    pub fn new(recorder: Recorder, policy: Policy, max_body: usize) -> Ingest {
        Ingest {
            recorder,
            policy,
            max_body,
            unwaited: Arc::new(tokio::sync::Semaphore::new(MAX_UNWAITED)),
        }
    }
}

/// One recorded (or accepted) event in the answer.
#[derive(Serialize)]
struct Accepted {
    /// The event's line in the body (1 for a single event).
    line: u64,
    id: EventId,
    log_id: String,
    /// Its place in the log, once durable; absent while it waits for the writer, and for an
    /// event the audit level leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// The audit level leaves it out: not recorded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skipped: bool,
}

#[derive(Serialize)]
struct Answer {
    durable: bool,
    events: Vec<Accepted>,
}

/// A body's form, from its content type.
#[derive(Clone, Copy)]
enum Form {
    One,
    Lines,
}

pub(crate) async fn ingest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let mut events = 0;
    let answer = take(&app, headers, query, body, &mut events).await;
    match &answer {
        Ok(_) => app.metrics.ingest_accepted(events),
        Err(error) => app.metrics.ingest_refused(error.code, events),
    }
    answer
}

/// Checks and records a body; `events` is set to how many events it holds once it is read
/// (good and bad lines alike, blank ones left out), for the metrics.
async fn take(
    app: &Arc<App>,
    headers: HeaderMap,
    query: Option<String>,
    body: std::result::Result<Bytes, BytesRejection>,
    events: &mut usize,
) -> Result<Response> {
    let app = Arc::clone(app);
    let caller = authorize_for(&app, &headers, Grant::Write).await?;
    let Some(ingest) = app.ingest.as_ref() else {
        return Err(ApiError::not_found(
            "this server takes no events (started without an ingest recorder)",
        ));
    };
    let wait = wait_durable(query.as_deref())?;
    let form = form(&headers)?;
    let body = body.map_err(|rejection| too_large(rejection, ingest.max_body))?;
    let submitter = submitter_tag(&caller);
    let policy = ingest.policy.clone();
    let checked = app
        .read(move |_, store| {
            let mut ids = IdGuard::new(store);
            let mut batch = match form {
                Form::One => {
                    let mut batch = Batch::default();
                    match intake::check_line(&body, 1, &mut ids, &policy) {
                        Ok(event) => batch.events.push((1, event)),
                        Err(problem) => batch.problems.push((1, problem)),
                    }
                    batch
                }
                Form::Lines => intake::read_batch(&mut ids, &policy, &body[..])
                    .map_err(|(line, e)| ApiError::bad_request(format!("line {line}: {e}")))?,
            };
            let read = batch.events.len() + batch.problems.len();
            Ok((read, stamp(&mut batch, &submitter).map(|()| batch)))
        })
        .await?;
    let (read, checked) = checked;
    *events = read;
    let batch = checked.map_err(refused)?;
    if batch.events.is_empty() {
        return Err(ApiError::bad_request(
            "the body holds no event (one JSON object, or JSON lines with one event each)",
        ));
    }
    let unwaited = if wait {
        None
    } else {
        let permit = Arc::clone(&ingest.unwaited)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the ingest queue is closed"))?;
        Some(permit)
    };
    record(ingest.recorder.clone(), batch.events, unwaited).await
}

/// The one query field: `wait=durable`.
fn wait_durable(query: Option<&str>) -> Result<bool> {
    let mut wait = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("wait", "durable") => wait = true,
            ("wait", other) => {
                return Err(ApiError::bad_request(format!(
                    "wait is `{other}`; the one value it takes is `durable`"
                )));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query field `{other}` (this endpoint takes `wait=durable`)"
                )));
            }
        }
    }
    Ok(wait)
}

fn form(headers: &HeaderMap) -> Result<Form> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(Form::One),
        Some("application/jsonl" | "application/x-ndjson" | "application/jsonlines") => {
            Ok(Form::Lines)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body is {}; send one event as application/json, or JSON lines as \
                 application/jsonl (or application/x-ndjson)",
                other.map_or("of no declared type".to_string(), |t| format!("`{t}`"))
            ),
        )),
    }
}

fn too_large(rejection: BytesRejection, max_body: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than {max_body} bytes (the server's --ingest-max-body); \
                 nothing was recorded: split it into several requests"
            ),
        )
    } else {
        ApiError::bad_request(format!("cannot read the body: {rejection}"))
    }
}

/// The tag that names the caller as the events' submitter.
fn submitter_tag(caller: &TokenInfo) -> String {
    match &caller.credential {
        Credential::ConsoleToken => format!("{SUBMITTED_BY}token:{}:{}", caller.id, caller.name),
        Credential::Jwt { .. } => format!("{SUBMITTED_BY}jwt:{}", caller.name),
    }
}

/// Tags each good event with its submitter; an event that names a submitter itself is one
/// more bad line. Errs with the batch's problems when it has any.
fn stamp(batch: &mut Batch, submitter: &str) -> std::result::Result<(), Vec<(u64, String)>> {
    let mut problems: Vec<(u64, String)> = std::mem::take(&mut batch.problems)
        .into_iter()
        .map(|(line, problem): (u64, LineProblem)| (line, problem.to_string()))
        .collect();
    for (line, event) in &mut batch.events {
        if let Some(why) = reserved(event) {
            problems.push((*line, why));
        }
        if let Some(forged) = event
            .compliance
            .tags
            .iter()
            .find(|t| t.starts_with(SUBMITTED_BY))
        {
            problems.push((
                *line,
                format!(
                    "the tag `{forged}` is the server's to set (it names who submitted the event)"
                ),
            ));
        }
        event.compliance.tags.push(submitter.to_string());
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by_key(|(line, _)| *line);
    Err(problems)
}

/// The 422 answer naming every bad line; nothing of the batch was recorded.
fn refused(problems: Vec<(u64, String)>) -> ApiError {
    let lines: Vec<String> = problems
        .iter()
        .map(|(line, problem)| format!("line {line}: {problem}"))
        .collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_events",
        format!(
            "{} bad line(s); nothing recorded (a body is all or nothing): {}",
            problems.len(),
            lines.join("; ")
        ),
    )
    .with_lines(
        problems
            .into_iter()
            .map(|(line, problem)| json!({"line": line, "problem": problem}))
            .collect(),
    )
}

/// Records the checked events: one with the recorder's group commit, several in one
/// transaction of their own; waits for it only with `wait`.
/// Without `wait` (`unwaited` holds the body's permit) the answer comes at once and the
/// permit is given back when the write is done.
async fn record(
    recorder: Recorder,
    events: Vec<(u64, AuditEvent)>,
    unwaited: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Response> {
    let log_id = recorder.log_id().to_string();
    let (lines, events): (Vec<u64>, Vec<AuditEvent>) = events.into_iter().unzip();
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    let commit = async move {
        let one = events.len() == 1;
        if one {
            let event = events.into_iter().next().expect("one event");
            recorder.record_durable_async(event).await.map(|r| vec![r])
        } else {
            tokio::task::spawn_blocking(move || recorder.record_all(events))
                .await
                .map_err(|_| RecordError::Closed)?
        }
    };
    let accepted = |seqs: Vec<Option<Receipt>>| -> Vec<Accepted> {
        lines
            .iter()
            .zip(&ids)
            .zip(seqs)
            .map(|((line, id), receipt)| Accepted {
                line: *line,
                id: *id,
                log_id: log_id.clone(),
                seq: match receipt {
                    Some(Receipt::Durable { seq, .. }) => Some(seq),
                    _ => None,
                },
                skipped: matches!(receipt, Some(Receipt::Skipped)),
            })
            .collect()
    };
    if let Some(permit) = unwaited {
        let n = ids.len();
        tokio::spawn(async move {
            if let Err(error) = commit.await {
                tracing::error!("{n} ingested event(s) were not recorded: {error}");
            }
            drop(permit);
        });
        let events = accepted(vec![None; ids.len()]);
        return Ok(json_response(
            StatusCode::ACCEPTED,
            &Answer {
                durable: false,
                events,
            },
        ));
    }
    let receipts = commit.await.map_err(|error| match error {
        RecordError::Invalid(problem) => refused(vec![(lines[0], problem.to_string())]),
        RecordError::InvalidEvents(invalid) => refused(
            invalid
                .into_iter()
                .map(|(index, problem)| (lines[index], problem.to_string()))
                .collect(),
        ),
        other => ApiError::not_recorded(other),
    })?;
    let events = accepted(receipts.into_iter().map(Some).collect());
    Ok(json_response(
        StatusCode::CREATED,
        &Answer {
            durable: true,
            events,
        },
    ))
}
