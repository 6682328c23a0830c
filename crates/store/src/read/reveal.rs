//! Readers show a person's identity where the hashed metadata holds a pseudonym (see
//! `mcp_audit_core::pseudonym`), for as long as the mapping has it; once a subject's erasure
//! has deleted it, the pseudonym is what they show.
//!
//! And the other way: a filter by a user or a data subject matches the events recorded with
//! the identity itself (before pseudonyms) and those recorded with any of its pseudonyms. The
//! `pseudonyms` table (SQLite schema 9, PostgreSQL schema 4) is the same in both backends.

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
            if !is_pseudonym(value) {
                continue;
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
        }
        Ok(())
    }
}
