//! Console tokens and roles, with the audit log itself as the token store.
//!
//! A token is created by recording an `admin` event (`CREATE console_token`) whose values hold
//! the token's name, role and SHA-256, never the token; it is revoked by a `DELETE
//! console_token` event naming its id. The server builds its table of valid tokens from those
//! events. So nobody can add, widen or revive a token without leaving an event in the log that
//! `verify` holds to its signed checkpoints: token management is tamper-evident by
//! construction, and needs no table of its own.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use mcp_audit_core::{Action, AuditEvent, Classification, ModelError};
use mcp_audit_store::{Filter, Store, StoreError, StoredEvent};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The resource type of token events.
pub const TOKEN_RESOURCE: &str = "console_token";
/// The prefix of every token, so that a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "mcpa_";
/// The operation of a token's creation event (`CREATE console_token`).
pub const CREATE_OPERATION: &str = "CREATE console_token";
/// The operation of a token's revocation event.
pub const REVOKE_OPERATION: &str = "DELETE console_token";

/// What a reading token may do. Each role may do everything the ones before it may.
///
/// Writing is not on this ladder: a writer is a [`Grant::Write`], so no comparison of roles
/// can let a writer read or a reader write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads metadata: events without arguments and results, sessions, summaries, integrity.
    Viewer,
    /// Also works the review queue.
    Reviewer,
    /// Also reads arguments and results, proofs with payloads, and exports.
    Auditor,
    /// Also lists tokens over the API.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role sees the personal half of events (arguments, results, values).
    pub fn sees_payloads(self) -> bool {
        self >= Role::Auditor
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "reviewer" => Ok(Role::Reviewer),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role `{s}` (expected viewer, reviewer, auditor or admin)"
            )),
        }
    }
}

/// What a token (or a JWT subject) was given: reading up to a [`Role`], or writing events
/// through the ingest API and nothing else. A separate capability rather than a fifth rung, so
/// that "a writer who may list events" cannot be expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Reads what `Role` allows; never writes events.
    Read(Role),
    /// Posts events to `/api/v1/events`; reads nothing, not even the events it wrote.
    Write,
}

/// The name of the writing grant, as `token create --role` and JWT role claims spell it.
pub const WRITER: &str = "writer";

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Read(role) => role.as_str(),
            Grant::Write => WRITER,
        }
    }

    /// The reading role, if this grant reads.
    pub fn reads(self) -> Option<Role> {
        match self {
            Grant::Read(role) => Some(role),
            Grant::Write => None,
        }
    }

    /// Whether this grant reads at least what `need` reads.
    pub fn reads_at_least(self, need: Role) -> bool {
        self.reads().is_some_and(|role| role >= need)
    }

    /// Whether this grant sees the personal half of events.
    pub fn sees_payloads(self) -> bool {
        self.reads().is_some_and(Role::sees_payloads)
    }
}

impl From<Role> for Grant {
    fn from(role: Role) -> Grant {
        Grant::Read(role)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == WRITER {
            return Ok(Grant::Write);
        }
        s.parse::<Role>().map(Grant::Read).map_err(|_| {
            format!("unknown role `{s}` (expected viewer, reviewer, auditor, admin or writer)")
        })
    }
}

/// A token just made: the secret, shown once, and what the log keeps of it.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Short and random; names the token in `list`, `revoke` and the log.
    pub id: String,
    /// `mcpa_` and 64 hex digits (256 random bits).
    pub secret: String,
}

impl NewToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> NewToken {
        let mut rng = rand::rngs::OsRng;
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        NewToken {
            id: hex::encode(id),
            secret: format!("{TOKEN_PREFIX}{}", hex::encode(secret)),
        }
    }

    /// The event that creates it: the token's hash, name and role in its new values, recorded
    /// by `actor` (who ran `token create`).
    pub fn create_event(
        &self,
        name: &str,
        grant: impl Into<Grant>,
        actor: &str,
    ) -> Result<AuditEvent, ModelError> {
        let role = grant.into();
        token_event(Action::Create, &self.id, actor)
            .resource_name(name)
            .new_values(json!({
                "name": name,
                "role": role.as_str(),
                "sha256": token_hash_hex(&self.secret),
            }))
            .build()
    }
}

/// The event that revokes token `id`.
pub fn revoke_event(id: &str, actor: &str) -> Result<AuditEvent, ModelError> {
    token_event(Action::Delete, id, actor).build()
}

fn token_event(action: Action, id: &str, actor: &str) -> mcp_audit_core::EventBuilder {
    // Explicitly not for review: a token event would otherwise be confidential by its type
    // and fill the review queue with the console's own housekeeping.
    AuditEvent::admin(action, TOKEN_RESOURCE, id)
        .user(actor)
        .classification(Classification::Confidential)
        .requires_review(false)
}

/// SHA-256 of a presented token.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn token_hash_hex(secret: &str) -> String {
    hex::encode(token_hash(secret))
}

/// One token as the log describes it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    /// What it may do (serialized as `role`: `viewer` … `admin`, or `writer`).
    #[serde(rename = "role")]
    pub grant: Grant,
    pub created: Timestamp,
    pub created_by: Option<String>,
    /// When it was revoked; `None` while valid.
    pub revoked: Option<Timestamp>,
    /// How the caller proved who it is (the token list holds console tokens only).
    #[serde(skip)]
    pub credential: Credential,
    #[serde(skip)]
    hash: [u8; 32],
}

/// What a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A console token of the log (`mcp-audit token create`).
    ConsoleToken,
    /// A verified JWT bearer: the caller's name is its `sub`, which its issuer vouches for.
    Jwt { issuer: Option<String> },
}

impl TokenInfo {
    /// A caller known by a verified JWT: `subject` is its `sub`, `issued` its `iat`. It has no
    /// token id and no hash, and is in no table: every request verifies its token again.
    pub fn from_jwt(
        subject: &str,
        issuer: Option<String>,
        grant: Grant,
        issued: Timestamp,
    ) -> TokenInfo {
        TokenInfo {
            id: String::new(),
            name: subject.to_string(),
            grant,
            created: issued,
            created_by: issuer.clone(),
            revoked: None,
            credential: Credential::Jwt { issuer },
            hash: [0; 32],
        }
    }

    /// The `auth_method` of the actor of the console's records about this caller.
    pub fn auth_method(&self) -> &'static str {
        match self.credential {
            Credential::ConsoleToken => "console_token",
            Credential::Jwt { .. } => "jwt",
        }
    }
}

/// Every token the log knows, valid or revoked, oldest first.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    pub tokens: Vec<TokenInfo>,
    /// How many token events it was built from (creations, revocations): when the log holds
    /// another number, the table is stale.
    pub built_from: (u64, u64),
}

/// What a token event that cannot be read as one is reported as: the log may hold an event
/// recorded by hand with the same operation, and one bad event must not lock everyone out.
fn skip_malformed(event: &StoredEvent, why: &str) {
    tracing::warn!(
        event = %event.event.id,
        "token event ignored: {why}"
    );
}

impl TokenTable {
    /// Reads every token event of every log of `store`.
    pub fn load(store: &mut dyn Store) -> Result<TokenTable, StoreError> {
        let counts = Self::counts(store)?;
        let mut tokens: Vec<TokenInfo> = Vec::new();
        store.for_each(&operation_filter(CREATE_OPERATION), &mut |stored| {
            let event = &stored.event;
            let values = event.payload.new_values.as_ref();
            let text = |key: &str| values.and_then(|v| v.get(key)).and_then(|v| v.as_str());
            let (Some(id), Some(name), Some(role), Some(hash)) = (
                event.target.resource_id.clone(),
                text("name"),
                text("role").and_then(|r| r.parse::<Grant>().ok()),
                text("sha256")
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|h| <[u8; 32]>::try_from(h).ok()),
            ) else {
                skip_malformed(&stored, "no id, name, role or hash (erased?)");
                return Ok(());
            };
            tokens.push(TokenInfo {
                id,
                name: name.to_string(),
                grant: role,
                created: event.timestamp,
                created_by: event.actor.user_id.clone(),
                revoked: None,
                credential: Credential::ConsoleToken,
                hash,
            });
            Ok(())
        })?;
        let mut revocations: Vec<(String, Timestamp)> = Vec::new();
        store.for_each(&operation_filter(REVOKE_OPERATION), &mut |stored| {
            match stored.event.target.resource_id.clone() {
                Some(id) => revocations.push((id, stored.event.timestamp)),
                None => skip_malformed(&stored, "no token id"),
            }
            Ok(())
        })?;
        for (id, at) in revocations {
            for token in tokens.iter_mut().filter(|t| t.id == id) {
                token.revoked.get_or_insert(at);
            }
        }
        Ok(TokenTable {
            tokens,
            built_from: counts,
        })
    }

    /// How many creation and revocation events the log holds: one grouped count over the
    /// operation index, its statement prepared once per reader, cheap enough to ask on every
    /// request, so that a revocation takes effect on the next one.
    pub fn counts(store: &mut dyn Store) -> Result<(u64, u64), StoreError> {
        let filter = Filter {
            resource_type: Some(TOKEN_RESOURCE.to_string()),
            ..Filter::default()
        };
        match store.count_each(&filter, &[CREATE_OPERATION, REVOKE_OPERATION])?[..] {
            [created, revoked] => Ok((created, revoked)),
            _ => Err(StoreError::Database(
                "a count of token events came back without one figure per operation".into(),
            )),
        }
    }

    /// The valid token whose hash is that of `secret`. Every valid token's hash is compared in
    /// constant time, so the time taken says nothing about how close a guess came.
    pub fn authenticate(&self, secret: &str) -> Option<&TokenInfo> {
        let presented = token_hash(secret);
        let mut found = None;
        for token in &self.tokens {
            let equal: bool = token.hash.ct_eq(&presented).into();
            if equal && token.revoked.is_none() {
                found = Some(token);
            }
        }
        found
    }

    /// The token `id`, if the log has it.
    pub fn get(&self, id: &str) -> Option<&TokenInfo> {
        self.tokens.iter().find(|t| t.id == id)
    }
}

fn operation_filter(operation: &str) -> Filter {
    Filter {
        operation: Some(operation.to_string()),
        resource_type: Some(TOKEN_RESOURCE.to_string()),
        ..Filter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_256_random_bits_after_its_prefix() {
        let a = NewToken::generate();
        let b = NewToken::generate();
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn the_creation_event_keeps_the_hash_and_never_the_token() {
        let token = NewToken::generate();
        let event = token.create_event("ci", Role::Viewer, "root").unwrap();
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains(&token.secret));
        assert!(text.contains(&token_hash_hex(&token.secret)));
        assert_eq!(event.operation, CREATE_OPERATION);
        assert_eq!(event.compliance.requires_review, Some(false));
    }

    #[test]
    fn roles_are_ordered_and_read_by_name() {
        assert!(Role::Viewer < Role::Reviewer && Role::Reviewer < Role::Auditor);
        assert!(Role::Auditor < Role::Admin);
        assert_eq!("auditor".parse::<Role>().unwrap(), Role::Auditor);
        assert!("root".parse::<Role>().unwrap_err().contains("viewer"));
        assert!(!Role::Reviewer.sees_payloads() && Role::Auditor.sees_payloads());
    }

    #[test]
    fn a_writer_is_no_rung_of_the_reading_ladder() {
        assert_eq!("writer".parse::<Grant>().unwrap(), Grant::Write);
        assert_eq!(
            "viewer".parse::<Grant>().unwrap(),
            Grant::Read(Role::Viewer)
        );
        assert!("writer".parse::<Role>().is_err());
        assert!(!Grant::Write.reads_at_least(Role::Viewer));
        assert!(!Grant::Write.sees_payloads());
        assert!(Grant::Read(Role::Viewer).reads_at_least(Role::Viewer));
        assert!(!Grant::Read(Role::Viewer).reads_at_least(Role::Reviewer));
        assert!("root".parse::<Grant>().unwrap_err().contains("writer"));
    }

    #[test]
    fn a_writer_token_is_read_back_from_its_creation_event_as_a_writer() {
        let token = NewToken::generate();
        let event = token.create_event("ingest", Grant::Write, "root").unwrap();
        let values = event.payload.new_values.unwrap();
        assert_eq!(values["role"], "writer");
    }
}
