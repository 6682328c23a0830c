//! PostgreSQL's side of the pseudonym mapping (`pseudonyms`, schema 5): one table for the
//! database, not per log, so that every proxy's recorder shares one pseudonym per identity
//! once it has been stored (see `crate::reveal`).

use mcp_audit_core::pseudonym::{IdentityField, Link};
use postgres::GenericClient;
use postgres::ToStatement;

use super::map_err;
use crate::error::StoreError;
use crate::store::Entry;

/// Stores the links the entries carry, in the caller's transaction. `ON CONFLICT DO
/// NOTHING`: a pseudonym is random, so one already present is the same row written before.
pub(super) fn insert_links(
    tx: &mut impl GenericClient,
    entries: &[Entry<'_>],
) -> Result<(), StoreError> {
    let links: Vec<&Link> = entries.iter().flat_map(|e| &e.sealed.links).collect();
    if links.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare(
            "INSERT INTO pseudonyms (pseudonym, field, identity) VALUES ($1, $2, $3)
             ON CONFLICT (pseudonym) DO NOTHING",
        )
        .map_err(map_err)?;
    for link in links {
        tx.execute(
            &statement,
            &[&link.pseudonym, &link.field.as_str(), &link.identity],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

/// [`links`]'s statement.
pub(super) const LINKS: &str = "SELECT pseudonym, field, identity FROM pseudonyms
  WHERE $1::TEXT IS NULL OR identity = $1 ORDER BY identity, field, pseudonym";

/// [`identities`]'s statement.
pub(super) const IDENTITIES: &str =
    "SELECT pseudonym, identity FROM pseudonyms WHERE pseudonym = ANY($1)";

/// Every row of the mapping, or those of `identity` alone.
pub(super) fn links(
    client: &mut impl GenericClient,
    identity: Option<&str>,
) -> Result<Vec<Link>, StoreError> {
    links_with(client, LINKS, identity)
}

/// As [`links`], with [`LINKS`] as the caller has it (prepared, or its text).
pub(super) fn links_with<S: ToStatement + ?Sized>(
    client: &mut impl GenericClient,
    statement: &S,
    identity: Option<&str>,
) -> Result<Vec<Link>, StoreError> {
    let rows = client.query(statement, &[&identity]).map_err(map_err)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Link {
                pseudonym: r.get(0),
                field: IdentityField::parse(r.get(1))?,
                identity: r.get(2),
            })
        })
        .collect())
}

/// The identities of `asked` that the mapping has, in one round trip (a page names many):
/// `statement` is [`IDENTITIES`], prepared or as text.
pub(super) fn identities<S: ToStatement + ?Sized>(
    client: &mut impl GenericClient,
    statement: &S,
    asked: &[String],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    if asked.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows = client.query(statement, &[&asked]).map_err(map_err)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The identity `pseudonym` stands for, while the mapping has it.
pub(super) fn identity(
    client: &mut impl GenericClient,
    pseudonym: &str,
) -> Result<Option<String>, StoreError> {
    client
        .query_opt(
            "SELECT identity FROM pseudonyms WHERE pseudonym = $1",
            &[&pseudonym],
        )
        .map(|row| row.map(|r| r.get(0)))
        .map_err(map_err)
}

/// How many erasures deleted rows of the mapping (see `crate::erasure_watch`).
pub(super) fn erasures(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    client
        .query_one("SELECT n FROM pseudonym_epoch", &[])
        .map(|r| r.get::<_, i64>(0) as u64)
        .map_err(map_err)
}

/// Deletes the rows of `pseudonyms` and, when a row went, counts the erasure, in one
/// transaction; returns how many rows there were.
pub(super) fn forget(
    client: &mut impl GenericClient,
    pseudonyms: &[String],
) -> Result<u64, StoreError> {
    let mut tx = client.transaction().map_err(map_err)?;
    let n = tx
        .execute(
            "DELETE FROM pseudonyms WHERE pseudonym = ANY($1)",
            &[&pseudonyms],
        )
        .map_err(map_err)?;
    if n > 0 {
        tx.execute("UPDATE pseudonym_epoch SET n = n + 1", &[])
            .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    Ok(n)
}
