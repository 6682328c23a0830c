//! Erasure (GDPR Art. 17) that erases and says so.
//!
//! Erasing an event erases every record of its call: under `sync` an operation is recorded
//! twice, the intent (`pending`, with the arguments) and the outcome that `completes` it, so
//! erasing either erases both. Each erased record gets an erasure event in the log, recorded
//! durably *before* its payload is deleted: who (`actor`), when (the event's time), why (the
//! reason, as the event's `compliance.purpose`) and which event (`target.resource_id`). The
//! payload is then deleted with the bytes overwritten, and the backend clears what its journal
//! keeps ([`Maintain::scrub`]).
//!
//! What this buys `verify`: a payload missing without an erasure event is not an erasure but a
//! deletion behind the log's back, and is reported as tampering ([`Finding::MissingPayload`]),
//! not as redacted. A database erased before erasures were recorded has such payloads too;
//! `erase` on one of them records the erasure that was made (its payload is already gone), so
//! that an operator can account for them.
//!
//! A held event is never erased: [`erase_call`] checks the legal holds (see [`crate::hold`])
//! before it records anything, and refuses the whole call with the hold that keeps it, so
//! every caller (`erase`, a subject's erasure, a Rust program) gets the same refusal.
//!
//! Recording first means a failure between the two steps leaves an erasure event over a
//! payload that is still there: visible, harmless (verify does not object), and repaired by
//! running `erase` again. Deleting first would have left the opposite: a payload gone with no
//! record of who took it.

use std::collections::HashSet;

use mcp_audit_core::{Action, AuditEvent, EventId};
use serde::Serialize;

use crate::error::StoreError;
use crate::hold::Holds;
use crate::integrity::Finding;
use crate::query::Filter;
use crate::recorder::{Receipt, RecordError, Recorder};
use crate::store::{Maintain, Read, Scrub};

/// The `target.resource_type` of an erasure event: the record it erased is an audit event.
pub const ERASED_RESOURCE: &str = "audit_event";

/// Who asks for an erasure and why; both are recorded with it.
#[derive(Debug, Clone)]
pub struct ErasureRequest {
    /// The user id of whoever erases (the CLI's `--actor`, or the OS user).
    pub actor: String,
    /// How the actor was identified (`os_user`, `cli_flag`, ...).
    pub auth_method: String,
    /// Why: the request or legal ground, in the erasure event's `compliance.purpose`.
    pub reason: String,
}

/// What became of one record of the erased call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedRecord {
    /// The record's event id.
    pub id: EventId,
    /// Whether it is the recorded intent (`pending`) of the call.
    pub intent: bool,
    /// Its payload was deleted now; `false`: it was already gone, and this erasure records
    /// that (an erasure made before erasures were recorded).
    pub payload_deleted: bool,
    /// The erasure event recorded for it.
    pub erasure_event: EventId,
}

/// The result of [`erase_call`].
#[derive(Debug, Clone)]
pub struct Erasure {
    pub records: Vec<ErasedRecord>,
    /// Whether the erased bytes left the backend's files (see [`Maintain::scrub`]).
    pub scrub: Scrub,
}

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EraseError {
    /// No event has this id.
    #[error("no event with id {0}")]
    NoSuchEvent(EventId),
    /// Every record of the call was erased before, and each erasure is recorded.
    #[error("{0} is already erased (with every record of its call), and the erasure recorded")]
    AlreadyErased(EventId),
    /// The erasure event could not be recorded: nothing was deleted.
    #[error("cannot record the erasure, so nothing was erased: {0}")]
    Record(#[from] RecordError),
    /// The audit level of the recorder leaves admin events out: an erasure must be recorded.
    #[error("the recorder's audit level leaves the erasure event out, so nothing was erased")]
    NotRecorded,
    /// A record of the call is kept by a legal hold: nothing was erased.
    #[error("{id} is under {hold}: nothing was erased (release the hold first)")]
    Held {
        /// The held record.
        id: EventId,
        /// The hold, as it reads (`legal hold ID on user U, placed by A at T: reason`).
        hold: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Erases the personal half of event `id` and of every other record of its call, recording
/// each erasure through `recorder` (durably: use `Durability::Sync`) before deleting with
/// `store`. `recorder` and `store` may be on different logs of one PostgreSQL database.
pub fn erase_call(
    store: &mut (impl Read + Maintain + ?Sized),
    recorder: &Recorder,
    id: EventId,
    request: &ErasureRequest,
) -> Result<Erasure, EraseError> {
    let erased = erase_calls(store, recorder, &[id], request)?;
    if erased.records.is_empty() {
        return Err(EraseError::AlreadyErased(id));
    }
    let scrub = store.scrub()?;
    Ok(Erasure {
        records: erased.records,
        scrub,
    })
}

/// What [`erase_calls`] did.
pub(crate) struct CallsErased {
    /// Every record erased now (or whose earlier erasure is recorded now).
    pub(crate) records: Vec<ErasedRecord>,
    /// The calls found erased already, each record's erasure on record.
    pub(crate) already_erased: usize,
}

/// Erases the calls of the events `ids` (a data subject's: many at once). The legal holds and
/// the erasures on record are read once, not per call, and every call's records are checked
/// against the holds before anything is recorded, so that a hold on one refuses them all and
/// nothing is half-erased. Then each erasure is recorded, the recorder flushed once, and the
/// payloads deleted. The caller scrubs the journal ([`Maintain::scrub`]).
pub(crate) fn erase_calls(
    store: &mut (impl Read + Maintain + ?Sized),
    recorder: &Recorder,
    ids: &[EventId],
    request: &ErasureRequest,
) -> Result<CallsErased, EraseError> {
    let mut calls: Vec<Vec<(EventId, bool, bool)>> = Vec::new();
    let mut seen: HashSet<EventId> = HashSet::new();
    for &id in ids {
        // An event of a call gathered already (an intent and its outcome both about the
        // subject) is erased with it.
        if seen.contains(&id) {
            continue;
        }
        let records = call_records(store, id)?;
        seen.extend(records.iter().map(|r| r.0));
        calls.push(records);
    }
    refuse_held(store, calls.iter().flatten())?;
    let recorded = erased_ids(store)?;
    let mut erased = Vec::new();
    let mut already_erased = 0;
    for records in calls {
        // A record needs an erasure when its payload is there, or gone without a record of it.
        let due: Vec<(EventId, bool, bool)> = records
            .into_iter()
            .filter(|&(rid, _, redacted)| !redacted || !recorded.contains(&rid))
            .collect();
        if due.is_empty() {
            already_erased += 1;
            continue;
        }
        let correlation = EventId::new().to_string();
        for (rid, intent, redacted) in due {
            let event = erasure_event(rid, request, &correlation)?;
            let event_id = event.id;
            match recorder.record(event)? {
                Receipt::Skipped => return Err(EraseError::NotRecorded),
                Receipt::Durable { .. } | Receipt::Queued { .. } => {}
            }
            erased.push(ErasedRecord {
                id: rid,
                intent,
                payload_deleted: !redacted,
                erasure_event: event_id,
            });
        }
    }
    if !erased.is_empty() {
        recorder.flush()?;
        for record in &mut erased {
            record.payload_deleted = store.erase_payload(record.id)?;
        }
    }
    Ok(CallsErased {
        records: erased,
        already_erased,
    })
}

/// Refuses with the first hold that keeps one of `records`.
fn refuse_held<'a>(
    store: &mut (impl Read + ?Sized),
    records: impl IntoIterator<Item = &'a (EventId, bool, bool)>,
) -> Result<(), EraseError> {
    let now = jiff::Timestamp::now();
    let holds = Holds::load(store)?;
    if holds.active(now).next().is_none() {
        return Ok(());
    }
    let held = holds.held_events(store, now, None)?;
    for (rid, _, _) in records {
        if let Some(kept) = held.get(rid) {
            let hold = holds
                .get(&kept.hold)
                .map_or_else(|| kept.hold.clone(), ToString::to_string);
            return Err(EraseError::Held { id: *rid, hold });
        }
    }
    Ok(())
}

/// The records of the call that event `id` belongs to, as (id, is the intent, redacted): the
/// event itself, its intent if it is an outcome, and every outcome of the intent.
fn call_records(
    store: &mut (impl Read + Maintain + ?Sized),
    id: EventId,
) -> Result<Vec<(EventId, bool, bool)>, EraseError> {
    let event = store.get(id)?.ok_or(EraseError::NoSuchEvent(id))?;
    let intent = match event.event.completes {
        Some(intent) => store.get(intent)?,
        None if event.event.outcome == mcp_audit_core::Outcome::Pending => Some(event.clone()),
        None => None,
    };
    let mut records = vec![(
        id,
        intent.as_ref().is_some_and(|i| i.event.id == id),
        event.redacted,
    )];
    if let Some(intent) = intent {
        if intent.event.id != id {
            records.push((intent.event.id, true, intent.redacted));
        }
        for outcome in store.outcomes_of(intent.event.id)? {
            if records.iter().all(|r| r.0 != outcome)
                && let Some(e) = store.get(outcome)?
            {
                records.push((outcome, false, e.redacted));
            }
        }
    }
    Ok(records)
}

/// The erasure event of record `erased`: an admin `DELETE` of an `audit_event`, by the
/// request's actor, for its reason, kept forever (it must outlive the record it accounts for).
fn erasure_event(
    erased: EventId,
    request: &ErasureRequest,
    correlation: &str,
) -> Result<AuditEvent, StoreError> {
    let mut event = AuditEvent::admin(Action::Delete, ERASED_RESOURCE, erased.to_string())
        .user(&request.actor)
        .purpose(&request.reason)
        .correlation_id(correlation)
        .retention("forever")
        .build()?;
    event.actor.auth_method = Some(request.auth_method.clone());
    Ok(event)
}

/// The operation name of an erasure event.
fn erase_operation() -> String {
    format!("{} {ERASED_RESOURCE}", Action::Delete)
}

/// The ids of the events that an erasure event in the database accounts for, read from the
/// erasure events' hashed metadata (found by their `operation` column, which is indexed). On
/// PostgreSQL, from every log: an erasure is recorded in the log of whoever erased.
pub fn erased_ids(store: &mut (impl Read + ?Sized)) -> Result<HashSet<EventId>, StoreError> {
    let filter = Filter {
        kinds: vec![mcp_audit_core::EventKind::Admin],
        operation: Some(erase_operation()),
        resource_type: Some(ERASED_RESOURCE.into()),
        action: Some(Action::Delete),
        ..Filter::default()
    };
    let mut ids = HashSet::new();
    store.for_each(&filter, &mut |stored| {
        if let Some(id) = stored
            .event
            .target
            .resource_id
            .as_deref()
            .and_then(|text| text.parse().ok())
        {
            ids.insert(id);
        }
        Ok(())
    })?;
    Ok(ids)
}

/// Of the entries found without a payload (seq, the 16 bytes of the id column), those that no
/// erasure event accounts for, as findings; returns them with how many are redacted.
pub(crate) fn judge_missing_payloads(
    store: &mut (impl Read + ?Sized),
    payloadless: &[(u64, [u8; 16])],
) -> Result<(u64, Vec<Finding>), StoreError> {
    if payloadless.is_empty() {
        return Ok((0, Vec::new()));
    }
    let erased = erased_ids(store)?;
    let mut redacted = 0;
    let mut findings = Vec::new();
    for &(seq, id) in payloadless {
        if erased.contains(&EventId(uuid::Uuid::from_bytes(id))) {
            redacted += 1;
        } else {
            findings.push(Finding::MissingPayload { seq });
        }
    }
    Ok((redacted, findings))
}
