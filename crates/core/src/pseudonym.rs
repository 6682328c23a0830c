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

/// How many identities a recorder's cache keeps by default (a few megabytes at most).
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

type Key = (IdentityField, String);

/// The recorder's cache of the mapping: identity → pseudonym per field. Shared by every
/// thread that records (a read lock on the hit path, which is nearly every event).
///
/// Bounded: it keeps at most `capacity` identities, in two generations. New and recently
/// used identities are in the young one; when it is full it becomes the old one and the old
/// one is dropped, and an identity found in the old generation moves back to the young. So
/// the identities met within the last `capacity / 2` distinct ones are always kept (an
/// approximation of least-recently-used that costs nothing on a young hit), and a recorder
/// that meets a new identity with every call (a public server's users) does not grow without
/// end. An identity dropped and met again gets a fresh pseudonym and a second row in the
/// mapping: readers resolve an identity to every pseudonym it has, so nothing is lost but a
/// row.
#[derive(Debug)]
pub struct Pseudonyms {
    generations: RwLock<Generations>,
}

#[derive(Debug)]
struct Generations {
    young: HashMap<Key, String>,
    old: HashMap<Key, String>,
    /// Entries per generation (at least 1): half the capacity.
    per_generation: usize,
}

impl Generations {
    fn get(&self, key: &Key) -> Option<&String> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// Puts `key` in the young generation, turning it into the old one first when full.
    fn insert(&mut self, key: Key, pseudonym: String) {
        if self.young.len() >= self.per_generation {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, pseudonym);
    }

    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

impl Default for Pseudonyms {
    fn default() -> Self {
        Pseudonyms::with_links(Vec::new(), DEFAULT_CACHE_CAPACITY)
    }
}

impl Pseudonyms {
    /// A cache of at most `capacity` identities (at least 2) that knows the mapping's rows
    /// `links`, the last ones kept when they are more (a row with a malformed pseudonym is
    /// skipped: it could not be told from a clear identifier).
    pub fn with_links(links: impl IntoIterator<Item = Link>, capacity: usize) -> Pseudonyms {
        let mut generations = Generations {
            young: HashMap::new(),
            old: HashMap::new(),
            per_generation: (capacity / 2).max(1),
        };
        for link in links.into_iter().filter(|l| is_pseudonym(&l.pseudonym)) {
            generations.insert((link.field, link.identity), link.pseudonym);
        }
        Pseudonyms {
            generations: RwLock::new(generations),
        }
    }

    /// How many identities the cache holds now.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The pseudonym of `identity` in `field`, for an event that names a person outside its
    /// user and data-subject ids (a legal hold's scope); a link drawn for it now is pushed on
    /// `new`, for the writer to store with that event. A value that already is a pseudonym is
    /// its own.
    pub fn pseudonym(&self, field: IdentityField, identity: &str, new: &mut Vec<Link>) -> String {
        let mut value = identity.to_string();
        self.replace(field, &mut value, new);
        value
    }

    /// Forgets every identity whose pseudonym `is_mapped` denies, and returns what it forgot:
    /// after a subject's erasure (by any process) deleted rows of the mapping, so that the
    /// identity's next event gets a fresh pseudonym with a row of its own, rather than the
    /// erased one that nothing resolves and that would tie it to the erased events.
    pub fn retain_mapped(&self, is_mapped: impl Fn(&str) -> bool) -> Vec<Link> {
        let mut generations = self.write();
        let mut forgotten = Vec::new();
        let Generations { young, old, .. } = &mut *generations;
        for map in [young, old] {
            map.retain(|(field, identity), pseudonym| {
                let keep = is_mapped(pseudonym);
                if !keep {
                    forgotten.push(Link {
                        pseudonym: pseudonym.clone(),
                        field: *field,
                        identity: identity.clone(),
                    });
                }
                keep
            });
        }
        forgotten
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generations> {
        self.generations.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Generations> {
        self.generations.write().unwrap_or_else(|p| p.into_inner())
    }

    fn replace(&self, field: IdentityField, value: &mut String, new: &mut Vec<Link>) {
        if is_pseudonym(value) {
            return;
        }
        let key = (field, std::mem::take(value));
        if let Some(pseudonym) = self.read().young.get(&key) {
            value.clone_from(pseudonym);
            return;
        }
        let mut generations = self.write();
        // Another thread may have drawn it between the two locks; or it is old, and moves
        // back to the young generation.
        let pseudonym = match generations.get(&key) {
            Some(known) => known.clone(),
            None => {
                let pseudonym = fresh();
                new.push(Link {
                    pseudonym: pseudonym.clone(),
                    field,
                    identity: key.1.clone(),
                });
                pseudonym
            }
        };
        if !generations.young.contains_key(&key) {
            generations.old.remove(&key);
            generations.insert(key, pseudonym.clone());
        }
        *value = pseudonym;
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
        let cache = Pseudonyms::with_links(
            [Link {
                pseudonym: pn.clone(),
                field: IdentityField::User,
                identity: "alice".into(),
            }],
            DEFAULT_CACHE_CAPACITY,
        );
        let mut e = event();
        e.compliance.data_subject_id = Some(pn.clone());
        let links = cache.apply(&mut e);
        assert_eq!(e.actor.user_id.as_deref(), Some(pn.as_str()));
        assert_eq!(e.compliance.data_subject_id.as_deref(), Some(pn.as_str()));
        assert!(links.is_empty());
    }

    fn user(cache: &Pseudonyms, identity: &str, new: &mut Vec<Link>) -> String {
        cache.pseudonym(IdentityField::User, identity, new)
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = Pseudonyms::with_links(Vec::new(), 10);
        let mut new = Vec::new();
        for i in 0..1_000 {
            user(&cache, &format!("user-{i}"), &mut new);
            assert!(cache.len() <= 10, "{} after {i}", cache.len());
        }
        assert_eq!(new.len(), 1_000, "each identity drawn once");
        // Loading a mapping larger than the capacity keeps its last rows.
        let links = new.clone();
        let loaded = Pseudonyms::with_links(links, 10);
        assert!(loaded.len() <= 10);
        let mut again = Vec::new();
        assert_eq!(user(&loaded, "user-999", &mut again), new[999].pseudonym);
        assert!(again.is_empty());
    }

    #[test]
    fn a_recently_used_identity_is_kept_and_an_evicted_one_gets_a_fresh_mapped_pseudonym() {
        let cache = Pseudonyms::with_links(Vec::new(), 4);
        let mut new = Vec::new();
        let hot = user(&cache, "hot", &mut new);
        let cold = user(&cache, "cold", &mut new);
        // Many other identities pass; "hot" is used between each two, "cold" never.
        for i in 0..50 {
            user(&cache, &format!("passer-{i}"), &mut new);
            assert_eq!(user(&cache, "hot", &mut new), hot, "hot kept after {i}");
        }
        new.clear();
        let cold_again = user(&cache, "cold", &mut new);
        assert_ne!(cold_again, cold, "evicted: drawn afresh");
        assert_eq!(
            new,
            vec![Link {
                pseudonym: cold_again,
                field: IdentityField::User,
                identity: "cold".into()
            }],
            "with a link for the writer to store"
        );
    }

    #[test]
    fn an_identity_whose_row_was_erased_gets_a_fresh_pseudonym_with_a_new_link() {
        let cache = Pseudonyms::default();
        let mut new = Vec::new();
        let erased = user(&cache, "alice", &mut new);
        let kept = user(&cache, "bob", &mut new);
        let forgotten = cache.retain_mapped(|p| p != erased);
        assert_eq!(
            forgotten,
            vec![Link {
                pseudonym: erased.clone(),
                field: IdentityField::User,
                identity: "alice".into()
            }]
        );
        new.clear();
        let fresh_one = user(&cache, "alice", &mut new);
        assert_ne!(fresh_one, erased);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].pseudonym, fresh_one);
        assert_eq!(user(&cache, "bob", &mut new), kept);
        assert_eq!(new.len(), 1, "bob's row still stands");
    }

    #[test]
    fn only_the_exact_form_is_a_pseudonym() {
        assert!(is_pseudonym(&fresh()));
        assert!(!is_pseudonym("pn:alice"));
        assert!(!is_pseudonym("alice"));
        assert!(!is_pseudonym(&fresh().to_uppercase()));
    }
}
