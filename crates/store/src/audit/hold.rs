//! Legal hold: events about a subject, a session or a user that must be kept whatever their
//! retention says, and whatever erasure is asked for, until the hold is released or lapses.
//!
//! A hold is placed by recording an `admin` event (`CREATE legal_hold`) and released by another
//! (`DELETE legal_hold` naming its id); both carry who, why and the hold's scope in a compliance
//! event, in the hashed metadata. A subject's or a user's scope is kept there as the person's
//! pseudonym, drawn through the recorder's mapping as the event's own user and data-subject ids
//! are (see `mcp_audit_core::pseudonym`): readers see the identity while the mapping has it,
//! and the person's erasure, which deletes the mapping's rows of that identity, unlinks the
//! hold too. A session's id is kept as given: it names a connection, not a person, and the
//! events it holds carry it in clear. The table of holds is read back from those events (found by
//! their indexed `operation`/`resource_type` columns), as console tokens are: nobody can lift a
//! hold without an event that `verify` holds to the signed checkpoints, and there is no second
//! copy of the holds to disagree with the log.
//!
//! Which events a hold covers is asked of the store through its ordinary filters
//! (`Filter::data_subject_id`, `user_id`, `session_id`), intents included: the same lookup as a
//! query's, so a change in how identifiers are kept flows through here too.
//!
//! The checks sit where the deleting happens, so every caller gets them:
//! [`crate::expiry::Plan`] leaves held entries out of a cleanup run (and re-checks before it
//! removes), and [`crate::erasure::erase_call`] refuses to erase a held event, naming the hold.

use std::collections::HashMap;
use std::fmt;

use jiff::Timestamp;
use mcp_audit_core::pseudonym::{IdentityField, is_pseudonym};
use mcp_audit_core::{
    Action, AuditEvent, Classification, ComplianceEvent, EventId, EventKind, RiskLevel,
};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::query::Filter;
use crate::recorder::{Receipt, RecordError, Recorder};
use crate::store::Read;

/// The resource type of hold events.
pub const HOLD_RESOURCE: &str = "legal_hold";
/// The operation of the event that places a hold.
pub const PLACE_OPERATION: &str = "CREATE legal_hold";
/// The operation of the event that releases one.
pub const RELEASE_OPERATION: &str = "DELETE legal_hold";
const FRAMEWORK: &str = "mcp-audit";
const PLACED: &str = "legal_hold";
const RELEASED: &str = "legal_hold_release";

/// Whose events a hold keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldScope {
    /// Events whose `compliance.data_subject_id` is this.
    Subject(String),
    /// Events of this session.
    Session(String),
    /// Events whose actor is this user.
    User(String),
}

impl HoldScope {
    /// The store filter of the events in scope, every log, intents included.
    pub fn filter(&self) -> Filter {
        let mut filter = Filter {
            include_pending: true,
            ..Filter::default()
        };
        match self {
            HoldScope::Subject(s) => filter.data_subject_id = Some(s.clone()),
            HoldScope::Session(s) => filter.session_id = Some(s.clone()),
            HoldScope::User(u) => filter.user_id = Some(u.clone()),
        }
        filter
    }

    /// The identifier that names a person, and in which mapping field; `None` for a session.
    fn person(&self) -> Option<(IdentityField, &str)> {
        match self {
            HoldScope::Subject(s) => Some((IdentityField::Subject, s)),
            HoldScope::User(u) => Some((IdentityField::User, u)),
            HoldScope::Session(_) => None,
        }
    }

    /// The same scope naming `value` instead.
    fn with(&self, value: String) -> HoldScope {
        match self {
            HoldScope::Subject(_) => HoldScope::Subject(value),
            HoldScope::User(_) => HoldScope::User(value),
            HoldScope::Session(_) => HoldScope::Session(value),
        }
    }
}

impl fmt::Display for HoldScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldScope::Subject(s) => write!(f, "subject {s}"),
            HoldScope::Session(s) => write!(f, "session {s}"),
            HoldScope::User(u) => write!(f, "user {u}"),
        }
    }
}

/// A hold to place: what it keeps, until when, who asks and why.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub scope: HoldScope,
    /// The hold lapses at this time; `None`: until released.
    pub until: Option<Timestamp>,
    /// Why (the matter, the case number): recorded, and quoted when a deletion is refused.
    pub reason: String,
    /// Who places it (the CLI's `--actor`, or the OS user).
    pub actor: String,
}

/// What a hold event's compliance event carries (hashed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlaceDetails {
    scope: HoldScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<Timestamp>,
    reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReleaseDetails {
    reason: String,
}

impl HoldRequest {
    /// Records the event that places the hold through `recorder`, its scope named by the
    /// person's pseudonym (stored with the event); returns the hold's id (the event's
    /// `resource_id`) and the receipt.
    pub fn record(&self, recorder: &Recorder) -> Result<(String, Receipt), RecordError> {
        let mut links = Vec::new();
        let scope = match self.scope.person() {
            Some((field, identity)) => match recorder.pseudonym(field, identity, &mut links) {
                Some(pseudonym) => self.scope.with(pseudonym),
                None => self.scope.clone(),
            },
            None => self.scope.clone(),
        };
        let (id, event) = self.to_event(scope)?;
        let receipt = recorder.record_linked(event, links)?;
        Ok((id, receipt))
    }

    /// The event that places the hold on `scope` (the request's, as it is to be recorded),
    /// and the hold's id.
    fn to_event(&self, scope: HoldScope) -> Result<(String, AuditEvent), StoreError> {
        let id = EventId::new().to_string();
        let details = serde_json::to_value(PlaceDetails {
            scope,
            until: self.until,
            reason: self.reason.clone(),
        })
        .map_err(|e| StoreError::Database(e.to_string()))?;
        let event = hold_event(
            Action::Create,
            &id,
            &self.actor,
            &self.reason,
            PLACED,
            details,
        )?;
        Ok((id, event))
    }
}

/// The event that releases hold `id`.
pub fn release_event(id: &str, actor: &str, reason: &str) -> Result<AuditEvent, StoreError> {
    let details = serde_json::to_value(ReleaseDetails {
        reason: reason.to_string(),
    })
    .map_err(|e| StoreError::Database(e.to_string()))?;
    hold_event(Action::Delete, id, actor, reason, RELEASED, details)
}

fn hold_event(
    action: Action,
    id: &str,
    actor: &str,
    reason: &str,
    event_type: &str,
    details: serde_json::Value,
) -> Result<AuditEvent, StoreError> {
    // Kept forever: a hold event that expired would silently lift the hold. Not for review:
    // it is the reviewers' own act.
    Ok(AuditEvent::admin(action, HOLD_RESOURCE, id)
        .user(actor)
        .purpose(reason)
        .classification(Classification::Confidential)
        .requires_review(false)
        .retention("forever")
        .compliance_event(ComplianceEvent {
            framework: FRAMEWORK.into(),
            event_type: event_type.into(),
            risk_level: RiskLevel::Low,
            details: Some(details),
            mitigation: Vec::new(),
        })
        .build()?)
}

/// A hold as the log tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub id: String,
    /// The identity it holds while the mapping has it; once the person is erased, the
    /// pseudonym (which still selects the events recorded under it).
    pub scope: HoldScope,
    pub until: Option<Timestamp>,
    pub reason: String,
    pub placed_by: Option<String>,
    pub placed_at: Timestamp,
    pub released: Option<Release>,
}

/// A hold's release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub at: Timestamp,
    pub by: Option<String>,
    pub reason: String,
}

impl Hold {
    /// Whether it keeps its events at `now`: not released, and not lapsed.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.released.is_none() && self.until.is_none_or(|until| now < until)
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "legal hold {} on {}", self.id, self.scope)?;
        if let Some(by) = &self.placed_by {
            write!(f, ", placed by {by}")?;
        }
        write!(f, " at {}", self.placed_at)?;
        if let Some(until) = self.until {
            write!(f, " until {until}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// An event that an active hold keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEvent {
    pub log_id: String,
    pub seq: u64,
    /// The id of the (first) hold that keeps it.
    pub hold: String,
}

/// Every hold the log records, placed and released, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Holds {
    pub holds: Vec<Hold>,
}

impl Holds {
    /// Reads the holds from their events (on PostgreSQL, of every log: a hold is recorded in
    /// the log of whoever placed it, and keeps events of any log).
    pub fn load(store: &mut (impl Read + ?Sized)) -> Result<Holds, StoreError> {
        let filter = Filter {
            kinds: vec![EventKind::Admin],
            resource_type: Some(HOLD_RESOURCE.into()),
            ..Filter::default()
        };
        let mut placed: Vec<Hold> = Vec::new();
        let mut released: Vec<(String, Release)> = Vec::new();
        store.for_each(&filter, &mut |stored| {
            let event = stored.event;
            let Some(id) = event.target.resource_id.clone() else {
                return Ok(());
            };
            let carried = |event_type: &str| {
                event
                    .compliance_events
                    .iter()
                    .find(|c| c.framework == FRAMEWORK && c.event_type == event_type)
                    .and_then(|c| c.details.clone())
            };
            if event.operation == PLACE_OPERATION {
                if let Some(details) =
                    carried(PLACED).and_then(|d| serde_json::from_value::<PlaceDetails>(d).ok())
                {
                    placed.push(Hold {
                        id,
                        scope: details.scope,
                        until: details.until,
                        reason: details.reason,
                        placed_by: event.actor.user_id.clone(),
                        placed_at: event.timestamp,
                        released: None,
                    });
                }
            } else if event.operation == RELEASE_OPERATION
                && let Some(details) =
                    carried(RELEASED).and_then(|d| serde_json::from_value::<ReleaseDetails>(d).ok())
            {
                released.push((
                    id,
                    Release {
                        at: event.timestamp,
                        by: event.actor.user_id.clone(),
                        reason: details.reason,
                    },
                ));
            }
            Ok(())
        })?;
        // The scopes recorded as pseudonyms, shown by identity while the mapping has it.
        let mut resolved: HashMap<String, Option<String>> = HashMap::new();
        for hold in &mut placed {
            let Some((_, value)) = hold.scope.person() else {
                continue;
            };
            if !is_pseudonym(value) {
                continue;
            }
            let identity = match resolved.get(value) {
                Some(known) => known.clone(),
                None => {
                    let found = store.identity_of(value)?;
                    resolved.insert(value.to_string(), found.clone());
                    found
                }
            };
            if let Some(identity) = identity {
                hold.scope = hold.scope.with(identity);
            }
        }
        for (id, release) in released {
            if let Some(hold) = placed
                .iter_mut()
                .find(|h| h.id == id && h.released.is_none())
            {
                hold.released = Some(release);
            }
        }
        placed.sort_by_key(|h| h.placed_at);
        Ok(Holds { holds: placed })
    }

    pub fn get(&self, id: &str) -> Option<&Hold> {
        self.holds.iter().find(|h| h.id == id)
    }

    /// The holds that keep their events at `now`.
    pub fn active(&self, now: Timestamp) -> impl Iterator<Item = &Hold> {
        self.holds.iter().filter(move |h| h.is_active(now))
    }

    /// The events that an active hold keeps at `now`, by id (of the log `log_id` only, when
    /// given), each with the first hold that keeps it.
    pub fn held_events(
        &self,
        store: &mut (impl Read + ?Sized),
        now: Timestamp,
        log_id: Option<&str>,
    ) -> Result<HashMap<EventId, HeldEvent>, StoreError> {
        let mut held = HashMap::new();
        for hold in self.active(now) {
            let mut filter = hold.scope.filter();
            filter.log_id = log_id.map(str::to_string);
            store.for_each(&filter, &mut |stored| {
                held.entry(stored.event.id).or_insert_with(|| HeldEvent {
                    log_id: stored.log_id.clone(),
                    seq: stored.seq,
                    hold: hold.id.clone(),
                });
                Ok(())
            })?;
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_active_until_released_or_lapsed() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let mut hold = Hold {
            id: "h".into(),
            scope: HoldScope::User("alice".into()),
            until: None,
            reason: "case 1".into(),
            placed_by: None,
            placed_at: now,
            released: None,
        };
        assert!(hold.is_active(now));
        hold.until = Some("2026-12-07T11:00:00Z".parse().unwrap());
        assert!(!hold.is_active(now), "lapsed");
        hold.until = None;
        hold.released = Some(Release {
            at: now,
            by: None,
            reason: "settled".into(),
        });
        assert!(!hold.is_active(now), "released");
    }

    #[test]
    fn the_scope_is_asked_of_the_stores_own_filters_with_intents() {
        let f = HoldScope::Subject("s-9".into()).filter();
        assert_eq!(f.data_subject_id.as_deref(), Some("s-9"));
        assert!(f.include_pending);
    }
}
