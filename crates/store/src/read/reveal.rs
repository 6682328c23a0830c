//! Readers show a person's identity where the hashed metadata holds a pseudonym (see
//! `mcp_audit_core::pseudonym`), for as long as the mapping has it; once a subject's erasure
//! has deleted it, the pseudonym is what they show.
//!
//! And the other way: a filter by a user or a data subject matches the events recorded with
//! the identity itself (before pseudonyms) and those recorded with any of its pseudonyms. The
//! `pseudonyms` table (SQLite schema 10, PostgreSQL schema 5) is the same in both backends.

use std::collections::HashMap;

use mcp_audit_core::AuditEvent;
use mcp_audit_core::pseudonym::{IdentityField, is_pseudonym};

use crate::error::StoreError;

/// The values a filter on `field` given `slot` (the placeholder bound to what the reader
/// asked for) must match: the value itself and every pseudonym the mapping has for it.
pub(crate) fn values_of(slot: &str, field: IdentityField) -> String {
    format!(
        "(SELECT {slot} UNION ALL SELECT pseudonym FROM pseudonyms \
           WHERE identity = {slot} AND field = '{}')",
        field.as_str()
    )
}

/// Remembers, for one read, what the mapping answered for each pseudonym (a page or an
/// export names the same few users over and over).
#[derive(Default)]
pub(crate) struct Revealer {
    known: HashMap<String, Option<String>>,
}

impl Revealer {
    /// The pseudonyms among `events`' user and data-subject ids not yet known, each once: what
    /// a backend with a round trip per statement looks up together ([`Revealer::learn`]).
    #[cfg(feature = "postgres")]
    pub(crate) fn unknown<'a>(
        &self,
        events: impl IntoIterator<Item = &'a AuditEvent>,
    ) -> Vec<String> {
        let mut asked: Vec<String> = events
            .into_iter()
            .flat_map(|e| {
                [
                    e.actor.user_id.as_ref(),
                    e.compliance.data_subject_id.as_ref(),
                ]
            })
            .flatten()
            .filter(|v| is_pseudonym(v) && !self.known.contains_key(v.as_str()))
            .cloned()
            .collect();
        asked.sort_unstable();
        asked.dedup();
        asked
    }

    /// Takes the mapping's answer for `asked`: those `found` lacks have no identity (erased).
    #[cfg(feature = "postgres")]
    pub(crate) fn learn(&mut self, asked: Vec<String>, mut found: HashMap<String, String>) {
        for pseudonym in asked {
            let identity = found.remove(&pseudonym);
            self.known.insert(pseudonym, identity);
        }
    }

    /// A summary's users by identity where the mapping has one: the counts of an identity's
    /// pseudonyms (and of its events from before pseudonyms) add up under it, and the distinct
    /// users are the distinct identities.
    pub(crate) fn reveal_users(
        &mut self,
        summary: &mut crate::query::Summary,
        lookup: &mut dyn FnMut(&str) -> Result<Option<String>, StoreError>,
    ) -> Result<(), StoreError> {
        let mut by_user = std::collections::BTreeMap::new();
        for (mut user, count) in std::mem::take(&mut summary.by_user) {
            self.reveal_value(&mut user, lookup)?;
            *by_user.entry(user).or_default() += count;
        }
        summary.distinct_users = by_user.len() as u64;
        summary.by_user = by_user;
        Ok(())
    }

    fn reveal_value(
        &mut self,
        value: &mut String,
        lookup: &mut dyn FnMut(&str) -> Result<Option<String>, StoreError>,
    ) -> Result<(), StoreError> {
        if !is_pseudonym(value) {
            return Ok(());
        }
        let identity = match self.known.get(value.as_str()) {
            Some(known) => known.clone(),
            None => {
                let found = lookup(value)?;
                self.known.insert(value.clone(), found.clone());
                found
            }
        };
        if let Some(identity) = identity {
            *value = identity;
        }
        Ok(())
    }

    /// Puts the identities back into `event`'s user id and data-subject id where the mapping
    /// has them; `lookup` answers the identity of one pseudonym, `None` when it has none.
    pub(crate) fn reveal(
        &mut self,
        event: &mut AuditEvent,
        lookup: &mut dyn FnMut(&str) -> Result<Option<String>, StoreError>,
    ) -> Result<(), StoreError> {
        for value in [
            event.actor.user_id.as_mut(),
            event.compliance.data_subject_id.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            self.reveal_value(value, lookup)?;
        }
        Ok(())
    }
}
