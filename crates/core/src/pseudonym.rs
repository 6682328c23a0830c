//! Pseudonyms for the identifiers that point at a person and sit in the hashed metadata: the
//! actor's user id and the data-subject id.
//!
//! The hashed metadata can never change (the leaf covers it), so whatever it names stays
//! named for as long as the log exists, erasure or not. So a person's identifier goes into it
//! only as a pseudonym, `pn:` and 32 hex digits (128 random bits), and the pseudonym →
//! identity mapping is kept beside the log in an erasable table ([`Link`] is one row of it).
//! Readers show the identity while the mapping exists; a subject's erasure deletes the
//! mapping, and what the log keeps is a random string that nothing links back to anybody.
//!
//! Why random and not keyed (HMAC of the identity): a key that the recorder holds must be
//! where the recorder runs, usually beside the database, and whoever has both can test
//! guesses (`hmac(key, "alice@example.com")`) against the erased log and re-link it. A random
//! pseudonym is only ever resolved through the mapping, so deleting the mapping is enough.
//! The price is that the recorder must learn an identity's pseudonym from the store rather
//! than compute it: [`Pseudonyms`] is a cache, loaded from the mapping when the recorder
//! starts, that draws a new pseudonym on a miss and hands the new [`Link`] to the writer,
//! which stores it in the same transaction as the event. Two recorders that meet a new
//! identity at the same moment (two proxies on one PostgreSQL) draw two pseudonyms for it;
//! both are mapped, and readers resolve an identity to every pseudonym it has.
//!
//! A value that already is a pseudonym is kept as it is: an event about an erased subject
//! (the erasure's own record) names the subject by the pseudonym it had.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::RngCore;

use crate::event::AuditEvent;

/// What every pseudonym starts with.
pub const PREFIX: &str = "pn:";

/// Which identifier of the event a pseudonym stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityField {
    /// `actor.user_id`.
    User,
    /// `compliance.data_subject_id`.
    Subject,
}

impl IdentityField {
    /// The name stored in the mapping's `field` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityField::User => "user",
            IdentityField::Subject => "subject",
        }
    }

    /// The field named `name` in the mapping, if it is one.
    pub fn parse(name: &str) -> Option<IdentityField> {
        match name {
            "user" => Some(IdentityField::User),
            "subject" => Some(IdentityField::Subject),
            _ => None,
        }
    }
}

/// One row of the mapping: `pseudonym` stands for `identity` in `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub pseudonym: String,
    pub field: IdentityField,
    pub identity: String,
}

/// Whether `value` has the form of a pseudonym (`pn:` and 32 lower-case hex digits).
pub fn is_pseudonym(value: &str) -> bool {
    value.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A new pseudonym: 128 random bits.
pub fn fresh() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The recorder's cache of the mapping: identity → pseudonym per field. Shared by every
/// thread that records (a read lock on the hit path, which is nearly every event).
#[derive(Debug, Default)]
pub struct Pseudonyms {
    known: RwLock<HashMap<(IdentityField, String), String>>,
}

impl Pseudonyms {
    /// A cache that knows the mapping's rows `links` (a row with a malformed pseudonym is
    /// skipped: it could not be told from a clear identifier).
    pub fn with_links(links: impl IntoIterator<Item = Link>) -> Pseudonyms {
        let known = links
            .into_iter()
            .filter(|l| is_pseudonym(&l.pseudonym))
            .map(|l| ((l.field, l.identity), l.pseudonym))
            .collect();
        Pseudonyms {
            known: RwLock::new(known),
        }
    }

    /// Replaces the user id and the data-subject id of `event` by their pseudonyms; returns
    /// the links drawn for identities this cache had not met, for the writer to store.
    pub fn apply(&self, event: &mut AuditEvent) -> Vec<Link> {
        let mut new = Vec::new();
        if let Some(user) = event.actor.user_id.as_mut() {
            self.replace(IdentityField::User, user, &mut new);
        }
        if let Some(subject) = event.compliance.data_subject_id.as_mut() {
            self.replace(IdentityField::Subject, subject, &mut new);
        }
        new
    }

    fn replace(&self, field: IdentityField, value: &mut String, new: &mut Vec<Link>) {
        if is_pseudonym(value) {
            return;
        }
        let key = (field, std::mem::take(value));
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        if let Some(pseudonym) = known.get(&key) {
            value.clone_from(pseudonym);
            return;
        }
        drop(known);
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have drawn it between the two locks.
        let pseudonym = known.entry(key.clone()).or_insert_with(|| {
            let pseudonym = fresh();
            new.push(Link {
                pseudonym: pseudonym.clone(),
                field,
                identity: key.1.clone(),
            });
            pseudonym
        });
        value.clone_from(pseudonym);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::tool_execution("search")
            .user("alice")
            .data_subject("subject-7")
            .build()
            .unwrap()
    }

    #[test]
    fn identifiers_become_pseudonyms_and_the_links_are_handed_out_once() {
        let cache = Pseudonyms::default();
        let mut first = event();
        let links = cache.apply(&mut first);
        let user = first.actor.user_id.clone().unwrap();
        let subject = first.compliance.data_subject_id.clone().unwrap();
        assert!(
            is_pseudonym(&user) && is_pseudonym(&subject),
            "{user} {subject}"
        );
        assert_ne!(user, subject);
        assert_eq!(links.len(), 2);
        assert!(links.contains(&Link {
            pseudonym: user.clone(),
            field: IdentityField::User,
            identity: "alice".into()
        }));
        let mut second = event();
        assert!(cache.apply(&mut second).is_empty(), "known: no new link");
        assert_eq!(second.actor.user_id.as_deref(), Some(user.as_str()));
    }

    #[test]
    fn a_loaded_mapping_is_reused_and_a_pseudonym_is_kept_as_it_is() {
        let pn = fresh();
        let cache = Pseudonyms::with_links([Link {
            pseudonym: pn.clone(),
            field: IdentityField::User,
            identity: "alice".into(),
        }]);
        let mut e = event();
        e.compliance.data_subject_id = Some(pn.clone());
        let links = cache.apply(&mut e);
        assert_eq!(e.actor.user_id.as_deref(), Some(pn.as_str()));
        assert_eq!(e.compliance.data_subject_id.as_deref(), Some(pn.as_str()));
        assert!(links.is_empty());
    }

    #[test]
    fn only_the_exact_form_is_a_pseudonym() {
        assert!(is_pseudonym(&fresh()));
        assert!(!is_pseudonym("pn:alice"));
        assert!(!is_pseudonym("alice"));
        assert!(!is_pseudonym(&fresh().to_uppercase()));
    }
}
